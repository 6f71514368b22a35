"""
:class:`MemoryStore`: the :class:`~shiji.storage.Store` of one process,
kept in its memory (``[storage] url = memory:``, and
:class:`shiji.testing.TestClient`'s).

Every operation runs at once and returns a ``Deferred`` that has already
fired. Expired entries read as absent and are dropped when next touched;
every minute or so a write also sweeps out every expired entry, so that
keys nobody reads again do not pile up.

The checks every backend makes of its arguments live here too
(:func:`check_expiry`, :func:`check_cap`, :func:`parse_count`), so that
each backend refuses the same calls with the same ``ValueError``.
"""

import math
import re
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple, TypeVar, Union

from twisted.internet import defer
from twisted.internet.defer import Deferred

from ._errors import StorageUnavailableError

__all__ = [
    "MemoryStore",
    "check_cap",
    "check_expiry",
    "parse_count",
    "refused_expiry",
    "unavailable",
]

_T = TypeVar("_T")

#: Seconds between two sweeps of every expired entry.
SWEEP_INTERVAL = 60.0

#: A counter is a signed 64-bit integer, as in Redis.
COUNT_MIN, COUNT_MAX = -(2**63), 2**63 - 1

_COUNT = re.compile(r"-?[0-9]+")


def check_expiry(expires_in: float, what: str = "expires_in") -> float:
    """
    ``expires_in`` (or a lease) as a float.

    :raises ValueError: it is not a finite number of seconds above 0.
    """
    seconds = float(expires_in)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{what} must be a number of seconds above 0, not {seconds}")
    return seconds


def refused_expiry(
    seconds: Optional[float], required: bool = False, what: str = "expires_in"
) -> "Optional[Deferred[Any]]":
    """A failed ``Deferred`` if ``seconds`` is no expiry, else ``None``."""
    if seconds is None and not required:
        return None
    try:
        check_expiry(seconds, what)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return defer.fail()
    return None


def unavailable(cause: BaseException) -> StorageUnavailableError:
    """The error of a store that ``cause`` keeps from answering."""
    error = StorageUnavailableError()
    error.__cause__ = cause
    return error


def check_cap(cap: int) -> int:
    """
    A list's ``cap``.

    :raises ValueError: it is below 1.
    """
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise ValueError(f"cap must be an integer of 1 or more, not {cap!r}")
    return cap


def parse_count(key: str, value: str, amount: int) -> int:
    """
    The counter ``value`` of ``key`` plus ``amount``.

    :raises ValueError: ``value`` is not a decimal integer, or the sum is
        outside a signed 64-bit integer's range.
    """
    if not _COUNT.fullmatch(value):
        raise ValueError(f"{key!r} holds a value that is not an integer")
    count = int(value) + amount
    if not COUNT_MIN <= count <= COUNT_MAX:
        raise ValueError(f"{key!r} would count beyond a 64-bit integer")
    return count


def _check_amount(amount: int) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValueError(f"amount must be an integer, not {amount!r}")
    return amount


class _WallClock:
    """The ``seconds()`` of an ``IReactorTime``, as ``time.time()``."""

    def seconds(self) -> float:
        return time.time()


class _Entry:
    """A value (or counter) as text, or a list; with its expiry."""

    __slots__ = ("expires", "value")

    def __init__(self, value: Union[str, Deque[str]], expires: Optional[float]):
        self.value = value
        self.expires = expires


class MemoryStore:
    """
    A :class:`~shiji.storage.Store` in this process's memory.

    :param clock: an ``IReactorTime`` that measures expiry (its
        ``seconds()``); the wall clock by default. Give a
        ``twisted.internet.task.Clock`` to let a test decide when entries
        expire.
    """

    def __init__(self, clock: Any = None) -> None:
        self._clock: Any = clock if clock is not None else _WallClock()
        self._entries: Dict[str, _Entry] = {}
        self._locks: Dict[str, Tuple[str, float]] = {}
        self._next_sweep = 0.0
        self._closed = False

    # Helpers

    def _run(self, operation: Callable[[], _T]) -> "Deferred[_T]":
        if self._closed:
            return defer.fail(StorageUnavailableError())
        try:
            return defer.succeed(operation())
        except Exception:
            return defer.fail()

    def _now(self) -> float:
        return float(self._clock.seconds())

    def _live(self, key: str, now: float) -> Optional[_Entry]:
        """The entry of ``key``, unless absent or expired (then dropped)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires is not None and entry.expires <= now:
            del self._entries[key]
            return None
        return entry

    def _writing(self, now: float) -> None:
        """Sweep out expired entries, at most every ``SWEEP_INTERVAL``."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_INTERVAL
        expired = [
            key
            for key, entry in self._entries.items()
            if entry.expires is not None and entry.expires <= now
        ]
        for key in expired:
            del self._entries[key]
        for name in [name for name, (_, ends) in self._locks.items() if ends <= now]:
            del self._locks[name]

    @staticmethod
    def _text(key: str, entry: _Entry) -> str:
        if not isinstance(entry.value, str):
            raise ValueError(f"{key!r} holds a list, not a value")
        return entry.value

    @staticmethod
    def _list(key: str, entry: _Entry) -> Deque[str]:
        if isinstance(entry.value, str):
            raise ValueError(f"{key!r} holds a value, not a list")
        return entry.value

    def _until(self, now: float, expires_in: Optional[float]) -> Optional[float]:
        return None if expires_in is None else now + check_expiry(expires_in)

    # Values

    def get(self, key: str) -> "Deferred[Optional[str]]":
        def get() -> Optional[str]:
            entry = self._live(key, self._now())
            return None if entry is None else self._text(key, entry)

        return self._run(get)

    def set(
        self, key: str, value: str, expires_in: Optional[float] = None
    ) -> "Deferred[None]":
        def set_() -> None:
            now = self._now()
            until = self._until(now, expires_in)
            self._writing(now)
            self._entries[key] = _Entry(value, until)

        return self._run(set_)

    def add(
        self, key: str, value: str, expires_in: Optional[float] = None
    ) -> "Deferred[bool]":
        def add() -> bool:
            now = self._now()
            until = self._until(now, expires_in)
            self._writing(now)
            if self._live(key, now) is not None:
                return False
            self._entries[key] = _Entry(value, until)
            return True

        return self._run(add)

    def replace(
        self, key: str, value: str, expires_in: Optional[float] = None
    ) -> "Deferred[bool]":
        def replace() -> bool:
            now = self._now()
            until = self._until(now, expires_in)
            self._writing(now)
            entry = self._live(key, now)
            if entry is None:
                return False
            self._text(key, entry)
            entry.value, entry.expires = value, until
            return True

        return self._run(replace)

    def delete(self, key: str) -> "Deferred[bool]":
        def delete() -> bool:
            now = self._now()
            self._writing(now)
            if self._live(key, now) is None:
                return False
            del self._entries[key]
            return True

        return self._run(delete)

    def expire(self, key: str, expires_in: float) -> "Deferred[bool]":
        def expire() -> bool:
            now = self._now()
            until = now + check_expiry(expires_in)
            self._writing(now)
            entry = self._live(key, now)
            if entry is None:
                return False
            entry.expires = until
            return True

        return self._run(expire)

    def incr(
        self, key: str, amount: int = 1, expires_in: Optional[float] = None
    ) -> "Deferred[int]":
        def incr() -> int:
            now = self._now()
            until = self._until(now, expires_in)
            _check_amount(amount)
            self._writing(now)
            entry = self._live(key, now)
            if entry is None:
                count = parse_count(key, "0", amount)
                self._entries[key] = _Entry(str(count), until)
            else:
                count = parse_count(key, self._text(key, entry), amount)
                entry.value = str(count)
            return count

        return self._run(incr)

    # Lists

    def push(
        self, key: str, value: str, cap: int, expires_in: Optional[float] = None
    ) -> "Deferred[int]":
        def push() -> int:
            now = self._now()
            until = self._until(now, expires_in)
            check_cap(cap)
            self._writing(now)
            entry = self._live(key, now)
            if entry is None:
                entry = self._entries[key] = _Entry(deque(), until)
            items = self._list(key, entry)
            items.append(value)
            while len(items) > cap:
                items.popleft()
            if until is not None:
                entry.expires = until
            return len(items)

        return self._run(push)

    def pop(self, key: str) -> "Deferred[Optional[str]]":
        def pop() -> Optional[str]:
            now = self._now()
            self._writing(now)
            entry = self._live(key, now)
            if entry is None:
                return None
            items = self._list(key, entry)
            value = items.popleft()
            if not items:
                del self._entries[key]
            return value

        return self._run(pop)

    def items(self, key: str) -> "Deferred[List[str]]":
        def items() -> List[str]:
            entry = self._live(key, self._now())
            return [] if entry is None else list(self._list(key, entry))

        return self._run(items)

    # Locks

    def acquire(self, name: str, owner: str, lease: float) -> "Deferred[bool]":
        def acquire() -> bool:
            now = self._now()
            until = now + check_expiry(lease, "lease")
            self._writing(now)
            held = self._locks.get(name)
            if held is not None and held[0] != owner and held[1] > now:
                return False
            self._locks[name] = (owner, until)
            return True

        return self._run(acquire)

    def renew(self, name: str, owner: str, lease: float) -> "Deferred[bool]":
        def renew() -> bool:
            now = self._now()
            until = now + check_expiry(lease, "lease")
            held = self._locks.get(name)
            if held is None or held[0] != owner or held[1] <= now:
                return False
            self._locks[name] = (owner, until)
            return True

        return self._run(renew)

    def release(self, name: str, owner: str) -> "Deferred[bool]":
        def release() -> bool:
            held = self._locks.get(name)
            if held is None or held[0] != owner:
                return False
            del self._locks[name]
            return held[1] > self._now()

        return self._run(release)

    def close(self) -> "Deferred[None]":
        self._closed = True
        self._entries.clear()
        self._locks.clear()
        return defer.succeed(None)
