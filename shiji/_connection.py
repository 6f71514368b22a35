"""
One HTTP/1.1 connection: requests read in order, each answered before the
next is read, and everything a client may get wrong answered with Shiji's
JSON errors.

- **Pipelining.** Requests sent back to back are answered in order: the
  next is read only once the answer before it is complete.
- **Back-pressure.** While the transport cannot send (the client is not
  reading), the connection stops reading, and the next request waits: a
  client that sends many requests and reads nothing costs one answer's
  worth of memory.
- **Refusals.** A request that cannot be read (malformed, too long, too
  large, too slow) is answered with the JSON error, after the answers before
  it, and the connection closes.
- **Deadlines** are checked by the site's sweep (about once a second):
  nothing is timed per request.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHalfCloseableDescriptor, ITCPTransport
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure

from ._errors import (
    APIError,
    MalformedRequestError,
    RequestHeadersTooLargeError,
    RequestReadTimeoutError,
    RequestTooLargeError,
    RequestURITooLongError,
)
from ._parsing import (
    BODY_TOO_LARGE,
    HEADERS_TOO_LARGE,
    URI_TOO_LONG,
    ParseError,
    RequestHead,
    RequestReader,
)
from ._request import APIRequest, reason_phrase
from ._response import error_body

if TYPE_CHECKING:
    from ._site import Site

__all__ = ["HTTPConnection"]

#: How long a refused client may keep sending before its connection is cut.
LINGER_SECONDS = 2.0
# While a request is answered, the next ones wait in the buffer; past this
# many bytes the connection stops reading.
_READ_AHEAD = 65536

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

# RFC 9112 section 3.2 and RFC 3986: a Host is a host name, an IPv4 address
# or an IPv6 literal in brackets, and a port.
_HOST = re.compile(rb"(?:[A-Za-z0-9._~!$&'()*+,;=%-]*|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?")


def _parse_refusal(error: ParseError, max_body: int) -> APIError:
    if error.kind == URI_TOO_LONG:
        return RequestURITooLongError(None, "16384")
    if error.kind == HEADERS_TOO_LARGE:
        return RequestHeadersTooLargeError(None)
    if error.kind == BODY_TOO_LARGE:
        return RequestTooLargeError(None, max_body)
    return MalformedRequestError(None)


def _origin_form(target: bytes) -> Optional[bytes]:
    """
    The path and query of a request target: as sent (origin form), or
    taken from an absolute URI (as proxies send them); ``None`` for ``*``.
    """
    if target[:1] == b"/":
        return target
    if target == b"*":
        return None
    _, scheme, rest = target.partition(b"://")
    if not scheme:
        raise ParseError("malformed", "a request target that is not a path")
    slash = rest.find(b"/")
    query = rest.find(b"?")
    if slash < 0 or 0 <= query < slash:
        return b"/" + rest[query:] if query >= 0 else b"/"
    return rest[slash:]


class HTTPConnection(Protocol):
    """
    Shiji's HTTP/1.1 server protocol; made by :class:`~shiji._site.Site`.
    """

    #: A refusal was sent: nothing more is read.
    refused = False
    #: The connection is gone.
    closed = False
    #: Why reading is paused: while a request is answered and more waits,
    #: and while the transport cannot send.
    _answering_full = False
    _sending_full = False

    def __init__(self, site: Site) -> None:
        # Every attribute is set here, in one order, so that the instances
        # of ten thousand connections share their dictionaries' keys.
        self.transport = None
        self.connected = 0
        self.refused = False
        self.closed = False
        self._answering_full = False
        self._sending_full = False
        self.site = site
        settings = site.settings
        self._reader = RequestReader(site.parse_headers, settings.max_body_bytes)
        self._max_body = settings.max_body_bytes
        #: The request being answered, if any.
        self.current: Optional[APIRequest] = None
        #: When the request being read began to arrive (site clock), if one is.
        self.reading_since: Optional[float] = None
        #: Since when nothing has happened on the connection.
        self.idle_since = 0.0
        #: Since when the transport has been unable to send.
        self.blocked_since: Optional[float] = None
        self._head: Optional[RequestHead] = None
        self._advancing = False
        self._continue_sent = False
        #: The client's address (the transport's peer), once connected.
        self.peer: Any = None
        #: The peer's IP address as text (``"-"`` for one without).
        self.peer_host = "-"
        self._valid_host: Optional[bytes] = None

    # The transport

    def connectionMade(self) -> None:
        transport: Any = self.transport
        # A transport makes a new address object each time it is asked.
        self.peer = transport.getPeer()
        self.peer_host = str(getattr(self.peer, "host", "-"))
        if ITCPTransport.providedBy(transport):
            transport.setTcpNoDelay(True)
        transport.registerProducer(self, True)
        self.idle_since = self.site.clock.seconds()
        self.site.connection_made(self)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.closed = True
        current, self.current = self.current, None
        if current is not None and not current.finished:
            # Logged while the request still knows its client's address.
            self.site.request_lost(current)
            current.connectionLost(reason)
        self.site.connection_lost(self)

    def write(self, data: bytes) -> None:
        """Send ``data`` (part of an answer)."""
        if not self.closed:
            transport: Any = self.transport
            transport.write(data)

    # The transport says when it cannot send (IPushProducer).

    def pauseProducing(self) -> None:
        self._sending_full = True
        self.blocked_since = self.site.clock.seconds()
        self._pause_reading()

    def resumeProducing(self) -> None:
        self._sending_full = False
        self.blocked_since = None
        # Reading resumes even while an answer is still being written: the
        # read-ahead bound pauses it again if the client sends too much.
        self._resume_reading()
        if self.current is None:
            self._advance()

    def stopProducing(self) -> None:
        """The connection is closing."""

    def _pause_reading(self) -> None:
        transport: Any = self.transport
        if not self.closed:
            transport.pauseProducing()

    def _resume_reading(self) -> None:
        if not (self._sending_full or self._answering_full or self.closed):
            transport: Any = self.transport
            transport.resumeProducing()

    # Reading requests

    @property
    def idle(self) -> bool:
        """No request is being read or answered."""
        return self.current is None and not self._reader.reading

    def dataReceived(self, data: bytes) -> None:
        if self.refused or self.closed:
            return
        reader = self._reader
        if self.reading_since is None and self.current is None:
            self.reading_since = self.site.clock.seconds()
        reader.feed(data)
        if self.current is None:
            self._advance()
        elif reader.buffered > _READ_AHEAD and not self._answering_full:
            self._answering_full = True
            self._pause_reading()

    def _advance(self) -> None:
        """Read and answer the requests that have arrived, one at a time."""
        if self._advancing:
            return
        self._advancing = True
        try:
            while (
                self.current is None
                and not self._sending_full
                and not self.refused
                and not self.closed
            ):
                if not self._read_one():
                    break
        finally:
            self._advancing = False

    def _read_one(self) -> bool:
        """Read the next request and start answering it; whether one was."""
        reader = self._reader
        try:
            head = self._head
            if head is None:
                head = reader.next_head()
                if head is None:
                    if not reader.reading:
                        # Only empty lines came: no request has begun.
                        self.reading_since = None
                    return False
                self._head = head
                self._continue_sent = False
                length = head.content_length
                if head.expect_continue and (head.chunked or length):
                    self.write(_CONTINUE)
                    self._continue_sent = True
            body = reader.read_body()
            if body is None:
                return False
            self._head = None
            request = self._request(head, body)
        except ParseError as error:
            self.refuse(_parse_refusal(error, self._max_body))
            return False
        if request is None:
            return False
        self.current = request
        self.site.serve(request)
        return True

    def _request(self, head: RequestHead, body: bytes) -> Optional[APIRequest]:
        """The request ``head`` and ``body`` make, or ``None`` if refused."""
        started = self.reading_since
        if started is None:
            started = self.site.clock.seconds()
        # The next request's clock starts once this one is answered: the
        # time its answer takes is not the client's.
        self.reading_since = None
        uri = _origin_form(head.target)
        if uri is None:
            uri = path = b"*"
        else:
            path = uri.split(b"?", 1)[0]
        request = self.site.make_request(self, head, uri, path, body, started=started)
        hosts = request.header_values(b"host")
        # A keep-alive client names the same host in request after request.
        if not (len(hosts) == 1 and hosts[0] == self._valid_host):
            if not _host_is_valid(hosts, head.version):
                self.refuse(MalformedRequestError(request), started, request)
                return None
            if hosts:
                self._valid_host = hosts[0]
        return request

    # Answers

    def request_done(
        self, request: APIRequest, notifications: List[Deferred[None]]
    ) -> None:
        """
        ``request``'s answer is complete: the site logs and counts it, then
        ``notifications`` (what waits on the answer) fire, then the next
        request is read, or the connection closes.
        """
        if request is not self.current:
            for notification in notifications:
                notification.callback(None)
            return
        self.site.request_finished(request)
        if notifications:
            for notification in notifications:
                notification.callback(None)
            if request is not self.current:
                # What waited on the answer closed the connection.
                return
        self.current = None
        self.idle_since = self.site.clock.seconds()
        if not request.keep_alive or self.site.draining:
            transport: Any = self.transport
            if not self.closed:
                transport.loseConnection()
            self.refused = True  # read nothing more
            return
        if self._answering_full:
            self._answering_full = False
            self._resume_reading()
        if self._reader.reading:
            if self.reading_since is None:
                self.reading_since = self.site.clock.seconds()
            self._advance()

    def refuse(
        self,
        error: APIError,
        started: Optional[float] = None,
        request: Optional[APIRequest] = None,
    ) -> None:
        """
        Answer ``error`` and close the connection once the answer is out;
        whatever the client sends meanwhile is discarded.

        :param started: when the refused request began (for the access log).
        :param request: the refused request, if it was read.
        """
        if self.refused or self.closed:
            return
        self.refused = True
        site = self.site
        if started is None:
            started = self.reading_since
        if request is not None:
            accept = request.getHeader(b"accept")
        elif self._head is not None:
            accept = dict(self._head.headers).get(b"accept")
        else:
            accept = self._reader.header(b"accept")
        content_type, body = error_body(error, accept)
        status = error.http_status
        head = [
            b"HTTP/1.1 %d %s" % (status, reason_phrase(status)),
            b"Server: " + site.server_ident,
            b"Date: " + site.http_date(),
            b"Content-Type: " + content_type,
            b"Content-Length: %d" % len(body),
            b"Vary: Accept",
            b"Connection: close",
        ]
        for name, value in error.headers.items():
            head.append(f"{name}: {value}".encode("latin-1"))
        transport: Any = self.transport
        transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        site.log_refusal(
            self,
            request,
            self._refused_line(request),
            status,
            len(body),
            started,
            error.exception_class,
        )
        # Half-close so the answer arrives before unread data makes the
        # client's side reset the connection; cut it if the client lingers.
        if IHalfCloseableDescriptor.providedBy(transport):
            transport.loseWriteConnection()
        else:
            transport.loseConnection()
        site.clock.callLater(LINGER_SECONDS, self.abort)

    def _refused_line(
        self, request: Optional[APIRequest]
    ) -> Optional[Tuple[bytes, bytes]]:
        if request is not None:
            return request.method, request.uri
        head = self._head
        if head is not None:
            return head.method, head.target
        return self._reader.request_line()

    def abort(self) -> None:
        """Close the connection at once, dropping whatever waits to be sent."""
        if not self.closed:
            transport: Any = self.transport
            transport.abortConnection()

    def check_deadlines(self, now: float) -> None:
        """
        Refuse a request arriving too slowly (408), close a connection idle
        too long, or whose client has read nothing for as long.
        """
        if self.closed:
            return
        settings = self.site.settings
        blocked = self.blocked_since
        if blocked is not None and now - blocked > settings.idle_timeout:
            # The client reads nothing: whatever waits to be sent goes.
            self.abort()
            return
        if self.refused or self.current is not None:
            return
        started = self.reading_since
        if started is not None and self._reader.reading:
            limit = settings.header_timeout
            if self._head is not None:
                limit += settings.body_timeout
            if now - started > limit:
                self.refuse(RequestReadTimeoutError(None, f"{limit:g}"), started)
        elif now - self.idle_since > settings.idle_timeout:
            transport: Any = self.transport
            transport.loseConnection()
            self.refused = True

    def close_if_idle(self) -> None:
        """Close the connection if no request is being read or answered."""
        if self.idle and not self.closed:
            transport: Any = self.transport
            transport.loseConnection()
            self.refused = True


def _host_is_valid(hosts: List[bytes], version: bytes) -> bool:
    """Whether a request's ``Host`` headers are as RFC 9112 section 3.2 asks:
    one on HTTP/1.1, at most one on HTTP/1.0, each an authority."""
    if not hosts:
        return version != b"HTTP/1.1"
    return len(hosts) == 1 and _HOST.fullmatch(hosts[0]) is not None
