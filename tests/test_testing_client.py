"""
shiji.testing: the in-memory client that users' tests use.
"""

import mylogin_api
import pytest
import pytest_twisted
from apitools import make_api
from twisted.internet import defer

from shiji.testing import LATEST, TestClient, TestResponse
from shiji.urldispatch import APIRouter, URLMatchJSONResource


class Echo(URLMatchJSONResource):
    routes = r"echo"

    def render_POST(self, request):
        request.content.seek(0)
        return {
            "body": request.content.read().decode("utf-8"),
            "content_type": request.getHeader("content-type"),
            "version": request.getHeader("x-api-version"),
            "client": request.getClientAddress().host,
            "client_ip": request.client_ip,
            "custom": request.getHeader("x-custom"),
        }

    def render_GET(self, request):
        request.addCookie("a", "1")
        request.addCookie("b", "2")
        return {"version": request.api_version}


class Never(URLMatchJSONResource):
    routes = r"never"

    def render_GET(self, request):
        return defer.Deferred()


# The answers of Answer calls made "later", waiting to be given.
LATER = []


class Answer(URLMatchJSONResource):
    routes = r"answer/(?P<when>now|later)"

    def render_GET(self, request):
        if self.url_matches["when"] == "now":
            return {"when": "now"}
        waiting = defer.Deferred()
        LATER.append((waiting, request))
        return waiting


class Recorder:
    """Metrics kept as ``(kind, name, value)``."""

    def __init__(self):
        self.seen = []

    def increment(self, name, value=1, sample_rate=1.0):
        self.seen.append(("c", name, value))

    def timing(self, name, milliseconds, sample_rate=1.0):
        self.seen.append(("ms", name, milliseconds))


def client(**options):
    api = make_api(
        "t_api",
        [
            ("1.0", r"1\.0", [Echo]),
            ("2.0", r"2\.0", [Echo]),
            ("1.10", r"1\.10", [Echo, Never, Answer]),
        ],
    )
    return TestClient({"t": api}, **options)


@pytest_twisted.ensureDeferred
async def test_json_body_and_default_headers():
    response = await client().post("/t/echo", json={"a": [1, "é"]})
    assert response.status == 200
    assert response.json == {
        "body": '{"a": [1, "\\u00e9"]}',
        "content_type": "application/json; charset=utf-8",
        "version": "t_api-2.0+prod",
        "client": "127.0.0.1",
        "client_ip": "127.0.0.1",
        "custom": None,
    }


@pytest_twisted.ensureDeferred
async def test_latest_version_is_the_highest_as_a_version():
    assert (await client().get("/t/echo")).json == {"version": "2.0"}
    assert (await client().get("/t/echo", version=LATEST)).json == {"version": "2.0"}
    assert (await client().get("/t/echo", version="1.10")).json == {"version": "1.10"}


@pytest_twisted.ensureDeferred
async def test_raw_body_headers_mode_and_client_address():
    response = await client(client_address="10.1.2.3").post(
        "/t/echo",
        body=b"raw",
        content_type="text/plain",
        headers=[("X-Custom", "yes")],
        mode="test",
    )
    assert response.json == {
        "body": "raw",
        "content_type": "text/plain",
        "version": "t_api-2.0+test",
        "client": "10.1.2.3",
        "client_ip": "10.1.2.3",
        "custom": "yes",
    }


@pytest.mark.parametrize(
    "options, peer, headers, client_ip",
    [
        ({}, "127.0.0.1", {"X-Real-IP": "10.9.9.9"}, "127.0.0.1"),
        ({"honor_x_realip": True}, "127.0.0.1", {"X-Real-IP": "10.9.9.9"}, "10.9.9.9"),
        (
            {"honor_x_realip": True},
            "127.0.0.1",
            {"X-Forwarded-For": "10.9.9.9, 10.0.0.2"},
            "10.0.0.2",
        ),
        (
            {"honor_x_realip": True, "trusted_proxies": ["127.0.0.1", "10.0.0.0/24"]},
            "127.0.0.1",
            {"X-Forwarded-For": "10.9.9.9, 10.0.0.2"},
            "10.9.9.9",
        ),
        ({"honor_x_realip": True}, "192.0.2.7", {"X-Real-IP": "10.9.9.9"}, "192.0.2.7"),
        (
            {"honor_x_realip": True},
            "127.0.0.1",
            {"X-Real-IP": "not an ip"},
            "127.0.0.1",
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_client_ip_believes_trusted_proxies_only(
    options, peer, headers, client_ip
):
    response = await client(client_address=peer, **options).post(
        "/t/echo", json={}, headers=headers
    )
    assert (response.json["client"], response.json["client_ip"]) == (peer, client_ip)


@pytest_twisted.ensureDeferred
async def test_headers_replace_defaults_and_none_removes_them():
    response = await client().post(
        "/t/echo",
        json={},
        headers={"X-API-Version": "t_api-1.0+prod", "Content-Type": None},
    )
    assert response.json["version"] == "t_api-1.0+prod"
    assert response.json["content_type"] is None


@pytest_twisted.ensureDeferred
async def test_repeated_headers():
    response = await client().get("/t/echo")
    assert response.header_values("Set-Cookie") == ["a=1", "b=2"]
    assert response.headers["set-cookie"] == "a=1, b=2"


@pytest_twisted.ensureDeferred
async def test_response_helpers():
    response = await client().get("/t/nothing")
    assert isinstance(response, TestResponse)
    assert response.error["exception_class"] == "UnknownAPICallError"
    assert response.text == response.body.decode()
    assert repr(response).startswith("<TestResponse 404 b'{")
    assert TestResponse(200, [], b"not json").error is None
    assert TestResponse(200, [], b"[1]").error is None


@pytest_twisted.ensureDeferred
async def test_expect_passes_and_returns_the_response():
    response = await client().expect("GET", "/t/echo", None, 200, {"version": "2.0"})
    assert response.status == 200
    await client().expect("POST", "/t/echo", {"x": 1}, 200)


@pytest_twisted.ensureDeferred
async def test_expect_explains_a_wrong_status():
    with pytest.raises(AssertionError) as info:
        await client().expect("GET", "/t/nothing", None, 200)
    assert str(info.value).startswith(
        "GET /t/nothing: expected status 200, got 404 with body b'{"
    )


@pytest_twisted.ensureDeferred
async def test_expect_explains_a_wrong_body():
    with pytest.raises(AssertionError) as info:
        await client().expect("GET", "/t/echo", None, 200, {"version": "1.0"})
    assert str(info.value) == (
        "GET /t/echo: expected body\n  {'version': '1.0'}\ngot\n  {'version': '2.0'}"
    )


@pytest_twisted.ensureDeferred
async def test_expect_explains_a_body_that_is_not_json():
    class Text(URLMatchJSONResource):
        routes = r"text"

        def render_GET(self, request):
            return b"plain"

    text_client = TestClient({"x": make_api("x", [("1.0", r"1\.0", [Text])])})
    with pytest.raises(AssertionError, match="the body is not JSON: b'plain'"):
        await text_client.expect("GET", "/x/text", None, 200, "plain")


@pytest_twisted.ensureDeferred
async def test_a_response_that_never_comes_fails_after_the_timeout():
    with pytest.raises(defer.TimeoutError):
        await client(timeout=0.05).get("/t/never", version="1.10")


@pytest_twisted.ensureDeferred
async def test_an_existing_router_can_be_used():
    router = APIRouter({"myloginapi": mylogin_api})
    response = await TestClient(router).get("/myloginapi/ping")
    assert response.status == 200
    with pytest.raises(TypeError, match="router options go to APIRouter"):
        TestClient(router, config={})


def test_json_and_body_together_are_refused():
    with pytest.raises(TypeError, match="pass json or body, not both"):
        client().post("/t/echo", json={}, body=b"{}")


def test_version_header_helper():
    assert client().version_header("/t/echo") == "t_api-2.0+prod"
    assert client().version_header("t/echo?x=1", "1.0", "test") == "t_api-1.0+test"
    assert client().version_header("/other/echo") is None


@pytest_twisted.ensureDeferred
async def test_the_one_line_style_from_the_docs(client):
    await client.expect(
        "GET",
        "/myloginapi/ping/123",
        None,
        200,
        "PONG! Right back at ya. I'm production baby! (Timestamp Val: 123) "
        "(API: mylogin_api, Version: 1.0, Mode: prod)",
    )


def counted(milliseconds):
    base = "t_api.prod.1_10.Answer.GET"
    return [
        ("c", base, 1),
        ("ms", base, milliseconds),
        ("c", f"{base}.2xx", 1),
        ("c", f"{base}.status.200", 1),
    ]


@pytest_twisted.ensureDeferred
async def test_an_answer_given_later_is_logged_and_counted_like_one_given_at_once():
    LATER.clear()
    recorder = Recorder()
    later_client = client(metrics=recorder)
    now = await later_client.get("/t/answer/now", version="1.10")
    answered = later_client.get("/t/answer/later", version="1.10")
    later_client.clock.advance(0.25)
    [(waiting, _)] = LATER
    waiting.callback({"when": "later"})
    later = await answered
    assert (now.status, now.json, later.status, later.json) == (
        200,
        {"when": "now"},
        200,
        {"when": "later"},
    )
    assert later_client.access_lines == [
        '127.0.0.1 "GET /t/answer/now" 200 14 0.0ms api=t_api version=1.10 call=Answer',
        '127.0.0.1 "GET /t/answer/later" 200 16 250.0ms api=t_api version=1.10 '
        "call=Answer",
    ]
    assert recorder.seen == counted(0.0) + counted(250.0)
    assert later_client.site.in_flight == set()


@pytest_twisted.ensureDeferred
async def test_pipelined_answers_given_later_are_logged_in_order_on_one_connection():
    # Logged as each answer is complete, before what waits on it runs, and
    # the next request is read only then: keep-alive and pipelining hold.
    LATER.clear()
    later_client = client()
    version = later_client.version_header("/t/answer/later", "1.10")
    get = (
        "GET /t/answer/{} HTTP/1.1\r\nHost: localhost\r\n"
        f"X-API-Version: {version}\r\n\r\n"
    )
    connection = later_client.connect()
    connection.send((get.format("later") + get.format("now")).encode("ascii"))
    [(waiting, request)] = LATER
    finished = []
    notified = request.notifyFinish()
    notified.addCallback(lambda _: finished.append(list(later_client.access_lines)))
    assert connection.responses() == []
    later_client.clock.advance(0.5)
    waiting.callback({"when": "later"})
    first, second = connection.responses()
    assert (first.json, second.json) == ({"when": "later"}, {"when": "now"})
    assert "connection" not in first.headers
    line = '127.0.0.1 "GET /t/answer/{}" 200 {} {}ms api=t_api version=1.10 call=Answer'
    # The first answer was logged when its notifyFinish fired; the second
    # was read after both.
    assert finished == [[line.format("later", 16, "500.0")]]
    assert later_client.access_lines == [
        line.format("later", 16, "500.0"),
        line.format("now", 14, "0.0"),
    ]
    assert not connection.closing
    connection.close()
