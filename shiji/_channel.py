"""
HTTP/1.1 connections of a :class:`~shiji._site.ShijiSite`.

Requests refused before they reach a resource (malformed, too long, too
large, too slow) get the same JSON error a resource would send, and their
connection closes. A request must arrive whole in time: its headers within
the site's ``header_timeout`` of its first byte, its body within
``body_timeout`` of its headers, so a client trickling bytes (slowloris)
cannot hold a connection that the idle timeout, reset by every byte, would
leave open.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Optional

from twisted.internet.interfaces import IHalfCloseableDescriptor
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


def _discard(*args: object) -> None:
    """Swallow what a refused client goes on sending."""


class ShijiChannel(http.HTTPChannel):
    """
    ``twisted.web``'s HTTP/1.1 channel, with JSON refusals and read
    deadlines.
    """

    site: ShijiSite
    #: When the request being read began to arrive (``time.monotonic()``);
    #: ``None`` while no request is being read.
    reading_since: Optional[float] = None
    #: The headers are in; the body is being read.
    reading_body = False
    refused = False

    def dataReceived(self, data: bytes) -> None:
        if self.reading_since is None and not self._handlingRequest:
            self.reading_since = time.monotonic()
            self.reading_body = False
        super().dataReceived(data)

    def allHeadersReceived(self) -> None:
        self.reading_body = True
        self.reading_since = time.monotonic()
        super().allHeadersReceived()

    def allContentReceived(self) -> None:
        self.reading_since = None
        super().allContentReceived()

    def read_overdue(self, now: float) -> None:
        """
        Refuse the request being read if it is slower than the site allows
        (called by the site about once a second).
        """
        if self.reading_since is None or self.refused:
            return
        site = self.site
        limit = site.body_timeout if self.reading_body else site.header_timeout
        if now - self.reading_since > limit:
            self.refuse(RequestReadTimeoutError(None, f"{limit:g}"))

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

    def refuse(self, error: APIError) -> None:
        """
        Answer ``error`` without a resource, discard whatever the client
        sends after, and close the connection once the answer is out.
        """
        if self.refused or self.transport is None:
            return
        self.refused = True
        started = self.reading_since
        self.reading_since = None
        self.persistent = False
        for name in ("dataReceived", "rawDataReceived", "lineReceived"):
            setattr(self, name, _discard)
        request = self.requests[-1] if self.requests else None
        accept = None
        if request is not None:
            accept = request.requestHeaders.getRawHeaders(b"accept", [None])[-1]
        content_type, body = error_body(error, accept)
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
