"""
Call Shiji APIs in memory from tests: no socket, no daemon.

:class:`TestClient` feeds real HTTP/1.1 bytes through Twisted's HTTP server
protocol into an :class:`~shiji.urldispatch.APIRouter` and parses what comes
back, so a test sees exactly what a client would: status, headers and body.
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
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import json as _stdlib_json
from typing import (
    Any,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.server import Site

from ._client_address import ClientAddresses, Network
from ._reactor import global_reactor
from ._request import APIRequest
from .urldispatch import APIRouter, RouteMap

__all__ = ["LATEST", "TestClient", "TestResponse"]


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
    :ivar headers: header names (lower case) to values; repeated headers are
        joined with ``", "`` (see :meth:`header_values` for each one).
    :ivar body: the body as bytes.
    """

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(
        self, status: int, header_list: List[Tuple[str, str]], body: bytes
    ) -> None:
        self.status = status
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
    return TestResponse(parsed.status, parsed.getheaders(), parsed.read())


def _header_bytes(value: Union[str, bytes]) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


class TestClient:
    """
    Sends requests to an :class:`APIRouter` in memory.

    :param apis: an ``APIRouter``, or the route map to build one from
        (``{url_regex: api_package}``).
    :param router_options: with a route map, keyword arguments for
        ``APIRouter`` (``config``, ``version_header``,
        ``cross_origin_domains``...).
    :param client_address: the address requests come from (the peer's; see
        :attr:`~shiji.urldispatch.APIRequest.client_ip`).
    :param honor_x_realip: as shijid's ``[general] honor_x_realip``: believe
        ``X-Real-IP`` and ``X-Forwarded-For`` from ``trusted_proxies``.
    :param trusted_proxies: addresses or networks (``"10.0.0.0/8"``) whose
        client-address headers are believed; loopback by default, as in
        shijid.
    :param timeout: seconds to wait for each response before failing with
        ``twisted.internet.defer.TimeoutError``.
    """

    __test__ = False

    def __init__(
        self,
        apis: Union[APIRouter, RouteMap],
        *,
        client_address: str = "127.0.0.1",
        honor_x_realip: bool = False,
        trusted_proxies: Sequence[Union[str, Network]] = ("127.0.0.1", "::1"),
        timeout: float = 30.0,
        **router_options: Any,
    ) -> None:
        if isinstance(apis, APIRouter):
            if router_options:
                raise TypeError("router options go to APIRouter, not with a router")
            self.router = apis
        else:
            self.router = APIRouter(apis, **router_options)
        self.site = Site(
            self.router,
            requestFactory=self._make_request,
            timeout=None,
            parsePOSTFormSubmission=False,
        )
        self._peer = IPv4Address("TCP", client_address, 49152)
        self._client_addresses = ClientAddresses(
            honor_x_realip,
            [ipaddress.ip_network(proxy, strict=False) for proxy in trusted_proxies],
        )
        self._made: List[APIRequest] = []
        self.timeout = timeout

    def _make_request(self, *args: Any, **kwargs: Any) -> APIRequest:
        request = APIRequest(*args, **kwargs)
        request.client_addresses = self._client_addresses
        self._made.append(request)
        return request

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
                return f"{api.api_name}-{version}+{mode}"
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

    def _exchange(self, raw: bytes, method: str) -> Deferred[TestResponse]:
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 80), peerAddress=self._peer
        )
        channel = self.site.buildProtocol(self._peer)
        assert channel is not None
        channel.makeConnection(transport)
        del self._made[:]
        channel.dataReceived(raw)
        made, self._made[:] = list(self._made), []

        def parse(_: object = None) -> TestResponse:
            channel.connectionLost(Failure(ConnectionDone()))
            return _parse(transport.value(), method)

        if not made or made[0].finished or transport.disconnecting:
            # Done already, or refused by the HTTP layer (which then closes the
            # connection without finishing the request).
            return succeed(parse())
        finished: Deferred[None] = made[0].notifyFinish()
        finished.addTimeout(self.timeout, global_reactor())
        return finished.addCallback(parse)

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
