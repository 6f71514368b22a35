"""
Worker processes: the parent binds the listening socket and keeps N
``shijid`` processes serving it, restarting any that dies.
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
    Binds the listening socket and keeps ``count`` worker processes serving
    it; a worker that dies is restarted. On stop, each worker is sent
    SIGTERM and drains as a single daemon would.
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
        self.restarts = 0
        #: Fires once every worker of the first start serves.
        self.ready: defer.Deferred[None] = defer.Deferred()

    def bind(self) -> None:
        """Bind and listen; errors surface here, before any worker runs."""
        general = self.config.general
        family = socket.AF_INET6 if ":" in general.listen_ip else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((general.listen_ip, general.listen_port))
        except OSError as e:
            sock.close()
            raise error.CannotListenError(
                general.listen_ip, general.listen_port, e
            ) from None
        sock.listen(general.listen_backlog)
        sock.setblocking(False)
        self.socket = sock

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
        assert self.socket is not None
        fd = self.socket.fileno()
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
            childFDs={0: 0, 1: 1, 2: 2, WORKER_SOCKET_FD: fd, WORKER_READY_FD: "r"},
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
            if self.socket is not None:
                self.socket.close()
                self.socket = None
            return result

        return done.addBoth(close)
