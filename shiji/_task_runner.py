"""
Running one task or job: a coroutine function on the reactor, a plain
function in a thread, with its :class:`~shiji._task_declarations.TaskContext`
and its time limit (:func:`run_function`); and what every run of a task or
a job is given and leaves behind (:class:`Runner`): its timer and counters,
its log line, its outcome in the store and the API's ``on_error`` hook.

A coroutine that runs out of time is cancelled (``CancelledError`` is
raised where it waits). A plain function runs in one of the task service's
own threads (:class:`TaskThreads`), never in the reactor's thread pool that
request handlers share through ``deferToThread``. A thread cannot be
stopped from outside: the run is reported as timed out at once, and the
thread goes on until the function returns; what it returns then is dropped.
Until it returns, its thread still counts against the service's
``concurrency`` (:meth:`Runner.room`), so runs that hang cannot pile up
threads. The threads are daemon threads, never joined: a process that has
stopped its task service exits even while one still runs, and logs so::

    task send_email still running in a thread at exit; it will run again elsewhere (id 5f0c...)
    3 of 4 task slots are held by threads of runs that timed out; no task is taken until one returns

A run's log line (namespace ``shiji.tasks``) says what ran, how it ended
and how long it took, then which run it was; a failure's traceback
follows its line::

    task send_email ok 12ms (id 5f0c...)
    cron purge failed 2ms: OSError: disk full (tick 2026-12-03T02:00:00+00:00, error 1b2c3d4e5f60)
"""

from __future__ import annotations

import contextvars
import itertools
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Mapping, Optional, Union

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from ._answer_metrics import segment
from ._errors import StorageUnavailableError
from ._task_declarations import CURRENT_TASK, APITasks, CronJob, Task, TaskContext
from .metrics import Metrics

__all__ = [
    "Failed",
    "InThread",
    "Runner",
    "StoreCall",
    "TaskThreads",
    "TaskTimeoutError",
    "counter_prefix",
    "error_line",
    "log",
    "log_failure",
    "run_function",
]

#: The log of the task service, its queue and its scheduled jobs.
log = Logger(namespace="shiji.tasks")

#: Runs a function of no arguments off the reactor thread; fires with its result.
InThread = Callable[[Callable[[], Any]], "Deferred[Any]"]

#: Calls ``function(*args)`` off the reactor thread (or at once, in memory).
StoreCall = Callable[..., "Deferred[Any]"]


class TaskTimeoutError(Exception):
    """A run took longer than its ``timeout``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"timed out after {seconds:g}s")


class _ThreadRun:
    """One call given to :class:`TaskThreads`."""

    def __init__(self, function: Callable[[], Any], threads: TaskThreads) -> None:
        self.function = function
        self.threads = threads
        self.deferred: Deferred[Any] = Deferred(self._cancel)
        self.started = False

    def _cancel(self, deferred: Deferred[Any]) -> None:
        # Deferred then fails with CancelledError; a run that waits is
        # dropped, one that has started is left to its thread.
        if not self.started:
            self.threads.drop(self)


class TaskThreads:
    """
    The task service's own threads for blocking runs (an :data:`InThread`):
    a daemon thread for each call, at most ``size`` at once; a call beyond
    waits its turn. The threads are never joined.

    Cancelling a call's ``Deferred`` (its run timed out) drops it if it is
    still waiting; if it has started, its thread goes on, still counted
    against ``size``, until the function returns, and what it returns is
    dropped.

    :param reactor: the reactor the results are given back on
        (``callFromThread``).
    :param size: threads at most.
    """

    def __init__(self, reactor: Any, size: int) -> None:
        self.reactor = reactor
        self.size = size
        #: Threads running a function now.
        self.busy = 0
        self._waiting: Deque[_ThreadRun] = deque()
        self._numbers = itertools.count(1)

    def __call__(self, function: Callable[[], Any]) -> Deferred[Any]:
        """Call ``function`` in a thread; fires with its result on the reactor."""
        run = _ThreadRun(function, self)
        self._waiting.append(run)
        self._start_waiting()
        return run.deferred

    def drop(self, run: _ThreadRun) -> None:
        """Forget ``run``, which waits for a thread."""
        self._waiting.remove(run)

    def _start_waiting(self) -> None:
        while self._waiting and self.busy < self.size:
            run = self._waiting.popleft()
            run.started = True
            self.busy += 1
            threading.Thread(
                target=self._work,
                args=(run,),
                name=f"shiji-task-{next(self._numbers)}",
                daemon=True,
            ).start()

    def _work(self, run: _ThreadRun) -> None:
        try:
            outcome = run.function()
        except BaseException:
            outcome = Failure()
        self.reactor.callFromThread(self._returned, run, outcome)

    def _returned(self, run: _ThreadRun, outcome: Any) -> None:
        self.busy -= 1
        if not run.deferred.called:
            if isinstance(outcome, Failure):
                run.deferred.errback(outcome)
            else:
                run.deferred.callback(outcome)
        self._start_waiting()


def run_function(
    function: Callable[..., Any],
    is_async: bool,
    args: List[Any],
    kwargs: Dict[str, Any],
    context: TaskContext,
    *,
    clock: Any,
    in_thread: InThread,
    timeout: Optional[float],
) -> Deferred[Any]:
    """
    Run ``function(*args, **kwargs)`` with ``context`` as
    :func:`shiji.tasks.current`; fires with its result, or fails with
    what it raised or :class:`TaskTimeoutError`.
    """
    scope = contextvars.copy_context()
    scope.run(CURRENT_TASK.set, context)
    if is_async:
        # Twisted runs each step of the coroutine in the context it was
        # started from.
        running: Deferred[Any] = scope.run(
            maybeDeferred, lambda: Deferred.fromCoroutine(function(*args, **kwargs))
        )
    else:
        running = in_thread(lambda: scope.run(function, *args, **kwargs))
    if timeout is None:
        return running

    def timed_out(result: Any, seconds: Optional[float]) -> Any:
        return Failure(TaskTimeoutError(timeout))

    return running.addTimeout(timeout, clock, onTimeoutCancel=timed_out)


def counter_prefix(api: APITasks, section: str, name: str) -> str:
    """
    Where the metrics of the task or job ``name`` of ``api`` go:
    ``<api>.<section>.<name>``, the section being ``tasks`` or ``cron``.
    """
    return f"{segment(api.api_name)}.{section}.{segment(name)}"


def error_line(reason: Failure) -> str:
    """What went wrong, in a line (an API error's text, not its JSON)."""
    value = reason.value
    if isinstance(value, StorageUnavailableError):
        # What the client is told, and what the log alone is told: why.
        cause = value.__cause__
        why = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
        return f"{value.exception_text}{why}"
    return str(value) or type(value).__name__


def log_failure(reason: Failure, what: str) -> int:
    """Log that ``what`` failed, with its traceback; 0 runs started."""
    log.failure(what, reason)
    return 0


def _error_text(failure: Failure) -> str:
    if failure.check(TaskTimeoutError):
        return str(failure.value)
    return f"{type(failure.value).__name__}: {failure.value}"


@dataclass(frozen=True)
class Failed:
    """
    How a run failed.

    :ivar reason: what it raised.
    :ivar error: its error and the id its log line carries, as the store
        keeps it.
    """

    reason: Failure
    error: str


@dataclass(eq=False)
class _InThread:
    """A blocking run whose function has not returned."""

    kind: str
    name: str
    where: str
    #: Its function has started, in a thread.
    started: bool = False
    #: Its run is over (it timed out): only its thread goes on.
    ended: bool = False


#: Stores a run's outcome: ``None`` when it succeeded.
Record = Callable[[Optional[Failed]], "Deferred[Any]"]


class Runner:
    """
    Runs the tasks and jobs of APIs, each with its context, and reports
    each run: its timer and its ``ok`` or ``failed`` counter, its log line.

    :param clock: the time.
    :param metrics: where the counters and timers go.
    :param api_config: every API's validated configuration, by module name.
    :param in_thread: runs a blocking function.
    :param call_store: runs a store method off the reactor thread.
    :param store: the shared store, :attr:`TaskContext.store` of each run.
    """

    def __init__(
        self,
        *,
        clock: Any,
        metrics: Metrics,
        api_config: Mapping[str, Any],
        in_thread: InThread,
        call_store: StoreCall,
        store: Any = None,
    ) -> None:
        self.clock = clock
        self.store = store
        self.metrics = metrics
        self.api_config = api_config
        self.in_thread = in_thread
        self.call_store = call_store
        #: Seconds between two tries to store an outcome while the store
        #: cannot be reached.
        self.settle_retry = 1.0
        self._released = False
        #: The blocking runs whose function has not returned, which the
        #: threads they run in drop as they return.
        self._in_threads: List[_InThread] = []
        self._lock = threading.Lock()
        #: The timed-out threads that left no room when last logged.
        self._stuck_logged = 0

    def release(self) -> None:
        """
        From now on, outcomes are not stored: the claims were given back.
        Logs the blocking runs still going on in their threads, which the
        process does not wait for.
        """
        self._released = True
        with self._lock:
            going_on = list(self._in_threads)
        for run in going_on:
            if run.ended:
                what = ", after it timed out"
            elif run.kind == "task":
                what = "; it will run again elsewhere"
            else:
                what = ""
            log.warn(
                "{kind} {name} still running in a thread at exit{what} ({where})",
                kind=run.kind,
                name=run.name,
                what=what,
                where=run.where,
            )

    def room(self, concurrency: int, running: int) -> int:
        """
        How many more tasks may start: ``concurrency`` less the ``running``
        ones and the threads of runs that timed out but have not returned.
        Logs when those threads leave no room (again, when there are more).
        """
        with self._lock:
            stuck = sum(1 for run in self._in_threads if run.ended)
        free = concurrency - running - stuck
        full = free <= 0 and stuck > 0
        if full and stuck != self._stuck_logged:
            log.warn(
                "{stuck} of {concurrency} task slots are held by threads of runs"
                " that timed out; no task is taken until one returns",
                stuck=stuck,
                concurrency=concurrency,
            )
        self._stuck_logged = stuck if full else 0
        return free

    def _tracked(self, function: Callable[..., Any], run: _InThread) -> Any:
        """
        ``function``, noted in :attr:`_in_threads` from now on until it
        returns; or, if its run ends before it starts (it timed out while
        waiting for a thread), from when it starts, if it ever does.
        """
        with self._lock:
            self._in_threads.append(run)

        def tracked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                run.started = True
                if run not in self._in_threads:
                    self._in_threads.append(run)
            try:
                return function(*args, **kwargs)
            finally:
                with self._lock:
                    self._in_threads.remove(run)

        return tracked

    def _ended(self, run: _InThread) -> None:
        """The run of ``run`` is over, whether or not its function has returned."""
        with self._lock:
            run.ended = True
            if not run.started:
                self._in_threads.remove(run)

    def settle(self, method: Callable[..., Any], *args: Any) -> Deferred[Any]:
        """
        Store a run's outcome, unless its claim was given back on stop.
        While the store cannot be reached, it is tried again every
        :attr:`settle_retry` seconds (the run's claim is still renewed
        meanwhile, so no other process runs it again), until it is stored
        or the claims are given back; fires once stored.
        """
        if self._released:
            return succeed(None)
        done: Deferred[Any] = Deferred()
        logged = [False]

        def attempt() -> None:
            if self._released:
                done.callback(None)
                return
            stored: Deferred[Any] = self.call_store(method, *args)
            stored.addCallbacks(done.callback, failed)

        def failed(reason: Failure) -> None:
            if not reason.check(StorageUnavailableError) or self._released:
                done.errback(reason)
                return
            if not logged[0]:
                logged[0] = True
                log.warn(
                    "Storing an outcome ({what} {id}) failed, tried again"
                    " every {every:g}s: {error}",
                    what=getattr(method, "__name__", "call"),
                    id=args[0] if args else "",
                    error=error_line(reason),
                    every=self.settle_retry,
                )
            self.clock.callLater(self.settle_retry, attempt)

        attempt()
        return done

    def run(
        self,
        api: APITasks,
        declared: Union[Task, CronJob],
        arguments: Dict[str, Any],
        record: Record,
        *,
        kind: str,
        prefix: str,
        run_id: str,
        where: str,
        attempt: int = 1,
        if_failed: str = "",
    ) -> Deferred[Any]:
        """
        Run ``declared`` of ``api`` with ``arguments`` (``args`` and
        ``kwargs``), report it, then ``record`` its outcome; fires once
        that is stored, or fails as storing it did.

        :param kind: ``task`` or ``cron``, for the log line.
        :param prefix: the name of its timer and the start of its counters.
        :param run_id: :attr:`TaskContext.id`.
        :param where: which run it is, for the log line (``id 5f0c...``).
        :param if_failed: what a failure leads to, for the log line
            (``; retry 1 of 3 in 2s``).
        """
        context = TaskContext(
            name=declared.name,
            id=run_id,
            attempt=attempt,
            api=api.module_name,
            config=self.api_config.get(api.module_name),
            metrics=self.metrics,
            store=self.store,
        )
        started = self.clock.seconds()
        function = declared.function
        in_thread: Optional[_InThread] = None
        if not declared.is_async:
            in_thread = _InThread(kind, declared.name, where)
            function = self._tracked(function, in_thread)
        run = run_function(
            function,
            declared.is_async,
            arguments["args"],
            arguments["kwargs"],
            context,
            clock=self.clock,
            in_thread=self.in_thread,
            timeout=declared.timeout,
        )

        def succeeded(_: Any) -> Deferred[Any]:
            log.info(
                "{kind} {name} ok {ms}ms ({where})",
                kind=kind,
                name=declared.name,
                ms=self._elapsed(started, prefix),
                where=where,
            )
            self.metrics.increment(f"{prefix}.ok")
            return record(None)

        def failed(reason: Failure) -> Deferred[Any]:
            ms = self._elapsed(started, prefix)
            error, error_id = _error_text(reason), secrets.token_hex(6)
            self.metrics.increment(f"{prefix}.failed")
            log.failure(
                "{kind} {name} failed {ms}ms: {error}{if_failed}"
                " ({where}, error {error_id})",
                reason,
                kind=kind,
                name=declared.name,
                ms=ms,
                error=error,
                if_failed=if_failed,
                where=where,
                error_id=error_id,
            )
            return record(Failed(reason, f"{error} (error {error_id})"))

        def ended(result: Any) -> Any:
            if in_thread is not None:
                self._ended(in_thread)
            return result

        return run.addBoth(ended).addCallbacks(succeeded, failed)

    def _elapsed(self, started: float, timer: str) -> int:
        ms: float = max(0.0, (self.clock.seconds() - started) * 1000.0)
        self.metrics.timing(timer, ms)
        return round(ms)

    def on_error(
        self,
        api: APITasks,
        name: str,
        run_id: str,
        arguments: Dict[str, Any],
        reason: Failure,
    ) -> Deferred[Any]:
        """Call ``api``'s ``on_error`` hook, if it has one, for a run that failed for good."""
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
