"""
A worker's side of its pipe to the parent (see :mod:`shiji._workers`):
``ready`` once it serves, then ``beat <answered>`` a few times a second
while its reactor runs, and its Python stack on the stack pipe when the
parent, finding the beats stopped, sends :data:`~shiji._workers.STACK_SIGNAL`.

Only the beats cost anything, and nothing per request: the site counts
answered requests with an integer increment, and each beat sends the count.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
from typing import Any, Optional

from twisted.application import service
from twisted.internet import task

from ._reactor import global_reactor
from ._workers import STACK_SIGNAL, WORKER_READY_FD, WORKER_STACK_FD
from .config import GeneralConfig

__all__ = ["WorkerChannel", "beat_interval"]

#: Seconds between beats that only report the answered requests.
COUNT_INTERVAL = 0.25


def beat_interval(general: GeneralConfig) -> Optional[float]:
    """
    Seconds between a worker's beats: a quarter of ``worker_watchdog``, at
    most :data:`COUNT_INTERVAL` with ``max_requests``; ``None`` (no beats)
    with neither.
    """
    intervals = []
    if general.worker_watchdog > 0:
        intervals.append(general.worker_watchdog / 4)
    if general.max_requests > 0:
        intervals.append(COUNT_INTERVAL)
    return min(intervals) if intervals else None


class WorkerChannel(service.Service):
    """
    Reports to the parent: ``ready`` when started (start it after the HTTP
    service, which then serves), then beats with ``site``'s answered count.

    :param site: the :class:`~shiji._site.Site` whose ``answered`` is sent.
    :param general: the ``[general]`` settings (the beat interval, the
        watchdog).
    :param fd: the pipe to the parent.
    :param stack_fd: the pipe the stack goes to.
    :param clock: times the beats; the global reactor by default.
    """

    def __init__(
        self,
        site: Any,
        general: GeneralConfig,
        fd: int = WORKER_READY_FD,
        stack_fd: int = WORKER_STACK_FD,
        clock: Any = None,
    ) -> None:
        self.site = site
        self.fd = fd
        self.stack_fd = stack_fd
        self.interval = beat_interval(general)
        self.watchdog = general.worker_watchdog > 0
        self._beats = task.LoopingCall(self.beat)
        self._beats.clock = clock if clock is not None else global_reactor()

    def startService(self) -> None:
        super().startService()
        if self.watchdog:
            faulthandler.register(
                STACK_SIGNAL, file=self.stack_fd, all_threads=True, chain=False
            )
        self._send(b"ready")
        if self.interval is not None:
            self._beats.start(self.interval, now=False)

    def beat(self) -> None:
        """Tell the parent the reactor runs, and how many requests it answered."""
        self._send(b"beat %d" % self.site.answered)

    def _send(self, message: bytes) -> None:
        # The parent gone, the worker stops on its own (see the orphan check).
        with contextlib.suppress(OSError):
            os.write(self.fd, message + b"\n")

    def stopService(self) -> None:
        # The beats go on while the HTTP service drains: a draining worker
        # is still watched. They end with the reactor.
        super().stopService()
