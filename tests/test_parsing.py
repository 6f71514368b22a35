"""
Reading requests off the wire: framing, limits and the strict rules against
request smuggling, for each header parser (llhttp and pure Python).
"""

import pytest

from shiji import _parsing
from shiji._parsing import (
    BODY_TOO_LARGE,
    HEADERS_TOO_LARGE,
    MALFORMED,
    MAX_CHUNKS,
    URI_TOO_LONG,
    ParseError,
    RequestReader,
)

PARSERS = sorted(_parsing.HEAD_PARSERS)
MAX_BODY = 1000


@pytest.fixture(params=PARSERS)
def parser(request):
    return _parsing.HEAD_PARSERS[request.param]


def read_all(parser, data, pieces=1, max_body=MAX_BODY):
    """Every request in ``data``, fed in ``pieces`` parts: (head, body) pairs."""
    reader = RequestReader(parser, max_body)
    found = []
    size = max(1, -(-len(data) // pieces))
    head = None
    for start in range(0, len(data), size):
        reader.feed(data[start : start + size])
        while True:
            if head is None:
                head = reader.next_head()
                if head is None:
                    break
            body = reader.read_body()
            if body is None:
                break
            found.append((head, body))
            head = None
    return found, reader


def refused(parser, data, kind=MALFORMED, max_body=MAX_BODY):
    with pytest.raises(ParseError) as info:
        read_all(parser, data, max_body=max_body)
    assert info.value.kind == kind, info.value
    return info.value


GET = (
    b"GET /api/call?x=1 HTTP/1.1\r\nHost: example\r\nX-API-Version: a-1.0+prod\r\n\r\n"
)


@pytest.mark.parametrize("pieces", [1, 3, 1000])
def test_a_request_is_read_whole_however_it_arrives(parser, pieces):
    post = (
        b"POST /api/call HTTP/1.1\r\nHost: example\r\n"
        b'Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{"a":1}'
    )
    chunked = (
        b"PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;name=value\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    found, reader = read_all(parser, GET + post + chunked + GET, pieces)
    assert [(h.method, h.target, body) for h, body in found] == [
        (b"GET", b"/api/call?x=1", b""),
        (b"POST", b"/api/call", b'{"a":1}'),
        (b"PUT", b"/c", b"abcde"),
        (b"GET", b"/api/call?x=1", b""),
    ]
    first = found[0][0]
    assert first.version == b"HTTP/1.1"
    assert first.headers == [(b"host", b"example"), (b"x-api-version", b"a-1.0+prod")]
    assert (first.keep_alive, first.content_length, first.chunked) == (
        True,
        None,
        False,
    )
    assert found[1][0].content_length == 7
    assert found[2][0].chunked
    assert not reader.reading


def test_header_values_lose_surrounding_white_space_only(parser):
    [(head, _)], _ = read_all(
        parser,
        b"GET / HTTP/1.1\r\nHost: h\r\nX-A: \t a  b \t\r\nX-B:c\r\nX-Empty:\r\n\r\n",
    )
    assert head.headers[1:] == [(b"x-a", b"a  b"), (b"x-b", b"c"), (b"x-empty", b"")]


def test_http_1_0_and_connection_close_end_the_connection(parser):
    [(head, _)], _ = read_all(parser, b"GET / HTTP/1.0\r\n\r\n")
    assert (head.version, head.keep_alive) == (b"HTTP/1.0", False)
    [(head, _)], _ = read_all(
        parser, b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Close\r\n\r\n"
    )
    assert not head.keep_alive


def test_expect_100_continue(parser):
    reader = RequestReader(parser, MAX_BODY)
    reader.feed(
        b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n"
    )
    head = reader.next_head()
    assert head.expect_continue
    assert reader.read_body() is None
    assert reader.reading
    reader.feed(b"abc")
    assert reader.read_body() == b"abc"


def test_empty_lines_before_a_request_are_ignored(parser):
    found, _ = read_all(parser, b"\r\n\r\n" + GET)
    assert len(found) == 1


SMUGGLING = {
    "Content-Length with Transfer-Encoding": (
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "Transfer-Encoding then Content-Length": (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 3\r\n\r\n0\r\n\r\n"
    ),
    "two different Content-Lengths": (
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
    ),
    "two equal Content-Lengths": (
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"
    ),
    "a Content-Length list": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 1\r\n\r\na",
    "a signed Content-Length": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\na",
    "a negative Content-Length": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
    "an empty Content-Length": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n",
    "a transfer coding other than chunked": (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\nabc"
    ),
    "chunked not last": (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"
    ),
    "gzip then chunked": (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
    ),
    "two Transfer-Encodings": (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "Transfer-Encoding in HTTP/1.0": (
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "NUL in a value": b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x00b\r\n\r\n",
    "a control byte in a value": b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01b\r\n\r\n",
    "DEL in a value": b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7fb\r\n\r\n",
    "CR in a value": b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n",
    "LF in a value": b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\nb\r\n\r\n",
    "a control byte in a name": b"GET / HTTP/1.1\r\nHost: h\r\nX\x01A: b\r\n\r\n",
    "NUL in a name": b"GET / HTTP/1.1\r\nHost: h\r\nX\x00A: b\r\n\r\n",
    "white space before the colon": b"GET / HTTP/1.1\r\nHost: h\r\nX-A : b\r\n\r\n",
    "white space in a name": b"GET / HTTP/1.1\r\nHost: h\r\nX A: b\r\n\r\n",
    "an empty name": b"GET / HTTP/1.1\r\nHost: h\r\n: b\r\n\r\n",
    "a line with no colon": b"GET / HTTP/1.1\r\nHost: h\r\nX-A\r\n\r\n",
    "obsolete line folding": b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n",
    "a request line with two spaces": b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
    "two spaces before the version": b"GET /  HTTP/1.1\r\nHost: h\r\n\r\n",
    "a space after the version": b"GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
    "a tab for a space": b"GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n",
    "white space before the method": b" GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    "a method that is not a token": b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
    "a raw space in the target": b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
    "NUL in the target": b"GET /a\x00b HTTP/1.1\r\nHost: h\r\n\r\n",
    "a control byte in the target": b"GET /\x1b[31m HTTP/1.1\r\nHost: h\r\n\r\n",
    "a non-ASCII byte in the target": b"GET /\xff HTTP/1.1\r\nHost: h\r\n\r\n",
    "HTTP/0.9": b"GET /\r\n\r\n",
    "HTTP/1.2": b"GET / HTTP/1.2\r\nHost: h\r\n\r\n",
    "the HTTP/2 preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "a lower-case version": b"GET / http/1.1\r\nHost: h\r\n\r\n",
    "bare LF line ends": b"GET / HTTP/1.1\nHost: h\n\n",
    "a bare LF among CRLFs": b"GET / HTTP/1.1\r\nHost: h\nX-A: b\r\n\r\n",
    "a bare CR": b"GET / HTTP/1.1\rHost: h\r\n\r\n",
    "a CR before a header line's CRLF": b"GET / HTTP/1.1\r\nHost: h\r\r\n\r\n",
    "a LF before a header line's CRLF": b"GET / HTTP/1.1\r\nHost: h\n\r\n\r\n",
    "a bare LF between headers": b"GET / HTTP/1.1\r\nHost: h\nX-A: b\r\n\r\n",
    "a bare CR between headers": b"GET / HTTP/1.1\r\nHost: h\rX-A: b\r\n\r\n",
    "a non-hex chunk size": (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n"
    ),
    "an over-long chunk size": (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"0" * 16
        + b"1\r\na\r\n0\r\n\r\n"
    ),
    "an empty chunk size": (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\r\na\r\n0\r\n\r\n"
    ),
    "a space after a chunk size": (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\na\r\n0\r\n\r\n"
    ),
    "a signed chunk size": (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n+1\r\na\r\n0\r\n\r\n"
    ),
    "chunk data longer than its size": (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n"
    ),
    "a bare LF after chunk data": (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\n0\r\n\r\n"
    ),
    "a control byte in a chunk extension": (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"1;a=\x00\r\na\r\n0\r\n\r\n"
    ),
    "chunk extensions over the header limit": (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;"
        + b"a" * 17000
        + b"\r\na\r\n0\r\n\r\n"
    ),
    "trailers over the header limit": (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
        + b"".join(b"X-T%d: %s\r\n" % (i, b"t" * 100) for i in range(200))
        + b"\r\n"
    ),
    "a malformed trailer": (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\nX-T : t\r\n\r\n"
    ),
}


@pytest.mark.parametrize("case", list(SMUGGLING))
def test_framing_and_smuggling_tricks_are_refused(parser, case):
    refused(parser, SMUGGLING[case])


@pytest.mark.parametrize("case", list(SMUGGLING))
def test_a_bad_request_after_good_ones_is_refused_after_them(parser, case):
    reader = RequestReader(parser, MAX_BODY)
    reader.feed(GET + GET + SMUGGLING[case])
    for _ in range(2):
        assert reader.next_head().method == b"GET"
        assert reader.read_body() == b""
    with pytest.raises(ParseError):
        head = reader.next_head()
        assert head is not None
        reader.read_body()


@pytest.mark.parametrize(
    "partial",
    [
        b"GET / HTTP/1.1\nHost",
        b"GET / HTTP/1.1\r\nHost: h\n",
        b"GET / HTTP/1.1\rHo",
        b" ",
        b"\x00",
        b"\x16\x03\x01\x02\x00",  # a TLS handshake sent to plain HTTP
    ],
)
def test_a_bad_head_is_refused_before_it_ends(parser, partial):
    reader = RequestReader(parser, MAX_BODY)
    reader.feed(partial)
    with pytest.raises(ParseError) as info:
        reader.next_head()
    assert info.value.kind == MALFORMED


def test_limits(parser):
    refused(parser, b"GET /" + b"a" * 16400 + b" HTTP/1.1\r\n\r\n", URI_TOO_LONG)
    line = b"GET / HTTP/1.1\r\nHost: h\r\n"
    refused(parser, line + b"X-A: " + b"a" * 16400 + b"\r\n\r\n", HEADERS_TOO_LARGE)
    many = b"".join(b"X-%d: %s\r\n" % (i, b"a" * 60) for i in range(300))
    refused(parser, line + many + b"\r\n", HEADERS_TOO_LARGE)
    count = b"".join(b"X-%d: a\r\n" % i for i in range(600))
    refused(parser, line + count + b"\r\n", HEADERS_TOO_LARGE)
    refused(
        parser,
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n",
        BODY_TOO_LARGE,
    )
    refused(
        parser,
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: " + b"9" * 18 + b"\r\n\r\n",
        BODY_TOO_LARGE,
    )
    # Too many digits for a 64-bit length: not a length at all.
    for digits in (19, 40):
        refused(
            parser,
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: "
            + b"9" * digits
            + b"\r\n\r\n",
        )
    chunks = b"".join(b"64\r\n" + b"a" * 100 + b"\r\n" for _ in range(11))
    refused(
        parser,
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks,
        BODY_TOO_LARGE,
    )
    # Just within every limit.
    found, _ = read_all(
        parser,
        b"POST /"
        + b"a" * 16000
        + b" HTTP/1.1\r\nHost: h\r\n"
        + b"".join(b"X-%d: a\r\n" % i for i in range(498))
        + b"Content-Length: 1000\r\n\r\n"
        + b"b" * 1000,
    )
    assert len(found) == 1


@pytest.mark.parametrize("pieces", [1, 7, 400])
def test_a_body_may_come_in_as_many_chunks_as_max_chunks(parser, pieces):
    chunked = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    wire = chunked + b"1\r\nx\r\n" * MAX_CHUNKS + b"0\r\n\r\n"
    found, _ = read_all(parser, wire, pieces, max_body=10 * MAX_CHUNKS)
    [(_, body)] = found
    assert body == b"x" * MAX_CHUNKS
    too_many = chunked + b"1\r\nx\r\n" * (MAX_CHUNKS + 1)
    error = refused(parser, too_many, max_body=10 * MAX_CHUNKS)
    assert error.detail == "too many chunks"


@pytest.mark.parametrize("pieces", [1, 3, 97])
def test_a_large_body_is_read_whole_however_it_arrives(parser, pieces):
    body = bytes(range(256)) * 1200
    wire = (
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body
        + GET
    )
    found, _ = read_all(parser, wire, pieces, max_body=len(body))
    assert [b for _, b in found] == [body, b""]


def test_many_empty_lines_before_a_request_are_read_past(parser):
    found, _ = read_all(parser, b"\r\n" * 100_000 + GET, pieces=7)
    assert [head.target for head, _ in found] == [b"/api/call?x=1"]


def test_a_request_line_too_long_is_refused_before_it_ends(parser):
    reader = RequestReader(parser, MAX_BODY)
    reader.feed(b"GET /" + b"a" * 16400)
    with pytest.raises(ParseError) as info:
        reader.next_head()
    assert info.value.kind == URI_TOO_LONG
    reader = RequestReader(parser, MAX_BODY)
    reader.feed(b"GET / HTTP/1.1\r\nX-A: " + b"a" * 16400)
    with pytest.raises(ParseError) as info:
        reader.next_head()
    assert info.value.kind == HEADERS_TOO_LARGE


def test_a_connection_upgrade_request_is_read_as_any_other(parser):
    [(head, _)], _ = read_all(
        parser,
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    assert (b"upgrade", b"websocket") in head.headers


def test_the_default_parser():
    import platform

    name, _ = _parsing.head_parser()
    expected = "llhttp" if platform.python_implementation() == "CPython" else "python"
    assert name == expected
    assert _parsing.head_parser("python")[0] == "python"
    with pytest.raises(ValueError, match="no HTTP parser 'h2o' here"):
        _parsing.head_parser("h2o")


# Pieces header sections are built from: the tricky bytes of RFC 9112
# among plain ones.
_PIECES = [
    b"Host",
    b"X-A",
    b"x-b",
    b":",
    b": ",
    b" ",
    b"\t",
    b"\r\n",
    b"\r",
    b"\n",
    b"\x00",
    b"\x01",
    b"\x7f",
    b"\xff",
    b"value",
    b"(",
    b"@",
    b",",
    b";",
    b'"',
    b"=",
]


def _random_section(rng):
    lines = []
    for _ in range(rng.randint(1, 4)):
        if rng.random() < 0.7:
            name = rng.choice([b"Host", b"X-A", b"Content-Type", b"x_b"])
            value = b"".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 4)))
            lines.append(name + rng.choice([b": ", b":", b":\t", b" : "]) + value)
        else:
            lines.append(
                b"".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 6)))
            )
    section = b"\r\n".join(lines)
    # The reader ends a section at its first empty line: none holds one.
    while (
        b"\r\n\r\n" in section
        or section.startswith(b"\r\n")
        or section.endswith(b"\r\n")
    ):
        section = section.replace(b"\r\n\r\n", b"\r\n").strip(b"\r\n")
    return section


@pytest.mark.skipif(len(PARSERS) < 2, reason="llhttp (httptools) runs on CPython")
def test_both_parsers_read_every_header_section_alike():
    # A differential test: whatever the section, the two parsers refuse it
    # together or read the same headers from it.
    import random

    rng = random.Random(9112)
    llhttp, python = (_parsing.HEAD_PARSERS[name] for name in ("llhttp", "python"))
    disagreements = []
    for _ in range(20_000):
        section = _random_section(rng)
        answers = []
        for parse in (llhttp, python):
            try:
                answers.append(parse(section))
            except ParseError:
                answers.append("refused")
        if answers[0] != answers[1]:
            disagreements.append((section, *answers))
    assert disagreements == []
