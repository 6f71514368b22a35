"""
Scheduled jobs: the task service's :class:`JobScheduler` runs each job of
its APIs on its ticks, each tick claimed once across processes in the
store, and counts the ticks missed while no process ran.

Log lines (namespace ``shiji.tasks``)::

    cron purge ok 40ms (tick 2026-12-03T02:00:00+00:00)
    cron purge failed 2ms: OSError: disk full (tick 2026-12-03T02:00:00+00:00, error 1b2c3d4e5f60)
    cron purge skipped tick 2026-12-03T02:00:00+00:00: its run before is still running
    cron purge missed 3 tick(s) while stopped; running once to catch up
    cron purge missed 3 tick(s) while stopped; not replayed
    cron purge missed 5 tick(s) while no process led; not replayed

Metrics: ``<api>.cron.<name>.ok``, ``.failed``, ``.skipped`` and
``.missed`` counters and the ``<api>.cron.<name>`` timer.

Leadership: given a shared store (``lock``, a :class:`~shiji.storage.Store`),
one scheduler across every process sharing it times the jobs: the one that
holds the store's lease lock ``shiji:cron-leader`` (:data:`LEADER_LOCK`).
Each scheduler tries to take it every ``lease / 3`` seconds; the leader
renews it as often, for ``lease`` seconds. The leader counts its lead as
valid until ``lease - lease / 10`` seconds (:data:`LEASE_MARGIN`) after it
*sent* the last acquire or renewal that succeeded, on a monotonic clock, and
starts a tick only before then; when a renewal fails, is refused, or that
time passes, it stops timing ticks at once (the lock's holder may already
be another process) and seeks the lock again on the next rounds. A new
leader counts the ticks missed since the last one claimed, as on start, and
the claim of each tick in the task store (:meth:`TaskStore.claim_tick`)
still keeps two processes from running one tick; so does, first, a claim
of it in the shared store (``shiji:cron-tick:<job>:<tick>``), for the
processes whose task stores differ (a PostgreSQL store: each host keeps
its own queue). On stop, the leader
releases the lock, so another takes over at once. Without ``lock`` the
scheduler leads alone (the per-tick claim keeps the processes of one queue
from running a tick twice)::

    Cron leader: web1:4242:9f3a1c2e
    Cron leadership lost: the renewal failed: The shared store cannot be reached...
    Cron leadership released: web1:4242:9f3a1c2e
    Cron leadership cannot be sought: The shared store cannot be reached...

Metrics: ``tasks.cron.leader_gained`` and ``tasks.cron.leader_lost``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence

from twisted.application import service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from ._cron import missed_ticks
from ._errors import StorageUnavailableError
from ._task_declarations import APITasks, CronJob
from ._task_runner import (
    Failed,
    Runner,
    counter_prefix,
    error_line,
    log,
    log_failure,
)
from ._task_store import TaskStore

if TYPE_CHECKING:
    from .storage import Store

__all__ = ["LEADER_LOCK", "LEASE_MARGIN", "JobScheduler"]

#: The lock of the store whose holder times the jobs.
LEADER_LOCK = "shiji:cron-leader"

#: The part of the lease the leader does not count on: its lead ends this
#: much of a lease before the lock may expire in the store.
LEASE_MARGIN = 0.1

#: Ticks this recent are not counted as missed on start: another process
#: may be about to claim them.
MISSED_GRACE = 1.0


#: Where ticks are claimed in the shared store: this, then the job and tick.
TICK_PREFIX = "shiji:cron-tick:"

#: Seconds a tick's claim is kept in the shared store beyond twice the
#: job's period: longer than a process is likely to have been stopped.
TICK_MEMORY = 8 * 86400.0


def _iso(tick: float) -> str:
    return datetime.fromtimestamp(tick, timezone.utc).isoformat()


class JobScheduler(service.Service):
    """
    Runs the scheduled jobs of the APIs in ``apis`` on their ticks. Its
    task service starts it, calls :meth:`begin` once the store is open, and
    stops it (no tick is timed any more) before it waits for
    :attr:`running_jobs` and closes the store.

    :param apis: what each API's ``tasks.py`` declares.
    :param store: the open store, where ticks are claimed.
    :param runner: runs and reports the jobs.
    :param owner: who claims in the store, and holds the leader's lock.
    :param lease: seconds a claim lasts unrenewed; those of the leader's
        lock too.
    :param lock: the shared store whose lease lock elects the leader;
        ``None``: this scheduler leads alone.
    :param monotonic: the clock the leader's lead is measured on; the
        runner's clock by default (give ``time.monotonic`` in a process).
    """

    def __init__(
        self,
        apis: Sequence[APITasks],
        store: TaskStore,
        runner: Runner,
        *,
        owner: str,
        lease: float,
        lock: Optional[Store] = None,
        monotonic: Optional[Callable[[], float]] = None,
    ) -> None:
        self.apis = apis
        self.store = store
        self.runner = runner
        self.owner = owner
        self.lease = lease
        self.lock = lock
        self._monotonic: Callable[[], float] = (
            monotonic if monotonic is not None else runner.clock.seconds
        )
        self._timers: Dict[str, Any] = {}
        #: The jobs running here, by key.
        self.running_jobs: Dict[str, Deferred[None]] = {}
        #: Whether this scheduler times the jobs now.
        self.leading = False
        #: Until when (on the monotonic clock) the lead counts.
        self.valid_until = 0.0
        self._rounds: Optional[LoopingCall] = None
        self._in_round = False
        self._expiry: Any = None
        self._unreachable_logged = False
        #: Whether this scheduler has led before, and so what ticks missed
        #: when it leads were missed during.
        self._led = False
        self._missed_when = "while stopped"

    def _has_jobs(self) -> bool:
        return any(api.jobs for api in self.apis)

    def begin(self) -> Deferred[Any]:
        """
        Seek the lead (with a lock); once leading, count each job's missed
        ticks and time its next. Fires when the first round is over.
        """
        if not self._has_jobs() or not self.running:
            return succeed(None)
        if self.lock is None:
            self.leading = True
            return self._start_jobs()
        first = self._round()
        self._rounds = LoopingCall(self._round)
        self._rounds.clock = self.runner.clock
        self._rounds.start(self.lease / 3, now=False).addErrback(
            log_failure, "The cron leadership loop failed"
        )
        return first

    def _start_jobs(self) -> Deferred[Any]:
        return DeferredList(
            [
                self._start_job(api, job)
                for api in self.apis
                for job in api.jobs.values()
            ]
        )

    def stopService(self) -> Deferred[Any]:
        """Time no more ticks; release the leader's lock if held here."""
        super().stopService()
        if self._rounds is not None and self._rounds.running:
            self._rounds.stop()
        self._rounds = None
        was_leading = self.leading
        self._stop_leading()
        if self.lock is None or not self._has_jobs():
            return succeed(None)
        return self._release(was_leading)

    def _release(self, log_it: bool) -> Deferred[Any]:
        assert self.lock is not None
        released: Deferred[Any] = maybeDeferred(
            self.lock.release, LEADER_LOCK, self.owner
        )

        def done(held: bool) -> None:
            if held and log_it:
                log.info("Cron leadership released: {owner}", owner=self.owner)

        released.addCallback(done)
        return released.addErrback(log_failure, "Releasing the cron leadership failed")

    def _stop_leading(self) -> None:
        """Time no more ticks here."""
        self.leading = False
        for timer in self._timers.values():
            if timer.active():
                timer.cancel()
        self._timers = {}
        if self._expiry is not None and self._expiry.active():
            self._expiry.cancel()
        self._expiry = None

    # Leadership

    def leads(self) -> bool:
        """Whether this scheduler may start a tick now."""
        if self.lock is None:
            return self.leading
        return self.leading and self._monotonic() < self.valid_until

    def _round(self) -> Deferred[Any]:
        """Renew the lead, or seek it."""
        if self.lock is None or self._in_round or not self.running:
            return succeed(None)
        self._in_round = True
        sent = self._monotonic()
        leading = self.leading
        asked: Deferred[bool] = maybeDeferred(
            self.lock.renew if leading else self.lock.acquire,
            LEADER_LOCK,
            self.owner,
            self.lease,
        )

        def answered(held: bool) -> Any:
            self._in_round = False
            self._reachable()
            if not self.running:
                return self._release(False) if held else None
            if leading and not self.leading:
                return None  # Its lead ran out while the renewal was on its way.
            if not held:
                if leading:
                    self._lose("the lock is held by another process or expired")
                return None
            self.valid_until = sent + self.lease * (1 - LEASE_MARGIN)
            remaining = self.valid_until - self._monotonic()
            if remaining <= 0:
                self._lose("the answer came after the lead ran out")
                return None
            if self._expiry is not None and self._expiry.active():
                self._expiry.cancel()
            self._expiry = self.runner.clock.callLater(remaining, self._ran_out)
            if not leading:
                return self._gain()
            return None

        def failed(reason: Failure) -> None:
            self._in_round = False
            if leading:
                self._lose(f"the renewal failed: {error_line(reason)}")
            elif not self._unreachable_logged:
                self._unreachable_logged = True
                log.warn(
                    "Cron leadership cannot be sought: {reason}",
                    reason=error_line(reason),
                )

        asked.addCallbacks(answered, failed)
        return asked.addErrback(log_failure, "Seeking the cron leadership failed")

    def _reachable(self) -> None:
        self._unreachable_logged = False

    def _ran_out(self) -> None:
        self._expiry = None
        if not self.leading:
            return
        remaining = self.valid_until - self._monotonic()
        if remaining > 0:  # the timer's clock ran a little ahead
            self._expiry = self.runner.clock.callLater(remaining, self._ran_out)
        else:
            self._lose("its lease ran out before it was renewed")

    def _gain(self) -> Deferred[Any]:
        if self._led:
            self._missed_when = "while no process led"
        self._led = self.leading = True
        log.info("Cron leader: {owner}", owner=self.owner)
        self.runner.metrics.increment("tasks.cron.leader_gained")
        return self._start_jobs()

    def _lose(self, why: str) -> None:
        if not self.leading:
            return
        self._stop_leading()
        log.warn("Cron leadership lost: {why}", why=why)
        self.runner.metrics.increment("tasks.cron.leader_lost")

    def _job_key(self, api: APITasks, job: CronJob) -> str:
        return f"{api.module_name}.{job.name}"

    def _start_job(self, api: APITasks, job: CronJob) -> Deferred[Any]:
        key = self._job_key(api, job)
        call = self.runner.call_store
        last: Deferred[Optional[float]] = call(self.store.last_tick, key)

        def check(last_tick: Optional[float]) -> Any:
            now = self.runner.clock.seconds()
            if last_tick is None:
                self._schedule(api, job)
                return None
            # A tick of the last moment that no process has claimed yet is
            # claimed as usual, at once.
            self._schedule(api, job, max(last_tick, now - MISSED_GRACE))
            count, newest, exact = missed_ticks(
                job.schedule, last_tick, now - MISSED_GRACE
            )
            if not count:
                return None
            claimed = self._claim_tick(key, job, newest, job.catch_up)
            shown = str(count) if exact else f"{count} or more"
            return claimed.addCallback(self._missed, api, job, newest, count, shown)

        last.addCallback(check)
        return last.addErrback(log_failure, f"Scheduling job {key} failed")

    def _missed(
        self,
        claim: str,
        api: APITasks,
        job: CronJob,
        tick: float,
        count: int,
        shown: str,
    ) -> None:
        if claim in ("run", "missed"):
            self.runner.metrics.increment(
                f"{counter_prefix(api, 'cron', job.name)}.missed", count
            )
            log.warn(
                "cron {name} missed {count} tick(s) {when}; {what}",
                name=job.name,
                count=shown,
                when=self._missed_when,
                what="running once to catch up" if claim == "run" else "not replayed",
            )
        self._claimed(claim, api, job, tick)

    def _schedule(
        self, api: APITasks, job: CronJob, after: Optional[float] = None
    ) -> None:
        if not self.running or not self.leading:
            return
        clock = self.runner.clock
        now = clock.seconds()
        tick = job.schedule.next_tick(now if after is None else after)
        self._timers[self._job_key(api, job)] = clock.callLater(
            max(0.0, tick - now), self._tick, api, job, tick
        )

    def _tick(self, api: APITasks, job: CronJob, tick: float) -> Deferred[Any]:
        if not self.leads():
            self._lose("its lease ran out before it was renewed")
            return succeed(None)
        self._schedule(api, job)
        key = self._job_key(api, job)
        claimed = self._claim_tick(key, job, tick, True)
        claimed.addCallback(self._claimed, api, job, tick)
        return claimed.addErrback(self._claim_failed, key, tick)

    def _claim_tick(
        self, key: str, job: CronJob, tick: float, run: bool
    ) -> Deferred[str]:
        """
        Claim ``tick`` of the job ``key``: in the shared store first (when
        it is to run), then in the task store; what the task store says,
        or ``taken`` when the shared store says another process has it.
        """

        def in_queue(mine: bool) -> Any:
            if not mine:
                return "taken"
            return self.runner.call_store(
                self.store.claim_tick,
                key,
                tick,
                self.owner,
                self.runner.clock.seconds(),
                self.lease,
                run,
            )

        if self.lock is None or not run:
            return in_queue(True)  # type: ignore[no-any-return]
        # Kept while a leader catching up may still count the tick missed:
        # until the next tick, and a good while more.
        period = max(job.schedule.next_tick(tick) - tick, 0.0)
        shared: Deferred[bool] = self.lock.add(
            f"{TICK_PREFIX}{key}:{tick:.3f}", self.owner, 2 * period + TICK_MEMORY
        )
        return shared.addCallback(in_queue)

    def _claim_failed(self, reason: Failure, key: str, tick: float) -> None:
        if reason.check(StorageUnavailableError):
            log.warn(
                "Claiming tick {tick} of {key} failed: {reason}",
                tick=_iso(tick),
                key=key,
                reason=error_line(reason),
            )
        else:
            log_failure(reason, f"Claiming a tick of {key} failed")

    def _claimed(self, claim: str, api: APITasks, job: CronJob, tick: float) -> None:
        if claim == "busy":
            log.warn(
                "cron {name} skipped tick {tick}: its run before is still running",
                name=job.name,
                tick=_iso(tick),
            )
            self.runner.metrics.increment(
                f"{counter_prefix(api, 'cron', job.name)}.skipped"
            )
        elif claim == "run" and self.running:
            # Not after the stop: the claim is given back on close.
            self._run_job(api, job, tick)

    def _run_job(self, api: APITasks, job: CronJob, tick: float) -> None:
        key = self._job_key(api, job)
        run_id = f"{job.name}@{_iso(tick)}"
        arguments: Dict[str, Any] = {"args": [], "kwargs": {}}

        def record(failed: Optional[Failed]) -> Deferred[Any]:
            ended: Deferred[Any] = self.runner.settle(
                self.store.end_tick,
                key,
                tick,
                self.owner,
                "ok" if failed is None else "failed",
            )
            if failed is not None:
                ended.addCallback(
                    lambda _: self.runner.on_error(
                        api, job.name, run_id, arguments, failed.reason
                    )
                )
            return ended

        run = self.runner.run(
            api,
            job,
            arguments,
            record,
            kind="cron",
            prefix=counter_prefix(api, "cron", job.name),
            run_id=run_id,
            where=f"tick {_iso(tick)}",
        )
        run.addErrback(log_failure, f"Storing the outcome of job {key} failed")

        ended: List[bool] = []

        def over(_: Any) -> None:
            ended.append(True)
            self.running_jobs.pop(key, None)

        run.addBoth(over)
        if not ended:  # not ``run.called``: it may wait for its outcome stored
            self.running_jobs[key] = run
