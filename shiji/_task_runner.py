"""
Running one task or job: a coroutine function on the reactor, a plain
function in a thread, with its :class:`~shiji._task_declarations.TaskContext`
and its time limit.

A coroutine that runs out of time is cancelled (``CancelledError`` is
raised where it waits). A thread cannot be stopped from outside: the run is
reported as timed out at once, and the thread goes on until the function
returns, holding its thread-pool thread; what it returns then is dropped.
"""

from __future__ import annotations

import contextvars
from typing import Any, Callable, Dict, List, Optional

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python.failure import Failure

from ._task_declarations import CURRENT_TASK, TaskContext

__all__ = ["InThread", "TaskTimeoutError", "run_function"]

#: Runs a function of no arguments off the reactor thread; fires with its result.
InThread = Callable[[Callable[[], Any]], "Deferred[Any]"]


class TaskTimeoutError(Exception):
    """A run took longer than its ``timeout``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"timed out after {seconds:g}s")


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
