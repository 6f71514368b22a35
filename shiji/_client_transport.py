"""
:class:`SyncClient`'s own httpx transport: httpx's, over httpcore's
connection pool, except that every connect, read and write of a call waits
at most until that call's deadline. httpx's ``timeout`` bounds each read
alone, so a server sending a header line a second would hold a call for as
long as it likes; over this transport a call's timeout bounds the whole of
it, connecting, headers and body.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, Iterator, Optional, Tuple, Type

import httpcore
import httpx

__all__ = ["DeadlineTransport", "Deadlines"]

# httpx's defaults for its own transport.
_MAX_CONNECTIONS = 100
_MAX_IDLE = 20
_KEEP_IDLE = 5.0

# httpcore's errors as httpx's, most specific first.
_ERRORS: Tuple[Tuple[Type[Exception], Type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (Exception, httpx.TransportError),
)


@contextlib.contextmanager
def _as_httpx() -> Iterator[None]:
    try:
        yield
    except httpx.HTTPError:
        raise
    except Exception as e:
        if not type(e).__module__.startswith("httpcore"):
            raise
        for found, raised in _ERRORS:
            if isinstance(e, found):
                raise raised(str(e)) from e
        raise  # pragma: no cover (Exception matches)


class Deadlines:
    """
    The deadline of the call each thread is making, on ``time.monotonic``:
    a thread's call blocks that thread, so its connection's I/O runs there.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    @contextlib.contextmanager
    def until(self, deadline: Optional[float]) -> Iterator[None]:
        """Bound the current thread's I/O by ``deadline`` (``None``: none)."""
        self._local.deadline = deadline
        try:
            yield
        finally:
            self._local.deadline = None

    def cap(
        self, timeout: Optional[float], expired: Type[Exception]
    ) -> Optional[float]:
        """
        ``timeout`` shortened to what is left before the deadline.

        :raises expired: the deadline has passed.
        """
        deadline: Optional[float] = getattr(self._local, "deadline", None)
        if deadline is None:
            return timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise expired("the call's deadline has passed")
        return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    """A connection whose reads and writes end at the deadline."""

    def __init__(self, stream: httpcore.NetworkStream, deadlines: Deadlines) -> None:
        self._stream = stream
        self._deadlines = deadlines

    def read(self, max_bytes: int, timeout: Optional[float] = None) -> bytes:
        timeout = self._deadlines.cap(timeout, httpcore.ReadTimeout)
        return self._stream.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: Optional[float] = None) -> None:
        timeout = self._deadlines.cap(timeout, httpcore.WriteTimeout)
        self._stream.write(buffer, timeout)

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> httpcore.NetworkStream:
        timeout = self._deadlines.cap(timeout, httpcore.ConnectTimeout)
        secure = self._stream.start_tls(ssl_context, server_hostname, timeout)
        return _Stream(secure, self._deadlines)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    """httpcore's blocking sockets, connecting within the deadline."""

    def __init__(self, deadlines: Deadlines) -> None:
        self._sockets = httpcore.SyncBackend()
        self._deadlines = deadlines

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: Optional[float] = None,
        local_address: Optional[str] = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        timeout = self._deadlines.cap(timeout, httpcore.ConnectTimeout)
        stream = self._sockets.connect_tcp(
            host, port, timeout, local_address, socket_options
        )
        return _Stream(stream, self._deadlines)

    def connect_unix_socket(
        self, path: str, timeout: Optional[float] = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        timeout = self._deadlines.cap(timeout, httpcore.ConnectTimeout)
        stream = self._sockets.connect_unix_socket(path, timeout, socket_options)
        return _Stream(stream, self._deadlines)

    def sleep(self, seconds: float) -> None:
        self._sockets.sleep(seconds)


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx():
            yield from self._stream

    def close(self) -> None:
        with _as_httpx():
            self._stream.close()


class DeadlineTransport(httpx.BaseTransport):
    """
    httpx's transport (its pool sizes, certificates checked as httpx
    checks them) whose I/O ends at the deadlines of ``deadlines``.
    """

    def __init__(self, deadlines: Deadlines) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=_MAX_CONNECTIONS,
            max_keepalive_connections=_MAX_IDLE,
            keepalive_expiry=_KEEP_IDLE,
            network_backend=_Backend(deadlines),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        sent = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx():
            answer = self._pool.handle_request(sent)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(answer.stream),
            extensions=answer.extensions,
        )

    def close(self) -> None:
        self._pool.close()
