"""
A worker stops when its parent is gone (see :mod:`shiji._workers`): the
parent passes its process id (``--parent-pid``); a worker whose parent
process id differs, when it starts or later, stops.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from twisted.application import service
from twisted.internet import task
from twisted.logger import Logger

from ._signals import stop_reactor

__all__ = ["ParentWatchService"]

log = Logger(namespace="shiji.daemon")


class ParentWatchService(service.Service):
    """
    Stops the reactor, and so the worker, once the process that started it
    is gone (even killed outright): its parent process id then changes.

    :param parent: the parent's process id, as the parent said
        (``--parent-pid``).
    :param interval: seconds between looks.
    :param clock: schedules the looks; the global reactor by default.
    :param stop: called when the parent is gone; stops the reactor by
        default.
    """

    def __init__(
        self,
        parent: int,
        interval: float = 1.0,
        clock: Any = None,
        stop: Callable[[], None] = stop_reactor,
    ) -> None:
        self.stop = stop
        self.parent_pid = parent
        self.interval = interval
        self._looking = task.LoopingCall(self.look)
        if clock is not None:
            self._looking.clock = clock

    def startService(self) -> None:
        super().startService()
        # At once too: the parent may have died while the APIs were imported.
        self._looking.start(self.interval, now=True)

    def look(self) -> None:
        """Stop the reactor if the parent is gone."""
        if os.getppid() != self.parent_pid:
            log.warn("The shijid parent process is gone; stopping")
            self._looking.stop()
            self.stop()

    def stopService(self) -> None:
        super().stopService()
        if self._looking.running:
            self._looking.stop()
