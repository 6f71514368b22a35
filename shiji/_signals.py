"""
The daemon's signals: SIGTERM or SIGINT drains and stops it, once; SIGHUP
reopens what rotation needs reopened.
"""

from __future__ import annotations

import contextlib
import signal
from types import FrameType
from typing import Any, Callable, Dict, Optional, Sequence

from twisted.application import service
from twisted.internet import error
from twisted.logger import Logger

from ._reactor import global_reactor

__all__ = ["SignalService"]

log = Logger(namespace="shiji.daemon")

#: The signals that drain and stop the daemon.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stop_reactor() -> None:
    """Stop the reactor, unless it is stopping already."""
    with contextlib.suppress(error.ReactorNotRunning):
        global_reactor().stop()


class SignalService(service.Service):
    """
    Handles SIGTERM and SIGINT: the first logs that the daemon drains and
    stops the reactor (whose shutdown stops the service tree, draining the
    requests in flight); later ones are ignored, where Twisted's own
    handlers would stop the reactor again and fail while it is stopping.
    With ``hangup`` callables, SIGHUP calls them (in the reactor thread).

    The handlers are installed once the reactor runs, over the reactor's
    own, and stay installed until the process ends, so that a signal that
    arrives during the drain is harmless.

    :param hangup: called, in order, on SIGHUP; without them SIGHUP is left
        alone.
    :param chain: hand the first stop signal on to the handler installed
        before (under twistd, the reactor's: it stops the reactor, and
        twistd then ends with that signal) instead of stopping the reactor.
    :param reactor: the reactor to stop; the global reactor by default.
    """

    def __init__(
        self,
        hangup: Sequence[Callable[[], None]] = (),
        *,
        chain: bool = False,
        reactor: Any = None,
    ) -> None:
        self.hangup = list(hangup)
        self.chain = chain
        self.reactor: Any = reactor if reactor is not None else global_reactor()
        #: The stop signal received first, if any.
        self.received: Optional[int] = None
        self._previous: Dict[int, Any] = {}

    def startService(self) -> None:
        super().startService()
        self.reactor.callWhenRunning(self.install)

    def install(self) -> None:
        """Install the handlers (the reactor's, if any, are replaced)."""
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self.stop_signal)
        if self.hangup:
            signal.signal(signal.SIGHUP, self.hangup_signal)

    def stop_signal(self, signum: int, frame: Optional[FrameType]) -> None:
        """Drain and stop on the first stop signal; ignore later ones."""
        if self.received is not None:
            return
        self.received = signum
        name = signal.Signals(signum).name
        log.info("Received {signal}: draining and shutting down", signal=name)
        previous: Any = self._previous.get(signum)
        if self.chain and callable(previous):
            previous(signum, frame)
        else:
            self.reactor.callFromThread(self._stop_reactor)

    def hangup_signal(self, signum: int, frame: Optional[FrameType]) -> None:
        """Call the SIGHUP callables in the reactor thread."""
        self.reactor.callFromThread(self._hang_up)

    def _stop_reactor(self) -> None:
        with contextlib.suppress(error.ReactorNotRunning):
            self.reactor.stop()

    def _hang_up(self) -> None:
        for call in self.hangup:
            call()
