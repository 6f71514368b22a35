"""
What a hostile or broken client gets from a live shijid: every answer is the
JSON envelope (or problem details), never a traceback, a file path or a
library version, and nothing it sends gets the server stuck or its log forged.
Each row here is a row of the README's Hardening table.
"""

import json
import re
import socket
import time

import pytest
from daemons import ROOT, Daemon

pytestmark = pytest.mark.slow

SERVER = "Hardened Probe"
VERSION = b"X-API-Version: probe_api-1.0+prod\r\n"
MAX_BODY = 16384


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    home = tmp_path_factory.mktemp("hardening")
    running = Daemon(
        home,
        {
            "general": {
                "server_ident": SERVER,
                "max_body_bytes": str(MAX_BODY),
                "header_timeout": "1",
                "body_timeout": "1",
                "idle_timeout": "4",
            }
        },
    ).start()
    yield running
    try:
        assert running.stop() == 0
    finally:
        running.kill()
    log = running.log_text()
    # The one traceback logged is the crash's, under its request id.
    assert log.count("Traceback") == log.count(
        "Unexpected error answering GET /probe/crash"
    )
    assert "Unhandled" not in log, log


class Answer:
    """One response read off a socket, and whether the server then closed."""

    def __init__(self, status, reason, headers, body, closed):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.closed = closed

    @property
    def json(self):
        return json.loads(self.body)

    @property
    def error_class(self):
        return self.json["error"]["exception_class"]


def read_answer(sock, buffer=b""):
    """Read one response from ``sock``; returns it and the bytes after it."""
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        assert data, f"closed without an answer: {buffer!r}"
        buffer += data
    head, buffer = buffer.split(b"\r\n\r\n", 1)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    _, status, reason = status_line.split(" ", 2)
    headers = {}
    for line in lines:
        name, value = line.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(buffer) < length:
        data = sock.recv(65536)
        assert data, "closed in the middle of a body"
        buffer += data
    return (int(status), reason, headers, buffer[:length]), buffer[length:]


def closes(sock, within=5.0):
    """Whether the server closes ``sock`` (sending nothing more) in time."""
    sock.settimeout(within)
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def exchange(daemon, raw, *, answers=1, pause=0.0, close_within=0.3):
    """Send ``raw`` (bytes, or a list of pieces sent ``pause`` apart), read
    ``answers`` responses, and see whether the server closes the connection
    within ``close_within`` seconds."""
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
        for piece in raw if isinstance(raw, list) else [raw]:
            sock.sendall(piece)
            time.sleep(pause)
        found, rest = [], b""
        for _ in range(answers):
            parts, rest = read_answer(sock, rest)
            found.append(parts)
        assert rest == b""
        closed = closes(sock, within=close_within)
    result = [Answer(*parts, closed) for parts in found]
    for answer in result:
        assert_nothing_leaked(answer)
    return result if answers > 1 else result[0]


LEAKS = re.compile(
    rb"Traceback|File \"|\.py\b|Twisted|twisted|Python|python|/usr/|/home/"
    + re.escape(str(ROOT).encode())
)


def assert_nothing_leaked(answer):
    assert answer.headers["server"] == SERVER
    for name, value in answer.headers.items():
        assert not LEAKS.search(f"{name}: {value}".encode()), (name, value)
    assert not LEAKS.search(answer.body), answer.body
    if answer.status >= 400:
        assert answer.headers["content-type"] in (
            "application/json; charset=utf-8",
            "application/problem+json",
        )
        assert "Accept" in answer.headers["vary"]


def request(method, path, headers=b"", body=None, version=VERSION):
    head = b"%s %s HTTP/1.1\r\nHost: probe\r\n" % (method, path) + version + headers
    if body is not None:
        head += b"Content-Length: %d\r\n" % len(body)
    return head + b"\r\n" + (body or b"")


def post_json(body, content_type=b"application/json"):
    return request(
        b"POST", b"/probe/probe", b"Content-Type: %s\r\n" % content_type, body
    )


# Bodies: each is refused with a clear 4xx, and the connection stays usable.
BAD_BODIES = {
    "malformed JSON": (post_json(b'{"n": 1,}'), 409, "JSONDecodeError"),
    "truncated JSON": (post_json(b'{"n": [1, 2'), 409, "JSONDecodeError"),
    "invalid UTF-8": (post_json(b'{"n": 1, "s": "\xff\xfe"}'), 409, "JSONDecodeError"),
    "UTF-16 surrogate in UTF-8": (
        post_json(b'{"n": 1, "s": "\xed\xa0\x80"}'),
        409,
        "JSONDecodeError",
    ),
    "lone surrogate escape": (
        post_json(b'{"n": 1, "s": "\\ud800"}'),
        409,
        "JSONDecodeError",
    ),
    "lone surrogate escape in a key": (
        post_json(b'{"n": 1, "\\udfff": 1}'),
        409,
        "JSONDecodeError",
    ),
    "byte order mark": (post_json(b'\xef\xbb\xbf{"n": 1}'), 409, "JSONDecodeError"),
    "objects nested 2,000 deep": (
        post_json(b'{"a":' * 2000 + b"1" + b"}" * 2000),
        409,
        "JSONDecodeError",
    ),
    "integer of 5,000 digits": (
        post_json(b'{"n": ' + b"9" * 5000 + b"}"),
        409,
        "JSONDecodeError",
    ),
    "number overflowing a float": (
        post_json(b'{"n": 1e999999}'),
        409,
        "JSONDecodeError",
    ),
    "NaN": (post_json(b'{"n": NaN}'), 409, "JSONDecodeError"),
    "Infinity": (post_json(b'{"n": -Infinity}'), 409, "JSONDecodeError"),
    "duplicate keys": (post_json(b'{"n": 1, "n": 2}'), 409, "JSONDecodeError"),
    "empty body": (post_json(b""), 409, "JSONDecodeError"),
    "JSON that is not an object": (post_json(b"[1, 2]"), 409, "RequestNotHashError"),
    "wrong Content-Type": (
        post_json(b'{"n": 1}', b"text/plain"),
        406,
        "ContentTypeError",
    ),
    "no Content-Type": (
        request(b"POST", b"/probe/probe", b"", b'{"n": 1}'),
        406,
        "ContentTypeError",
    ),
    "charset other than UTF-8": (
        post_json(b'{"n": 1}', b"application/json; charset=latin-1"),
        409,
        "CharsetNotUTF8Error",
    ),
    "argument of the wrong type": (post_json(b'{"n": "1"}'), 409, "ValueError"),
    "percent-encoded garbage in the path": (
        request(b"GET", b"/probe/%zz%%41%ff%c0%af"),
        404,
        "UnknownAPICallError",
    ),
    "encoded NUL in the path": (
        request(b"GET", b"/probe/probe%00"),
        404,
        "UnknownAPICallError",
    ),
    "encoded traversal in the path": (
        request(b"GET", b"/probe/..%2f..%2fetc%2fpasswd"),
        404,
        "UnknownAPICallError",
    ),
    "unknown method": (request(b"BREW", b"/probe/probe"), 405, "MethodNotAllowedError"),
    "unknown version": (
        request(
            b"GET", b"/probe/probe", version=b"X-API-Version: probe_api-9.9+prod\r\n"
        ),
        406,
        "UnknownAPIVersionError",
    ),
    "no version header": (
        request(b"GET", b"/probe/probe", version=b""),
        406,
        "UnknownAPIVersionError",
    ),
    "unknown API": (request(b"GET", b"/nothing/here"), 404, "UnknownAPIError"),
    "method that may not name *": (request(b"GET", b"*"), 400, "MalformedRequestError"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_requests_get_a_clear_error_and_the_connection_stays_usable(daemon, case):
    raw, status, error_class = BAD_BODIES[case]
    first, second = exchange(
        daemon, [raw + request(b"GET", b"/probe/probe")], answers=2
    )
    assert (first.status, first.error_class) == (status, error_class), first.body
    assert second.status == 200
    assert not second.closed


def test_json_nested_100_000_deep_is_refused_without_a_recursion_error(tmp_path):
    # Within the body limit, the parser itself must refuse it.
    deep = Daemon(tmp_path, {"general": {"max_body_bytes": "1000000"}}).start()
    try:
        for body in (
            b"[" * 100_000 + b"]" * 100_000,
            b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        ):
            status, _, answer = deep.request(
                "POST",
                "/probe/probe",
                body=body,
                headers={"Content-Type": "application/json"},
            )
            assert status == 409
            assert json.loads(answer)["error"]["exception_class"] == "JSONDecodeError"
        assert deep.stop() == 0
    finally:
        deep.kill()
    assert "RecursionError" not in deep.log_text()
    assert "Traceback" not in deep.log_text()


# The HTTP layer: each is refused and the connection closed.
REFUSED = {
    "HTTP/1.1 without Host": (
        b"GET /probe/probe HTTP/1.1\r\n" + VERSION + b"\r\n",
        400,
        "MalformedRequestError",
    ),
    "two Host headers": (
        request(b"GET", b"/probe/probe", b"Host: elsewhere\r\n"),
        400,
        "MalformedRequestError",
    ),
    "CR inside a header value": (
        request(b"GET", b"/probe/probe", b"X-A: a\rb\r\n"),
        400,
        "MalformedRequestError",
    ),
    "LF inside a header value": (
        request(b"GET", b"/probe/probe", b"X-A: a\nb\r\n"),
        400,
        "MalformedRequestError",
    ),
    "NUL inside a header value": (
        request(b"GET", b"/probe/probe", b"X-A: a\x00b\r\n"),
        400,
        "MalformedRequestError",
    ),
    "space before a header's colon": (
        request(b"GET", b"/probe/probe", b"X-A : a\r\n"),
        400,
        "MalformedRequestError",
    ),
    "raw NUL in the path": (
        request(b"GET", b"/probe/pro\x00be"),
        400,
        "MalformedRequestError",
    ),
    "space in the path": (
        request(b"GET", b"/probe/pro be"),
        400,
        "MalformedRequestError",
    ),
    "method that is not a token": (
        request(b"G(T", b"/probe/probe"),
        400,
        "MalformedRequestError",
    ),
    "HTTP/0.9 request": (b"GET /probe/probe\r\n\r\n", 400, "MalformedRequestError"),
    "HTTP/2 preface": (
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        400,
        "MalformedRequestError",
    ),
    "Content-Length with Transfer-Encoding": (
        request(
            b"POST",
            b"/probe/probe",
            b"Content-Type: application/json\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n",
        )
        + b"0\r\n\r\n",
        400,
        "MalformedRequestError",
    ),
    "two different Content-Lengths": (
        request(
            b"POST", b"/probe/probe", b"Content-Length: 1\r\nContent-Length: 2\r\n"
        ),
        400,
        "MalformedRequestError",
    ),
    "negative Content-Length": (
        request(b"POST", b"/probe/probe", b"Content-Length: -1\r\n"),
        400,
        "MalformedRequestError",
    ),
    "signed Content-Length": (
        request(b"POST", b"/probe/probe", b"Content-Length: +1\r\n") + b"x",
        400,
        "MalformedRequestError",
    ),
    "Transfer-Encoding other than chunked": (
        request(b"POST", b"/probe/probe", b"Transfer-Encoding: gzip, chunked\r\n")
        + b"0\r\n\r\n",
        400,
        "MalformedRequestError",
    ),
    "malformed chunk": (
        request(b"POST", b"/probe/probe", b"Transfer-Encoding: chunked\r\n")
        + b"zz\r\n\r\n",
        400,
        "MalformedRequestError",
    ),
    "Transfer-Encoding whose last coding is not chunked": (
        request(b"POST", b"/probe/probe", b"Transfer-Encoding: chunked, gzip\r\n")
        + b"0\r\n\r\n",
        400,
        "MalformedRequestError",
    ),
    "over-long chunk size": (
        request(b"POST", b"/probe/probe", b"Transfer-Encoding: chunked\r\n")
        + b"1"
        + b"0" * 20
        + b"\r\na\r\n0\r\n\r\n",
        400,
        "MalformedRequestError",
    ),
    "chunk extensions over the header limit": (
        request(b"POST", b"/probe/probe", b"Transfer-Encoding: chunked\r\n")
        + b"1;x="
        + b"a" * 20_000
        + b"\r\na\r\n0\r\n\r\n",
        400,
        "MalformedRequestError",
    ),
    "trailers over the header limit": (
        request(b"POST", b"/probe/probe", b"Transfer-Encoding: chunked\r\n")
        + b"1\r\na\r\n0\r\nX-T: "
        + b"a" * 20_000
        + b"\r\n\r\n",
        400,
        "MalformedRequestError",
    ),
    "control byte in a header name": (
        request(b"GET", b"/probe/probe", b"X\x01A: a\r\n"),
        400,
        "MalformedRequestError",
    ),
    "obsolete line folding": (
        request(b"GET", b"/probe/probe", b"X-A: a\r\n b\r\n"),
        400,
        "MalformedRequestError",
    ),
    "request line with two spaces": (
        b"GET  /probe/probe HTTP/1.1\r\nHost: probe\r\n" + VERSION + b"\r\n",
        400,
        "MalformedRequestError",
    ),
    # Refused at once: before, such a request waited for header_timeout.
    "lines ending in a bare LF": (
        b"GET /probe/probe HTTP/1.1\nHost: probe\n"
        + VERSION.replace(b"\r", b"")
        + b"\n",
        400,
        "MalformedRequestError",
    ),
    "request line of 20,000 bytes": (
        request(b"GET", b"/probe/" + b"a" * 20_000),
        414,
        "RequestURITooLongError",
    ),
    "header of 20,000 bytes": (
        request(b"GET", b"/probe/probe", b"X-A: " + b"a" * 20_000 + b"\r\n"),
        431,
        "RequestHeadersTooLargeError",
    ),
    "headers of 20,000 bytes together": (
        request(
            b"GET",
            b"/probe/probe",
            b"".join(b"X-%d: %s\r\n" % (i, b"a" * 900) for i in range(20)),
        ),
        431,
        "RequestHeadersTooLargeError",
    ),
    "600 headers": (
        request(
            b"GET", b"/probe/probe", b"".join(b"X-%d: a\r\n" % i for i in range(600))
        ),
        431,
        "RequestHeadersTooLargeError",
    ),
    "body over max_body_bytes": (
        request(
            b"POST",
            b"/probe/probe",
            b"Content-Type: application/json\r\n",
            b"[" * (MAX_BODY + 1),
        ),
        413,
        "RequestTooLargeError",
    ),
    "declared body over max_body_bytes, never sent": (
        request(b"POST", b"/probe/probe", b"Content-Length: 1000000000\r\n"),
        413,
        "RequestTooLargeError",
    ),
    "chunked body over max_body_bytes": (
        request(b"POST", b"/probe/probe", b"Transfer-Encoding: chunked\r\n")
        + b"%x\r\n%s\r\n" % (MAX_BODY + 1, b"a" * (MAX_BODY + 1)),
        413,
        "RequestTooLargeError",
    ),
    "JSON nested 100,000 deep, over max_body_bytes": (
        post_json(b"[" * 100_000 + b"]" * 100_000),
        413,
        "RequestTooLargeError",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_requests_the_http_layer_refuses_get_json_and_a_closed_connection(daemon, case):
    raw, status, error_class = REFUSED[case]
    answer = exchange(daemon, raw, close_within=5)
    assert (answer.status, answer.error_class) == (status, error_class), answer.body
    assert answer.headers["connection"] == "close"
    assert answer.closed


def test_a_bare_lf_request_is_refused_at_once(daemon):
    started = time.monotonic()
    answer = exchange(daemon, b"GET /probe/probe HTTP/1.1\nHost: probe\n\n")
    assert (answer.status, answer.error_class) == (400, "MalformedRequestError")
    assert answer.closed
    assert time.monotonic() - started < 0.9  # header_timeout is 1 s


def test_expect_100_continue_over_sockets(daemon):
    head = request(
        b"POST",
        b"/probe/probe",
        b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
        b"Content-Length: 8\r\n",
    )
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
        sock.sendall(head)
        interim = b""
        while b"\r\n\r\n" not in interim:
            interim += sock.recv(65536)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b'{"n": 1}')
        (status, _, _, body), rest = read_answer(sock)
        assert (status, json.loads(body), rest) == (200, {"n": 1, "bytes": 8}, b"")


def test_expect_100_continue_over_the_limit_gets_413_and_no_100(daemon):
    # Before, the 413 was followed by a stray "HTTP/1.1 100 Continue".
    answer = exchange(
        daemon,
        request(
            b"POST",
            b"/probe/probe",
            b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n" % (MAX_BODY + 1),
        ),
        close_within=5,
    )
    assert (answer.status, answer.error_class) == (413, "RequestTooLargeError")
    assert answer.closed  # and nothing else was sent before the close


def test_refusals_are_problem_details_when_accept_asks(daemon):
    answer = exchange(
        daemon,
        request(
            b"GET",
            b"/probe/probe",
            b"Accept: application/problem+json\r\n"
            + b"".join(b"X-%d: a\r\n" % i for i in range(600)),
        ),
    )
    assert answer.status == 431
    assert answer.reason == "Request Header Fields Too Large"
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json == {
        "type": "about:blank",
        "title": "Request Header Fields Too Large",
        "status": 431,
        "detail": "The request headers are larger than this server reads.",
        "error_code": 215,
        "exception_class": "RequestHeadersTooLargeError",
    }


def test_http_1_0_is_answered_and_closed(daemon):
    answer = exchange(
        daemon, b"GET /probe/probe HTTP/1.0\r\n" + VERSION + b"\r\n", close_within=5
    )
    assert answer.status == 200
    assert answer.json["client_ip"] == "127.0.0.1"
    assert answer.closed


def test_absolute_form_targets_route_by_their_path(daemon):
    answer = exchange(daemon, request(b"GET", b"http://elsewhere.example/probe/probe"))
    assert answer.status == 200
    assert not answer.closed


def test_options_asterisk_is_answered_by_shiji(daemon):
    answer = exchange(daemon, b"OPTIONS * HTTP/1.1\r\nHost: probe\r\n\r\n")
    assert answer.status == 200
    assert answer.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
    assert answer.body == b""


def test_pipelined_requests_are_answered_in_order(daemon):
    slow, fast, error = exchange(
        daemon,
        request(b"GET", b"/probe/sleep/0.3")
        + request(b"GET", b"/probe/probe")
        + request(b"GET", b"/probe/fail"),
        answers=3,
    )
    assert (slow.status, slow.json) == (200, {"slept": 0.3})
    assert fast.status == 200 and "pid" in fast.json
    assert (error.status, error.error_class) == (403, "AccessDeniedError")
    assert not error.closed


def test_a_refusal_in_a_pipeline_comes_after_the_answers_before_it(daemon):
    first, refused = exchange(
        daemon,
        request(b"GET", b"/probe/sleep/0.2") + b"GET /probe/pro\x00be HTTP/1.1\r\n\r\n",
        answers=2,
        close_within=5,
    )
    assert first.status == 200
    assert (refused.status, refused.error_class) == (400, "MalformedRequestError")
    assert refused.closed


@pytest.mark.parametrize(
    "sent, trickled",
    [
        (b"GET /probe/probe HTTP/1.1\r\nHost: probe\r\n", b"X-Slow: " + b"a" * 40),
        (b"", b"GET /probe/" + b"a" * 40),
    ],
    ids=["headers", "request line"],
)
def test_slowloris_gets_408_after_header_timeout(daemon, sent, trickled):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
        sock.sendall(sent)
        answer = None
        # One byte every 0.2 s: the idle timeout alone would never fire.
        for byte in trickled:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            sock.settimeout(0.2)
            try:
                data = sock.recv(65536)
            except socket.timeout:
                continue
            sock.settimeout(10)
            answer, _ = read_answer(sock, data)
            break
        assert answer is not None, "the server kept reading"
        assert answer[0] == 408
        assert (
            json.loads(answer[3])["error"]["exception_class"]
            == "RequestReadTimeoutError"
        )
        assert closes(sock)
    assert time.monotonic() - started < 5


def test_a_slow_body_gets_408_after_body_timeout(daemon):
    answer = exchange(
        daemon,
        request(
            b"POST",
            b"/probe/probe",
            b"Content-Type: application/json\r\nContent-Length: 100\r\n",
        )
        + b'{"n": ',
        close_within=5,
    )
    assert (answer.status, answer.error_class) == (408, "RequestReadTimeoutError")
    assert (
        answer.json["error"]["exception_text"]
        == "The request was not received within 2 seconds."
    )
    assert answer.closed


def test_an_idle_connection_is_closed_after_idle_timeout_without_an_answer(daemon):
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
        started = time.monotonic()
        assert closes(sock, within=8)
        assert 3.5 < time.monotonic() - started < 8


def test_a_slow_handler_is_not_a_slow_client(daemon):
    # Reading deadlines stop once the request is in: the call may run on.
    answer = exchange(daemon, request(b"GET", b"/probe/sleep/2.5"))
    assert (answer.status, answer.json) == (200, {"slept": 2.5})


def test_quotes_and_raw_bytes_never_reach_the_log_raw(daemon):
    # Quotes and backslashes get through, and are escaped in the access log;
    # control bytes and bytes outside ASCII in a request line are refused.
    answer = exchange(daemon, request(b"GET", b'/probe/"forged\\'))
    assert answer.status == 404
    daemon.wait_for_log(r"x22forged")
    line = next(line for line in daemon.log_text().splitlines() if "x22forged" in line)
    assert '"GET /probe/\\x22forged\\x5c" 404' in line
    for target in (b"/probe/\x1b[31mred", b"/probe/\xff\x80"):
        refused = exchange(daemon, request(b"GET", target))
        assert refused.status == 400
    text = daemon.log_text()
    assert "\x1b" not in text and "\xff" not in text


def test_refused_requests_are_logged(daemon):
    exchange(daemon, request(b"GET", b"/probe/probe", b"X-A: a\x00b\r\n"))
    daemon.wait_for_log(
        r'"GET /probe/probe" 400 [0-9]+ [0-9.]+ms api=- version=- call=-'
    )


def test_a_crash_answers_500_with_a_request_id_only(daemon):
    answer = exchange(daemon, request(b"GET", b"/probe/crash"))
    assert answer.status == 500
    request_id = answer.headers["x-request-id"]
    assert answer.json["error"] == {
        "error_code": 505,
        "exception_class": "UnexpectedServerError",
        "exception_text": (
            "An unexpected error has occurred processing the request. "
            f"Error: 'request id {request_id}'"
        ),
    }
    assert b"internal detail 42" not in answer.body
    daemon.wait_for_log("internal detail 42")


def test_an_aborted_upload_leaves_the_read_deadlines_working(daemon):
    # A body cut short by the client closing: its deadline passes after the
    # connection is gone, and the sweep must go on checking the others.
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
        sock.sendall(
            request(
                b"POST",
                b"/probe/probe",
                b"Content-Type: application/json\r\nContent-Length: 100\r\n",
            )
            + b"{"
        )
    time.sleep(3.5)  # header_timeout + body_timeout + one sweep
    test_slowloris_gets_408_after_header_timeout(
        daemon, b"GET /probe/probe HTTP/1.1\r\nHost: probe\r\n", b"X-Slow: " + b"a" * 40
    )
    assert "Unhandled" not in daemon.log_text()
