"""
Worker processes: the parent binds the port and keeps N ``shijid``
processes serving it, restarting any that dies.

Where the system has ``SO_REUSEPORT`` (Linux, the BSDs), each worker gets a
listening socket of its own on the port, and the kernel spreads new
connections evenly over them. A single shared socket would go to whichever
worker wakes first: a burst of keep-alive connections, such as a proxy's
pool, could all land on one worker and leave the others idle. Elsewhere the
workers share one socket.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from typing import Any, Dict, Optional, Sequence, Tuple

from twisted.application import service
from twisted.internet import defer, error, protocol
from twisted.logger import Logger

from ._reactor import global_reactor
from .config import ShijiConfig

__all__ = ["WORKER_READY_FD", "WORKER_SOCKET_FD", "WorkerPool"]

log = Logger(namespace="shiji.workers")

_REUSE_PORT: int = getattr(socket, "SO_REUSEPORT", 0)


#: The descriptors a worker inherits: the listening socket, and a pipe on
#: which it reports that it is serving.
WORKER_SOCKET_FD = 3
WORKER_READY_FD = 4


class _WorkerProtocol(protocol.ProcessProtocol):
    def __init__(self, pool: WorkerPool, index: int) -> None:
        self.pool = pool
        self.index = index
        self.ready: defer.Deferred[None] = defer.Deferred()
        self.ended: defer.Deferred[None] = defer.Deferred()
        self.started = 0.0

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if childFD == WORKER_READY_FD and not self.ready.called:
            self.ready.callback(None)

    def processEnded(self, reason: Any) -> None:
        if not self.ready.called:
            self.ready.errback(reason)
        self.ended.callback(None)
        self.pool.worker_ended(self, reason)


class WorkerPool(service.Service):
    """
    Binds the port and keeps ``count`` worker processes serving it, each on
    a listening socket of its own where ``SO_REUSEPORT`` allows; a worker
    that dies is restarted. On stop, each worker is sent SIGTERM and drains
    as a single daemon would.
    """

    def __init__(
        self, config: ShijiConfig, count: int, extra_args: Sequence[str] = ()
    ) -> None:
        self.config = config
        self.count = count
        self.extra_args = list(extra_args)
        self.workers: Dict[int, Any] = {}
        self._protocols: Dict[int, _WorkerProtocol] = {}
        self.socket: Optional[socket.socket] = None
        self._listeners: Dict[int, socket.socket] = {}
        self.restarts = 0
        #: Fires once every worker of the first start serves.
        self.ready: defer.Deferred[None] = defer.Deferred()

    def bind(self) -> None:
        """Claim the port; errors surface here, before any worker runs."""
        general = self.config.general
        port = general.listen_port
        if _REUSE_PORT:
            # A socket without SO_REUSEPORT binds only if nobody holds the
            # port, another shijid's workers included, which SO_REUSEPORT
            # alone would let in to share it.
            probe = self._bind(port, reuse_port=False)
            port = probe.getsockname()[1]
            probe.close()
            # Bound, never listening: it holds the port, and takes no
            # connections.
            self.socket = self._bind(port, reuse_port=True)
        else:
            self.socket = self._bind(port, reuse_port=False, listen=True)

    def _bind(self, port: int, reuse_port: bool, listen: bool = False) -> socket.socket:
        host = self.config.general.listen_ip
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, _REUSE_PORT, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            sock.close()
            raise error.CannotListenError(host, port, e) from None
        if listen:
            sock.listen(self.config.general.listen_backlog)
            sock.setblocking(False)
        return sock

    def _listener(self, index: int) -> socket.socket:
        """
        The listening socket of worker ``index``. The pool keeps it open, so
        that connections waiting in its queue when the worker dies are
        served by the worker's replacement, not reset.
        """
        assert self.socket is not None
        if not _REUSE_PORT:
            return self.socket
        if index not in self._listeners:
            port = self.socket.getsockname()[1]
            self._listeners[index] = self._bind(port, reuse_port=True, listen=True)
        return self._listeners[index]

    @property
    def address(self) -> Tuple[str, int]:
        """The host and port being served."""
        assert self.socket is not None
        host, port = self.socket.getsockname()[:2]
        return host, port

    def startService(self) -> None:
        if self.socket is None:
            self.bind()
        super().startService()
        for index in range(self.count):
            self._spawn(index)
        all_ready = defer.gatherResults(
            [worker.ready for worker in self._protocols.values()], consumeErrors=True
        )
        all_ready.addCallback(lambda _: None).chainDeferred(self.ready)

    def _spawn(self, index: int) -> None:
        listener = self._listener(index)
        args = [
            sys.executable,
            "-m",
            "shiji.daemon",
            "-c",
            str(self.config.path),
            "--worker-fd",
            str(WORKER_SOCKET_FD),
            *self.extra_args,
        ]
        worker = _WorkerProtocol(self, index)
        worker.started = time.monotonic()
        self._protocols[index] = worker
        self.workers[index] = global_reactor().spawnProcess(
            worker,
            sys.executable,
            args,
            env=dict(os.environ),
            childFDs={
                0: 0,
                1: 1,
                2: 2,
                WORKER_SOCKET_FD: listener.fileno(),
                WORKER_READY_FD: "r",
            },
        )

    def worker_ended(self, worker: _WorkerProtocol, reason: Any) -> None:
        """Restart a worker that ended while the pool is running."""
        if self._protocols.get(worker.index) is not worker:
            return
        del self.workers[worker.index]
        if self.running:
            self.restarts += 1
            # One that dies at once would otherwise be restarted in a loop.
            delay = 1.0 if time.monotonic() - worker.started < 1.0 else 0.0
            log.warn(
                "Worker {index} ended ({reason}); restarting it",
                index=worker.index,
                reason=reason.getErrorMessage(),
            )
            global_reactor().callLater(delay, self._respawn, worker.index)

    def _respawn(self, index: int) -> None:
        if self.running and index not in self.workers:
            self._spawn(index)
            self._protocols[index].ready.addErrback(lambda reason: None)

    def signal_workers(self, name: str) -> None:
        """Send the signal ``name`` (e.g. ``"HUP"``) to every worker."""
        for process in list(self.workers.values()):
            with contextlib.suppress(error.ProcessExitedAlready):
                process.signalProcess(name)

    def stopService(self) -> defer.Deferred[Any]:
        super().stopService()
        ended = [self._protocols[index].ended for index in self.workers]
        self.signal_workers("TERM")
        done = defer.gatherResults(ended)

        def close(result: object) -> object:
            for listener in self._listeners.values():
                listener.close()
            self._listeners.clear()
            if self.socket is not None:
                self.socket.close()
                self.socket = None
            return result

        return done.addBoth(close)
