"""
The access log: a line for every answer, refusals included, with nothing a
client sent able to forge a line or a field, and no secret written down.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Optional, Sequence, Tuple
from urllib.parse import unquote_plus

from twisted.logger import Logger

__all__ = ["LOST_STATUS", "AccessLog", "loggable"]

#: The status logged for a request whose connection closed before its answer
#: was complete: nginx's "client closed request", never sent.
LOST_STATUS = 499

access_log = Logger(namespace="shiji.access")
log = Logger(namespace="shiji.site")

# Bytes a log line must not carry raw: controls (a forged line or terminal
# escape), quotes (a forged field) and backslashes (a forged escape).
_UNSAFE_BYTES = bytes(range(0x20)) + b'"\\' + bytes(range(0x7F, 0x100))
_UNSAFE = re.compile(b"[" + re.escape(_UNSAFE_BYTES) + b"]")
# The user information of an absolute-form target (scheme://user:password@).
_USERINFO = re.compile(rb"^(\s*[A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def loggable(raw: bytes) -> str:
    """``raw`` as log text, unsafe bytes written as ``\\xNN``."""
    if len(raw.translate(None, _UNSAFE_BYTES)) == len(raw):
        return raw.decode("ascii")
    return _UNSAFE.sub(lambda found: b"\\x%02x" % found.group()[0], raw).decode("ascii")


def _log_access_line(line: str) -> None:
    access_log.info("{line}", line=line)


class AccessLog:
    """
    Logs answers.

    :param enabled: write access lines at all.
    :param redacted_words: query arguments whose names hold one of these
        (in any case) are logged with ``***`` for their values.
    :param slow_request_ms: warn about answers slower than this.
    """

    def __init__(
        self,
        enabled: bool,
        redacted_words: Sequence[str],
        slow_request_ms: int,
    ) -> None:
        self.enabled = enabled
        self.redacted = tuple(word.lower() for word in redacted_words)
        # For a query with nothing percent-encoded: each field whose name
        # holds a redacted word, as the name and the "=" before the value.
        self.slow_request_ms = slow_request_ms
        #: Where access lines go; shijid points it at its log's
        #: :meth:`~shiji._logging.TextLog.access`.
        self.sink: Callable[[str], None] = _log_access_line

    def answered(
        self, request: Any, duration_ms: float, status: Optional[int] = None
    ) -> None:
        """
        Log ``request``, now answered (with its status, unless ``status``
        says otherwise: :data:`LOST_STATUS` for a request whose connection
        closed first).
        """
        if status is None:
            status = request.code
        if self.enabled:
            request_id = request.request_id
            # A method is a token, the API's name and the call's come from
            # the code, and the client address is an IP address: only the
            # path and the version come from the client.
            version = request.api_version
            self.sink(
                f'{request.client_ip} "{request.method.decode("ascii")} '
                f'{self.redact(request.uri)}" {status} {request.sentLength} '
                f"{duration_ms:.1f}ms api={request.api_name or '-'} "
                f"version={loggable(version.encode('utf-8')) if version else '-'} "
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

    def refused(
        self,
        peer: str,
        request_line: Optional[Tuple[bytes, bytes]],
        status: int,
        sent: int,
        duration_ms: float,
    ) -> None:
        """Log a request refused before it reached a call."""
        if self.enabled:
            if request_line is None:
                shown = "-"
            else:
                method, uri = request_line
                shown = f"{loggable(method)} {self.redact(uri)}"
            self.sink(
                f'{peer} "{shown}" {status} {sent} {duration_ms:.1f}ms '
                "api=- version=- call=-"
            )

    def redact(self, uri: bytes) -> str:
        """
        ``uri`` as log text: without the user name and password of an
        absolute URI, and with ``***`` for the values of query arguments
        whose names hold one of the redacted words.
        """
        if uri[:1] != b"/":
            uri = _USERINFO.sub(rb"\1", uri)
        text = loggable(uri)
        path, mark, query = text.partition("?")
        if not mark or not self.redacted:
            return text
        # Names are matched as the handler would read them: decoded.
        encoded = "%" in query or "+" in query
        fields = query.split("&")
        redacted = False
        for index, field in enumerate(fields):
            name, equals, _ = field.partition("=")
            if not equals:
                continue
            lowered = (unquote_plus(name) if encoded else name).lower()
            for word in self.redacted:
                if word in lowered:
                    fields[index] = name + "=***"
                    redacted = True
                    break
        return path + "?" + "&".join(fields) if redacted else text
