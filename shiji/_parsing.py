"""
Reading HTTP/1.1 requests off a connection, strictly (RFC 9110 and 9112).

:class:`RequestReader` frames requests (where each head ends, how long its
body is, chunked bodies and their trailers) and applies the rules that keep
a request from being read two ways by two servers: one ``Content-Length``,
never with ``Transfer-Encoding``; ``chunked`` as the only transfer coding;
CRLF line ends; one space between the parts of the request line; no
control bytes. What it cannot read it refuses with a :class:`ParseError`
naming the answer, at once: it never waits for more of something already
wrong.

The header section is parsed by a :class:`HeadParser`: llhttp (the parser
of Node.js, through httptools) where it is the faster, and a pure-Python
parser elsewhere (under PyPy, where the JIT makes it the faster and
httptools runs through an emulation layer). Both parse the same way and
pass the same tests; :func:`head_parser` picks one.
"""

from __future__ import annotations

import os
import platform
from typing import Callable, Dict, List, Optional, Tuple

__all__ = [
    "BODY_TOO_LARGE",
    "HEADERS_TOO_LARGE",
    "HEAD_PARSERS",
    "MALFORMED",
    "MAX_CHUNKS",
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "MAX_REQUEST_LINE",
    "URI_TOO_LONG",
    "HeadParser",
    "ParseError",
    "RequestHead",
    "RequestReader",
    "head_parser",
]

#: The longest request line read, in bytes (without its CRLF).
MAX_REQUEST_LINE = 16384
#: The most bytes of header lines read for one request (and of a chunked
#: body's size lines or trailers).
MAX_HEADER_BYTES = 16384
#: The most header lines read for one request.
MAX_HEADERS = 500
#: The most chunks one chunked body may come in: each costs a step of the
#: reader, so a body cut into one-byte chunks would cost far more to read
#: than its size says.
MAX_CHUNKS = 16384
# Hexadecimal digits of a chunk size: 16 say more than anyone may send.
_MAX_CHUNK_SIZE_DIGITS = 16

# Bytes of a body past which what has arrived is set aside as it comes.
_BODY_PIECE = 65536

#: :attr:`ParseError.kind` values: what to answer.
MALFORMED = "malformed"
URI_TOO_LONG = "uri_too_long"
HEADERS_TOO_LARGE = "headers_too_large"
BODY_TOO_LARGE = "body_too_large"

Headers = List[Tuple[bytes, bytes]]


class ParseError(Exception):
    """
    A request that cannot be read. ``kind`` is :data:`MALFORMED` (400),
    :data:`URI_TOO_LONG` (414), :data:`HEADERS_TOO_LARGE` (431) or
    :data:`BODY_TOO_LARGE` (413).
    """

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(kind, detail)
        self.kind = kind
        self.detail = detail


def _byte_set(characters: str) -> bytes:
    return bytes(sorted({ord(c) for c in characters}))


# RFC 9110 section 5.6.2: tchar.
_TOKEN = _byte_set(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
# RFC 9110 section 5.5: field-vchar, obs-text, SP and HTAB; no other control.
_FIELD_VALUE = bytes([0x09, *range(0x20, 0x7F), *range(0x80, 0x100)])
# A request target is visible ASCII: no space, control or non-ASCII byte.
_TARGET = bytes(range(0x21, 0x7F))
_HEX = b"0123456789abcdefABCDEF"
_DIGITS = b"0123456789"
_VERSIONS = (b"HTTP/1.1", b"HTTP/1.0")


def _is_token(data: bytes) -> bool:
    return bool(data) and not data.translate(None, _TOKEN)


class RequestHead:
    """
    A request's request line and header section, as read.

    :ivar method: the method, a token, as sent (``b"GET"``).
    :ivar target: the request target, as sent.
    :ivar version: ``b"HTTP/1.1"`` or ``b"HTTP/1.0"``.
    :ivar headers: ``(name, value)`` pairs in order, names in lower case,
        values without surrounding white space.
    :ivar content_length: the declared body length, or ``None``.
    :ivar chunked: the body is chunked.
    :ivar keep_alive: the connection may serve another request after this.
    :ivar expect_continue: the client waits for ``100 Continue``.
    """

    __slots__ = (
        "chunked",
        "content_length",
        "expect_continue",
        "headers",
        "keep_alive",
        "method",
        "target",
        "version",
    )

    def __init__(
        self, method: bytes, target: bytes, version: bytes, headers: Headers
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.content_length: Optional[int] = None
        self.chunked = False
        self.keep_alive = version == b"HTTP/1.1"
        self.expect_continue = False


# Header parsers: the header section (the lines between the request line
# and the empty line, joined by CRLF, without the last CRLF) to pairs.
HeadParser = Callable[[bytes], Headers]


def parse_headers_python(section: bytes) -> Headers:
    """
    The header lines of ``section`` as ``(name, value)`` pairs.

    :raises ParseError: a line that is not ``name ":" OWS value OWS`` with
        a token for a name (no white space before the colon) and a value
        free of control bytes, or an obsolete line folding.
    """
    headers: Headers = []
    if not section:
        return headers
    for line in section.split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if not colon or not name or name.translate(None, _TOKEN):
            raise ParseError(MALFORMED, "malformed header line")
        value = value.strip(b" \t")
        if value.translate(None, _FIELD_VALUE):
            raise ParseError(MALFORMED, "control byte in a header value")
        headers.append((name.lower(), value))
    return headers


def _httptools_parser() -> Optional[HeadParser]:
    try:
        import httptools
    except ImportError:
        return None

    class _Collector:
        __slots__ = ("headers",)

        def __init__(self) -> None:
            self.headers: Headers = []

        def on_header(self, name: bytes, value: bytes) -> None:
            # llhttp drops the white space before a value, not after it.
            self.headers.append((name.lower(), value.rstrip(b" \t")))

    parser_error = httptools.HttpParserError
    upgrade = httptools.HttpParserUpgrade
    request_parser = httptools.HttpRequestParser
    # llhttp reads the header section after a request line of its own:
    # Shiji reads the real one itself (llhttp knows only the methods it
    # lists, and accepts several spaces between the parts).
    prefix = b"GET / HTTP/1.1\r\n"

    def parse_headers_llhttp(section: bytes) -> Headers:
        collector = _Collector()
        parser = request_parser(collector)
        try:
            parser.feed_data(
                prefix + section + b"\r\n\r\n" if section else prefix + b"\r\n"
            )
        except upgrade:
            # "Connection: upgrade": the headers are read; Shiji upgrades
            # to nothing and answers the request as it is.
            pass
        except parser_error as error:
            raise ParseError(MALFORMED, str(error)) from None
        return collector.headers

    return parse_headers_llhttp


#: The header parsers available here, by name.
HEAD_PARSERS: Dict[str, HeadParser] = {"python": parse_headers_python}
_LLHTTP = _httptools_parser()
if _LLHTTP is not None:
    HEAD_PARSERS["llhttp"] = _LLHTTP


def head_parser(name: Optional[str] = None) -> Tuple[str, HeadParser]:
    """
    The header parser named ``name`` (``"llhttp"`` or ``"python"``), or by
    default the faster one here: llhttp on CPython, the pure-Python parser
    on PyPy (``SHIJI_HTTP_PARSER`` in the environment overrides).

    :raises ValueError: no such parser here.
    """
    if name is None:
        name = os.environ.get("SHIJI_HTTP_PARSER") or (
            "llhttp"
            if platform.python_implementation() == "CPython" and _LLHTTP is not None
            else "python"
        )
    try:
        return name, HEAD_PARSERS[name]
    except KeyError:
        raise ValueError(
            f"no HTTP parser {name!r} here (available: {', '.join(HEAD_PARSERS)})"
        ) from None


def _request_line(line: bytes) -> Tuple[bytes, bytes, bytes]:
    method, space, rest = line.partition(b" ")
    target, space2, version = rest.partition(b" ")
    if (
        not (space and space2)
        or version not in _VERSIONS
        or not _is_token(method)
        or not target
        or target.translate(None, _TARGET)
    ):
        raise ParseError(MALFORMED, "malformed request line")
    return method, target, version


def _stray_line_end(data: bytes) -> bool:
    """Whether ``data``, lines joined without their CRLFs, holds a CR or LF."""
    return b"\n" in data or b"\r" in data


def _framing(head: RequestHead) -> None:
    """Read the body's framing and the connection's fate off the headers."""
    lengths = 0
    encodings = 0
    for name, value in head.headers:
        if name == b"content-length":
            lengths += 1
            if not value or value.translate(None, _DIGITS):
                raise ParseError(MALFORMED, "malformed Content-Length")
            # More digits than a 64-bit length has room for is no length.
            if len(value) > 18:
                raise ParseError(MALFORMED, "Content-Length overflow")
            head.content_length = int(value)
        elif name == b"transfer-encoding":
            encodings += 1
            if value.lower() != b"chunked":
                raise ParseError(MALFORMED, "a transfer coding other than chunked")
            head.chunked = True
        elif name == b"connection":
            tokens = [t.strip().lower() for t in value.split(b",")]
            if b"close" in tokens:
                head.keep_alive = False
        elif name == b"expect":
            head.expect_continue = value.lower() == b"100-continue"
    if lengths > 1 or encodings > 1 or (lengths and encodings):
        raise ParseError(MALFORMED, "ambiguous body length")
    if encodings and head.version != b"HTTP/1.1":
        raise ParseError(MALFORMED, "Transfer-Encoding in HTTP/1.0")
    if head.version != b"HTTP/1.1":
        # HTTP/1.0 connections close after one answer.
        head.keep_alive = False
        head.expect_continue = False


# The reader's states.
_HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _DONE = range(7)


class RequestReader:
    """
    Frames the requests of one connection.

    :param parse_headers: the :class:`HeadParser` to use.
    :param max_body: the largest body accepted, in bytes; a larger one is
        refused (:data:`BODY_TOO_LARGE`) as soon as its declared length, or
        its chunks so far, say so.

    :meth:`feed` takes bytes as they arrive; :meth:`next_head` and
    :meth:`read_body` take what is complete.
    """

    __slots__ = (
        "_body",
        "_body_size",
        "_buffer",
        "_chunks",
        "_max_body",
        "_parse_headers",
        "_remaining",
        "_state",
    )

    def __init__(self, parse_headers: HeadParser, max_body: int) -> None:
        self._parse_headers = parse_headers
        self._max_body = max_body
        self._buffer = b""
        self._state = _HEAD
        self._remaining = 0
        # A chunked body as it arrives, and how many chunks it came in.
        self._body: Optional[bytearray] = None
        self._body_size = 0
        self._chunks = 0

    @property
    def buffered(self) -> int:
        """Bytes received and not yet read."""
        return len(self._buffer)

    @property
    def reading(self) -> bool:
        """Part of a request has arrived (the rest is awaited)."""
        return self._state != _HEAD or bool(self._buffer)

    def request_line(self) -> Optional[Tuple[bytes, bytes]]:
        """
        The method and target of the request being read, as far as what has
        arrived of its first line tells, however malformed: for the log of
        a refusal. ``None`` if nothing has.
        """
        buffer = self._buffer.lstrip(b"\r\n")
        end = buffer.find(b"\n")
        line = (buffer if end < 0 else buffer[:end]).rstrip(b"\r")[:MAX_REQUEST_LINE]
        if not line:
            return None
        method, _, rest = line.partition(b" ")
        target, space, _ = rest.rpartition(b" ")
        return method, target if space else rest

    def header(self, name: bytes) -> Optional[bytes]:
        """
        The value of header ``name`` (lower case) of the request being read,
        if its line has arrived and reads as one, however malformed the rest:
        for the form of a refusal (``Accept``).
        """
        for line in self._buffer[: MAX_REQUEST_LINE + MAX_HEADER_BYTES].split(b"\r\n")[
            1:
        ]:
            key, colon, value = line.partition(b":")
            if colon and key.lower() == name:
                return value.strip()
            if not line:
                break
        return None

    def feed(self, data: bytes) -> None:
        """Take bytes received."""
        self._buffer = self._buffer + data if self._buffer else data

    def next_head(self) -> Optional[RequestHead]:
        """
        The head of the next request, once all of it has arrived; ``None``
        until then.

        :raises ParseError: it cannot be read, or is too long.
        """
        buffer = self._buffer
        if not buffer:
            return None
        # Empty lines before a request line are ignored (RFC 9112 section
        # 2.2): some clients end a body with one.
        if buffer.startswith(b"\r\n"):
            empty = 2
            while buffer.startswith(b"\r\n", empty):
                empty += 2
            buffer = self._buffer = buffer[empty:]
            if not buffer:
                return None
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            self._check_partial_head(buffer)
            return None
        line_end = buffer.find(b"\r\n")
        line = buffer[:line_end]
        if len(line) > MAX_REQUEST_LINE:
            raise ParseError(URI_TOO_LONG)
        section = buffer[line_end + 2 : end]
        if len(section) > MAX_HEADER_BYTES:
            raise ParseError(HEADERS_TOO_LARGE)
        # A CR or LF left inside the request line fails its checks, and
        # inside the section the header parser's checks of names and values.
        method, target, version = _request_line(line)
        headers = self._parse_headers(section)
        if len(headers) > MAX_HEADERS:
            raise ParseError(HEADERS_TOO_LARGE)
        head = RequestHead(method, target, version, headers)
        _framing(head)
        self._buffer = buffer[end + 4 :]
        if head.chunked:
            self._state = _CHUNK_SIZE
            self._body = bytearray()
            self._body_size = 0
            self._chunks = 0
        else:
            length = head.content_length or 0
            if length > self._max_body:
                raise ParseError(BODY_TOO_LARGE)
            self._state = _BODY
            self._remaining = length
        return head

    def _check_partial_head(self, buffer: bytes) -> None:
        """Refuse a head still arriving as soon as it is known to be bad."""
        # Every LF must end a CRLF, and every CR start one (a CR may be the
        # last byte so far).
        lone = buffer.count(b"\n") - buffer.count(b"\r\n")
        if lone or buffer.count(b"\r") - buffer.count(b"\r\n") > buffer.endswith(b"\r"):
            raise ParseError(MALFORMED, "a line end other than CRLF")
        line_end = buffer.find(b"\r\n")
        if line_end < 0:
            if len(buffer) > MAX_REQUEST_LINE:
                raise ParseError(URI_TOO_LONG)
            # A request line cannot begin with white space or a control.
            if buffer and buffer[:1].translate(None, _TOKEN):
                raise ParseError(MALFORMED, "malformed request line")
        elif line_end > MAX_REQUEST_LINE:
            raise ParseError(URI_TOO_LONG)
        elif len(buffer) - line_end - 2 > MAX_HEADER_BYTES:
            raise ParseError(HEADERS_TOO_LARGE)

    def read_body(self) -> Optional[bytes]:
        """
        The body of the request whose head :meth:`next_head` gave, once all
        of it has arrived; ``None`` until then. The reader then looks for
        the next request.

        :raises ParseError: a malformed chunk, or too large a body.
        """
        state = self._state
        if state == _BODY:
            remaining = self._remaining
            buffer = self._buffer
            if len(buffer) < remaining:
                if len(buffer) > _BODY_PIECE:
                    # A large body is gathered as it arrives, rather than
                    # copied again with every read.
                    if self._body is None:
                        self._body = bytearray()
                    self._body += buffer
                    self._remaining -= len(buffer)
                    self._buffer = b""
                return None
            self._buffer = buffer[remaining:]
            self._state = _HEAD
            if self._body is None:
                return buffer[:remaining]
            self._body += memoryview(buffer)[:remaining]
            body = bytes(self._body)
            self._body = None
            return body
        # Chunks are read at a position in the buffer, which is cut once,
        # at the end: cutting it at every chunk would copy its rest as many
        # times as there are chunks.
        buffer = self._buffer
        position = 0
        while state != _DONE:
            if state == _CHUNK_SIZE:
                step = self._chunk_size(buffer, position)
            elif state == _CHUNK_DATA:
                step = self._chunk_data(buffer, position)
            elif state == _CHUNK_END:
                step = self._chunk_end(buffer, position)
            else:
                step = self._trailers(buffer, position)
            if step is None:
                break
            state, position = step
        self._buffer = buffer[position:] if position else buffer
        if state != _DONE:
            self._state = state
            return None
        body = bytes(self._body or b"")
        self._body = None
        self._state = _HEAD
        return body

    # Chunked bodies (RFC 9112 section 7.1): each step reads ``buffer`` at
    # ``position`` and returns the next state and position, or None to wait
    # for more bytes.

    def _chunk_size(self, buffer: bytes, position: int) -> Optional[Tuple[int, int]]:
        end = buffer.find(b"\r\n", position)
        if end < 0:
            waiting = buffer[position:]
            if len(waiting) > MAX_HEADER_BYTES or _stray_line_end(
                waiting.rstrip(b"\r")
            ):
                raise ParseError(MALFORMED, "malformed chunk size")
            return None
        if end - position > MAX_HEADER_BYTES:
            raise ParseError(MALFORMED, "chunk extensions too long")
        line = buffer[position:end]
        size, semicolon, extension = line.partition(b";")
        if semicolon:
            size = size.rstrip(b" \t")
            if extension.translate(None, _FIELD_VALUE):
                raise ParseError(MALFORMED, "malformed chunk extension")
        if not size or len(size) > _MAX_CHUNK_SIZE_DIGITS or size.translate(None, _HEX):
            raise ParseError(MALFORMED, "malformed chunk size")
        length = int(size, 16)
        if length == 0:
            return _TRAILERS, end + 2
        self._body_size += length
        if self._body_size > self._max_body:
            raise ParseError(BODY_TOO_LARGE)
        self._chunks += 1
        if self._chunks > MAX_CHUNKS:
            raise ParseError(MALFORMED, "too many chunks")
        self._remaining = length
        return _CHUNK_DATA, end + 2

    def _chunk_data(self, buffer: bytes, position: int) -> Optional[Tuple[int, int]]:
        available = len(buffer) - position
        if not available:
            return None
        taken = min(available, self._remaining)
        # A chunk is taken as it arrives, so that a large one is not
        # copied again with every read.
        assert self._body is not None
        self._body += memoryview(buffer)[position : position + taken]
        self._remaining -= taken
        if self._remaining:
            return _CHUNK_DATA, position + taken
        return _CHUNK_END, position + taken

    def _chunk_end(self, buffer: bytes, position: int) -> Optional[Tuple[int, int]]:
        ending = buffer[position : position + 2]
        if len(ending) < 2:
            if ending and ending != b"\r":
                raise ParseError(MALFORMED, "chunk data longer than its size")
            return None
        if ending != b"\r\n":
            raise ParseError(MALFORMED, "chunk data longer than its size")
        return _CHUNK_SIZE, position + 2

    def _trailers(self, buffer: bytes, position: int) -> Optional[Tuple[int, int]]:
        if buffer.startswith(b"\r\n", position):
            return _DONE, position + 2
        end = buffer.find(b"\r\n\r\n", position)
        if end < 0:
            waiting = buffer[position:]
            if len(waiting) > MAX_HEADER_BYTES or waiting.count(b"\n") != waiting.count(
                b"\r\n"
            ):
                raise ParseError(MALFORMED, "malformed or too long trailers")
            return None
        if end - position > MAX_HEADER_BYTES:
            raise ParseError(MALFORMED, "trailers too long")
        # Trailers are read, checked (a stray CR or LF fails the header
        # parser's checks) and dropped: nothing in Shiji uses them.
        self._parse_headers(buffer[position:end])
        return _DONE, end + 4
