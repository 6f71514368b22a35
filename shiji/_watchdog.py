"""
The watchdog of a blocked reactor (``[general] worker_watchdog``).

A handler that blocks the reactor (a busy loop, a blocking call made by
mistake) stalls its process for good: no deadline can fire on a reactor
that does not run. The watchdog notices from outside the reactor:

- in a worker, the parent does (see :mod:`shiji._workers`): the worker's
  reactor beats on its pipe (:class:`~shiji._worker_channel.WorkerChannel`);
  a worker whose beats stop has its stack logged and is killed and
  replaced;
- in a single process, :class:`ReactorWatchdog` does: the reactor updates a
  timestamp, a thread checks it; when stale, the Python stack of every
  thread is logged and, with ``watchdog_exit``, the process exits with
  :data:`WATCHDOG_EXIT_STATUS` for its supervisor to restart it.
"""

from __future__ import annotations

import faulthandler
import os
import tempfile
import threading
import time
from typing import Any, Callable, List, Optional

from twisted.application import service
from twisted.internet import task
from twisted.logger import Logger

from ._reactor import global_reactor
from .config import GeneralConfig

__all__ = ["WATCHDOG_EXIT_STATUS", "ReactorWatchdog", "thread_stacks", "watchdogs"]

log = Logger(namespace="shiji.watchdog")

#: The exit status of a single-process shijid that ``watchdog_exit`` stops
#: (EX_SOFTWARE of sysexits.h).
WATCHDOG_EXIT_STATUS = 70


def thread_stacks() -> str:
    """The Python stack of every thread, as faulthandler writes it."""
    with tempfile.TemporaryFile() as dump:
        faulthandler.dump_traceback(file=dump.fileno(), all_threads=True)
        dump.seek(0)
        return dump.read().decode("utf-8", "replace").rstrip()


class ReactorWatchdog(service.Service):
    """
    Watches a single process's reactor from a thread: the reactor records
    the time four times per ``limit``; when the record is older than
    ``limit`` seconds, the stack of every thread is logged, once per stall,
    and with ``exit`` the process exits with :data:`WATCHDOG_EXIT_STATUS`.

    :param limit: seconds the reactor may stay blocked.
    :param exit: exit on a stall instead of watching on.
    :param clock: runs the reactor's side; the global reactor by default.
    :param now: the time (monotonic seconds), for the thread's side.
    :param exit_process: ends the process with a status (``os._exit``: the
        reactor, blocked, cannot stop cleanly).
    """

    def __init__(
        self,
        limit: float,
        *,
        exit: bool = False,
        clock: Any = None,
        now: Callable[[], float] = time.monotonic,
        exit_process: Callable[[int], Any] = os._exit,
    ) -> None:
        self.limit = limit
        self.exit = exit
        self._now = now
        self._exit_process = exit_process
        #: When the reactor last ran (``now``'s time).
        self.last_beat = now()
        self._reported: Optional[float] = None
        self._beats = task.LoopingCall(self.beat)
        self._beats.clock = clock if clock is not None else global_reactor()
        self._stopped = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def startService(self) -> None:
        super().startService()
        self.beat()
        self._beats.start(self.limit / 4, now=False)
        self._stopped.clear()
        self._thread = threading.Thread(
            target=self._watch, name="shiji-watchdog", daemon=True
        )
        self._thread.start()

    def beat(self) -> None:
        """The reactor runs (called by it)."""
        self.last_beat = self._now()

    def _watch(self) -> None:
        while not self._stopped.wait(self.limit / 4):
            try:
                self.check()
            except Exception:
                log.failure("The watchdog's check failed")

    def check(self) -> bool:
        """
        Log the stack if the reactor is blocked past the limit (once per
        stall), and exit with ``exit``; whether a stall was reported.
        """
        beat = self.last_beat
        reported = self._reported
        if reported is not None and beat != reported:
            self._reported = None
            log.warn(
                "The reactor runs again after a stall of {seconds:.1f}s",
                seconds=beat - reported,
            )
        blocked = self._now() - beat
        if blocked <= self.limit or self._reported == beat:
            return False
        self._reported = beat
        log.critical(
            "The reactor has been blocked for {blocked:.1f}s "
            "(worker_watchdog {limit:g}s){outcome}. Python stack:\n{stack}",
            blocked=blocked,
            limit=self.limit,
            outcome=(
                f"; exiting with status {WATCHDOG_EXIT_STATUS}" if self.exit else ""
            ),
            stack=thread_stacks(),
        )
        if self.exit:
            self._exit_process(WATCHDOG_EXIT_STATUS)
        return True

    def stopService(self) -> None:
        super().stopService()
        self._stopped.set()
        if self._beats.running:
            self._beats.stop()


def watchdogs(
    general: GeneralConfig, site: Any, worker_fd: Optional[int]
) -> List[service.Service]:
    """
    The services watching a process serving ``site``: a worker's channel to
    its parent (its ``ready``, beats and stack), to start after the HTTP
    service, or a single process's :class:`ReactorWatchdog`, to start
    before it (and so stop after it: it watches the drain too).
    """
    if worker_fd is not None:
        from ._worker_channel import WorkerChannel

        channel = WorkerChannel(site, general)
        channel.setName("worker-channel")
        return [channel]
    if general.worker_watchdog > 0:
        watchdog = ReactorWatchdog(general.worker_watchdog, exit=general.watchdog_exit)
        watchdog.setName("watchdog")
        return [watchdog]
    return []
