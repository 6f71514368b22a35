"""
The task service: in every process that serves the APIs, it takes queued
tasks from the store and runs them, and runs the scheduled jobs on their
ticks, each claimed once across processes.

Log lines (namespace ``shiji.tasks``)::

    task send_email ok 12ms (id 5f0c...)
    task send_email failed 30000ms: timed out after 30s; retry 1 of 3 in 2s (id 5f0c..., error 9d1e2a3b4c5d)
    task send_email failed 3ms: ValueError: bad address; gave up after 4 run(s) (id 5f0c..., error 0a1b2c3d4e5f)
    cron purge ok 40ms (tick 2026-12-03T02:00:00+00:00)
    cron purge failed 2ms: OSError: disk full (tick 2026-12-03T02:00:00+00:00, error 1b2c3d4e5f60)
    cron purge skipped tick 2026-12-03T02:00:00+00:00: its run before is still running
    cron purge missed 3 tick(s) while stopped; running once to catch up
    cron purge missed 3 tick(s) while stopped; not replayed

A failure's traceback follows its line. Metrics, through the configured
:class:`~shiji.metrics.Metrics`: ``<api>.tasks.<name>.ok``, ``.failed``,
``.retried`` and ``.gave_up`` counters and the ``<api>.tasks.<name>`` timer;
``<api>.cron.<name>.ok``, ``.failed``, ``.skipped`` and ``.missed``
counters and the ``<api>.cron.<name>`` timer.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from twisted.application import service
from twisted.internet.defer import (
    Deferred,
    DeferredList,
    fail,
    maybeDeferred,
    succeed,
)
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from ._answer_metrics import segment
from ._cron import missed_ticks
from ._reactor import global_reactor
from ._task_declarations import (
    APITasks,
    CronJob,
    Task,
    TaskContext,
    TasksModuleError,
    load_api_tasks,
)
from ._task_runner import InThread, TaskTimeoutError, run_function
from ._task_store import SQLiteTaskStore, StoredTask, TaskStore
from .metrics import Metrics, NullMetrics

__all__ = ["TaskService", "load_tasks", "task_service"]

log = Logger(namespace="shiji.tasks")

#: Ticks this recent are not counted as missed on start: another process
#: may be about to claim them.
MISSED_GRACE = 1.0

#: Calls ``function(*args)`` off the reactor thread (or at once, in memory).
StoreCall = Callable[..., "Deferred[Any]"]


def call_at_once(function: Callable[..., Any], *args: Any) -> Deferred[Any]:
    return maybeDeferred(function, *args)


def _iso(tick: float) -> str:
    return datetime.fromtimestamp(tick, timezone.utc).isoformat()


def _error_text(failure: Failure) -> str:
    if failure.check(TaskTimeoutError):
        return str(failure.value)
    return f"{type(failure.value).__name__}: {failure.value}"


class TaskService(service.Service):
    """
    Runs the tasks and jobs of the APIs in ``apis``.

    :param apis: what each API's ``tasks.py`` declares.
    :param store: the queue, opened on start and closed on stop.
    :param api_config: every API's validated configuration, by module name.
    :param metrics: where the counters and timers go.
    :param clock: the time (the reactor; a ``Clock`` in tests).
    :param call_store: runs a store method off the reactor thread; the
        service's own single thread by default (``None``).
    :param in_thread: runs a blocking task; the reactor's thread pool by
        default (``None``).
    :param concurrency: tasks run at once.
    :param poll_interval: seconds between two looks at the queue.
    :param lease: seconds a claim lasts unrenewed (renewed every third of it).
    :param keep_finished: seconds finished tasks are kept.
    :param shutdown_grace: seconds running tasks may take to finish on stop.
    """

    def __init__(
        self,
        apis: Sequence[APITasks],
        store: TaskStore,
        *,
        api_config: Optional[Mapping[str, Any]] = None,
        metrics: Optional[Metrics] = None,
        clock: Optional[Any] = None,
        call_store: Optional[StoreCall] = None,
        in_thread: Optional[InThread] = None,
        concurrency: int = 4,
        poll_interval: float = 1.0,
        lease: float = 60.0,
        keep_finished: float = 7 * 86400.0,
        shutdown_grace: float = 10.0,
    ) -> None:
        self.apis = {api.module_name: api for api in apis}
        self.store = store
        self.api_config = dict(api_config or {})
        self.metrics: Metrics = metrics if metrics is not None else NullMetrics()
        self.clock: Any = clock if clock is not None else global_reactor()
        self._pool: Optional[ThreadPool] = None
        if call_store is None:
            pool = self._pool = ThreadPool(1, 1, "shiji-tasks-store")
            call_store = lambda f, *a: deferToThreadPool(self.clock, pool, f, *a)  # noqa: E731
        self._call = call_store
        if in_thread is None:

            def in_thread(function: Callable[[], Any]) -> Deferred[Any]:
                reactor: Any = self.clock
                return deferToThreadPool(reactor, reactor.getThreadPool(), function)

        self._in_thread = in_thread
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.lease = lease
        self.keep_finished = keep_finished
        self.shutdown_grace = shutdown_grace
        #: Who claims in the store: unique to this process and start.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._api_of: Dict[int, str] = {}
        for api in apis:
            for declared in api.tasks.values():
                self._api_of[id(declared)] = api.module_name
        self._open = False
        #: Set on stop once the claims still running are given back.
        self._released = False
        self._polling = False
        self._poll_call: Any = None
        self._loops: List[LoopingCall] = []
        self._timers: Dict[str, Any] = {}
        #: The tasks running here, by id, and their whole run.
        self._running: Dict[str, Deferred[None]] = {}
        #: The jobs running here, by key.
        self._jobs_running: Dict[str, Deferred[None]] = {}
        self._next_purge = 0.0
        self._started: Deferred[None] = succeed(None)

    # Life

    def startService(self) -> None:
        super().startService()
        for api in self.apis.values():
            for declared in api.tasks.values():
                declared.queue = self
        if self._pool is not None:
            self._pool.start()
        self._started = self._call(self.store.open)
        self._started.addCallback(lambda _: self._begin())
        self._started.addErrback(
            lambda reason: log.failure("The task queue cannot be opened", reason)
        )

    def _begin(self) -> Deferred[Any]:
        self._open = True
        for function, interval in (
            (self._poll, self.poll_interval),
            (self._renew, self.lease / 3),
        ):
            loop = LoopingCall(function)
            loop.clock = self.clock
            loop.start(interval, now=True).addErrback(
                lambda reason: log.failure("The task loop failed", reason)
            )
            self._loops.append(loop)
        starts = [
            self._start_job(api, job)
            for api in self.apis.values()
            for job in api.jobs.values()
        ]
        return DeferredList(starts)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops = []
        for timer in self._timers.values():
            if timer.active():
                timer.cancel()
        self._timers = {}
        if self._poll_call is not None and self._poll_call.active():
            self._poll_call.cancel()
        stopping: Deferred[Any] = self._started.addCallback(lambda _: self._drain())
        stopping.addCallback(lambda _: self._close())
        return stopping

    def _drain(self) -> Deferred[None]:
        running = [*self._running.values(), *self._jobs_running.values()]
        if not running:
            return succeed(None)
        done: Deferred[None] = Deferred()
        waiting = DeferredList(running, consumeErrors=True)
        timer = self.clock.callLater(self.shutdown_grace, done.callback, None)

        def finished(_: Any) -> None:
            if timer.active():
                timer.cancel()
                done.callback(None)

        waiting.addCallback(finished)
        return done

    def _close(self) -> Deferred[None]:
        unfinished = list(self._running)
        self._released = True
        if self._jobs_running or unfinished:
            log.warn(
                "{count} task(s) and {jobs} job(s) still running after {grace}s;"
                " their claims are released for another run",
                count=len(unfinished),
                jobs=len(self._jobs_running),
                grace=self.shutdown_grace,
            )
        released: Deferred[Any] = (
            self._call(self.store.release, self.owner, unfinished, self.clock.seconds())
            if self._open
            else succeed(None)
        )
        released.addErrback(
            lambda reason: log.failure("Releasing tasks failed", reason)
        )

        def close(_: Any) -> Deferred[Any]:
            self._open = False
            return self._call(self.store.close)

        released.addCallback(close)

        def stop_pool(_: Any) -> None:
            if self._pool is not None:
                self._pool.stop()

        released.addBoth(stop_pool)
        return released

    # Queueing

    def enqueue(self, task: Task, arguments: str) -> Deferred[str]:
        """Store a run of ``task`` (see :meth:`Task.enqueue`); fires with its id."""
        api = self._api_of.get(id(task))
        if api is None:
            return fail(RuntimeError(f"{task.name} is not a task of these APIs"))
        if not self._open and not self.running:
            return fail(RuntimeError("the task service has stopped"))
        now = self.clock.seconds()
        queued: Deferred[str] = self._call(
            self.store.enqueue, api, task.name, arguments, now, now
        )
        return queued.addCallback(self._queued)

    def _queued(self, task_id: str) -> str:
        self._poll_soon()
        return task_id

    def _poll_soon(self) -> None:
        if self.running and (self._poll_call is None or not self._poll_call.active()):
            self._poll_call = self.clock.callLater(0, self._poll)

    def _poll(self) -> Deferred[int]:
        """Claim and start as many due tasks as there is room for."""
        free = self.concurrency - len(self._running)
        if not self._open or not self.running or self._polling or free <= 0:
            return succeed(0)
        self._polling = True
        claimed: Deferred[List[StoredTask]] = self._call(
            self.store.claim, self.owner, self.clock.seconds(), self.lease, free
        )

        def start(tasks: List[StoredTask]) -> int:
            for stored in tasks:
                self._run_task(stored)
            if len(tasks) == free:
                self._poll_soon()
            return len(tasks)

        def done(result: Any) -> Any:
            self._polling = False
            return result

        claimed.addCallback(start)
        claimed.addErrback(self._loop_failed, "Claiming tasks failed")
        return claimed.addBoth(done)

    def _loop_failed(self, reason: Failure, what: str) -> int:
        log.failure(what, reason)
        return 0

    def _renew(self) -> Deferred[Any]:
        if not self._open:
            return succeed(None)
        now = self.clock.seconds()
        renewed: Deferred[Any] = self._call(
            self.store.renew,
            self.owner,
            list(self._running),
            list(self._jobs_running),
            now + self.lease,
        )
        if now >= self._next_purge:
            self._next_purge = now + min(self.keep_finished, 3600.0)
            renewed.addCallback(
                lambda _: self._call(self.store.purge, now - self.keep_finished)
            )
        return renewed.addErrback(self._loop_failed, "Renewing task claims failed")

    def run_due(self) -> Deferred[int]:
        """
        Run every task due now, and any that they queue, until none is due;
        fires with the number of task runs once they, and any job running,
        are all over.
        """
        total = [0]

        def again(_: Any = None) -> Deferred[int]:
            started = self._poll()

            def wait(count: int) -> Any:
                if not count and not self._running and not self._jobs_running:
                    return succeed(total[0])
                total[0] += count
                running = [*self._running.values(), *self._jobs_running.values()]
                return DeferredList(running).addCallback(again)

            return started.addCallback(wait)

        return again()

    # Running tasks

    def _run_task(self, stored: StoredTask) -> None:
        api = self.apis.get(stored.api)
        task = api.tasks.get(stored.name) if api is not None else None
        if api is None or task is None:
            log.error(
                "task {name} of {api} is unknown here; it fails (id {id})",
                name=stored.name,
                api=stored.api,
                id=stored.id,
            )
            self._call(
                self.store.fail,
                stored.id,
                self.owner,
                self.clock.seconds(),
                "unknown task",
            ).addErrback(self._loop_failed, "Storing a failed task failed")
            return
        arguments = json.loads(stored.arguments)
        context = TaskContext(
            name=task.name,
            id=stored.id,
            attempt=stored.attempts,
            api=api.module_name,
            config=self.api_config.get(api.module_name),
            metrics=self.metrics,
        )
        started = self.clock.seconds()
        prefix = f"{segment(api.api_name)}.tasks.{segment(task.name)}"
        run = run_function(
            task.function,
            task.is_async,
            arguments["args"],
            arguments["kwargs"],
            context,
            clock=self.clock,
            in_thread=self._in_thread,
            timeout=task.timeout,
        )

        def succeeded(_: Any) -> Deferred[Any]:
            ms = self._elapsed(started, prefix)
            log.info(
                "task {name} ok {ms}ms (id {id})", name=task.name, ms=ms, id=stored.id
            )
            self.metrics.increment(f"{prefix}.ok")
            return self._settle(
                self.store.finish, stored.id, self.owner, self.clock.seconds()
            )

        def failed(reason: Failure) -> Deferred[Any]:
            ms = self._elapsed(started, prefix)
            error, error_id = _error_text(reason), secrets.token_hex(6)
            self.metrics.increment(f"{prefix}.failed")
            if stored.attempts <= task.retries:
                delay = task.delay(stored.attempts)
                log.failure(
                    "task {name} failed {ms}ms: {error}; retry {retry} of {retries}"
                    " in {delay:g}s (id {id}, error {error_id})",
                    reason,
                    name=task.name,
                    ms=ms,
                    error=error,
                    retry=stored.attempts,
                    retries=task.retries,
                    delay=delay,
                    id=stored.id,
                    error_id=error_id,
                )
                self.metrics.increment(f"{prefix}.retried")
                return self._settle(
                    self.store.retry,
                    stored.id,
                    self.owner,
                    self.clock.seconds() + delay,
                    f"{error} (error {error_id})",
                )
            log.failure(
                "task {name} failed {ms}ms: {error}; gave up after {runs} run(s)"
                " (id {id}, error {error_id})",
                reason,
                name=task.name,
                ms=ms,
                error=error,
                runs=stored.attempts,
                id=stored.id,
                error_id=error_id,
            )
            self.metrics.increment(f"{prefix}.gave_up")
            stored_failure = self._settle(
                self.store.fail,
                stored.id,
                self.owner,
                self.clock.seconds(),
                f"{error} (error {error_id})",
            )
            return stored_failure.addCallback(
                lambda _: self._on_error(api, task.name, stored.id, arguments, reason)
            )

        run.addCallbacks(succeeded, failed)
        run.addErrback(
            self._loop_failed, f"Storing the outcome of task {stored.id} failed"
        )

        def over(_: Any) -> None:
            self._running.pop(stored.id, None)
            self._poll_soon()

        run.addBoth(over)
        if not run.called:
            self._running[stored.id] = run

    def _settle(self, method: Callable[..., Any], *args: Any) -> Deferred[Any]:
        """Store a run's outcome, unless its claim was given back on stop."""
        if self._released:
            return succeed(None)
        return self._call(method, *args)

    def _elapsed(self, started: float, timer: str) -> int:
        ms: float = max(0.0, (self.clock.seconds() - started) * 1000.0)
        self.metrics.timing(timer, ms)
        return round(ms)

    def _on_error(
        self,
        api: APITasks,
        name: str,
        run_id: str,
        arguments: Dict[str, Any],
        reason: Failure,
    ) -> Deferred[Any]:
        if api.on_error is None:
            return succeed(None)
        called = maybeDeferred(api.on_error, name, run_id, arguments, reason)

        def hook_failed(hook_reason: Failure) -> None:
            log.failure(
                "{api}.tasks.on_error failed for {name} (id {id})",
                hook_reason,
                api=api.module_name,
                name=name,
                id=run_id,
            )

        return called.addErrback(hook_failed)

    # Scheduled jobs

    def _job_key(self, api: APITasks, job: CronJob) -> str:
        return f"{api.module_name}.{job.name}"

    def _start_job(self, api: APITasks, job: CronJob) -> Deferred[Any]:
        key = self._job_key(api, job)
        last: Deferred[Optional[float]] = self._call(self.store.last_tick, key)

        def check(last_tick: Optional[float]) -> Any:
            now = self.clock.seconds()
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
            claimed: Deferred[str] = self._call(
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
        return last.addErrback(self._loop_failed, f"Scheduling job {key} failed")

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
            self.metrics.increment(
                f"{segment(api.api_name)}.cron.{segment(job.name)}.missed", count
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
        now = self.clock.seconds()
        tick = job.schedule.next_tick(now if after is None else after)
        self._timers[self._job_key(api, job)] = self.clock.callLater(
            max(0.0, tick - now), self._tick, api, job, tick
        )

    def _tick(self, api: APITasks, job: CronJob, tick: float) -> Deferred[Any]:
        self._schedule(api, job)
        key = self._job_key(api, job)
        claimed: Deferred[str] = self._call(
            self.store.claim_tick,
            key,
            tick,
            self.owner,
            self.clock.seconds(),
            self.lease,
            True,
        )
        claimed.addCallback(self._claimed, api, job, tick)
        return claimed.addErrback(self._loop_failed, f"Claiming a tick of {key} failed")

    def _claimed(self, claim: str, api: APITasks, job: CronJob, tick: float) -> None:
        prefix = f"{segment(api.api_name)}.cron.{segment(job.name)}"
        if claim == "busy":
            log.warn(
                "cron {name} skipped tick {tick}: its run before is still running",
                name=job.name,
                tick=_iso(tick),
            )
            self.metrics.increment(f"{prefix}.skipped")
        elif claim == "run":
            self._run_job(api, job, tick, prefix)

    def _run_job(self, api: APITasks, job: CronJob, tick: float, prefix: str) -> None:
        key = self._job_key(api, job)
        run_id = f"{job.name}@{_iso(tick)}"
        context = TaskContext(
            name=job.name,
            id=run_id,
            attempt=1,
            api=api.module_name,
            config=self.api_config.get(api.module_name),
            metrics=self.metrics,
        )
        started = self.clock.seconds()
        run = run_function(
            job.function,
            job.is_async,
            [],
            {},
            context,
            clock=self.clock,
            in_thread=self._in_thread,
            timeout=job.timeout,
        )

        def succeeded(_: Any) -> Tuple[str, Optional[Failure]]:
            ms = self._elapsed(started, prefix)
            log.info(
                "cron {name} ok {ms}ms (tick {tick})",
                name=job.name,
                ms=ms,
                tick=_iso(tick),
            )
            self.metrics.increment(f"{prefix}.ok")
            return "ok", None

        def failed(reason: Failure) -> Tuple[str, Optional[Failure]]:
            ms = self._elapsed(started, prefix)
            log.failure(
                "cron {name} failed {ms}ms: {error} (tick {tick}, error {error_id})",
                reason,
                name=job.name,
                ms=ms,
                error=_error_text(reason),
                tick=_iso(tick),
                error_id=secrets.token_hex(6),
            )
            self.metrics.increment(f"{prefix}.failed")
            return "failed", reason

        def record(outcome: Tuple[str, Optional[Failure]]) -> Deferred[Any]:
            ended: Deferred[Any] = self._settle(
                self.store.end_tick, key, tick, self.owner, outcome[0]
            )
            reason = outcome[1]
            if reason is not None:
                ended.addCallback(
                    lambda _: self._on_error(
                        api, job.name, run_id, {"args": [], "kwargs": {}}, reason
                    )
                )
            return ended

        run.addCallbacks(succeeded, failed)
        run.addCallback(record)
        run.addErrback(self._loop_failed, f"Storing the outcome of job {key} failed")

        def over(_: Any) -> None:
            self._jobs_running.pop(key, None)

        run.addBoth(over)
        if not run.called:
            self._jobs_running[key] = run


def load_tasks(config: Any, api_modules: Sequence[Any]) -> List[APITasks]:
    """
    The tasks and jobs of each API module that has a ``tasks`` module.

    :raises ConfigError: one cannot be used; the error names the API in
        ``[apis]`` of ``config`` and says why in one line.
    """
    from .config import ConfigError

    found = []
    for api in api_modules:
        try:
            declared = load_api_tasks(api)
        except TasksModuleError as e:
            raise ConfigError(config.path, str(e), "apis", api.__name__) from None
        if declared is not None:
            found.append(declared)
    return found


def task_service(
    config: Any, router: Any, metrics: Optional[Metrics] = None
) -> service.Service:
    """
    The task service of a serving process of shijid: for the APIs of
    ``router`` that have a ``tasks.py``, with ``[tasks]`` of ``config``; a
    service that does nothing (and creates no file) when none has.

    :raises ConfigError: an API's ``tasks.py`` cannot be used.
    """
    apis = load_tasks(config, [api for _, api in router.apis])
    if not apis:
        return service.Service()
    settings = config.tasks
    return TaskService(
        apis,
        SQLiteTaskStore(str(settings.database)),
        api_config=router.config,
        metrics=metrics,
        concurrency=settings.concurrency,
        poll_interval=settings.poll_interval,
        lease=settings.lease,
        keep_finished=settings.keep_finished,
        shutdown_grace=config.general.shutdown_grace,
    )
