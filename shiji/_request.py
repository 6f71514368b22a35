"""
The request as Shiji's handlers see it, and the response they write to it.

:class:`APIRequest` provides ``twisted.web.iweb.IRequest``, so handlers
written for ``twisted.web`` (and for the original Shiji) find what they
expect: ``args``, ``getHeader``, ``setHeader``, ``setResponseCode``,
``write``, ``finish``, ``notifyFinish``, cookies, ``requestHeaders`` and
``responseHeaders``. It is lighter than ``twisted.web``'s request: headers
live in plain lists and dicts, and the ``Headers`` objects are built only
for code that asks for them.
"""

from __future__ import annotations

import io
import math
import re
from types import MappingProxyType
from typing import (
    TYPE_CHECKING,
    Any,
    AnyStr,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
    overload,
)

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.python.urlpath import URLPath
from twisted.web.http import CACHED, stringToDatetime
from twisted.web.http_headers import Headers
from twisted.web.iweb import IRequest
from zope.interface import implementer

from ._client_address import PEER_ONLY, ClientAddresses
from ._status import REASON_PHRASES
from .metrics import Metrics, NullMetrics

if TYPE_CHECKING:
    from ._sessions import Session
    from .urldispatch import APIRouter, VersionRouter

__all__ = [
    "JSON_CONTENT_TYPE",
    "APIRequest",
    "has_body",
    "header_bytes",
    "reason_phrase",
]

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_REASON_PHRASES = {
    code: phrase.encode("ascii") for code, phrase in REASON_PHRASES.items()
}
# Statuses whose answers have no body (RFC 9110 section 6.4.1).
_NO_BODY = frozenset({204, 304})
#: The content type of Shiji's answers, and of any answer that names none.
JSON_CONTENT_TYPE = b"application/json; charset=utf-8"
# Status lines already written, by protocol, code and reason phrase.
_STATUS_LINES: Dict[Tuple[bytes, int, bytes], bytes] = {}
_HOST = re.compile(rb"^\[?(?P<host>.*?)\]?(:\d+)?$")


def has_body(code: int) -> bool:
    """Whether an answer of status ``code`` carries a body: 1xx, 204 and 304
    never do."""
    return code >= 200 and code not in _NO_BODY


def reason_phrase(code: int) -> bytes:
    """
    The reason phrase of status ``code`` in IANA's registry: ``b"Conflict"``
    for 409; empty for a code the registry does not name (RFC 9112 lets a
    status line end after the code and its space).
    """
    return _REASON_PHRASES.get(code, b"")


_CAPITALISED: Dict[bytes, bytes] = {
    b"www-authenticate": b"WWW-Authenticate",
    b"etag": b"ETag",
    b"content-md5": b"Content-MD5",
    b"x-xss-protection": b"X-XSS-Protection",
}


def _capitalised(name: bytes) -> bytes:
    """A header name as it is written: ``Content-Type`` for content-type."""
    found = _CAPITALISED.get(name)
    if found is None:
        found = b"-".join(part.capitalize() for part in name.split(b"-"))
        if len(_CAPITALISED) < 512:
            _CAPITALISED[name] = found
    return found


def header_bytes(value: Union[str, bytes]) -> bytes:
    """A header name or value as bytes; CR and LF become spaces, so no
    handler can end a header line early."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    if b"\r" in value or b"\n" in value:
        value = b" ".join(value.splitlines())
    return value


@implementer(IRequest)
class APIRequest:
    """
    One HTTP request, from its head to the end of its answer.

    :class:`~shiji.urldispatch.APIRouter` sets the ``api_*`` attributes,
    ``url_matches`` and ``args`` on its way to the call; the argument and
    access decorators add ``jsonArgs``, ``permissions`` and the like.
    """

    # What the request says.

    #: The method, e.g. ``b"GET"``.
    method: bytes
    #: The request target as sent (the path and the query string).
    uri: bytes
    #: The path, without the query string.
    path: bytes
    #: The protocol version: ``b"HTTP/1.1"`` or ``b"HTTP/1.0"``.
    clientproto: bytes
    #: The body.
    content: Any
    #: The query arguments: ``str`` names to lists of ``str`` values once
    #: the router has parsed them (``page`` and ``page_len`` hold ints after
    #: ``paged_results``).
    args: Dict[Any, List[Any]]
    #: Always empty: Shiji does not walk a resource tree.
    prepath: List[bytes]
    postpath: List[bytes]

    # What Shiji learns on the way.

    #: The ``api_name`` of the API package serving the request.
    api_name: str = ""
    #: The version asked for in the version header, e.g. ``"1.0"``.
    api_version: str = ""
    #: The key in ``api_versions`` of the version answering, e.g. ``"1.0"``
    #: for ``"1.5"`` under ``{"1.0": (r"1\..*", v1_0)}`` (what the original
    #: Shiji called ``api_version``).
    version_key: str = ""
    #: The mode asked for in the version header: ``"prod"`` or ``"test"``.
    api_mode: str = ""
    #: Every API's validated configuration, keyed by API name.
    api_config: Mapping[str, Any] = _EMPTY
    #: Where handlers ship metrics; see :mod:`shiji.metrics`.
    metrics: Metrics = NullMetrics()
    #: Named groups of the call route, percent-decoded.
    url_matches: Mapping[str, str] = _EMPTY
    #: The router that dispatched the request.
    api_router: Optional[APIRouter] = None
    #: The version router of the API serving the request.
    version_router: Optional[VersionRouter] = None
    #: The JSON body's arguments, set by ``json_arguments``.
    jsonArgs: Dict[str, Any]
    #: The body as the model ``json_arguments`` was given (a dataclass or
    #: pydantic instance), if it was given one.
    json_model: Any = None
    #: Typed query arguments, converted by ``url_arguments``.
    query_args: Mapping[str, Any] = _EMPTY
    #: Declared request headers, converted by ``header_arguments``.
    header_args: Mapping[str, Any] = _EMPTY
    #: The answers ``webapi.returns`` declared for the call, if any.
    response_check: Any = None
    #: The class name of the call that answers the request.
    api_call: str = ""
    #: The id under which an unexpected error was logged, if any.
    request_id: Optional[str] = None
    #: The ``exception_class`` of the error answered, if the answer is one.
    error_class: Optional[str] = None
    #: The caller's permissions by namespace, set by ``auth.access`` and
    #: ``auth.login_required``.
    permissions: Optional[Dict[str, List[str]]] = None
    #: The namespace ``auth.access`` checked.
    auth_namespace: Optional[str] = None
    #: The user name that ``auth_http_basic`` authenticated.
    auth_user: Optional[str] = None
    #: How :attr:`client_ip` is found; the peer's address unless the site
    #: trusts proxies (``honor_x_realip`` and ``trusted_proxies``).
    client_addresses: ClientAddresses = PEER_ONLY

    # The answer.

    #: The status code.
    code: int = 200
    #: The status line's reason phrase.
    code_message: bytes = b"OK"
    #: Body bytes written so far.
    sentLength: int = 0
    #: The answer's head has been written.
    startedWriting: bool = False
    #: The answer is complete.
    finished: bool = False
    #: The client went away before the answer was complete.
    disconnected: bool = False
    #: ``Last-Modified`` and ``ETag`` set by :meth:`setLastModified` and
    #: :meth:`setETag`.
    lastModified: Optional[int] = None
    etag: Optional[bytes] = None

    _client_ip: Optional[str] = None
    _request_headers: Optional[Headers] = None
    _response_headers: Optional[Headers] = None
    _cookies_received: Optional[Dict[bytes, bytes]] = None
    _chunked = False
    _host: Any = None
    _secure: Optional[bool] = None
    _root_url: Optional[bytes] = None

    def __init__(
        self,
        channel: Any,
        method: bytes,
        uri: bytes,
        path: bytes,
        version: bytes,
        headers: List[Tuple[bytes, bytes]],
        content: Any,
        *,
        keep_alive: bool = True,
        started: float = 0.0,
    ) -> None:
        #: The connection (its ``transport`` is the client's).
        self.channel = channel
        self.transport = channel.transport if channel is not None else None
        #: The site serving the request.
        self.site = getattr(channel, "site", None)
        self.method = method
        self.uri = uri
        self.path = path
        self.clientproto = version
        self.content = content
        self.args = {}
        self.prepath = []
        self.postpath = []
        #: The connection stays open after the answer.
        self.keep_alive = keep_alive
        #: When the request began to arrive (the site's clock).
        self.started = started
        self._headers_in = headers
        self._headers_out: Optional[Dict[bytes, List[bytes]]] = {}
        #: ``Set-Cookie`` values, as :meth:`addCookie` made them.
        self.cookies: List[bytes] = []
        self._notifications: List[Deferred[None]] = []

    # Request headers

    @overload
    def getHeader(self, key: bytes) -> Optional[bytes]: ...

    @overload
    def getHeader(self, key: str) -> Optional[str]: ...

    def getHeader(self, key: AnyStr) -> Optional[AnyStr]:
        """
        The last value of request header ``key`` (any case), or ``None``;
        ``str`` (ISO-8859-1) for a ``str`` name, ``bytes`` for ``bytes``.
        """
        name = key.lower() if isinstance(key, bytes) else key.lower().encode("latin-1")
        found: Any = None
        for header, value in self._headers_in:
            if header == name:
                found = value
        if found is None or isinstance(key, bytes):
            return found  # type: ignore[no-any-return]
        return found.decode("latin-1")  # type: ignore[no-any-return]

    def header_values(self, name: bytes) -> List[bytes]:
        """Every value of request header ``name`` (lower case), in order."""
        return [value for header, value in self._headers_in if header == name]

    def set_request_header(
        self, name: Union[str, bytes], value: Union[str, bytes, None]
    ) -> None:
        """
        Replace every value of request header ``name`` (any case) with
        ``value``, or remove the header with ``None``: what a filter does to
        change the request the call sees. ``str`` values are UTF-8; CR and
        LF become spaces. Headers read from it later (``getHeader``,
        cookies, the client address) see the change.
        """
        raw_name = header_bytes(name).lower()
        headers = [(h, v) for h, v in self._headers_in if h != raw_name]
        if value is not None:
            headers.append((raw_name, header_bytes(value)))
        self._headers_in = headers
        # What was worked out from the old headers is worked out again.
        self._request_headers = None
        self._cookies_received = None
        self._client_ip = None

    @property
    def requestHeaders(self) -> Headers:
        """The request headers as ``twisted.web``'s ``Headers``."""
        headers = self._request_headers
        if headers is None:
            headers = self._request_headers = Headers()
            for name, value in self._headers_in:
                headers.addRawHeader(name, value)
        return headers

    def getAllHeaders(self) -> Dict[bytes, bytes]:
        """Each request header's name (lower case) and last value."""
        return dict(self._headers_in)

    def getCookie(self, key: bytes) -> Optional[bytes]:
        """The value of the request's cookie ``key`` (the last, if several)."""
        if isinstance(key, str):
            key = key.encode("utf-8")
        received = self._cookies_received
        if received is None:
            received = self._cookies_received = {}
            for header in self.header_values(b"cookie"):
                for pair in header.split(b";"):
                    name, equals, value = pair.partition(b"=")
                    if equals:
                        received[name.strip()] = value.strip()
        return received.get(key)

    @property
    def received_cookies(self) -> Dict[bytes, bytes]:
        """The request's cookies by name (the last of each name)."""
        self.getCookie(b"")
        assert self._cookies_received is not None
        return self._cookies_received

    # Response headers

    def setHeader(self, name: Union[str, bytes], value: Union[str, bytes]) -> None:
        """Set response header ``name`` to ``value``, replacing any."""
        key = header_bytes(name).lower()
        raw = header_bytes(value)
        out = self._headers_out
        if out is not None:
            out[key] = [raw]
        else:
            self.responseHeaders.setRawHeaders(key, [raw])

    def set_raw_header(self, name: bytes, value: bytes) -> None:
        """
        Set response header ``name`` (lower case) to ``value``, both bytes
        free of CR and LF, without the checks of :meth:`setHeader`: for the
        headers Shiji writes itself.
        """
        out = self._headers_out
        if out is not None:
            out[name] = [value]
        else:
            self.responseHeaders.setRawHeaders(name, [value])

    def add_header(self, name: Union[str, bytes], value: Union[str, bytes]) -> None:
        """Add ``value`` to response header ``name`` (``Vary``, say)."""
        key = header_bytes(name).lower()
        raw = header_bytes(value)
        out = self._headers_out
        if out is not None:
            out.setdefault(key, []).append(raw)
        else:
            self.responseHeaders.addRawHeader(key, raw)

    def response_header(self, name: bytes) -> Optional[bytes]:
        """The last value of response header ``name`` (lower case) set so
        far, or ``None``."""
        out = self._headers_out
        values: Optional[Sequence[bytes]] = (
            out.get(name)
            if out is not None
            else self.responseHeaders.getRawHeaders(name)
        )
        return values[-1] if values else None

    @property
    def responseHeaders(self) -> Headers:
        """The response headers as ``twisted.web``'s ``Headers``; from then
        on they live there."""
        headers = self._response_headers
        if headers is None:
            headers = self._response_headers = Headers()
            for name, values in (self._headers_out or {}).items():
                headers.setRawHeaders(name, values)
            self._headers_out = None
        return headers

    def setResponseCode(self, code: int, message: Optional[bytes] = None) -> None:
        """
        Set the status, with its reason phrase from the HTTP registry when
        none is given.
        """
        if not isinstance(code, int):
            raise TypeError(f"a status code is an int, not {code!r}")
        self.code = code
        self.code_message = (
            header_bytes(message) if message is not None else reason_phrase(code)
        )

    def addCookie(
        self,
        k: Union[str, bytes],
        v: Union[str, bytes],
        expires: Union[str, bytes, None] = None,
        domain: Union[str, bytes, None] = None,
        path: Union[str, bytes, None] = None,
        max_age: Union[str, bytes, None] = None,
        comment: Union[str, bytes, None] = None,
        secure: Optional[bool] = None,
        httpOnly: bool = False,
        sameSite: Union[str, bytes, None] = None,
    ) -> None:
        """
        Set a cookie, as ``twisted.web`` does: text is written as UTF-8,
        ``;`` and line ends in any part become spaces, ``SameSite`` is
        ``lax``, ``strict`` or ``none`` (the last with ``secure`` only).
        """

        def part(value: Union[str, bytes]) -> bytes:
            return header_bytes(value).replace(b";", b" ")

        cookie = part(k) + b"=" + part(v)
        for label, value in (
            (b"Expires", expires),
            (b"Domain", domain),
            (b"Path", path),
            (b"Max-Age", max_age),
            (b"Comment", comment),
        ):
            if value is not None:
                cookie += b"; " + label + b"=" + part(value)
        if secure:
            cookie += b"; Secure"
        if httpOnly:
            cookie += b"; HttpOnly"
        if sameSite:
            same_site = part(sameSite).lower()
            if same_site not in (b"lax", b"strict", b"none"):
                raise ValueError(f"Invalid value for sameSite: {same_site!r}")
            if same_site == b"none" and not secure:
                raise ValueError('sameSite none needs the "secure" attribute')
            cookie += b"; SameSite=" + same_site
        self.cookies.append(cookie)

    def redirect(self, url: Union[str, bytes]) -> None:
        """Answer 302 Found with ``Location: url`` (then :meth:`finish`)."""
        self.setResponseCode(302)
        self.setHeader(b"location", url)

    def setLastModified(self, when: float) -> Any:
        """
        Set ``Last-Modified`` (the latest of the times given); for a request
        with ``If-Modified-Since`` no earlier, answer 304 and return
        ``http.CACHED`` (write no body).
        """
        seconds = math.ceil(when)
        if self.lastModified is None or self.lastModified < seconds:
            self.lastModified = seconds
        since = self.getHeader(b"if-modified-since")
        if since:
            try:
                limit = stringToDatetime(since.split(b";", 1)[0])
            except ValueError:
                return None
            if limit >= self.lastModified:
                self.setResponseCode(304)
                return CACHED
        return None

    def setETag(self, etag: bytes) -> Any:
        """
        Set the entity tag; for a request with a matching ``If-None-Match``,
        answer 304 (412 for methods other than GET and HEAD) and return
        ``http.CACHED``.
        """
        if etag:
            self.etag = etag
        tags = self.getHeader(b"if-none-match")
        if tags:
            listed = tags.split()
            if etag in listed or b"*" in listed:
                self.setResponseCode(304 if self.method in (b"GET", b"HEAD") else 412)
                return CACHED
        return None

    # The store and the session

    @property
    def store(self) -> Any:
        """
        The shared store (a :class:`shiji.storage.Store`): the router's;
        ``None`` before the request is routed.
        """
        router = self.api_router
        return router.store if router is not None else None

    _session: Optional[Session] = None

    @property
    def session(self) -> Session:
        """
        The caller's server-side session (a :class:`shiji.sessions.Session`,
        dict-like), for calls behind ``sessions.session_filter``.

        :raises RuntimeError: the call has no session filter.
        """
        session = self._session
        if session is None:
            raise RuntimeError(
                f"request.session needs sessions.session_filter among the "
                f"filters of {self.api_call or 'the call'} (see shiji.sessions)"
            )
        return session

    @session.setter
    def session(self, session: Session) -> None:
        self._session = session

    # Who and where

    @property
    def client_ip(self) -> str:
        """
        The client's address: the peer's, or the one a trusted proxy names
        in ``X-Real-IP`` or ``X-Forwarded-For`` (see
        :attr:`client_addresses`); ``"-"`` once the connection is gone.
        Limits per client should key on it.
        """
        found = self._client_ip
        if found is None:
            peer = self._peer_host()
            if peer is None:
                return "-"
            found = self._proxied_address(peer, self.client_addresses)
            self._client_ip = found
        return found

    def _peer_host(self) -> Optional[str]:
        """The peer's address, or ``None`` once the connection is gone."""
        if self.transport is None:
            return None
        peer = getattr(self.channel, "peer_host", None)
        if peer is None:
            peer = str(getattr(self.getClientAddress(), "host", "-"))
        return peer

    def _proxied_address(self, peer: str, addresses: ClientAddresses) -> str:
        if not addresses.honor_x_realip:
            return peer
        return addresses.client_ip(
            peer, self.getHeader(b"x-real-ip"), self.getHeader(b"x-forwarded-for")
        )

    def getClientAddress(self) -> Any:
        """The client's address (the peer of the connection)."""
        if self.transport is None:
            return None
        peer = getattr(self.channel, "peer", None)
        return peer if peer is not None else self.transport.getPeer()

    def getClientIP(self, honor_xrealip: Optional[bool] = None) -> Optional[str]:
        """
        The client's IP address, as the original Shiji's ``getClientIP``
        gave it; ``None`` once the connection is gone.

        :param honor_xrealip: ``None`` (the default): as configured, the
            same as :attr:`client_ip`. ``True``: believe ``X-Real-IP`` (or
            ``X-Forwarded-For``) even where ``honor_x_realip`` is off, but
            still only from a peer among ``trusted_proxies``: a client that
            is not a trusted proxy cannot name another address. ``False``:
            the peer's address, whatever the headers say.
        """
        peer = self._peer_host()
        if peer is None:
            return None
        if honor_xrealip is None:
            return self.client_ip
        if not honor_xrealip:
            return peer
        addresses = ClientAddresses(True, self.client_addresses.trusted_proxies)
        return self._proxied_address(peer, addresses)

    def getHost(self) -> Any:
        """The server's address the client reached (see :meth:`setHost`)."""
        if self._host is not None:
            return self._host
        return self.transport.getHost() if self.transport is not None else None

    def setHost(self, host: bytes, port: int, ssl: int = 0) -> None:
        """Say the request reached ``host:port`` (behind a proxy, say)."""
        from twisted.internet.address import IPv4Address

        self._secure = bool(ssl)
        default = 443 if ssl else 80
        header = host if port == default else b"%b:%d" % (host, port)
        self._headers_in = [h for h in self._headers_in if h[0] != b"host"]
        self._headers_in.append((b"host", header))
        self._request_headers = None
        self._host = IPv4Address("TCP", host.decode("latin-1"), port)

    def getRequestHostname(self) -> bytes:
        """The host the client asked for (``Host``, without its port)."""
        host = self.getHeader(b"host")
        if host is not None:
            found = _HOST.match(host)
            if found is not None:
                return found.group("host")
        return str(getattr(self.getHost(), "host", "")).encode("latin-1")

    def isSecure(self) -> bool:
        """Whether the connection is TLS (or :meth:`setHost` said so)."""
        if self._secure is not None:
            return self._secure
        from twisted.internet.interfaces import ISSLTransport

        return ISSLTransport(self.transport, None) is not None

    def _credentials(self) -> Tuple[bytes, bytes]:
        import base64
        import binascii

        header = self.getHeader(b"authorization")
        if header is not None:
            scheme, _, encoded = header.partition(b" ")
            if scheme.lower() == b"basic":
                try:
                    user, _, password = base64.b64decode(encoded.strip()).partition(
                        b":"
                    )
                    return user, password
                except (binascii.Error, ValueError):
                    pass
        return b"", b""

    def getUser(self) -> bytes:
        """The user name of HTTP Basic credentials, or ``b""``."""
        return self._credentials()[0]

    def getPassword(self) -> bytes:
        """The password of HTTP Basic credentials, or ``b""``."""
        return self._credentials()[1]

    def getSession(self, sessionInterface: Any = None) -> Any:
        """Shiji keeps no server-side sessions: use signed cookies
        (:mod:`shiji.auth`)."""
        raise NotImplementedError(
            "Shiji keeps no server-side sessions; see shiji.auth's secure cookies"
        )

    def prePathURL(self) -> bytes:
        """The URL of the request, without its query string."""
        scheme = b"https" if self.isSecure() else b"http"
        host = self.getHeader(b"host") or self.getRequestHostname()
        return scheme + b"://" + host + self.path

    def URLPath(self) -> URLPath:
        """:meth:`prePathURL` as a ``URLPath``."""
        found: URLPath = URLPath.fromBytes(self.prePathURL())
        return found

    def rememberRootURL(self) -> None:
        """Remember the current URL as the root one (:meth:`getRootURL`)."""
        self._root_url = self.prePathURL()

    def getRootURL(self) -> Optional[bytes]:
        """The URL :meth:`rememberRootURL` remembered."""
        return self._root_url

    # Writing the answer

    def write(self, data: bytes) -> None:
        """
        Send ``data`` as (part of) the body; the first call sends the head.

        :raises RuntimeError: the answer is already complete.
        """
        if self.finished:
            raise RuntimeError(
                "Request.write called on a request after Request.finish was called."
            )
        if self.disconnected:
            return
        if not self.startedWriting:
            self.startedWriting = True
            head = self._head(data)
            if self.method == b"HEAD" or not has_body(self.code):
                self.channel.write(head)
                return
            self.sentLength = len(data)
            self.channel.write(head + (self._framed(data) if self._chunked else data))
            return
        if not data or self.method == b"HEAD" or not has_body(self.code):
            return
        self.sentLength += len(data)
        self.channel.write(self._framed(data) if self._chunked else data)

    @staticmethod
    def _framed(data: bytes) -> bytes:
        return b"%x\r\n%b\r\n" % (len(data), data) if data else b""

    def _head(self, first: bytes) -> bytes:
        """The status line and headers, deciding how the body is framed."""
        out = self._headers_out
        if out is None:
            # A handler took to twisted.web's Headers: read them back.
            out = {
                name.lower(): list(values)
                for name, values in self.responseHeaders.getAllRawHeaders()
            }
        code = self.code
        no_body = not has_body(code)
        keep_alive = self.keep_alive and not getattr(self.site, "draining", False)
        if not no_body and b"content-length" not in out and self.method != b"HEAD":
            if self.finished:
                # Nothing was written before finish(): an empty body.
                out[b"content-length"] = [b"%d" % len(first)]
            elif self.clientproto == b"HTTP/1.1":
                self._chunked = True
                out[b"transfer-encoding"] = [b"chunked"]
            else:
                # HTTP/1.0 without a length: the end of the body is the end
                # of the connection.
                keep_alive = False
        if not keep_alive:
            self.keep_alive = False
            out[b"connection"] = [b"close"]
        if not no_body and b"content-type" not in out:
            # A JSON API: what a handler writes is JSON unless it says not.
            out[b"content-type"] = [JSON_CONTENT_TYPE]
        site = self.site
        if code == 401 and b"www-authenticate" not in out and site is not None:
            # Every 401 carries a challenge (RFC 9110 section 11.6.1): the
            # site's, unless the handler or the error set its own.
            out[b"www-authenticate"] = [site.challenge(self)]
        status = (self.clientproto, code, self.code_message)
        status_line = _STATUS_LINES.get(status)
        if status_line is None:
            status_line = b"%s %d %s" % status
            if len(_STATUS_LINES) < 256:
                _STATUS_LINES[status] = status_line
        lines = [status_line]
        if site is not None:
            if b"server" not in out:
                lines.append(b"Server: " + site.server_ident)
            lines.append(b"Date: " + site.http_date())
        for name, values in out.items():
            written = _CAPITALISED.get(name) or _capitalised(name)
            for value in values:
                lines.append(written + b": " + value)
        for cookie in self.cookies:
            lines.append(b"Set-Cookie: " + cookie)
        lines.append(b"\r\n")
        return b"\r\n".join(lines)

    def finish(self) -> None:
        """
        End the answer. Writing or finishing again afterwards is an error;
        finishing after the client has gone does nothing.

        :raises RuntimeError: the answer was already complete.
        """
        if self.finished:
            raise RuntimeError(
                "Request.finish called on a request after its connection was lost."
                if self.disconnected
                else "Request.finish called twice"
            )
        if self.disconnected:
            return
        self.finished = True
        if not self.startedWriting:
            self.startedWriting = True
            self.channel.write(self._head(b""))
        elif self._chunked:
            self.channel.write(b"0\r\n\r\n")
        notifications, self._notifications = self._notifications, []
        # The connection logs the answer, then fires these, then reads on.
        self.channel.request_done(self, notifications)

    def abort(self) -> None:
        """
        Cut the answer short: close the connection at once, so that the
        client sees an answer broken off rather than one that looks whole.
        """
        self.keep_alive = False
        if self.channel is not None and not self.disconnected:
            self.channel.abort()

    def notifyFinish(self) -> Deferred[None]:
        """
        A ``Deferred`` that fires with ``None`` when the answer is complete,
        or fails if the client goes away first.
        """
        notification: Deferred[None] = Deferred()
        if self.finished:
            notification.callback(None)
        elif self.disconnected:
            notification.errback(Failure(ConnectionError("the client has gone")))
        else:
            self._notifications.append(notification)
        return notification

    def connectionLost(self, reason: Failure) -> None:
        """The client went away before the answer was complete."""
        self.disconnected = True
        self.transport = None
        if self.content is not None:
            self.content.close()
        notifications, self._notifications = self._notifications, []
        for notification in notifications:
            notification.errback(reason)

    def __repr__(self) -> str:
        return (
            f"<APIRequest {self.method.decode('latin-1')} "
            f"{self.uri.decode('latin-1')} {self.clientproto.decode('latin-1')}>"
        )


def empty_body() -> io.BytesIO:
    """The content of a request without a body."""
    return io.BytesIO()
