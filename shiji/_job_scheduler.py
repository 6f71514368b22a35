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

Metrics: ``<api>.cron.<name>.ok``, ``.failed``, ``.skipped`` and
``.missed`` counters and the ``<api>.cron.<name>`` timer.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Dict, Optional, Sequence

from twisted.application import service
from twisted.internet.defer import Deferred, DeferredList

from ._cron import missed_ticks
from ._task_declarations import APITasks, CronJob
from ._task_runner import Failed, Runner, counter_prefix, log, log_failure
from ._task_store import TaskStore

__all__ = ["JobScheduler"]

#: Ticks this recent are not counted as missed on start: another process
#: may be about to claim them.
MISSED_GRACE = 1.0


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
    :param owner: who claims in the store.
    :param lease: seconds a claim lasts unrenewed.
    """

    def __init__(
        self,
        apis: Sequence[APITasks],
        store: TaskStore,
        runner: Runner,
        *,
        owner: str,
        lease: float,
    ) -> None:
        self.apis = apis
        self.store = store
        self.runner = runner
        self.owner = owner
        self.lease = lease
        self._timers: Dict[str, Any] = {}
        #: The jobs running here, by key.
        self.running_jobs: Dict[str, Deferred[None]] = {}

    def begin(self) -> Deferred[Any]:
        """Count each job's missed ticks and time its next; fires when done."""
        return DeferredList(
            [
                self._start_job(api, job)
                for api in self.apis
                for job in api.jobs.values()
            ]
        )

    def stopService(self) -> None:
        super().stopService()
        for timer in self._timers.values():
            if timer.active():
                timer.cancel()
        self._timers = {}

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
            claimed: Deferred[str] = call(
                self.store.claim_tick,
                key,
                newest,
                self.owner,
                now,
                self.lease,
                job.catch_up,
            )
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
                "cron {name} missed {count} tick(s) while stopped; {what}",
                name=job.name,
                count=shown,
                what="running once to catch up" if claim == "run" else "not replayed",
            )
        self._claimed(claim, api, job, tick)

    def _schedule(
        self, api: APITasks, job: CronJob, after: Optional[float] = None
    ) -> None:
        if not self.running:
            return
        clock = self.runner.clock
        now = clock.seconds()
        tick = job.schedule.next_tick(now if after is None else after)
        self._timers[self._job_key(api, job)] = clock.callLater(
            max(0.0, tick - now), self._tick, api, job, tick
        )

    def _tick(self, api: APITasks, job: CronJob, tick: float) -> Deferred[Any]:
        self._schedule(api, job)
        key = self._job_key(api, job)
        claimed: Deferred[str] = self.runner.call_store(
            self.store.claim_tick,
            key,
            tick,
            self.owner,
            self.runner.clock.seconds(),
            self.lease,
            True,
        )
        claimed.addCallback(self._claimed, api, job, tick)
        return claimed.addErrback(log_failure, f"Claiming a tick of {key} failed")

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

        def over(_: Any) -> None:
            self.running_jobs.pop(key, None)

        run.addBoth(over)
        if not run.called:
            self.running_jobs[key] = run
