"""
A statsd client over UDP that never slows or fails a request.

Metrics are buffered and sent in packets of several lines (statsd reads one
metric per line), at most every ``flush_interval`` seconds or as soon as a
packet is full. The server's address is resolved without blocking and
resolved again while it cannot be; until then, and whenever sending fails,
metrics are dropped.
"""

from __future__ import annotations

import contextlib
import random
import socket
from typing import Any, List, Optional, Tuple

from twisted.application import service
from twisted.logger import Logger
from twisted.python.failure import Failure

from ._reactor import global_reactor
from .metrics import TimerContext, time_block

__all__ = ["StatsdClient"]

log = Logger()

# Fits an Ethernet MTU with IP and UDP headers to spare.
_PACKET_BYTES = 1432


class StatsdClient(service.Service):
    """
    :class:`shiji.metrics.Metrics` sent to a statsd server.

    :param host: the server's name or address.
    :param port: its UDP port.
    :param scheme: a prefix for every metric name, e.g. ``"myco.apis"``.
    :param reactor: an ``IReactorTime`` and ``IReactorCore`` provider, which
        resolves the host and schedules flushes; the global reactor by default.
    :param flush_interval: the longest a metric waits in the buffer.
    :param retry_interval: how long to wait before resolving a host again
        after it could not be resolved.
    """

    def __init__(
        self,
        host: str,
        port: int = 8125,
        scheme: str = "",
        *,
        reactor: Any = None,
        flush_interval: float = 0.05,
        retry_interval: float = 30.0,
    ) -> None:
        if reactor is None:
            reactor = global_reactor()
        self.host = host
        self.port = port
        self.prefix = f"{scheme}." if scheme else ""
        self.reactor = reactor
        self.flush_interval = flush_interval
        self.retry_interval = retry_interval
        self.address: Optional[Tuple[str, int]] = None
        self._socket: Optional[socket.socket] = None
        self._pending: List[bytes] = []
        self._pending_bytes = 0
        self._flush_call: Any = None  # an IDelayedCall, while a flush is due
        self._resolve_call: Any = None  # an IDelayedCall, while a retry is due

    # Lifecycle

    def startService(self) -> None:
        super().startService()
        self._resolve()

    def stopService(self) -> None:
        super().stopService()
        self.flush()
        for call in (self._flush_call, self._resolve_call):
            if call is not None and call.active():
                call.cancel()
        self._flush_call = self._resolve_call = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _resolve(self) -> None:
        self._resolve_call = None
        self.reactor.resolve(self.host).addCallbacks(self._resolved, self._unresolved)

    def _resolved(self, ip: str) -> None:
        if not self.running:
            return
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setblocking(False)
        self._socket = sock
        self.address = (ip, self.port)

    def _unresolved(self, reason: Failure) -> None:
        if not self.running:
            return
        log.warn(
            "statsd host {host!r} cannot be resolved ({error}); metrics are "
            "dropped until it can",
            host=self.host,
            error=reason.getErrorMessage(),
        )
        self._resolve_call = self.reactor.callLater(self.retry_interval, self._resolve)

    # Sending

    def _add(self, line: str, sample_rate: float) -> None:
        if sample_rate < 1.0:
            if random.random() >= sample_rate:
                return
            line += f"|@{sample_rate}"
        data = line.encode("utf-8")
        if self._pending_bytes + len(data) + 1 > _PACKET_BYTES:
            self.flush()
        self._pending.append(data)
        self._pending_bytes += len(data) + 1
        if self._flush_call is None and self.running:
            self._flush_call = self.reactor.callLater(self.flush_interval, self.flush)

    def flush(self) -> None:
        """Send what is buffered now."""
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        if not self._pending:
            return
        packet = b"\n".join(self._pending)
        del self._pending[:]
        self._pending_bytes = 0
        if self._socket is None or self.address is None:
            return
        # Full buffers, unreachable networks: metrics are never worth a failed
        # request.
        with contextlib.suppress(OSError):
            self._socket.sendto(packet, self.address)

    # The Metrics interface

    def increment(self, name: str, value: int = 1, sample_rate: float = 1.0) -> None:
        """Add ``value`` to the counter ``name``."""
        self._add(f"{self.prefix}{name}:{value}|c", sample_rate)

    def decrement(self, name: str, value: int = 1, sample_rate: float = 1.0) -> None:
        """Subtract ``value`` from the counter ``name``."""
        self._add(f"{self.prefix}{name}:{-value}|c", sample_rate)

    def gauge(self, name: str, value: float) -> None:
        """Set the gauge ``name`` to ``value``."""
        if value < 0:
            # A signed gauge value is a change, not a value: start from zero.
            self._add(f"{self.prefix}{name}:0|g", 1.0)
        self._add(f"{self.prefix}{name}:{value:g}|g", 1.0)

    def timing(self, name: str, milliseconds: float, sample_rate: float = 1.0) -> None:
        """Record a duration, in milliseconds, for the timer ``name``."""
        self._add(f"{self.prefix}{name}:{milliseconds:.3f}|ms", sample_rate)

    def timer(self, name: str) -> TimerContext:
        """A context manager that times its block as ``name``."""
        return time_block(self, name)
