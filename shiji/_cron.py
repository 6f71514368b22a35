"""
When scheduled jobs are due: a cron expression (five fields, read by
croniter, in a time zone) or a fixed interval.

A schedule turns a time (seconds since the epoch) into the next tick after
it. Ticks are the same in every process: an interval's ticks are the
multiples of its length since the epoch, a cron expression's the minutes it
names. That is what lets the processes of one shijid agree on which tick
they claim.

When clocks go back, a wall time comes round twice: a cron expression with
fixed hours (its hour field not ``*`` nor ``*/N``) ticks at its first
occurrence only, as Vixie cron does; one with any hour ticks at both, an
hour apart. When clocks go forward, a fixed time that does not exist that
night (02:30 in Paris on the last Sunday of March) ticks once, at the first
minute after the gap (03:00), as croniter gives it.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone, tzinfo
from typing import Iterator, Optional, Protocol, Tuple

# croniter ships no type information.
from croniter import CroniterError, croniter  # type: ignore[import-untyped]

__all__ = ["CronSchedule", "IntervalSchedule", "Schedule", "parse_timezone"]

#: Missed ticks of a cron expression counted at most, one by one.
MISSED_LIMIT = 1000


class Schedule(Protocol):
    """The ticks of a job."""

    def next_tick(self, after: float) -> float:
        """The first tick strictly after ``after``."""

    def latest_tick(self, until: float) -> float:
        """The last tick at or before ``until``."""

    def count_ticks(self, after: float, until: float) -> Tuple[int, bool]:
        """
        How many ticks fall after ``after`` up to ``until``, and whether
        that is exact (not cut short at :data:`MISSED_LIMIT`).
        """

    def describe(self) -> str:
        """How the schedule is written, for log lines."""


def missed_ticks(
    schedule: Schedule, last: float, now: float
) -> Tuple[int, float, bool]:
    """
    The ticks that fell after ``last`` up to ``now``: how many (exactly, or
    at least, as the third value says) and the newest of them (``last`` if
    none).
    """
    newest = schedule.latest_tick(now)
    if newest <= last:
        return 0, last, True
    count, exact = schedule.count_ticks(last, newest)
    return count, newest, exact


class IntervalSchedule:
    """Every ``seconds``: the ticks are the multiples of it since the epoch."""

    def __init__(self, seconds: float) -> None:
        if not (isinstance(seconds, (int, float)) and 0 < seconds < math.inf):
            raise ValueError(
                f"tasks.every(seconds=...) needs a number of seconds above 0, "
                f"not {seconds!r}"
            )
        self.seconds = float(seconds)

    def next_tick(self, after: float) -> float:
        return (math.floor(after / self.seconds) + 1) * self.seconds

    def latest_tick(self, until: float) -> float:
        return math.floor(until / self.seconds) * self.seconds

    def count_ticks(self, after: float, until: float) -> Tuple[int, bool]:
        count = math.floor(until / self.seconds) - math.floor(after / self.seconds)
        return max(0, count), True

    def describe(self) -> str:
        return f"every {self.seconds:g}s"


def parse_timezone(name: Optional[str]) -> tzinfo:
    """The zone named ``name`` (an IANA name such as ``Europe/Paris``); UTC for ``None``."""
    if name is None or name == "UTC":
        return timezone.utc
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(name)
    except (ValueError, LookupError) as e:
        raise ValueError(f"unknown time zone {name!r}") from e


class CronSchedule:
    """
    A five-field cron expression (minute, hour, day of month, month, day
    of week) in a time zone, UTC unless given.

    :raises ValueError: the expression or the zone is not valid.
    """

    def __init__(self, expression: str, zone: Optional[str] = None) -> None:
        fields = expression.split() if isinstance(expression, str) else []
        if len(fields) != 5:
            raise ValueError(
                f"{expression!r} is not a cron expression of five fields "
                "(minute hour day-of-month month day-of-week)"
            )
        try:
            croniter(expression)
        except (CroniterError, ValueError) as e:
            raise ValueError(
                f"{expression!r} is not a valid cron expression: {e}"
            ) from None
        self.expression = expression
        self.zone = parse_timezone(zone)
        #: Whether the hour field names fixed hours (not ``*`` nor ``*/N``).
        self.fixed_hours = not fields[1].startswith("*")

    def _ticks(self, start: float, forward: bool) -> Iterator[float]:
        """
        The ticks strictly after (or before) ``start``, nearest first; with
        fixed hours, without the second occurrence of a wall time.
        """
        found = croniter(self.expression, datetime.fromtimestamp(start, self.zone))
        step = found.get_next if forward else found.get_prev
        while True:
            tick = float(step(datetime).timestamp())
            # croniter's own fold is not reliable going backwards: the
            # time stamp tells.
            if self.fixed_hours and datetime.fromtimestamp(tick, self.zone).fold:
                continue
            yield tick

    def next_tick(self, after: float) -> float:
        return next(self._ticks(after, True))

    def latest_tick(self, until: float) -> float:
        found = next(self._ticks(until, False))
        # croniter looks strictly before; ``until`` may be a tick itself.
        following = self.next_tick(found)
        return following if following <= until else found

    def count_ticks(self, after: float, until: float) -> Tuple[int, bool]:
        count = 0
        for tick in self._ticks(after, True):
            if tick > until:
                return count, True
            if count == MISSED_LIMIT:
                break
            count += 1
        return count, False

    def describe(self) -> str:
        return f"cron {self.expression!r}"
