"""
Call Shiji APIs in memory from tests: no socket, no daemon.

:class:`TestClient` feeds real HTTP/1.1 bytes through Shiji's own HTTP
server protocol and site into an :class:`~shiji.urldispatch.APIRouter`, and
parses what comes back, so a test sees exactly what a client would: status,
headers and body.
Handlers' ``Deferred``\\ s and coroutines are waited for. Every call returns
a ``Deferred``; with ``pytest-twisted``::

    import mylogin_api
    import pytest_twisted
    from shiji.testing import TestClient

    client = TestClient({"myloginapi": mylogin_api})

    @pytest_twisted.ensureDeferred
    async def test_ping():
        response = await client.get("/myloginapi/ping/123")
        assert response.status == 200

        # or, in one line: method, path, JSON body, status, expected JSON
        await client.expect("GET", "/myloginapi/ping/123", None, 200,
                            "PONG! ...")

Unless told otherwise the client sends the version header for the newest
version of the API the path names, in ``prod`` mode.

APIs with a ``tasks.py`` get the task service shijid runs, on the client's
clock with a queue in memory: ``await client.run_tasks()`` runs the tasks
that are due, and advancing ``client.clock`` runs scheduled jobs at their
ticks (see :meth:`TestClient.run_tasks`).
"""

from __future__ import annotations

import http.client
import io
import json as _stdlib_json
from typing import (
    Any,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Tuple,
    Union,
)

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from ._reactor import global_reactor
from ._settings import DEFAULT_SETTINGS
from ._site import Site
from ._storage_memory import MemoryStore
from ._task_declarations import load_api_tasks
from ._task_service import TaskService, call_at_once
from ._task_store import SQLiteTaskStore
from ._version_header import VersionHeader
from .urldispatch import APIRouter, RouteMap

__all__ = [
    "LATEST",
    "ResponseMismatchError",
    "TestClient",
    "TestConnection",
    "TestResponse",
]


class ResponseMismatchError(AssertionError):
    """
    An answer did not match what its call declared with
    ``webapi.returns``: its status is not declared, or its body is not what
    the declared schema accepts. The message names the call and every
    problem. (A server with ``validate_responses`` on answers HTTP 500
    instead.)
    """


class _Latest:
    def __repr__(self) -> str:
        return "LATEST"


#: ``version=LATEST`` (the default) asks for the newest version of the API.
LATEST: Any = _Latest()
_UNCHECKED: Any = object()

HeaderValue = Union[str, bytes, None]
Headers = Union[Mapping[str, HeaderValue], Iterable[Tuple[str, HeaderValue]]]


class TestResponse:
    """
    A response as the client received it.

    :ivar status: the HTTP status code.
    :ivar reason: the status line's reason phrase.
    :ivar headers: header names (lower case) to values; repeated headers are
        joined with ``", "`` (see :meth:`header_values` for each one).
    :ivar body: the body as bytes.
    """

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(
        self,
        status: int,
        header_list: List[Tuple[str, str]],
        body: bytes,
        reason: str = "",
    ) -> None:
        self.status = status
        self.reason = reason
        self.header_list = header_list
        self.body = body
        self.headers: Dict[str, str] = {}
        for name, value in header_list:
            name = name.lower()
            self.headers[name] = (
                f"{self.headers[name]}, {value}" if name in self.headers else value
            )

    def header_values(self, name: str) -> List[str]:
        """Every value of header ``name`` (any case), in order."""
        name = name.lower()
        return [value for key, value in self.header_list if key.lower() == name]

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8")

    @property
    def json(self) -> Any:
        """The body decoded as JSON."""
        return _stdlib_json.loads(self.body)

    @property
    def error(self) -> Optional[Dict[str, Any]]:
        """The ``error`` member of a JSON error envelope, or ``None``."""
        try:
            body = self.json
        except _stdlib_json.JSONDecodeError:
            return None
        return body.get("error") if isinstance(body, dict) else None

    def __repr__(self) -> str:
        return f"<TestResponse {self.status} {self.body[:200]!r}>"


class _ResponseSocket:
    """Just enough of a socket for ``http.client.HTTPResponse`` to parse."""

    def __init__(self, data: bytes) -> None:
        self._file = io.BytesIO(data)

    def makefile(self, *args: Any, **kwargs: Any) -> io.BytesIO:
        return self._file


def _parse(data: bytes, method: str) -> TestResponse:
    parsed = http.client.HTTPResponse(
        _ResponseSocket(data),  # type: ignore[arg-type]
        method=method,
    )
    parsed.begin()
    return TestResponse(
        parsed.status, parsed.getheaders(), parsed.read(), parsed.reason
    )


def _parse_interim(data: bytes) -> TestResponse:
    """An interim (1xx) response, which ``http.client`` reads past."""
    status_line, *lines = data.rstrip(b"\r\n").decode("latin-1").split("\r\n")
    _, status, reason = status_line.split(" ", 2)
    headers = [
        (name.strip(), value.strip())
        for name, _, value in (line.partition(":") for line in lines)
    ]
    return TestResponse(int(status), headers, b"", reason)


def _split_responses(data: bytes, method: str) -> List[bytes]:
    """The complete responses in ``data``, each as its bytes."""
    found: List[bytes] = []
    start = 0
    while start < len(data):
        end = data.find(b"\r\n\r\n", start)
        if end < 0:
            break
        head = data[start:end].split(b"\r\n")
        status = int(head[0].split(b" ")[1])
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        body_start = end + 4
        if method == "HEAD" or status < 200 or status in (204, 304):
            stop = body_start
        elif headers.get(b"transfer-encoding") == b"chunked":
            position = body_start
            while True:
                line_end = data.find(b"\r\n", position)
                if line_end < 0:
                    return found
                size = int(data[position:line_end].split(b";")[0], 16)
                position = line_end + 2 + size + 2
                if size == 0:
                    break
            stop = position
        elif b"content-length" in headers:
            stop = body_start + int(headers[b"content-length"])
        else:
            stop = len(data)  # until the connection closes
        if stop > len(data):
            break
        found.append(data[start:stop])
        start = stop
    return found


def _header_bytes(value: Union[str, bytes]) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


class TestConnection:
    """
    One client connection to a :class:`TestClient`'s site, driven by hand:
    for pipelining, slow clients, refusals and deadlines.

    :ivar transport: the memory transport the server writes to.
    """

    __test__ = False

    def __init__(self, connection: Any, transport: StringTransport) -> None:
        self._connection = connection
        self.transport = transport

    def send(self, data: bytes) -> None:
        """Send ``data`` to the server."""
        self._connection.dataReceived(data)

    @property
    def received(self) -> bytes:
        """Everything the server has written so far."""
        value: bytes = self.transport.value()
        return value

    def responses(self, method: str = "GET") -> List[TestResponse]:
        """
        The complete responses received so far, in order, ``100 Continue``
        included (``method``: that of the requests, for HEAD's bodiless
        answers).
        """
        return [
            _parse_interim(raw) if raw[9:10] == b"1" else _parse(raw, method)
            for raw in _split_responses(self.received, method)
        ]

    @property
    def closing(self) -> bool:
        """The server has closed (or half-closed) the connection."""
        return bool(self.transport.disconnecting)

    @property
    def aborted(self) -> bool:
        """The server has cut the connection off, dropping unsent data."""
        return bool(self.transport.disconnected)

    @property
    def reading_paused(self) -> bool:
        """The server has stopped reading from the connection."""
        return self.transport.producerState == "paused"

    def close(self) -> None:
        """The client goes away."""
        if not self._connection.closed:
            self._connection.connectionLost(Failure(ConnectionDone()))


# What configures the router, rather than how it is served.
_ROUTER_OBJECTS = ("config", "metrics", "auth_backend", "store")
_ROUTER_SETTINGS = frozenset(
    {
        "version_header",
        "version_in_query",
        "strict_charset",
        "server_ident",
        "cross_origin_domains",
        "inhibit_http_caching",
        "request_timeout",
        "cookie_secrets",
        "cookie_secure",
    }
)


class TestClient:
    """
    Sends requests in memory through Shiji's own HTTP protocol and site, as
    shijid serves them: the same parser, refusals, limits, client addresses,
    access log and metrics, with a ``twisted.internet.task.Clock`` for the
    deadlines.

    :param apis: an ``APIRouter``, or the route map to build one from
        (``{url_regex: api_package}``).
    :param client_address: the address requests come from (the peer's; see
        :attr:`~shiji.urldispatch.APIRequest.client_ip`).
    :param timeout: seconds to wait for each response before failing with
        ``twisted.internet.defer.TimeoutError``.
    :param clock: the site's clock (deadlines, timeouts, draining); a new
        ``Clock`` by default, advanced by the test (:attr:`clock`).
    :param options: with a route map, ``APIRouter``'s ``config``, ``metrics``,
        ``auth_backend`` and ``store`` (a :class:`~shiji.storage.Store`; by
        default one in memory whose expiries follow :attr:`clock`); and any
        setting shijid's configuration has, by its name there: ``version_header``, ``cross_origin_domains``,
        ``request_timeout``, ``max_body_bytes``, ``header_timeout``,
        ``honor_x_realip`` (believe ``X-Real-IP`` and ``X-Forwarded-For``
        from ``trusted_proxies``, loopback by default), ``redacted_arguments``,
        ``serve_docs`` (off here unless asked for) and the others.
        ``validate_responses`` is on unless turned off: an answer that
        does not match its call's ``webapi.returns`` fails the request's
        ``Deferred`` with :class:`ResponseMismatchError`.
    :param tasks: options of the :class:`~shiji.tasks.TaskService` that runs
        the APIs' tasks and jobs in memory (see :attr:`tasks`):
        ``concurrency``, ``poll_interval``, ``lease``, ``keep_finished``,
        ``shutdown_grace``, ``in_thread`` (how blocking tasks run: in the
        test's thread, at once, by default) and ``store`` (an SQLite queue
        in memory by default).
    """

    __test__ = False

    def __init__(
        self,
        apis: Union[APIRouter, RouteMap],
        *,
        client_address: str = "127.0.0.1",
        timeout: float = 30.0,
        clock: Optional[Clock] = None,
        tasks: Optional[Mapping[str, Any]] = None,
        **options: Any,
    ) -> None:
        router_objects = {
            name: options.pop(name) for name in _ROUTER_OBJECTS if name in options
        }
        options.setdefault("serve_docs", False)
        options.setdefault("validate_responses", True)
        #: The clock of the site's deadlines and timeouts, and of the
        #: store's expiries and sessions.
        self.clock = clock if clock is not None else Clock()
        if isinstance(apis, APIRouter):
            if router_objects or set(options) & _ROUTER_SETTINGS:
                raise TypeError("router options go to APIRouter, not with a router")
            self.router = apis
            settings = apis.settings.replace(**options)
        else:
            settings = DEFAULT_SETTINGS.replace(**options)
            router_objects.setdefault("store", MemoryStore(self.clock))
            self.router = APIRouter(
                apis, settings=settings, clock=self.clock, **router_objects
            )
        docs = None
        if settings.serve_docs:
            from .docs import DocsResource

            docs = DocsResource(
                [(p.pattern, api) for p, api in self.router.apis],
                settings.version_header,
            )
        metrics = router_objects.get("metrics")
        #: The site serving the requests.
        self.site = Site(
            self.router, settings, docs=docs, metrics=metrics, clock=self.clock
        )
        # The deadline sweep runs on the clock.
        self.site.doStart()
        #: The access lines logged, one per answer, as shijid would log them.
        self.access_lines: List[str] = []
        self.site.access.sink = self.access_lines.append
        self._mismatches: List[str] = []
        self.site.on_response_mismatch = self._mismatched
        self._peer = IPv4Address("TCP", client_address, 49152)
        self.timeout = timeout
        #: The service running the APIs' tasks and scheduled jobs, as shijid
        #: does, on :attr:`clock` (``None`` when no API has a ``tasks.py``).
        self.tasks: Optional[TaskService] = None
        declared = [load_api_tasks(api) for _, api in self.router.apis]
        found = [api_tasks for api_tasks in declared if api_tasks is not None]
        if found:
            task_options = dict(tasks or {})
            task_options.setdefault("in_thread", call_at_once)
            task_options.setdefault("shared_store", self.router.store)
            store = task_options.pop("store", None) or SQLiteTaskStore(":memory:")
            self.tasks = TaskService(
                found,
                store,
                api_config=self.router.config,
                metrics=metrics,
                clock=self.clock,
                call_store=call_at_once,
                **task_options,
            )
            self.tasks.startService()

    def run_tasks(self) -> Deferred[int]:
        """
        Run every task that is due (by :attr:`clock`), and those they queue,
        as shijid's task service would; fires with the number of runs once
        they are over. A retry waits for its back-off: advance the clock
        first (``client.clock.advance(2)``). Scheduled jobs run when the
        clock passes their ticks.

        :raises RuntimeError: no API has a ``tasks.py``.
        """
        if self.tasks is None:
            raise RuntimeError("no API of this client has a tasks.py")
        return self.tasks.run_due()

    def _mismatched(self, request: Any, description: str) -> None:
        self._mismatches.append(description)

    def _raise_mismatches(self, response: TestResponse) -> TestResponse:
        if self._mismatches:
            found, self._mismatches = self._mismatches, []
            raise ResponseMismatchError(
                "the answer does not match its declaration: " + "; ".join(found)
            )
        return response

    def version_header(
        self, path: str, version: Any = LATEST, mode: str = "prod"
    ) -> Optional[str]:
        """
        The version header value for the API that ``path`` names, e.g.
        ``"mylogin_api-1.0+prod"``, or ``None`` if no API serves ``path``.
        """
        segment = path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
        for pattern, api in self.router.apis:
            if pattern.fullmatch(segment):
                if version is LATEST:
                    version = api.version_router.versions()[-1]
                return str(VersionHeader(api.api_name, str(version), mode))
        return None

    def request(
        self,
        method: str,
        path: Union[str, bytes],
        *,
        json: Any = None,
        body: Optional[bytes] = None,
        headers: Optional[Headers] = None,
        version: Any = LATEST,
        mode: str = "prod",
        content_type: Optional[str] = None,
    ) -> Deferred[TestResponse]:
        """
        Send one request.

        :param path: path and query string, e.g. ``"/myloginapi/ping?x=1"``;
            ``bytes`` are sent exactly as given.
        :param json: an object to send as the JSON body (``None``: no body).
        :param body: raw body bytes, instead of ``json``.
        :param headers: extra headers, as a mapping or a list of pairs; they
            replace the defaults of the same name, and a value of ``None``
            removes the default.
        :param version: the version to ask for in the version header;
            ``LATEST`` for the API's newest, ``None`` for no header.
        :param mode: the mode of the version header.
        :param content_type: the Content-Type; defaults to
            ``application/json; charset=utf-8`` when there is a body.
        :returns: a ``Deferred`` firing with the :class:`TestResponse`.
        """
        if json is not None and body is not None:
            raise TypeError("pass json or body, not both")
        if json is not None:
            body = _stdlib_json.dumps(json).encode("utf-8")
        target = path if isinstance(path, bytes) else path.encode("utf-8")

        fields: List[Tuple[str, HeaderValue]] = [("Host", "localhost")]
        if version is not None:
            text_path = target.decode("utf-8", "replace")
            value = self.version_header(text_path, version, mode)
            if value is not None:
                fields.append((self.router.version_header, value))
        if body is not None:
            fields.append(
                ("Content-Type", content_type or "application/json; charset=utf-8")
            )
            fields.append(("Content-Length", str(len(body))))
        elif content_type is not None:
            fields.append(("Content-Type", content_type))
        if headers is not None:
            extra = list(headers.items() if isinstance(headers, Mapping) else headers)
            replaced = {name.lower() for name, _ in extra}
            fields = [f for f in fields if f[0].lower() not in replaced] + extra

        raw = b"%s %s HTTP/1.1\r\n" % (method.encode("ascii"), target)
        raw += b"".join(
            b"%s: %s\r\n" % (name.encode("ascii"), _header_bytes(value))
            for name, value in fields
            if value is not None
        )
        raw += b"\r\n" + (body or b"")
        return self._exchange(raw, method)

    def connect(self) -> TestConnection:
        """
        Open a connection to send bytes on as a client would, a piece at a
        time (see :class:`TestConnection`), with :attr:`clock` for time.
        """
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 80), peerAddress=self._peer
        )
        connection = self.site.buildProtocol(self._peer)
        connection.makeConnection(transport)
        return TestConnection(connection, transport)

    def send_raw(self, data: bytes, *, method: str = "GET") -> Deferred[TestResponse]:
        """
        Send ``data`` as it is, on a connection of its own, and parse the
        answer (that of a ``method`` request): for requests no well-behaved
        client would send.
        """
        return self._exchange(data, method)

    def _exchange(self, raw: bytes, method: str) -> Deferred[TestResponse]:
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 80), peerAddress=self._peer
        )
        connection = self.site.buildProtocol(self._peer)
        connection.makeConnection(transport)
        connection.dataReceived(raw)

        def parse(_: object = None) -> TestResponse:
            if not connection.closed:
                connection.connectionLost(Failure(ConnectionDone()))
            return _parse(transport.value(), method)

        current = connection.current
        if current is None:
            # Answered already, or refused before reaching a call.
            answered: Deferred[None] = succeed(None)
        else:
            answered = current.notifyFinish()
            answered.addTimeout(self.timeout, global_reactor())
        parsed: Deferred[TestResponse] = answered.addCallback(parse)
        return parsed.addCallback(self._raise_mismatches)

    def get(self, path: Union[str, bytes], **options: Any) -> Deferred[TestResponse]:
        """Send a GET; see :meth:`request` for the options."""
        return self.request("GET", path, **options)

    def post(self, path: Union[str, bytes], **options: Any) -> Deferred[TestResponse]:
        """Send a POST; see :meth:`request` for the options."""
        return self.request("POST", path, **options)

    def put(self, path: Union[str, bytes], **options: Any) -> Deferred[TestResponse]:
        """Send a PUT; see :meth:`request` for the options."""
        return self.request("PUT", path, **options)

    def patch(self, path: Union[str, bytes], **options: Any) -> Deferred[TestResponse]:
        """Send a PATCH; see :meth:`request` for the options."""
        return self.request("PATCH", path, **options)

    def delete(self, path: Union[str, bytes], **options: Any) -> Deferred[TestResponse]:
        """Send a DELETE; see :meth:`request` for the options."""
        return self.request("DELETE", path, **options)

    def head(self, path: Union[str, bytes], **options: Any) -> Deferred[TestResponse]:
        """Send a HEAD; see :meth:`request` for the options."""
        return self.request("HEAD", path, **options)

    def options(
        self, path: Union[str, bytes], **options: Any
    ) -> Deferred[TestResponse]:
        """Send an OPTIONS; see :meth:`request` for the options."""
        return self.request("OPTIONS", path, **options)

    def expect(
        self,
        method: str,
        path: Union[str, bytes],
        json: Any = None,
        status: int = 200,
        expected: Any = _UNCHECKED,
        **options: Any,
    ) -> Deferred[TestResponse]:
        """
        Send a request and check its status and, if given, its JSON body, in
        one line::

            await client.expect("POST", "/api/echo", {"a": 1}, 200, {"a": 1})

        :raises AssertionError: (in the ``Deferred``) with both sides shown.
        :returns: a ``Deferred`` firing with the :class:`TestResponse`.
        """

        def check(response: TestResponse) -> TestResponse:
            shown = path.decode("utf-8", "replace") if isinstance(path, bytes) else path
            if response.status != status:
                raise AssertionError(
                    f"{method} {shown}: expected status {status}, got "
                    f"{response.status} with body {response.body!r}"
                )
            if expected is not _UNCHECKED:
                try:
                    actual = response.json
                except _stdlib_json.JSONDecodeError:
                    raise AssertionError(
                        f"{method} {shown}: the body is not JSON: {response.body!r}"
                    ) from None
                if actual != expected:
                    raise AssertionError(
                        f"{method} {shown}: expected body\n  {expected!r}\n"
                        f"got\n  {actual!r}"
                    )
            return response

        return self.request(method, path, json=json, **options).addCallback(check)
