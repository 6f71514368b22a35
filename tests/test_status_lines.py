"""
Status lines: every status Shiji sends carries the reason phrase of IANA's
HTTP Status Code Registry, byte for byte, whatever the interpreter; a code
the registry does not name has an empty phrase (RFC 9112 section 4).
"""

import re
import socket

import pytest
from apitools import make_api
from mylogin_api.v1_0 import errors as example_errors

from shiji import webapi
from shiji.testing import TestClient
from shiji.urldispatch import URLMatchJSONResource

# The registry as of RFC 9110 and its updates, written out again here, so
# that a slip in shiji/_status.py shows.
REGISTRY = {
    100: "Continue",
    101: "Switching Protocols",
    102: "Processing",
    103: "Early Hints",
    200: "OK",
    201: "Created",
    202: "Accepted",
    203: "Non-Authoritative Information",
    204: "No Content",
    205: "Reset Content",
    206: "Partial Content",
    207: "Multi-Status",
    208: "Already Reported",
    226: "IM Used",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Found",
    303: "See Other",
    304: "Not Modified",
    305: "Use Proxy",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Content Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type",
    416: "Range Not Satisfiable",
    417: "Expectation Failed",
    421: "Misdirected Request",
    422: "Unprocessable Content",
    423: "Locked",
    424: "Failed Dependency",
    425: "Too Early",
    426: "Upgrade Required",
    428: "Precondition Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    451: "Unavailable For Legal Reasons",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
    506: "Variant Also Negotiates",
    507: "Insufficient Storage",
    508: "Loop Detected",
    510: "Not Extended",
    511: "Network Authentication Required",
}
# Registered as "(Unused)" (306, 418), only temporarily (104), or not at all.
UNNAMED = [104, 199, 299, 306, 418, 419, 499, 509, 599]

# Every error class a client can receive from Shiji or from the example.
ERROR_CLASSES = sorted(
    {
        value
        for module in (webapi, example_errors)
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, webapi.APIError)
        and value is not webapi.APIError
    },
    key=lambda cls: cls.__name__,
)


def make_error(cls, request):
    """An instance of ``cls``, its text's placeholders filled."""
    if cls is example_errors.TooManyAttemptsError:
        return cls(request, 30)
    if cls is example_errors.SampleAdvancedError:
        return cls(request, "x")
    if cls is webapi.InvalidField:
        return cls(request, "id", "No such user.")
    placeholders = len(re.findall(r"%[sdr]", cls.exception_text or ""))
    return cls(request, *["x"] * placeholders)


class Status(URLMatchJSONResource):
    routes = r"status/(?P<code>[0-9]{3})"

    def render_GET(self, request):
        request.setResponseCode(int(self.url_matches["code"]))
        return {}


class Raise(URLMatchJSONResource):
    routes = r"raise/(?P<name>[A-Za-z0-9]+)"

    def render_GET(self, request):
        [cls] = [c for c in ERROR_CLASSES if c.__name__ == self.url_matches["name"]]
        raise make_error(cls, request)


def client(**options):
    api = make_api("s_api", [("1.0", r"1\.0", [Status, Raise])])
    return TestClient({"s": api}, validate_responses=False, **options)


def status_line(test_client, raw):
    """The first line the server answers ``raw`` with."""
    connection = test_client.connect()
    connection.send(raw)
    return connection.received.split(b"\r\n", 1)[0]


def get(path, extra=b""):
    return b"GET %s HTTP/1.1\r\nHost: h\r\nX-API-Version: s_api-1.0+prod\r\n%s\r\n" % (
        path,
        extra,
    )


def test_the_table_is_the_registry():
    from shiji._status import REASON_PHRASES

    assert dict(REASON_PHRASES) == REGISTRY


@pytest.mark.parametrize("code", sorted(REGISTRY))
def test_every_registered_status_has_its_phrase(code):
    line = status_line(client(), get(b"/s/status/%d" % code))
    assert line == f"HTTP/1.1 {code} {REGISTRY[code]}".encode()


@pytest.mark.parametrize("code", UNNAMED)
def test_a_status_the_registry_does_not_name_has_an_empty_phrase(code):
    line = status_line(client(), get(b"/s/status/%d" % code))
    assert line == b"HTTP/1.1 %d " % code


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_class_is_sent_with_its_status_phrase(cls):
    status = cls.http_status
    assert status in REGISTRY
    line = status_line(client(), get(b"/s/raise/" + cls.__name__.encode()))
    assert line == f"HTTP/1.1 {status} {REGISTRY[status]}".encode()


def test_the_error_classes_cover_every_status_shiji_answers():
    assert {cls.http_status for cls in ERROR_CLASSES} == {
        400,
        401,
        403,
        404,
        405,
        406,
        408,
        409,
        410,
        413,
        414,
        429,
        431,
        500,
        503,
    }


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b"GET /s/status/200 HTTP/1.1\nHost: h\n\n", b"HTTP/1.1 400 Bad Request"),
        (
            b"POST /s/status/200 HTTP/1.1\r\nHost: h\r\nContent-Length: 2048\r\n\r\n",
            b"HTTP/1.1 413 Content Too Large",
        ),
        (
            b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: h\r\n\r\n",
            b"HTTP/1.1 414 URI Too Long",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n",
            b"HTTP/1.1 431 Request Header Fields Too Large",
        ),
        (b"BREW /s/status/200 HTTP/1.1\r\nHost: h\r\n\r\n", None),
    ],
    ids=["400", "413", "414", "431", "405 or 406"],
)
def test_the_connection_refuses_with_the_registry_phrases(raw, expected):
    line = status_line(client(max_body_bytes=1024), raw)
    if expected is None:
        # No version header: the router answers before the method counts.
        expected = b"HTTP/1.1 406 Not Acceptable"
    assert line == expected


def test_a_read_timeout_is_408_request_timeout():
    test_client = client()
    connection = test_client.connect()
    connection.send(b"GET /s/status/200 HTTP/1.1\r\n")
    test_client.clock.advance(11)
    line = connection.received.split(b"\r\n", 1)[0]
    assert line == b"HTTP/1.1 408 Request Timeout"


@pytest.mark.parametrize(
    "raw, expected",
    [
        (
            b"OPTIONS /s/status/200 HTTP/1.1\r\nHost: h\r\n\r\n",
            b"HTTP/1.1 204 No Content",
        ),
        (b"GET /_health HTTP/1.1\r\nHost: h\r\n\r\n", b"HTTP/1.1 200 OK"),
        (b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", b"HTTP/1.1 200 OK"),
        (b"GET /nowhere HTTP/1.1\r\nHost: h\r\n\r\n", b"HTTP/1.1 404 Not Found"),
        (b"GET * HTTP/1.1\r\nHost: h\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
        (b"GET /s/status/200 HTTP/1.0\r\n\r\n", None),
    ],
    ids=["OPTIONS", "health", "OPTIONS *", "unknown API", "GET *", "HTTP/1.0"],
)
def test_shijis_own_answers_carry_the_registry_phrases(raw, expected):
    line = status_line(client(), raw)
    if expected is None:
        # An HTTP/1.0 request without a version header.
        expected = b"HTTP/1.0 406 Not Acceptable"
    assert line == expected


@pytest.mark.parametrize(
    "code, title",
    [(413, "Content Too Large"), (422, "Unprocessable Content"), (299, "Error")],
)
def test_problem_details_are_titled_with_the_registry_phrase(code, title):
    class Odd(webapi.APIError):
        error_code = 1
        exception_text = "Odd."
        http_status = code

    assert Odd().problem()["title"] == title


@pytest.mark.slow
def test_a_live_shijid_sends_the_registry_phrases(shijid):
    daemon = shijid()
    requests = {
        b"GET /probe/fail HTTP/1.1\r\nHost: h\r\nX-API-Version: probe_api-1.0+prod"
        b"\r\n\r\n": b"HTTP/1.1 403 Forbidden",
        b"GET /probe/probe HTTP/1.1\r\nHost: h\r\n\r\n": b"HTTP/1.1 406 Not Acceptable",
        b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: "
        + b"b" * 20000
        + b"\r\n\r\n": b"HTTP/1.1 431 Request Header Fields Too Large",
    }
    for raw, expected in requests.items():
        with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
            sock.sendall(raw)
            answer = b""
            while b"\r\n" not in answer:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        assert answer.split(b"\r\n", 1)[0] == expected
