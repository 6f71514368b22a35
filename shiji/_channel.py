"""
HTTP/1.1 connections of a :class:`~shiji._site.ShijiSite`.

Requests refused before they reach a resource (malformed, too long, too
large, too slow) get the same JSON error a resource would send, and their
connection closes. A request must arrive whole in time: its headers within
the site's ``header_timeout`` of its request line, its body within a further
``body_timeout``, so a client trickling bytes (slowloris) cannot hold a
connection that the idle timeout, reset by every byte, would leave open.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from twisted.copyright import version as twisted_version
from twisted.internet.interfaces import IHalfCloseableDescriptor
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import http

from ._errors import (
    APIError,
    MalformedRequestError,
    RequestHeadersTooLargeError,
    RequestReadTimeoutError,
    RequestURITooLongError,
    status_phrase,
)
from ._response import error_body

if TYPE_CHECKING:
    from ._site import ShijiSite

__all__ = ["ShijiChannel"]

# How long a refused client may keep sending before its connection is cut.
LINGER_SECONDS = 2.0


# Twisted refuses NUL, CR and LF in header values (RFC 9110, section 5.5)
# from 26.10 on; before, a CR or LF inside a value got through.
_LENIENT_HEADER_VALUES = tuple(map(int, twisted_version.split(".")[:2])) < (26, 10)


def _discard(*args: object) -> None:
    """Swallow what a refused client goes on sending."""


class ShijiChannel(http.HTTPChannel):
    """
    ``twisted.web``'s HTTP/1.1 channel, with JSON refusals and read
    deadlines.
    """

    site: ShijiSite
    refused = False
    #: The connection is gone: nothing more is read, written or timed.
    closed = False
    #: When a sweep first saw a partial request line (``time.monotonic()``).
    _partial_line_since: Optional[float] = None
    #: The transport's write buffer is full: the client is not reading.
    _transport_full = False
    #: A request answered while the transport was full, whose successor
    #: (pipelined) waits until the client reads.
    _held: Any = None

    @property
    def idle(self) -> bool:
        """No request is being read or answered."""
        return not self.requests and not self._buffer

    def read_overdue(self, now: float) -> None:
        """
        Refuse the request being read if it is slower than the site allows.

        The site calls this about once a second; nothing is timed per
        request. A request's clock starts with its request line (when
        :class:`~shiji._site.ShijiRequest` notes ``started``), or for a
        request line still incomplete, when a sweep first sees it.
        """
        if self.closed or self.refused or self._handlingRequest:
            self._partial_line_since = None
            return
        site = self.site
        if self.requests:
            self._partial_line_since = None
            request: Any = self.requests[-1]
            started: float = request.started
            limit = site.header_timeout
            if request.content is not None:
                # gotLength ran: the headers are in, the body is being read.
                limit += site.body_timeout
        elif self._buffer:
            if self._partial_line_since is None:
                self._partial_line_since = now
            started, limit = self._partial_line_since, site.header_timeout
        else:
            return
        if now - started > limit:
            self.refuse(RequestReadTimeoutError(None, f"{limit:g}"), started)

    # Back-pressure. The transport pauses its producer (this channel) while
    # its write buffer is full. Twisted's channel then only stops reading
    # when no request is being answered, and starts the next pipelined
    # request as soon as the previous one is answered: a client that sends
    # many requests and reads none would make the server answer them all
    # into memory. Here it stops reading at once, and the next request waits
    # until the client has read enough for the transport to resume.

    def pauseProducing(self) -> None:
        self._transport_full = True
        super().pauseProducing()
        transport: Any = self.transport
        if not self.closed and transport is not None:
            transport.pauseProducing()

    def resumeProducing(self) -> None:
        self._transport_full = False
        super().resumeProducing()
        held, self._held = self._held, None
        if held is not None and not self.closed:
            super().requestDone(held)

    def requestDone(self, request: Any) -> None:
        if self._transport_full and self.persistent and not self.closed:
            self._held = request
            # Nothing is read meanwhile, so nothing resets the idle timeout:
            # a client that reads nothing for that long is disconnected.
            self.setTimeout(self.site.timeOut)
            return
        super().requestDone(request)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.closed = True
        self._held = None
        try:
            super().connectionLost(reason)
        finally:
            self.site.channel_closed(self)

    if _LENIENT_HEADER_VALUES:

        def headerReceived(self, line: bytes) -> bool:
            if b"\r" in line or b"\n" in line:
                self._respondToBadRequestAndDisconnect()
                return False
            accepted: bool = super().headerReceived(line)
            return accepted

    # Twisted answers what it cannot parse here, with a bare 400.
    def _respondToBadRequestAndDisconnect(self) -> None:
        error: APIError
        if self._receivedHeaderSize > self.totalHeadersSize:
            if self._request_line() is None:
                error = RequestURITooLongError(None, str(self.totalHeadersSize))
            else:
                error = RequestHeadersTooLargeError(None)
        elif self._receivedHeaderCount > self.maxHeaders:
            error = RequestHeadersTooLargeError(None)
        else:
            error = MalformedRequestError(None)
        self.refuse(error)

    def lineLengthExceeded(self, line: bytes) -> None:
        # One line longer than MAX_LENGTH: the request line, or a header.
        if self._request_line() is None:
            self.refuse(RequestURITooLongError(None, str(self.MAX_LENGTH)))
        else:
            self.refuse(RequestHeadersTooLargeError(None))

    def _request_line(self) -> Optional[bytes]:
        # HTTPChannel keeps the parsed request line until the body is in.
        command = getattr(self, "_command", None)
        if command is None:
            return None
        path: bytes = getattr(self, "_path", b"")
        return b"%s %s" % (command, path)

    def refuse(self, error: APIError, started: Optional[float] = None) -> None:
        """
        Answer ``error`` without a resource, discard whatever the client
        sends after, and close the connection once the answer is out.

        :param started: when the refused request began, for the access log
            (by default, when its request line arrived).
        """
        if self.refused or self.closed or self.transport is None:
            return
        self.refused = True
        self.persistent = False
        for name in ("dataReceived", "rawDataReceived", "lineReceived"):
            setattr(self, name, _discard)
        request: Any = self.requests[-1] if self.requests else None
        if started is None and request is not None:
            started = request.started
        content_type, body = error_body(
            error, request.requestHeaders if request is not None else None
        )
        status = error.http_status
        site = self.site
        head = [
            b"HTTP/1.1 %d %s" % (status, status_phrase(status).encode("ascii")),
            b"Server: " + site.server_ident,
            b"Date: " + http.datetimeToString(),
            b"Content-Type: " + content_type,
            b"Content-Length: %d" % len(body),
            b"Vary: Accept",
            b"Connection: close",
        ]
        for name, value in error.headers.items():
            head.append(f"{name}: {value}".encode("latin-1"))
        transport: Any = self.transport
        transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        site.log_refusal(self, self._request_line(), status, len(body), started)
        # Half-close so the answer arrives before unread data makes the
        # client's side reset the connection; cut it if the client lingers.
        self.setTimeout(None)
        if IHalfCloseableDescriptor.providedBy(transport):
            transport.loseWriteConnection()
        else:
            transport.loseConnection()
        reactor: Any = site.reactor
        reactor.callLater(LINGER_SECONDS, transport.abortConnection)
