"""
A worker stops when its parent is gone (see :mod:`shiji._workers`).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional

from twisted.application import service
from twisted.internet import task
from twisted.logger import Logger

from ._signals import stop_reactor

__all__ = ["ParentWatchService"]

log = Logger(namespace="shiji.daemon")

#: The parent process id when this module was first imported: a worker
#: imports it before its APIs, so a parent that dies while they are being
#: imported is noticed too.
_FIRST_PARENT = os.getppid()


class ParentWatchService(service.Service):
    """
    Stops the reactor, and so the worker, once the process that started it
    is gone (even killed outright): its parent process id then changes.

    :param parent: the parent's process id; by default, this process's
        parent when Shiji's daemon modules were imported (before the APIs).
    :param interval: seconds between looks.
    :param clock: schedules the looks; the global reactor by default.
    :param stop: called when the parent is gone; stops the reactor by
        default.
    """

    def __init__(
        self,
        parent: Optional[int] = None,
        interval: float = 1.0,
        clock: Any = None,
        stop: Callable[[], None] = stop_reactor,
    ) -> None:
        self.stop = stop
        self.parent_pid = _FIRST_PARENT if parent is None else parent
        self.interval = interval
        self._looking = task.LoopingCall(self.look)
        if clock is not None:
            self._looking.clock = clock

    def startService(self) -> None:
        super().startService()
        self._looking.start(self.interval, now=False)

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
