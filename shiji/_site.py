"""
The site shijid serves: it makes the connections, hands each request to
the router (or to the documentation, the health check, ``OPTIONS *``),
keeps count of what is in flight, enforces the reading deadlines, logs and
counts every answer, and drains on shutdown.
"""

from __future__ import annotations

import io
import time
from typing import Any, Callable, List, Optional, Set, Tuple

from twisted.internet import defer, task
from twisted.internet.protocol import ServerFactory
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import datetimeToString

from . import _server_ident as server_ident
from ._access_log import LOST_STATUS, AccessLog
from ._answer_metrics import AnswerMetrics
from ._client_address import ClientAddresses
from ._connection import HTTPConnection
from ._errors import MalformedRequestError, MethodNotAllowedError
from ._parsing import RequestHead, head_parser
from ._reactor import global_reactor
from ._request import APIRequest, header_bytes
from ._response import write_error, write_failure, write_json
from ._settings import Settings
from .metrics import Metrics

__all__ = ["HEALTH_PATH", "Site"]

log = Logger(namespace="shiji.site")

#: Where load balancers ask whether shijid serves.
HEALTH_PATH = b"/_health"
_DOCS_PREFIX = b"/_docs"
# How long idle connections may still send a request once draining starts.
_IDLE_GRACE_SECONDS = 0.5
_SERVER_METHODS = b"DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"


class Site(ServerFactory):
    """
    Serves ``router`` as ``settings`` say.

    :param router: the :class:`~shiji.urldispatch.APIRouter`.
    :param settings: the :class:`~shiji._settings.Settings` the router was
        built from.
    :param docs: the resource serving ``/_docs``, if any.
    :param metrics: receives a counter and a timer per answer, and
        counters of its status and error, named as ``settings.metric_names``
        says (see :mod:`shiji._answer_metrics`).
    :param clock: the reactor timing deadlines and drains (a
        ``twisted.internet.task.Clock`` in tests); the global one by default.
    """

    noisy = False

    def __init__(
        self,
        router: Any,
        settings: Settings,
        *,
        docs: Any = None,
        metrics: Optional[Metrics] = None,
        clock: Any = None,
    ) -> None:
        self.router = router
        self.settings = settings
        self.docs = docs
        self.clock: Any = clock if clock is not None else global_reactor()
        #: Which header parser reads requests: ``"llhttp"`` or ``"python"``.
        self.parser_name, self.parse_headers = head_parser(settings.http_parser)
        #: The ``Server`` header: the ``server_ident`` setting, or the
        #: process's (see :func:`shiji.change_server_ident`).
        self.server_ident = (
            header_bytes(settings.server_ident)
            if settings.server_ident is not None
            else server_ident.current()
        )
        server_ident.follow(self)
        self.client_addresses = ClientAddresses(
            settings.honor_x_realip, settings.trusted_proxies
        )
        self.access = AccessLog(
            settings.access_log, settings.redacted_arguments, settings.slow_request_ms
        )
        #: What counts the answers; ``None`` without metrics.
        self.answer_metrics = (
            AnswerMetrics(
                metrics,
                settings.metric_names,
                health_path=HEALTH_PATH,
                docs_prefix=_DOCS_PREFIX if docs is not None else None,
                count_health_v1=settings.log_health,
            )
            if metrics is not None
            else None
        )
        self.draining = False
        #: Called with each request whose answer does not match what its
        #: call declared (``webapi.returns``, under ``validate_responses``)
        #: and a description of the mismatch; ``shiji.testing`` fails the
        #: test with it.
        self.on_response_mismatch: Optional[Callable[[APIRequest, str], None]] = None
        #: Requests answered so far (a worker reports it to its parent).
        self.answered = 0
        #: Requests being answered.
        self.in_flight: Set[APIRequest] = set()
        #: Open connections.
        self.connections: Set[HTTPConnection] = set()
        self._sweep = task.LoopingCall(self._check_deadlines)
        self._sweep.clock = self.clock
        self._date = (-1, b"")

    def buildProtocol(self, addr: Any) -> HTTPConnection:
        connection = HTTPConnection(self)
        connection.factory = self
        return connection

    # Connections

    def startFactory(self) -> None:
        settings = self.settings
        interval = min(1.0, settings.header_timeout / 2, settings.body_timeout / 2)
        self._sweep.start(interval, now=False)

    def stopFactory(self) -> None:
        if self._sweep.running:
            self._sweep.stop()

    def connection_made(self, connection: HTTPConnection) -> None:
        """``connection`` opened."""
        self.connections.add(connection)

    def connection_lost(self, connection: HTTPConnection) -> None:
        """``connection`` closed: it is forgotten."""
        self.connections.discard(connection)

    def _check_deadlines(self) -> None:
        # Runs in a LoopingCall, which an exception would stop for good: one
        # connection's failure is logged and the sweep goes on.
        now = self.clock.seconds()
        for connection in list(self.connections):
            try:
                connection.check_deadlines(now)
            except Exception:
                log.failure("Checking the deadlines of a connection failed")

    # Requests

    def make_request(
        self,
        connection: HTTPConnection,
        head: RequestHead,
        uri: bytes,
        path: bytes,
        body: bytes,
        *,
        started: float,
    ) -> APIRequest:
        """The request ``connection`` read."""
        request = APIRequest(
            connection,
            head.method,
            uri,
            path,
            head.version,
            head.headers,
            io.BytesIO(body),
            keep_alive=head.keep_alive,
            started=started,
        )
        request.client_addresses = self.client_addresses
        return request

    def serve(self, request: APIRequest) -> None:
        """Answer ``request``: route it, and answer any failure."""
        self.in_flight.add(request)
        path = request.path
        try:
            if path == HEALTH_PATH:
                self._health(request)
            elif self.docs is not None and (
                path == _DOCS_PREFIX or path.startswith(_DOCS_PREFIX + b"/")
            ):
                self.docs.render(request)
            elif path == b"*":
                self._asterisk(request)
            else:
                self.router.render(request)
        except Exception:
            write_failure(request, Failure())

    def _health(self, request: APIRequest) -> None:
        request.setHeader(b"cache-control", b"no-store")
        if request.method not in (b"GET", b"HEAD"):
            error = MethodNotAllowedError(request, request.method.decode("latin-1"))
            error.headers["Allow"] = "GET, HEAD"
            write_error(request, error)
            return
        if self.draining:
            request.setResponseCode(503)
        write_json(request, {"status": "draining" if self.draining else "serving"})

    def _asterisk(self, request: APIRequest) -> None:
        """``OPTIONS *`` asks what the server supports; no other method may
        name ``*``."""
        if request.method == b"OPTIONS":
            request.setHeader(b"allow", _SERVER_METHODS)
            request.setHeader(b"content-length", b"0")
            request.finish()
        else:
            write_error(request, MalformedRequestError(request))

    def request_finished(self, request: APIRequest) -> None:
        """``request`` is answered: log and count it."""
        self.answered += 1
        self.in_flight.discard(request)
        duration_ms = (self.clock.seconds() - request.started) * 1000.0
        if request.path != HEALTH_PATH or self.settings.log_health:
            self.access.answered(request, duration_ms)
        if self.answer_metrics is not None:
            self.answer_metrics.answered(request, duration_ms)

    def request_lost(self, request: APIRequest) -> None:
        """
        ``request``'s connection closed before its answer was complete: log
        it with status 499 and count it as lost, with the time it had run.
        """
        self.in_flight.discard(request)
        duration_ms = (self.clock.seconds() - request.started) * 1000.0
        if request.path != HEALTH_PATH or self.settings.log_health:
            self.access.answered(request, duration_ms, LOST_STATUS)
        if self.answer_metrics is not None:
            self.answer_metrics.lost(request, duration_ms)

    def log_refusal(
        self,
        connection: HTTPConnection,
        request: Optional[APIRequest],
        request_line: Optional[Tuple[bytes, bytes]],
        status: int,
        sent: int,
        started: Optional[float],
        error_class: Optional[str] = None,
    ) -> None:
        """
        Log and count a request the connection refused, with the error
        ``error_class``, before it reached a call.
        """
        duration_ms = (
            (self.clock.seconds() - started) * 1000.0 if started is not None else 0.0
        )
        peer = connection.peer_host
        if request is not None:
            self.in_flight.discard(request)
            peer = request.client_ip
        self.access.refused(peer, request_line, status, sent, duration_ms)
        if self.answer_metrics is not None:
            self.answer_metrics.refused(status, duration_ms, error_class)

    def challenge(self, request: APIRequest) -> bytes:
        """
        The ``WWW-Authenticate`` challenge of a 401 answer to ``request``
        that carries none: the router's (see
        :meth:`shiji.urldispatch.APIRouter.challenge`).
        """
        found: bytes = self.router.challenge(request)
        return found

    def http_date(self) -> bytes:
        """The ``Date`` header's value, formatted once a second."""
        now = int(time.time())
        second, formatted = self._date
        if now != second:
            formatted = datetimeToString(now)
            self._date = (now, formatted)
        return formatted

    # Draining

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
        clock = self.clock
        deadline = clock.seconds() + grace
        # A keep-alive client may be sending its next request right now:
        # closing its connection at once would lose that request. Idle
        # connections get a moment to send one more (answered with
        # "Connection: close") before they are closed.
        idle_deadline = clock.seconds() + min(grace, _IDLE_GRACE_SECONDS)

        def check() -> None:
            if clock.seconds() >= idle_deadline:
                for connection in list(self.connections):
                    connection.close_if_idle()
            open_connections: List[HTTPConnection] = list(self.connections)
            if open_connections and clock.seconds() >= deadline:
                log.warn(
                    "{count} request(s) still running after {grace}s; closing them",
                    count=len(self.in_flight),
                    grace=grace,
                )
                for connection in open_connections:
                    transport: Any = connection.transport
                    transport.abortConnection()
                open_connections = []
            if not open_connections:
                poll.stop()
                drained.callback(None)

        poll = task.LoopingCall(check)
        poll.clock = clock
        poll.start(0.02, now=True)
        return drained
