"""
Shiji's HTTP/1.1 engine in memory, through shiji.testing: the request
object, pipelining, back-pressure, bodies, deadlines, the health check and
what a misbehaving client gets. (The same behaviour over real sockets is in
test_hardening.py.)
"""

import json

import pytest
import pytest_twisted
from apitools import make_api
from twisted.internet import defer
from twisted.web.iweb import IRequest
from zope.interface.verify import verifyObject

from shiji.testing import TestClient
from shiji.urldispatch import NOT_DONE_YET, URLMatchJSONResource

VERSION = b"X-API-Version: e_api-1.0+prod\r\n"
PARKED = []


class Echo(URLMatchJSONResource):
    routes = r"echo"

    def render_GET(self, request):
        return {"method": request.method.decode(), "uri": request.uri.decode()}

    def render_POST(self, request):
        return {"body": request.content.read().decode()}


class Big(URLMatchJSONResource):
    routes = r"big"

    def render_GET(self, request):
        return {"data": "x" * 200_000}


class Stream(URLMatchJSONResource):
    routes = r"stream"

    def render_GET(self, request):
        request.write(b'{"parts": [')
        request.write(b"1,")
        request.write(b"2]}")
        request.finish()


class Park(URLMatchJSONResource):
    routes = r"park"

    def render_GET(self, request):
        waiting = defer.Deferred()
        PARKED.append((request, waiting))
        return waiting


class StreamPark(URLMatchJSONResource):
    routes = r"streampark"

    def render_GET(self, request):
        request.write(b'{"a": "' + b"x" * 10 + b'"')
        waiting = defer.Deferred()
        PARKED.append((request, waiting))
        waiting.addCallback(lambda _: (request.write(b"}"), request.finish()))
        return NOT_DONE_YET


class Broken(URLMatchJSONResource):
    """Begins its answer, then fails: with a declared length, or streamed."""

    routes = r"broken/(?P<framing>length|chunked)"

    def render_GET(self, request):
        if self.url_matches["framing"] == "length":
            request.setHeader("content-length", "20")
        request.write(b'{"rows": [1, 2, ')
        raise OSError("the disk went away")


class NoContent(URLMatchJSONResource):
    routes = r"nocontent"

    def render_DELETE(self, request):
        request.setResponseCode(204)
        return {}


class Inspect(URLMatchJSONResource):
    routes = r"inspect"

    def render_GET(self, request):
        verifyObject(IRequest, request)
        return {
            "host": request.getRequestHostname().decode(),
            "header": request.getHeader("x-thing"),
            "raw": [
                v.decode() for v in request.requestHeaders.getRawHeaders(b"x-thing")
            ],
            "all": sorted(k.decode() for k in request.getAllHeaders()),
            "secure": request.isSecure(),
            "url": request.prePathURL().decode(),
            "client": request.getClientAddress().host,
        }


def client(**options):
    api = make_api(
        "e_api",
        [
            (
                "1.0",
                r"1\.0",
                [Echo, Big, Stream, Park, StreamPark, Broken, NoContent, Inspect],
            )
        ],
    )
    return TestClient({"e": api}, **options)


def get(path, extra=b""):
    return b"GET %s HTTP/1.1\r\nHost: h\r\n%s%s\r\n" % (path, VERSION, extra)


def post(path, body, extra=b""):
    return (
        b"POST %s HTTP/1.1\r\nHost: h\r\n%sContent-Type: application/json\r\n%s\r\n%s"
        % (
            path,
            VERSION,
            extra,
            body,
        )
    )


@pytest_twisted.ensureDeferred
async def test_the_request_provides_twisted_webs_irequest():
    response = await client().get(
        "/e/inspect",
        headers=[("X-Thing", "a"), ("X-Thing", "b"), ("Host", "api.example:81")],
    )
    assert response.status == 200, response.body
    assert response.json == {
        "host": "api.example",
        "header": "b",
        "raw": ["a", "b"],
        "all": ["host", "x-api-version", "x-thing"],
        "secure": False,
        "url": "http://api.example:81/e/inspect",
        "client": "127.0.0.1",
    }


def test_pipelined_requests_are_answered_in_order():
    connection = client().connect()
    connection.send(
        get(b"/e/echo?1")
        + post(b"/e/echo", b'"two"', b"Content-Length: 5\r\n")
        + get(b"/e/echo?3")
    )
    answers = connection.responses()
    assert [a.json for a in answers] == [
        {"method": "GET", "uri": "/e/echo?1"},
        {"body": '"two"'},
        {"method": "GET", "uri": "/e/echo?3"},
    ]
    assert not connection.closing


def test_a_slow_answer_holds_back_the_next_pipelined_one():
    PARKED.clear()
    connection = client().connect()
    connection.send(get(b"/e/park") + get(b"/e/echo"))
    assert connection.received == b""
    _, waiting = PARKED.pop()
    waiting.callback({"parked": True})
    assert [a.json for a in connection.responses()] == [
        {"parked": True},
        {"method": "GET", "uri": "/e/echo"},
    ]


def test_a_client_that_reads_nothing_gets_no_further_answers():
    PARKED.clear()
    connection = client().connect()
    connection.send(get(b"/e/park") + get(b"/e/echo"))
    _, waiting = PARKED.pop()
    # The client reads nothing: the transport's buffer fills, and it tells
    # the connection (its producer) to pause.
    connection.transport.producer.pauseProducing()
    assert connection.reading_paused
    waiting.callback({"parked": True})
    assert [a.json for a in connection.responses()] == [{"parked": True}]
    # The client reads again: the next request is answered.
    connection.transport.producer.resumeProducing()
    assert [a.json for a in connection.responses()][1:] == [
        {"method": "GET", "uri": "/e/echo"}
    ]
    assert not connection.reading_paused


@pytest.mark.parametrize(
    "chunks, body",
    [
        (b"5\r\nhello\r\n0\r\n\r\n", "hello"),
        (b"2;ext=1\r\nhe\r\n3\r\nllo\r\n0\r\nX-Trailer: t\r\n\r\n", "hello"),
        (b"0\r\n\r\n", ""),
    ],
)
def test_chunked_bodies(chunks, body):
    connection = client().connect()
    connection.send(post(b"/e/echo", chunks, b"Transfer-Encoding: chunked\r\n"))
    [answer] = connection.responses()
    assert answer.json == {"body": body}


def test_a_chunked_body_over_the_limit_is_refused_unread():
    connection = client(max_body_bytes=10).connect()
    connection.send(
        post(
            b"/e/echo",
            b"8\r\n12345678\r\n8\r\n12345678\r\n",
            b"Transfer-Encoding: chunked\r\n",
        )
    )
    [answer] = connection.responses()
    assert (answer.status, answer.error["exception_class"]) == (
        413,
        "RequestTooLargeError",
    )
    assert answer.headers["connection"] == "close"
    assert connection.closing


def test_expect_100_continue_is_answered_only_for_a_body_allowed():
    connection = client(max_body_bytes=10).connect()
    connection.send(
        post(b"/e/echo", b"", b"Expect: 100-continue\r\nContent-Length: 4\r\n")
    )
    [interim] = connection.responses()
    assert interim.status == 100
    connection.send(b'"ab"')
    interim, answer = connection.responses()
    assert answer.json == {"body": '"ab"'}

    connection = client(max_body_bytes=10).connect()
    connection.send(
        post(b"/e/echo", b"", b"Expect: 100-continue\r\nContent-Length: 11\r\n")
    )
    [answer] = connection.responses()
    assert answer.status == 413
    assert b"100 Continue" not in connection.received
    assert connection.closing


def test_head_http_1_0_and_streamed_answers():
    connection = client().connect()
    connection.send(b"HEAD /e/echo HTTP/1.1\r\nHost: h\r\n" + VERSION + b"\r\n")
    [answer] = connection.responses("HEAD")
    assert answer.body == b""
    assert answer.headers["content-length"] == str(
        len(b'{"method":"HEAD","uri":"/e/echo"}')
    )

    connection = client().connect()
    connection.send(b"GET /e/echo HTTP/1.0\r\n" + VERSION + b"\r\n")
    assert connection.received.startswith(b"HTTP/1.0 200 OK\r\n")
    assert b"\r\nConnection: close\r\n" in connection.received
    assert connection.closing

    connection = client().connect()
    connection.send(get(b"/e/stream"))
    [answer] = connection.responses()
    assert answer.headers["transfer-encoding"] == "chunked"
    assert answer.json == {"parts": [1, 2]}


def test_connection_close_is_honoured():
    connection = client().connect()
    connection.send(get(b"/e/echo", b"Connection: close\r\n") + get(b"/e/echo"))
    [answer] = connection.responses()
    assert answer.headers["connection"] == "close"
    assert connection.closing


@pytest.mark.parametrize(
    "sent, limit",
    [
        (b"GET /e/echo HTTP/1.1\r\nHost: h\r\nX-Slow: a", "10"),
        (b"GET /e/ec", "10"),
        (post(b"/e/echo", b'{"a"', b"Content-Length: 20\r\n"), "40"),
    ],
    ids=["headers", "request line", "body"],
)
def test_a_slow_request_gets_408_when_its_deadline_passes(sent, limit):
    test_client = client()
    connection = test_client.connect()
    connection.send(sent)
    # The sweep checks about once a second: the deadline has not passed at
    # its limit, and has at the next check.
    test_client.clock.pump([1.0] * int(limit))
    assert connection.received == b""
    test_client.clock.advance(1.0)
    [answer] = connection.responses()
    assert answer.status == 408
    assert answer.json["error"]["exception_text"] == (
        f"The request was not received within {limit} seconds."
    )
    assert connection.closing
    assert " 408 " in test_client.access_lines[-1]


def test_an_idle_connection_is_closed_without_an_answer():
    test_client = client(idle_timeout=5)
    connection = test_client.connect()
    connection.send(get(b"/e/echo"))
    test_client.clock.advance(4)
    assert not connection.closing
    test_client.clock.advance(2)
    assert connection.closing
    assert len(connection.responses()) == 1


@pytest_twisted.ensureDeferred
async def test_the_health_check():
    test_client = client()
    response = await test_client.get("/_health", version=None)
    assert (response.status, response.json) == (200, {"status": "serving"})
    assert response.headers["cache-control"] == "no-store"
    assert test_client.access_lines == []
    response = await test_client.post("/_health", version=None, json={})
    assert response.status == 405
    assert response.headers["allow"] == "GET, HEAD"
    test_client.site.draining = True
    response = await test_client.get("/_health", version=None)
    assert (response.status, response.json) == (503, {"status": "draining"})
    assert response.headers["connection"] == "close"
    logged = client(log_health=True)
    await logged.get("/_health", version=None)
    assert '"GET /_health" 200 ' in logged.access_lines[0]


@pytest_twisted.ensureDeferred
async def test_a_refusal_is_problem_details_when_accept_asks():
    response = await client().send_raw(
        b"GET /e/echo HTTP/1.1\r\nHost: h\r\nAccept: application/problem+json\r\n"
        + b"".join(b"X-%d: a\r\n" % i for i in range(600))
        + b"\r\n"
    )
    assert response.status == 431
    assert response.headers["content-type"] == "application/problem+json"
    assert json.loads(response.body)["status"] == 431


def test_reading_resumes_once_a_client_catches_up_during_a_streamed_answer():
    PARKED.clear()
    connection = client().connect()
    connection.send(get(b"/e/streampark"))
    _, waiting = PARKED.pop()
    # The transport's buffer fills while the answer streams, then drains
    # before the answer is done.
    connection.transport.producer.pauseProducing()
    assert connection.reading_paused
    connection.transport.producer.resumeProducing()
    assert not connection.reading_paused
    waiting.callback(None)
    assert not connection.reading_paused
    connection.send(get(b"/e/echo"))
    assert [a.json for a in connection.responses()] == [
        {"a": "xxxxxxxxxx"},
        {"method": "GET", "uri": "/e/echo"},
    ]


def test_empty_lines_after_a_body_start_no_clock():
    # Some clients end a body with an empty line; the next request, sent
    # after a pause longer than header_timeout, is timed from its own start.
    test_client = client()
    connection = test_client.connect()
    connection.send(post(b"/e/echo", b'"a"', b"Content-Length: 3\r\n") + b"\r\n")
    test_client.clock.pump([1.0] * 20)
    head = get(b"/e/echo")
    connection.send(head[:10])
    test_client.clock.advance(1.0)
    connection.send(head[10:])
    assert [a.status for a in connection.responses()] == [200, 200]
    assert test_client.access_lines[-1].split()[5] == "1000.0ms"


def test_a_pipelined_request_is_timed_from_the_end_of_the_answer_before_it():
    PARKED.clear()
    test_client = client(request_timeout=60)
    connection = test_client.connect()
    body_follows = post(
        b"/e/echo", b"", b"Expect: 100-continue\r\nContent-Length: 4\r\n"
    )
    connection.send(get(b"/e/park") + body_follows)
    _, waiting = PARKED.pop()
    test_client.clock.pump([1.0] * 45)  # longer than header and body timeouts
    waiting.callback({"parked": True})
    assert [a.status for a in connection.responses()] == [200, 100]
    test_client.clock.pump([1.0] * 5)
    connection.send(b'"ab"')
    assert [a.status for a in connection.responses()] == [200, 100, 200]


def test_a_client_that_reads_nothing_is_cut_off_after_idle_timeout():
    # The answer is written whole, but the client never reads it: the
    # connection and what waits to be sent are dropped, not kept forever.
    test_client = client(idle_timeout=5)
    connection = test_client.connect()
    connection.send(get(b"/e/big"))
    connection.transport.producer.pauseProducing()
    test_client.clock.pump([1.0] * 5)
    assert not connection.aborted
    test_client.clock.pump([1.0] * 2)
    assert connection.aborted


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_an_error_after_the_answer_began_cuts_the_connection(framing):
    connection = client().connect()
    connection.send(get(b"/e/broken/" + framing.encode()) + get(b"/e/echo"))
    sent = connection.received
    assert sent.startswith(b"HTTP/1.1 200 OK\r\n")
    # Only what the handler wrote, never an error appended to it.
    assert sent.endswith(b'{"rows": [1, 2, ') or sent.endswith(
        b'10\r\n{"rows": [1, 2, \r\n'
    )
    assert b"UnexpectedServerError" not in sent
    assert connection.aborted


def test_a_204_answer_has_no_body_and_no_length():
    connection = client().connect()
    connection.send(b"DELETE /e/nocontent HTTP/1.1\r\nHost: h\r\n" + VERSION + b"\r\n")
    head = connection.received
    assert head.startswith(b"HTTP/1.1 204 No Content\r\n")
    assert head.endswith(b"\r\n\r\n")
    assert b"Content-Length" not in head and b"Content-Type" not in head
