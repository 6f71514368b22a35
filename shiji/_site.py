"""
The HTTP site shijid serves: body limits, client addresses, access logging,
per-request metrics and graceful draining, around an ``APIRouter``.
"""

from __future__ import annotations

import io
import re
import time
from typing import Any, Callable, List, Optional, Sequence, Set, cast
from urllib.parse import unquote_plus

from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import resource, server
from twisted.web.http import datetimeToString

from ._channel import ShijiChannel
from ._client_address import ClientAddresses, Network
from ._docs import DOCS_PREFIX
from ._errors import MalformedRequestError, RequestTooLargeError
from ._request import APIRequest
from ._response import write_error
from .metrics import Metrics, NullMetrics
from .urldispatch import APIRouter

__all__ = ["ShijiRequest", "ShijiSite"]

# How long idle connections may still send a request once draining starts.
_IDLE_GRACE_SECONDS = 0.5

_SERVER_METHODS = b"DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"

access_log = Logger(namespace="shiji.access")
log = Logger(namespace="shiji.site")


class ShijiRequest(APIRequest):
    """
    A request of :class:`ShijiSite`: its body is held in memory up to the
    site's limit, and refused with HTTP 413 past it.
    """

    site: ShijiSite
    _refused = False
    _body_bytes = 0

    def __init__(self, channel: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(channel, *args, **kwargs)
        self.site = channel.site
        self.started = time.monotonic()
        self._limit: int = self.site.max_body_bytes
        self.client_addresses = self.site.client_addresses
        self.site.in_flight.add(self)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.site.done(self)

    def connectionLost(self, reason: Any) -> None:
        super().connectionLost(reason)
        self.site.done(self)

    def gotLength(self, length: Optional[int]) -> None:
        if length is not None and length > self._limit:
            self._refuse_body()
            return
        self.content = io.BytesIO()

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._body_bytes += len(data)
        if self._body_bytes > self._limit:
            self._refuse_body()
            return
        content: Any = self.content
        content.write(data)

    def process(self) -> None:
        """
        Answer the request: what ``twisted.web``'s ``process`` does, less the
        walk down a resource tree, which Shiji's two leaf resources never
        need (nor its percent-decoding of every path segment).
        """
        if self.path == b"*":
            self._answer_asterisk()
            return
        self.prepath, self.postpath = [], []
        self.sitepath: List[bytes] = []
        # The Server header is the router's (or the documentation's) to set.
        self.responseHeaders.setRawHeaders(b"date", [_http_date()])
        try:
            self.render(self.site.resource_for(self.path))
        except BaseException:
            self.processingFailed(Failure())

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self._refused:
            return
        if not _host_is_valid(self.requestHeaders.getRawHeaders(b"host"), version):
            self._refused = True
            cast(ShijiChannel, self.channel).refuse(MalformedRequestError(self))
            return
        if path[:1] != b"/" and path != b"*":
            # The absolute form (http://host/path), which proxies send: the
            # host is the Host header's business, the path is what routes.
            _, _, rest = path.partition(b"://")
            slash = rest.find(b"/")
            path = rest[slash:] if slash >= 0 else b"/"
        super().requestReceived(command, path, version)

    def _answer_asterisk(self) -> None:
        """``OPTIONS *`` asks what the server supports; no other method may
        name ``*``."""
        self.responseHeaders.setRawHeaders(b"date", [_http_date()])
        self.setHeader(b"server", self.site.server_ident)
        if self.method == b"OPTIONS":
            self.setHeader(b"allow", _SERVER_METHODS)
            self.setHeader(b"content-length", b"0")
            self.finish()
        else:
            write_error(self, MalformedRequestError(self))

    def _refuse_body(self) -> None:
        """Answer 413 before the body is read, and close the connection."""
        self._refused = True
        self.content = io.BytesIO()
        channel = cast(ShijiChannel, self.channel)
        channel.refuse(RequestTooLargeError(self, self._limit))

    def write(self, data: bytes) -> None:
        if not self.startedWriting and self.site.draining and self.channel is not None:
            # Shutting down: this connection serves no further request.
            self.channel.persistent = False
            self.setHeader(b"connection", b"close")
        super().write(data)


class ShijiSite(server.Site):
    """
    The site shijid serves.

    :param router: the ``APIRouter`` to serve.
    :param max_body_bytes: larger request bodies are refused with HTTP 413.
    :param idle_timeout: seconds an idle connection is kept open.
    :param header_timeout: seconds a client has to send a request's
        headers, from its request line; slower ones get HTTP 408.
    :param body_timeout: seconds more a client has to send the body;
        slower ones get HTTP 408.
    :param honor_x_realip: believe ``X-Real-IP`` and ``X-Forwarded-For``...
    :param trusted_proxies: ...from these peers only.
    :param access_log: log a line per request (see :attr:`access_sink`).
    :param slow_request_ms: warn about requests slower than this.
    :param redacted_arguments: words; query arguments whose names hold one
        (in any case) are logged with ``***`` for their values.
    :param metrics: receives a counter, a timer and a status counter per
        request.
    :param docs: the resource serving ``/_docs``, if any.
    :param reactor: the reactor (for timers); the global one by default.
    """

    requestFactory = ShijiRequest
    protocol = ShijiChannel  # type: ignore[assignment]
    noisy = False

    def __init__(
        self,
        router: APIRouter,
        *,
        max_body_bytes: int = 1048576,
        idle_timeout: float = 60.0,
        header_timeout: float = 10.0,
        body_timeout: float = 30.0,
        honor_x_realip: bool = False,
        trusted_proxies: Sequence[Network] = (),
        access_log: bool = True,
        slow_request_ms: int = 1000,
        redacted_arguments: Sequence[str] = (),
        metrics: Optional[Metrics] = None,
        server_ident: str = "Shiji API Server",
        docs: Optional[resource.Resource] = None,
        reactor: Any = None,
    ) -> None:
        super().__init__(
            router, timeout=idle_timeout, parsePOSTFormSubmission=False, reactor=reactor
        )
        self.router = router
        self.docs = docs
        self.max_body_bytes = max_body_bytes
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self._deadlines = task.LoopingCall(self._check_read_deadlines)
        self.client_addresses = ClientAddresses(honor_x_realip, trusted_proxies)
        self.access_log = access_log
        self.slow_request_ms = slow_request_ms
        self.redacted = frozenset(name.lower() for name in redacted_arguments)
        self.metrics: Metrics = metrics if metrics is not None else NullMetrics()
        # Without a backend, skip building three metric names per request.
        self.send_metrics = metrics is not None
        #: Where access lines go; shijid points it at its log's
        #: :meth:`~shiji._logging.TextLog.access`.
        self.access_sink: Callable[[str], None] = _log_access_line
        self.server_ident = server_ident.encode("utf-8")
        self.draining = False
        self.in_flight: Set[ShijiRequest] = set()
        #: Open connections; each leaves when its connection is lost.
        self._channels: Set[ShijiChannel] = set()

    def resource_for(self, path: bytes) -> resource.Resource:
        """The documentation under ``/_docs``, when served; the router
        otherwise."""
        if self.docs is not None and (
            path == DOCS_PREFIX or path.startswith(DOCS_PREFIX + b"/")
        ):
            return self.docs
        return self.router

    def getResourceFor(self, request: Any) -> Any:
        request.site = self
        return self.resource_for(request.path)

    # Connections and requests in flight

    def startFactory(self) -> None:
        super().startFactory()
        self._deadlines.clock = self.reactor
        interval = min(1.0, self.header_timeout / 2, self.body_timeout / 2)
        self._deadlines.start(interval, now=False)

    def stopFactory(self) -> None:
        if self._deadlines.running:
            self._deadlines.stop()
        super().stopFactory()

    def _check_read_deadlines(self) -> None:
        # Runs in a LoopingCall, which an exception would stop for good: one
        # connection's failure is logged and the sweep goes on.
        now = time.monotonic()
        for channel in list(self._channels):
            try:
                channel.read_overdue(now)
            except Exception:
                log.failure("Checking the read deadline of a connection failed")

    def buildProtocol(self, addr: Any) -> Any:
        channel = super().buildProtocol(addr)
        self._channels.add(channel)
        return channel

    def channel_closed(self, channel: ShijiChannel) -> None:
        """``channel``'s connection is lost: it is no longer watched."""
        self._channels.discard(channel)

    def _open_channels(self) -> List[Any]:
        return [
            channel
            for channel in self._channels
            if channel.transport is not None and channel.transport.connected
        ]

    def done(self, request: ShijiRequest) -> None:
        """``request`` is no longer in flight: answered, or its client gone."""
        self.in_flight.discard(request)

    def drain(self, grace: float) -> defer.Deferred[None]:
        """
        Stop serving: answer every request with ``Connection: close``, let
        requests in flight finish (each connection closing once its answer
        is sent), close idle connections after half a second (or ``grace``,
        if shorter), and after ``grace`` seconds cut whatever is left. Fires
        when every connection is closed.
        """
        self.draining = True
        drained: defer.Deferred[None] = defer.Deferred()
        reactor: Any = self.reactor
        deadline = reactor.seconds() + grace
        # A keep-alive client may be sending its next request right now:
        # closing its connection at once would lose that request. Idle
        # connections get a moment to send one more (answered with
        # "Connection: close") before they are closed.
        idle_deadline = reactor.seconds() + min(grace, _IDLE_GRACE_SECONDS)

        def check() -> None:
            if reactor.seconds() >= idle_deadline:
                for channel in self._open_channels():
                    if channel.idle:
                        channel.transport.loseConnection()
            # Answers still in write buffers count: the connection closes
            # only once they are sent.
            open_channels = self._open_channels()
            if open_channels and reactor.seconds() >= deadline:
                log.warn(
                    "{count} request(s) still running after {grace}s; closing them",
                    count=len(self.in_flight),
                    grace=grace,
                )
                for channel in open_channels:
                    channel.transport.abortConnection()
                open_channels = []
            if not open_channels:
                poll.stop()
                drained.callback(None)

        poll = task.LoopingCall(check)
        poll.clock = reactor
        poll.start(0.02, now=True)
        return drained

    # Access log and metrics

    def log(self, request: Any) -> None:
        """
        Log ``request`` (called by Twisted as each request finishes) and
        send its metrics.
        """
        duration_ms = (time.monotonic() - request.started) * 1000.0
        status = request.code
        if self.access_log:
            request_id = request.request_id
            # A method is a token (Twisted refuses others), the API's name and
            # the call's come from the code, and the client address is an IP
            # address: only the path and the version come from the client.
            version = request.api_version
            self.access_sink(
                f'{request.client_ip} "{request.method.decode("ascii")} '
                f'{self.redact(request.uri)}" {status} {request.sentLength} '
                f"{duration_ms:.1f}ms api={request.api_name or '-'} "
                f"version={_loggable(version.encode('utf-8')) if version else '-'} "
                f"call={request.api_call or '-'}"
                + (f" id={request_id}" if request_id else "")
            )
        if duration_ms > self.slow_request_ms:
            log.warn(
                'Slow request: "{method} {path}" took {duration_ms:.0f}ms',
                method=request.method.decode("latin-1"),
                path=self.redact(request.uri),
                duration_ms=duration_ms,
            )
        if self.send_metrics:
            self._send_metrics(request, status, duration_ms)

    def log_refusal(
        self,
        channel: Any,
        request_line: Optional[bytes],
        status: int,
        sent: int,
        started: Optional[float],
    ) -> None:
        """
        Log a request the channel refused before it reached a resource,
        and count it under the ``unrouted`` metrics.
        """
        now = time.monotonic()
        duration_ms = (now - started) * 1000.0 if started is not None else 0.0
        if self.access_log:
            peer = getattr(channel.transport.getPeer(), "host", "-")
            if request_line is None:
                shown = "-"
            else:
                method, _, uri = request_line.partition(b" ")
                shown = f"{_loggable(method)} {self.redact(uri)}"
            self.access_sink(
                f'{peer} "{shown}" {status} {sent} {duration_ms:.1f}ms '
                "api=- version=- call=-"
            )
        if self.send_metrics:
            self._count("unrouted", status, duration_ms)

    def _send_metrics(self, request: Any, status: int, duration_ms: float) -> None:
        if request.api_call:
            version = request.api_version.replace(".", "_")
            method = request.method.decode("latin-1")
            name = f"{request.api_name}.{version}.{request.api_call}.{method}"
        elif request.api_name:
            name = f"{request.api_name}.unrouted"
        else:
            name = "unrouted"
        self._count(name, status, duration_ms)

    def _count(self, name: str, status: int, duration_ms: float) -> None:
        metrics = self.metrics
        metrics.increment(name)
        metrics.timing(name, duration_ms)
        metrics.increment(f"{name}.{status // 100}xx")

    def redact(self, uri: bytes) -> str:
        """
        ``uri`` as log text: without the user name and password of an
        absolute URI, and with ``***`` for the values of query arguments
        whose names hold one of the redacted words.
        """
        text = _loggable(_USERINFO.sub(rb"\1", uri))
        path, mark, query = text.partition("?")
        if not mark or not self.redacted:
            return text
        fields: List[str] = []
        for field in query.split("&"):
            name, equals, _ = field.partition("=")
            if equals and self._secret_name(name):
                field = f"{name}=***"
            fields.append(field)
        return f"{path}?{'&'.join(fields)}"

    def _secret_name(self, logged_name: str) -> bool:
        # Names are matched as the handler would read them: decoded.
        name = unquote_plus(logged_name).lower()
        return any(word in name for word in self.redacted)


# The user information of an absolute-form target (scheme://user:password@).
_USERINFO = re.compile(rb"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#@]*@")

# RFC 9112 section 3.2: the Host of an HTTP/1.1 request is one header, and
# its value an authority (RFC 3986: a host name, an IPv4 address or an IPv6
# literal in brackets, and a port).
_HOST = re.compile(rb"(?:[A-Za-z0-9._~!$&'()*+,;=%-]*|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?")


def _host_is_valid(hosts: Optional[Sequence[bytes]], version: bytes) -> bool:
    """Whether a request's ``Host`` headers (``hosts``) are as RFC 9112 asks."""
    if hosts is None:
        return version != b"HTTP/1.1"
    return len(hosts) == 1 and _HOST.fullmatch(hosts[0]) is not None


_date_cache: List[Any] = [-1, b""]


def _http_date() -> bytes:
    """The Date header's value, formatted once a second."""
    now = int(time.time())
    if now != _date_cache[0]:
        _date_cache[:] = [now, datetimeToString(now)]
    date: bytes = _date_cache[1]
    return date


# Bytes a log line must not carry raw: controls (a forged line or terminal
# escape), quotes (a forged field) and backslashes (a forged escape).
_UNSAFE_BYTES = bytes(range(0x20)) + b'"\\' + bytes(range(0x7F, 0x100))
_UNSAFE = re.compile(b"[" + re.escape(_UNSAFE_BYTES) + b"]")


def _loggable(raw: bytes) -> str:
    """``raw`` as log text, unsafe bytes written as ``\\xNN``."""
    if len(raw.translate(None, _UNSAFE_BYTES)) == len(raw):
        return raw.decode("ascii")
    return _UNSAFE.sub(lambda found: b"\\x%02x" % found.group()[0], raw).decode("ascii")


def _log_access_line(line: str) -> None:
    access_log.info("{line}", line=line)
