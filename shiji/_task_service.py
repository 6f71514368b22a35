"""
The task service: in every process that serves the APIs, it takes queued
tasks from the store and runs them (at most ``concurrency`` at once, each
claimed for a lease it renews, retried with back-off), and has its
:class:`~shiji._job_scheduler.JobScheduler` run the scheduled jobs. It
stops in order: no tick is timed and no task claimed any more (what a claim
in flight brings is given back, not run), the runs still going may finish
within the grace period (their claims still renewed), the claims of those
still running are given back, then the store is closed.

Log lines (namespace ``shiji.tasks``; the jobs' are in
:mod:`shiji._job_scheduler`)::

    task send_email ok 12ms (id 5f0c...)
    task send_email failed 30000ms: timed out after 30s; retry 1 of 3 in 2s (id 5f0c..., error 9d1e2a3b4c5d)
    task send_email failed 3ms: ValueError: bad address; gave up after 4 run(s) (id 5f0c..., error 0a1b2c3d4e5f)
    task send_email failed: its process ended during run 4; gave up after 4 run(s) (id 5f0c...)

A failure's traceback follows its line. The last line is that of a task
whose process ended (killed, or the machine lost) during its last run: the
process that finds its lease expired marks it failed instead of running it
again, and calls ``on_error`` with a :class:`TaskLostError`.

While the queue cannot be reached (a Redis server down), each kind of call
that fails is logged once, in a line, until the queue answers again; the
outcome of a run is stored again every second (its claim is renewed
meanwhile, so no other process runs it again)::

    Claiming tasks failed: The shared store cannot be reached (Error 111 connecting to 127.0.0.1:6379. Connection refused.); try again shortly.
    Storing an outcome (finish 5f0c...) failed, tried again every 1s: The shared store cannot be reached (...); try again shortly.
    The task queue answers again (claim)

Metrics, through the configured
:class:`~shiji.metrics.Metrics`: ``<api>.tasks.<name>.ok``, ``.failed``,
``.retried`` and ``.gave_up`` counters and the ``<api>.tasks.<name>`` timer.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
import time
from dataclasses import replace
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
)

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
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from ._errors import StorageUnavailableError
from ._job_scheduler import JobScheduler
from ._reactor import global_reactor
from ._task_declarations import APITasks, Task, TasksModuleError, load_api_tasks
from ._task_runner import (
    Failed,
    InThread,
    Runner,
    StoreCall,
    TaskThreads,
    counter_prefix,
    error_line,
    log,
    log_failure,
)
from ._task_store import FAILED, SQLiteTaskStore, StoredTask, TaskStore, lost_error
from .metrics import Metrics, NullMetrics

if TYPE_CHECKING:
    from .storage import Store

__all__ = [
    "TaskLostError",
    "TaskService",
    "check_task_store",
    "load_tasks",
    "task_service",
]


class TaskLostError(Exception):
    """
    The process running a task ended (killed, or the machine lost) during
    its last run; what ``on_error`` is given for it.

    :ivar run: which run it was (1, 2...).
    """

    def __init__(self, run: int) -> None:
        self.run = run
        super().__init__(lost_error(run))


def call_at_once(function: Callable[..., Any], *args: Any) -> Deferred[Any]:
    return maybeDeferred(function, *args)


class TaskService(service.Service):
    """
    Runs the tasks and jobs of the APIs in ``apis``.

    :param apis: what each API's ``tasks.py`` declares.
    :param store: the task queue, opened on start and closed on stop.
    :param api_config: every API's validated configuration, by module name.
    :param metrics: where the counters and timers go.
    :param clock: the time (the reactor; a ``Clock`` in tests).
    :param call_store: runs a store method off the reactor thread; the
        service's own single thread by default (``None``).
    :param in_thread: runs a blocking task; the service's own
        ``concurrency`` daemon threads by default (``None``).
    :param concurrency: tasks run at once.
    :param poll_interval: seconds between two looks at the queue.
    :param lease: seconds a claim lasts unrenewed (renewed every third of it).
    :param keep_finished: seconds finished tasks are kept.
    :param shutdown_grace: seconds running tasks may take to finish on stop.
    :param shared_store: the store shared by the processes (``[storage]``): each
        run's :attr:`TaskContext.store`, and the one whose lease lock
        elects the scheduler that times the jobs (see
        :mod:`shiji._job_scheduler`); ``None``, or a store of this process
        only (``memory:``): this service's scheduler leads alone.
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
        shared_store: Optional[Store] = None,
    ) -> None:
        self.apis = {api.module_name: api for api in apis}
        #: The task queue.
        self.store = store
        #: The store shared by the processes, if any.
        self.shared_store = shared_store
        self.api_config = dict(api_config or {})
        self.metrics: Metrics = metrics if metrics is not None else NullMetrics()
        self.clock: Any = clock if clock is not None else global_reactor()
        self._pool: Optional[ThreadPool] = None
        if call_store is None:
            pool = self._pool = ThreadPool(1, 1, "shiji-tasks-store")
            call_store = lambda f, *a: deferToThreadPool(self.clock, pool, f, *a)  # noqa: E731
        self._call = call_store
        if in_thread is None:
            in_thread = TaskThreads(self.clock, concurrency)

        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.lease = lease
        self.keep_finished = keep_finished
        self.shutdown_grace = shutdown_grace
        #: Who claims in the store: unique to this process and start.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        #: Runs and reports the tasks and the jobs.
        self.runner = Runner(
            clock=self.clock,
            metrics=self.metrics,
            api_config=self.api_config,
            in_thread=in_thread,
            call_store=call_store,
            store=shared_store,
        )
        #: Runs the scheduled jobs.
        self.jobs = JobScheduler(
            apis,
            store,
            self.runner,
            owner=self.owner,
            lease=self.lease,
            lock=shared_store if _shared(shared_store) else None,
            monotonic=time.monotonic if clock is None else self.clock.seconds,
        )
        #: What failed with the store unreachable, logged once until it
        #: answers again.
        self._unreachable: Dict[str, bool] = {}
        self._api_of: Dict[int, str] = {}
        for api in apis:
            for declared in api.tasks.values():
                self._api_of[id(declared)] = api.module_name
        self._open = False
        self._polling = False
        #: Fire when the claim in flight is over.
        self._poll_waiters: List[Deferred[None]] = []
        #: Claimed after the stop: given back, not run.
        self._unstarted: List[str] = []
        self._poll_call: Any = None
        self._poll_loop: Optional[LoopingCall] = None
        self._renew_loop: Optional[LoopingCall] = None
        #: The tasks running here, by id, and their whole run.
        self._running: Dict[str, Deferred[None]] = {}
        self._next_purge = 0.0
        self._started: Deferred[None] = succeed(None)

    # Life

    def startService(self) -> None:
        super().startService()
        self.jobs.startService()
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
        self._poll_loop = self._loop(self._poll, self.poll_interval)
        self._renew_loop = self._loop(self._renew, self.lease / 3)
        return self.jobs.begin()

    def _loop(self, function: Callable[[], Any], interval: float) -> LoopingCall:
        loop = LoopingCall(function)
        loop.clock = self.clock
        loop.start(interval, now=True).addErrback(
            lambda reason: log.failure("The task loop failed", reason)
        )
        return loop

    def stopService(self) -> Deferred[None]:
        """
        Claim no more tasks and time no more ticks; wait for a claim in
        flight, then for the runs going on (up to ``shutdown_grace``),
        renewing their claims meanwhile; give back the claims of those
        still running, and close the store.
        """
        super().stopService()
        released = self.jobs.stopService()
        _stop(self._poll_loop)
        if self._poll_call is not None and self._poll_call.active():
            self._poll_call.cancel()
        stopping: Deferred[Any] = self._started.addCallback(lambda _: released)
        stopping.addCallback(lambda _: self._idle())
        stopping.addCallback(lambda _: self._drain())
        stopping.addCallback(lambda _: self._close())
        return stopping

    def _idle(self) -> Deferred[None]:
        """Fires once no claim is in flight."""
        if not self._polling:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._poll_waiters.append(waiter)
        return waiter

    def _runs(self) -> List[Deferred[None]]:
        """The runs of tasks and jobs going on here."""
        return [*self._running.values(), *self.jobs.running_jobs.values()]

    def _drain(self) -> Deferred[None]:
        running = self._runs()
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
        _stop(self._renew_loop)
        unfinished = list(self._running)
        jobs = len(self.jobs.running_jobs)
        self.runner.release()
        if jobs or unfinished:
            log.warn(
                "{count} task(s) and {jobs} job(s) still running after {grace}s;"
                " their claims are released for another run",
                count=len(unfinished),
                jobs=jobs,
                grace=self.shutdown_grace,
            )
        released: Deferred[Any] = (
            self._call(
                self.store.release,
                self.owner,
                unfinished + self._unstarted,
                self.clock.seconds(),
            )
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
            self.store.enqueue, api, task.name, arguments, now, now, task.retries + 1
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
        free = self.runner.room(self.concurrency, len(self._running))
        if not self._open or not self.running or self._polling or free <= 0:
            return succeed(0)
        self._polling = True
        claimed: Deferred[List[StoredTask]] = self._call(
            self.store.claim, self.owner, self.clock.seconds(), self.lease, free
        )

        def start(tasks: List[StoredTask]) -> int:
            started = 0
            for stored in tasks:
                if stored.state == FAILED:
                    self._lost(stored)
                elif not self.running:
                    # Claimed as the service stopped: given back on close.
                    self._unstarted.append(stored.id)
                else:
                    self._run_task(stored)
                    started += 1
            if len(tasks) == free:
                self._poll_soon()
            return started

        def done(result: Any) -> Any:
            self._polling = False
            waiters, self._poll_waiters = self._poll_waiters, []
            for waiter in waiters:
                waiter.callback(None)
            return result

        claimed.addCallback(self._answered, "claim")
        claimed.addCallback(start)
        claimed.addErrback(self._store_failed, "claim", "Claiming tasks failed")
        return claimed.addBoth(done)

    def _answered(self, result: Any, what: str) -> Any:
        """The store answered ``what`` again: say so once after an outage."""
        if self._unreachable.pop(what, False):
            log.info("The task queue answers again ({what})", what=what)
        return result

    def _store_failed(self, reason: Failure, what: str, message: str) -> int:
        """
        Log a failed store call: once, in a line, for as long as the store
        cannot be reached (it is tried again on the next round); with its
        traceback otherwise.
        """
        if not reason.check(StorageUnavailableError):
            return log_failure(reason, message)
        if not self._unreachable.get(what):
            self._unreachable[what] = True
            log.warn(
                "{message}: {error}",
                message=message,
                error=error_line(reason),
            )
        return 0

    def _renew(self) -> Deferred[Any]:
        if not self._open:
            return succeed(None)
        now = self.clock.seconds()
        renewed: Deferred[Any] = self._call(
            self.store.renew,
            self.owner,
            list(self._running),
            list(self.jobs.running_jobs),
            now + self.lease,
        )
        if now >= self._next_purge:
            self._next_purge = now + min(self.keep_finished, 3600.0)
            renewed.addCallback(
                lambda _: self._call(self.store.purge, now - self.keep_finished)
            )
        renewed.addCallback(self._answered, "renew")
        return renewed.addErrback(
            self._store_failed, "renew", "Renewing task claims failed"
        )

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
                running = self._runs()
                if not count and not running:
                    return succeed(total[0])
                total[0] += count
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
            ).addErrback(log_failure, "Storing a failed task failed")
            return
        # Tasks queued before their runs were limited in the store: by
        # the task's retries.
        max_runs = task.retries + 1 if stored.max_runs is None else stored.max_runs
        if stored.attempts > max_runs:
            # Claimed again after its process ended during its last run.
            lost = replace(
                stored,
                state=FAILED,
                attempts=stored.attempts - 1,
                error=lost_error(stored.attempts - 1),
            )
            self.runner.settle(
                self.store.fail,
                stored.id,
                self.owner,
                self.clock.seconds(),
                lost.error,
            ).addCallbacks(
                lambda _: self._lost(lost),
                log_failure,
                errbackArgs=("Storing a failed task failed",),
            )
            return
        arguments = json.loads(stored.arguments)
        prefix = counter_prefix(api, "tasks", task.name)
        retrying = stored.attempts < max_runs
        delay = task.delay(stored.attempts)
        settle = self.runner.settle

        def record(failed: Optional[Failed]) -> Deferred[Any]:
            if failed is None:
                return settle(
                    self.store.finish, stored.id, self.owner, self.clock.seconds()
                )
            if retrying:
                self.metrics.increment(f"{prefix}.retried")
                return settle(
                    self.store.retry,
                    stored.id,
                    self.owner,
                    self.clock.seconds() + delay,
                    failed.error,
                )
            self.metrics.increment(f"{prefix}.gave_up")
            stored_failure = settle(
                self.store.fail,
                stored.id,
                self.owner,
                self.clock.seconds(),
                failed.error,
            )
            return stored_failure.addCallback(
                lambda _: self.runner.on_error(
                    api, task.name, stored.id, arguments, failed.reason
                )
            )

        run = self.runner.run(
            api,
            task,
            arguments,
            record,
            kind="task",
            prefix=prefix,
            run_id=stored.id,
            where=f"id {stored.id}",
            attempt=stored.attempts,
            if_failed=(
                f"; retry {stored.attempts} of {max_runs - 1} in {delay:g}s"
                if retrying
                else f"; gave up after {stored.attempts} run(s)"
            ),
        )
        run.addErrback(log_failure, f"Storing the outcome of task {stored.id} failed")

        ended: List[bool] = []

        def over(_: Any) -> None:
            ended.append(True)
            self._running.pop(stored.id, None)
            self._poll_soon()

        run.addBoth(over)
        # Not ``run.called``: a run whose outcome is still being stored
        # has been called, but waits.
        if not ended:
            self._running[stored.id] = run

    def _lost(self, stored: StoredTask) -> None:
        """Report a task whose process ended during its last run."""
        log.error(
            "task {name} failed: {error}; gave up after {runs} run(s) (id {id})",
            name=stored.name,
            error=stored.error,
            runs=stored.attempts,
            id=stored.id,
        )
        api = self.apis.get(stored.api)
        if api is None:
            return
        self.metrics.increment(f"{counter_prefix(api, 'tasks', stored.name)}.gave_up")
        self.runner.on_error(
            api,
            stored.name,
            stored.id,
            json.loads(stored.arguments),
            Failure(TaskLostError(stored.attempts)),
        )


def _shared(store: Optional[Store]) -> bool:
    """Whether ``store`` is shared by processes: not ``None`` nor ``memory:``."""
    if store is None:
        return False
    from ._storage_memory import MemoryStore

    return not isinstance(store, MemoryStore)


def _stop(loop: Optional[LoopingCall]) -> None:
    if loop is not None and loop.running:
        loop.stop()


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


def check_task_store(config: Any) -> None:
    """
    Open (creating it if needed) and close the queue ``[tasks] database``
    of ``config``, so that shijid does not start with one it cannot use;
    nothing when the queue is on Redis (``[storage] url``).

    :raises ConfigError: it cannot be opened; the line says why.
    """
    from .config import ConfigError

    storage = getattr(config, "storage", None)
    if storage is not None and storage.backend == "redis":
        return  # The queue is on the Redis server, which may be down now.
    path = str(config.tasks.database)
    store = SQLiteTaskStore(path)
    try:
        store.open()
    except OSError as e:
        reason = e.strerror or str(e)
    except sqlite3.Error as e:
        reason = str(e)
    else:
        store.close()
        return
    raise ConfigError(config.path, f"cannot open {path}: {reason}", "tasks", "database")


def task_queue(config: Any) -> TaskStore:
    """
    The task store of ``config``: on the Redis server of ``[storage] url``
    when it names one (:class:`RedisTaskStore`), else the SQLite file
    ``[tasks] database``.
    """
    settings = config.tasks
    storage = getattr(config, "storage", None)
    if storage is not None and storage.backend == "redis":
        from ._task_store_redis import RedisTaskStore

        return RedisTaskStore(storage.url, keep_finished=settings.keep_finished)
    return SQLiteTaskStore(str(settings.database))


def task_service(
    config: Any,
    router: Any,
    metrics: Optional[Metrics] = None,
    store: Optional[Store] = None,
) -> Optional[TaskService]:
    """
    The task service of a serving process of shijid: for the APIs of
    ``router`` that have a ``tasks.py``, with ``[tasks]`` of ``config``,
    its queue on :func:`task_queue`, its jobs led through ``store`` (the
    process's shared store); ``None`` (and no file made) when none has.

    :raises ConfigError: an API's ``tasks.py`` cannot be used.
    """
    apis = load_tasks(config, [api for _, api in router.apis])
    if not apis:
        return None
    settings = config.tasks
    return TaskService(
        apis,
        task_queue(config),
        shared_store=store,
        api_config=router.config,
        metrics=metrics,
        concurrency=settings.concurrency,
        poll_interval=settings.poll_interval,
        lease=settings.lease,
        keep_finished=settings.keep_finished,
        shutdown_grace=config.general.shutdown_grace,
    )
