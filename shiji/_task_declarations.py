"""
What an API's ``tasks.py`` declares: tasks (:func:`task`), scheduled jobs
(:func:`cron`, :func:`every`) and an ``on_error`` hook; and how the task
service finds them (:func:`load_api_tasks`).

A task's arguments are checked when it is queued, never when it runs: they
must bind to the function's parameters and be JSON (``str``, ``int``,
``float`` but not NaN or infinity, ``bool``, ``None``, and ``list`` and
``dict`` with ``str`` keys of them), exactly, so that the function gets back
what was given.
"""

from __future__ import annotations

import contextvars
import importlib
import importlib.util
import inspect
import json
import math
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional, Protocol, TypeVar

from twisted.internet.defer import Deferred, fail

from ._cron import CronSchedule, IntervalSchedule, Schedule
from ._imports import import_failure

__all__ = [
    "APITasks",
    "CronJob",
    "Task",
    "TaskContext",
    "cron",
    "current",
    "every",
    "load_api_tasks",
    "task",
]

F = TypeVar("F", bound=Callable[..., Any])


class TaskQueue(Protocol):
    """Where :meth:`Task.enqueue` puts tasks: the task service."""

    def enqueue(self, task: Task, arguments: str) -> Deferred[str]:
        """Store a task; fires with its id."""


@dataclass(frozen=True)
class TaskContext:
    """
    What a running task or job can learn of its run, from
    :func:`current`.

    :ivar name: the task's (or job's) name: its function's name.
    :ivar id: the task's id; for a job, ``<name>@<tick in ISO 8601>``.
    :ivar attempt: 1 for the first run, 2 for the first retry...
    :ivar api: the API's module name, as ``[apis]`` lists it.
    :ivar config: the API's validated configuration (what its
        ``config.validate_config`` returned).
    :ivar metrics: where to send metrics (a :class:`shiji.metrics.Metrics`).
    :ivar store: the shared store (a :class:`shiji.storage.Store`), the one
        handlers have as ``request.store``.
    """

    name: str
    id: str
    attempt: int
    api: str
    config: Any
    metrics: Any
    store: Any = None


CURRENT_TASK: contextvars.ContextVar[TaskContext] = contextvars.ContextVar(
    "shiji_task_context"
)


def current() -> TaskContext:
    """
    The :class:`TaskContext` of the task or job running in this thread or
    coroutine.

    :raises LookupError: called outside a task.
    """
    try:
        return CURRENT_TASK.get()
    except LookupError:
        raise LookupError("tasks.current() is only known inside a task") from None


def _json_problem(value: Any) -> Optional[str]:
    """Why ``value`` is not exactly JSON, or ``None`` if it is."""
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value!r} is not a JSON number"
    if isinstance(value, list):
        for item in value:
            problem = _json_problem(item)
            if problem is not None:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"the key {key!r} is not a string"
            problem = _json_problem(item)
            if problem is not None:
                return problem
        return None
    return f"{type(value).__name__} is not a JSON type"


class Task:
    """
    A function declared with :func:`task`. Calling it calls the function
    at once; :meth:`enqueue` queues a run.

    :ivar name: the function's name, unique within its API.
    :ivar retries: runs after a failed one, at most.
    :ivar backoff: seconds before the first retry, doubled for each further one.
    :ivar timeout: seconds a run may take (``None``: no limit).
    :ivar is_async: the function is a coroutine function (it runs on the
        reactor); otherwise in the task service's threads.
    """

    def __init__(
        self,
        function: Callable[..., Any],
        retries: int,
        backoff: float,
        timeout: Optional[float],
    ) -> None:
        self.function = function
        self.name: str = function.__name__
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.is_async = inspect.iscoroutinefunction(function)
        self._signature = inspect.signature(function)
        #: Set by the task service that runs this API's tasks.
        self.queue: Optional[TaskQueue] = None
        self.__doc__ = function.__doc__
        self.__wrapped__ = function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.name}>"

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed run number ``attempt`` (1, 2...)."""
        return float(self.backoff * 2 ** (attempt - 1))

    def arguments_json(self, args: Any, kwargs: Dict[str, Any]) -> str:
        """
        The arguments as the store keeps them.

        :raises TypeError: they do not bind to the function's parameters,
            or one is not JSON.
        :raises ValueError: a number is NaN or infinite.
        """
        try:
            self._signature.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{self.name}.enqueue(): {e}") from None
        named = [(f"argument {i + 1}", value) for i, value in enumerate(args)]
        named += [(f"argument {key!r}", value) for key, value in kwargs.items()]
        for label, value in named:
            problem = _json_problem(value)
            if problem is not None:
                kind = ValueError if "JSON number" in problem else TypeError
                raise kind(f"{self.name}.enqueue(): {label} is not JSON: {problem}")
        return json.dumps({"args": list(args), "kwargs": kwargs})

    def enqueue(self, *args: Any, **kwargs: Any) -> Deferred[str]:
        """
        Queue a run of the task with these arguments (JSON values only).

        :returns: a ``Deferred`` firing with the task's id once it is stored.
        :raises TypeError: (at once) an argument is not JSON or does not fit
            the function's parameters.
        :raises ValueError: (at once) a number is NaN or infinite.
        """
        arguments = self.arguments_json(args, kwargs)
        if self.queue is None:
            return fail(
                RuntimeError(
                    f"{self.name}.enqueue(): no task service runs this API's tasks"
                )
            )
        return self.queue.enqueue(self, arguments)


class CronJob:
    """
    A function declared with :func:`cron` or :func:`every`; calling it
    calls the function.

    :ivar name: the function's name, unique within its API.
    :ivar schedule: when it is due.
    :ivar catch_up: after ticks were missed while no process ran, run once
        for all of them.
    :ivar timeout: seconds a run may take (``None``: no limit).
    """

    def __init__(
        self,
        function: Callable[..., Any],
        schedule: Schedule,
        catch_up: bool,
        timeout: Optional[float],
    ) -> None:
        self.function = function
        self.name: str = function.__name__
        self.schedule = schedule
        self.catch_up = catch_up
        self.timeout = timeout
        self.is_async = inspect.iscoroutinefunction(function)
        self.__doc__ = function.__doc__
        self.__wrapped__ = function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<CronJob {self.name} {self.schedule.describe()}>"


def _check_timeout(where: str, timeout: Optional[float]) -> None:
    if timeout is not None and not (
        isinstance(timeout, (int, float)) and 0 < timeout < math.inf
    ):
        raise ValueError(f"{where}: timeout must be seconds above 0, not {timeout!r}")


def task(
    retries: int = 0, backoff: float = 1.0, timeout: Optional[float] = None
) -> Callable[[Callable[..., Any]], Task]:
    """
    Declare a background task in an API's ``tasks.py``::

        @tasks.task(retries=3, backoff=2.0, timeout=30)
        def send_email(to, subject): ...

    A plain function runs in the task service's own threads; a coroutine
    function runs on the reactor.

    :param retries: runs after a failed one, at most (``retries=3``: four
        runs in all).
    :param backoff: seconds before the first retry; each further one waits
        twice as long as the one before (2, 4, 8...).
    :param timeout: seconds a run may take before it fails as timed out
        (and is retried like any failure); ``None`` for no limit.
    """
    if not (isinstance(retries, int) and retries >= 0):
        raise ValueError(f"tasks.task(): retries must be 0 or more, not {retries!r}")
    if not (isinstance(backoff, (int, float)) and 0 <= backoff < math.inf):
        raise ValueError(f"tasks.task(): backoff must be seconds, not {backoff!r}")
    _check_timeout("tasks.task()", timeout)

    def declare(function: Callable[..., Any]) -> Task:
        return Task(function, retries, float(backoff), timeout)

    return declare


def cron(
    expression: str,
    *,
    timezone: Optional[str] = None,
    catch_up: bool = False,
    timeout: Optional[float] = None,
) -> Callable[[Callable[..., Any]], CronJob]:
    """
    Declare a job run on a cron schedule, once per tick across all of
    shijid's processes::

        @tasks.cron("0 2 * * *")
        def purge(): ...

    :param expression: five fields: minute, hour, day of month, month, day
        of week.
    :param timezone: the zone the expression is read in (an IANA name such
        as ``"Europe/Paris"``); UTC by default.
    :param catch_up: when ticks were missed while shijid was stopped, run
        once for them all on start; otherwise they are only logged.
    :param timeout: seconds a run may take; ``None`` for no limit.
    :raises ValueError: the expression or the zone is not valid (the API
        then fails to load).
    """
    try:
        schedule = CronSchedule(expression, timezone)
    except ValueError as e:
        raise ValueError(f"tasks.cron(): {e}") from None
    _check_timeout("tasks.cron()", timeout)

    def declare(function: Callable[..., Any]) -> CronJob:
        return CronJob(function, schedule, catch_up, timeout)

    return declare


def every(
    seconds: float, *, catch_up: bool = False, timeout: Optional[float] = None
) -> Callable[[Callable[..., Any]], CronJob]:
    """
    Declare a job run every ``seconds``, once per tick across all of
    shijid's processes; ticks fall on the multiples of ``seconds`` since
    the epoch. ``catch_up`` and ``timeout`` are those of :func:`cron`.
    """
    schedule = IntervalSchedule(seconds)
    _check_timeout("tasks.every()", timeout)

    def declare(function: Callable[..., Any]) -> CronJob:
        return CronJob(function, schedule, catch_up, timeout)

    return declare


@dataclass
class APITasks:
    """
    What one API's ``tasks.py`` declares.

    :ivar module_name: the API's module name (``[apis]``).
    :ivar api_name: the API's ``api_name``, the first segment of its metrics.
    """

    module_name: str
    api_name: str
    tasks: Dict[str, Task] = field(default_factory=dict)
    jobs: Dict[str, CronJob] = field(default_factory=dict)
    on_error: Optional[Callable[..., Any]] = None


class TasksModuleError(Exception):
    """An API's ``tasks.py`` cannot be used; the text says why."""


def _import_failure(tasks_name: str, exc: BaseException) -> str:
    """
    Why ``tasks_name`` cannot be imported, naming its own line when the
    error was raised further in (a declaration refusing its options).
    """
    text = import_failure(tasks_name, exc)
    try:
        spec = importlib.util.find_spec(tasks_name)
    except (ImportError, ValueError):
        spec = None
    origin = spec.origin if spec is not None else None
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == origin:
            line = tb.tb_lineno
        tb = tb.tb_next
    if line is None or isinstance(exc, SyntaxError):
        return text
    return f"cannot import {tasks_name}: {type(exc).__name__}: {exc} ({origin}, line {line})"


def load_api_tasks(api: ModuleType) -> Optional[APITasks]:
    """
    Import ``<api>.tasks`` and collect its tasks, jobs and ``on_error``.

    :returns: ``None`` when the API has no ``tasks`` module.
    :raises TasksModuleError: it cannot be imported, or declares two tasks
        or jobs of one name, or an ``on_error`` that is not callable.
    """

    module_name = api.__name__
    tasks_name = f"{module_name}.tasks"
    if not hasattr(api, "__path__"):
        return None  # a module, not a package: it has no tasks module
    try:
        module = importlib.import_module(tasks_name)
    except ModuleNotFoundError as e:
        if e.name in (tasks_name, module_name):
            return None
        raise TasksModuleError(_import_failure(tasks_name, e)) from None
    except Exception as e:
        raise TasksModuleError(_import_failure(tasks_name, e)) from None
    found = APITasks(module_name, str(getattr(api, "api_name", module_name)))
    seen: List[object] = []
    for value in vars(module).values():
        if not isinstance(value, (Task, CronJob)) or any(value is s for s in seen):
            continue
        seen.append(value)
        if value.name in found.tasks or value.name in found.jobs:
            raise TasksModuleError(f"{tasks_name} declares {value.name} twice")
        if isinstance(value, Task):
            found.tasks[value.name] = value
        else:
            found.jobs[value.name] = value
    on_error = getattr(module, "on_error", None)
    if on_error is not None and not callable(on_error):
        raise TasksModuleError(f"{tasks_name}.on_error is not a function")
    found.on_error = on_error
    return found
