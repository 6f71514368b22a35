"""
shiji.client: against shijid serving the example (cookies, Shiji's errors and
the API's own), and against small servers made here for what the example
cannot do on demand (retries, timeouts, OAuth 2, hostile answers). Both
flavours, the Twisted Client and the httpx SyncClient, run the same cases
where they can.
"""

import base64
import builtins
import email.utils
import json
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import mylogin_api.v1_0.errors as login_errors
import pytest
import pytest_twisted
from daemons import example_daemon
from twisted.internet import defer, protocol, reactor, task, threads
from twisted.web import resource, server

from shiji import _client_errors, _json, webapi
from shiji._client_answer import AnswerBody, Headers
from shiji._client_call import Call
from shiji._client_errors import CONNECTION_REFUSED, ErrorClasses
from shiji._client_tries import Again, Tries
from shiji._oauth import Tokens
from shiji.client import (
    IDEMPOTENT_METHODS,
    APIError,
    BadAnswerError,
    Client,
    ClientError,
    ClientTimeoutError,
    ConnectionFailedError,
    OAuth2ClientCredentials,
    Response,
    Retry,
    SyncClient,
    TokenError,
)

VERSION = ("X-API-Version", "mylogin_api-1.0+prod")
PONG = (
    "PONG! Right back at ya. I'm production baby! (Timestamp Val: 7) "
    "(API: mylogin_api, Version: 1.0, Mode: prod)"
)
PASSWORD = "correct horse battery"


# -- shijid serving the example, and an API of its own that calls it ---------

RELAY_API = {
    "relay_api/__init__.py": """
from shiji import urldispatch

from . import v1_0

api_name = "relay_api"
api_versions = {"1.0": (r"1\\.0", v1_0)}
version_router = urldispatch.VersionRouter(api_versions)
""",
    "relay_api/v1_0/__init__.py": """
from shiji import urldispatch

from . import calls

call_router = urldispatch.CallRouter(calls)
""",
    "relay_api/v1_0/calls.py": """
from shiji import urldispatch
from shiji.client import Client


def example(request, version="1.0"):
    port = request.getHost().port
    return Client(f"http://127.0.0.1:{port}/myloginapi", "mylogin_api", version)


class RelayPingCall(urldispatch.URLMatchJSONResource):
    routes = r"ping"

    async def render_GET(self, request):
        async with example(request) as client:
            return {"relayed": await client.get("/ping/7")}


class RelayErrorCall(urldispatch.URLMatchJSONResource):
    routes = r"unknown_version"

    async def render_GET(self, request):
        async with example(request, "9.0") as client:
            try:
                await client.get("/ping")
            except client.error("UnknownAPIVersionError") as e:
                return {"caught": type(e).__name__, "status": e.status, "code": e.code}
""",
}


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    from mylogin_api import passwords

    if passwords.scrypt is None:
        pytest.skip("the example's login service needs scrypt")
    home = tmp_path_factory.mktemp("client")
    daemon = example_daemon(home)
    for name, text in RELAY_API.items():
        path = home / "examples" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    config = daemon.config.read_text()
    for old, new in [
        ("mylogin_api: myloginapi\n", "mylogin_api: myloginapi\nrelay_api: relay\n"),
        ("signup_attempts: 10\n", "signup_attempts: 1000\n"),
    ]:
        assert old in config
        config = config.replace(old, new)
    daemon.config.write_text(config)
    daemon.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{daemon.port}", daemon=daemon)
    try:
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    log = daemon.log_text()
    assert "Traceback" not in log and "Unhandled" not in log, log


def unique_email(name):
    return f"{name}.{time.monotonic_ns()}@example.com"


@pytest_twisted.async_yield_fixture
async def closing():
    """Clients and listening ports, closed after the test."""
    opened = []
    yield opened
    for thing in reversed(opened):
        if isinstance(thing, SyncClient):
            thing.close()
        elif isinstance(thing, Client):
            await thing.close()
        else:
            await thing.stopListening()


def example_client(example, closing, version="1.0", **options):
    client = Client(
        f"{example.url}/myloginapi", "mylogin_api", version, timeout=30, **options
    )
    closing.append(client)
    return client


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_sign_up_log_in_me_log_out_with_the_session_cookie(example, closing):
    client = example_client(example, closing, errors=login_errors)
    email = unique_email("ada")
    credentials = {"email": email, "password": PASSWORD}
    created = await client.post("/users", json=credentials)
    account = created["result"]
    assert created == {"result": {"id": account["id"], "email": email}}
    assert isinstance(account["id"], int)
    assert list(client.cookies) == []

    assert await client.post("/login", json=credentials) == created
    assert [cookie.name for cookie in client.cookies] == ["session"]
    assert await client.get("/me") == created
    sessions = await client.get("/me/sessions", params={"page": 0, "page_len": 5})
    assert sessions["result"]["page"] == 0
    assert sessions["result"]["page_len"] == 5
    assert len(sessions["result"]["expires"]) == 1

    assert await client.post("/logout") == {"result": "logged out"}
    with pytest.raises(client.error("InvalidAuthenticationError")) as raised:
        await client.get("/me")
    error = raised.value
    assert (error.status, error.code, error.exception_class) == (
        401,
        506,
        "InvalidAuthenticationError",
    )
    assert error.text == (
        "Authentication information is invalidly formed and/or missing "
        "required elements."
    )

    # Another client has no cookie: the session was this client's.
    other = example_client(example, closing)
    assert await other.post("/login", json=credentials) == created
    with pytest.raises(client.error("InvalidAuthenticationError")):
        await client.get("/me")
    assert await other.get("/me") == created


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_results_are_the_bodies_the_handlers_answer(example, closing):
    client = example_client(example, closing)
    assert client.version_header == VERSION
    # A bare string: Shiji wraps nothing around a success.
    assert await client.get("/ping/7") == PONG
    answer = await client.request(
        "POST",
        "/ping/7",
        params={"simple_auth_key": "abc"},
        json={"client_tz": -7, "client_id": "c1"},
    )
    assert sorted(answer["result"]) == [
        "client_id",
        "client_tz",
        "latency",
        "new_client",
    ]
    assert answer["result"]["client_tz"] == -7
    assert answer["result"]["client_id"] == "c1"
    assert answer["result"]["new_client"] is False

    response = await client.send(
        "POST", "/users", json={"email": unique_email("bo"), "password": PASSWORD}
    )
    assert isinstance(response, Response)
    assert response.status == 201
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.headers["Content-Type"] == response.headers["CONTENT-TYPE"]
    assert response.json == json.loads(response.body)

    testing = example_client(example, closing, mode="test")
    assert testing.version_header == ("X-API-Version", "mylogin_api-1.0+test")
    assert await testing.get("/ping/7") == PONG.replace(
        "I'm production baby!", "I'm in testing mode. :("
    ).replace("Mode: prod", "Mode: test")


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_shiji_errors_are_raised_as_their_classes(example, closing):
    client = example_client(example, closing, version="9.0")
    text = (
        "API version 'mylogin_api-9.0+prod' is invalid or specifies an "
        "API/version that does not exist."
    )
    with pytest.raises(APIError) as raised:
        await client.get("/ping")
    error = raised.value
    assert type(error) is client.error("UnknownAPIVersionError")
    assert type(error) is client.error(webapi.UnknownAPIVersionError)
    assert type(error).__name__ == "UnknownAPIVersionError"
    assert isinstance(error, ClientError) and not isinstance(error, webapi.APIError)
    assert (error.status, error.code, error.text, error.fields, error.problem) == (
        406,
        207,
        text,
        (),
        False,
    )
    assert error.body == {
        "result": None,
        "error": {
            "error_code": 207,
            "exception_class": "UnknownAPIVersionError",
            "exception_text": text,
        },
    }
    assert error.headers["Content-Type"] == "application/json; charset=utf-8"
    assert str(error) == f"UnknownAPIVersionError (406): {text}"

    # The same error as RFC 9457 problem details.
    problems = example_client(example, closing, version="9.0", problem_details=True)
    with pytest.raises(problems.error("UnknownAPIVersionError")) as raised:
        await problems.get("/ping")
    error = raised.value
    assert (error.status, error.code, error.text, error.problem) == (
        406,
        207,
        text,
        True,
    )
    assert error.body == {
        "type": "about:blank",
        "title": "Not Acceptable",
        "status": 406,
        "detail": text,
        "error_code": 207,
        "exception_class": "UnknownAPIVersionError",
    }
    assert error.headers["content-type"] == "application/problem+json"


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_a_value_error_carries_its_fields(example, closing):
    for problem_details in (False, True):
        client = example_client(example, closing, problem_details=problem_details)
        with pytest.raises(client.error("ValueError")) as raised:
            await client.post("/users", json={"email": "nobody", "password": 8})
        error = raised.value
        assert (error.status, error.code, error.exception_class) == (
            409,
            502,
            "ValueError",
        )
        assert (
            error.text
            == "Invalid value for argument 'email'. Must be an email address."
        )
        assert error.fields == (
            {
                "field": "email",
                "in": "body",
                "reason": "invalid",
                "expected": "an email address",
                "pointer": "#/email",
            },
            {
                "field": "password",
                "in": "body",
                "reason": "wrong type",
                "expected": "str",
                "pointer": "#/password",
            },
        )
        assert error.problem is problem_details
    # The original Shiji's form of the same error has no field list.
    with pytest.raises(client.error("ValueError")) as raised:
        await client.post(
            "/ping",
            params={"simple_auth_key": "xyz"},
            json={"client_tz": 1, "client_id": "c"},
        )
    assert (
        raised.value.text
        == "Invalid value for argument 'simple_auth_key'. Key isn't valid!"
    )
    assert not isinstance(raised.value, builtins.ValueError)


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_the_api_s_own_errors(example, closing):
    client = example_client(example, closing, errors=login_errors)
    email = unique_email("cy")
    await client.post("/users", json={"email": email, "password": PASSWORD})

    with pytest.raises(client.error(login_errors.LoginFailedError)) as raised:
        await client.post("/login", json={"email": email, "password": "wrong horse"})
    failed = raised.value
    assert type(failed) is client.error("LoginFailedError")
    assert (failed.status, failed.code, failed.text) == (
        401,
        111,
        "The email or the password is wrong.",
    )
    # A server class without a docstring does not lend its base's.
    assert type(failed).__doc__ == "LoginFailedError, as the API answers it."

    with pytest.raises(client.error("EmailTakenError")) as raised:
        await client.post("/users", json={"email": email, "password": PASSWORD})
    assert (raised.value.status, raised.value.code, raised.value.text) == (
        409,
        110,
        f"A user with the email '{email}' exists already.",
    )

    with pytest.raises(client.error("SampleNormalError")) as raised:
        await client.get("/sample_error/normal")
    assert raised.value.code == 100
    # Returned as str(error) by the handler, answered the same way.
    with pytest.raises(client.error("SampleAdvancedError")) as raised:
        await client.get("/sample_error/advanced")
    assert (raised.value.status, raised.value.code, raised.value.text) == (
        409,
        101,
        "A sample error that takes arguments in addition to 'request'. "
        "Extra Arg Value: extra argument",
    )

    # A client not told of the API's errors still raises them by name.
    plain = example_client(example, closing)
    with pytest.raises(plain.error("LoginFailedError")) as raised:
        await plain.post("/login", json={"email": email, "password": "wrong horse"})
    assert type(raised.value).__name__ == "LoginFailedError"
    assert type(raised.value) is not client.error("LoginFailedError")
    assert raised.value.code == 111


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_a_handler_in_shijid_calls_another_api(example, closing):
    relay = Client(f"{example.url}/relay", "relay_api", "1.0", timeout=30, retry=None)
    closing.append(relay)
    assert await relay.get("/ping") == {"relayed": PONG}
    assert await relay.get("/unknown_version") == {
        "caught": "UnknownAPIVersionError",
        "status": 406,
        "code": 207,
    }


@pytest.mark.slow
def test_the_sync_client_against_shijid(example):
    email = unique_email("di")
    credentials = {"email": email, "password": PASSWORD}
    with SyncClient(
        f"{example.url}/myloginapi", "mylogin_api", "1.0", errors=login_errors
    ) as client:
        assert client.version_header == VERSION
        assert client.get("/ping/7") == PONG
        created = client.post("/users", json=credentials)
        assert created == {"result": {"id": created["result"]["id"], "email": email}}
        with pytest.raises(client.error("LoginFailedError")) as raised:
            client.post("/login", json={"email": email, "password": "wrong horse"})
        assert (raised.value.status, raised.value.code) == (401, 111)
        assert client.post("/login", json=credentials) == created
        assert client.get("/me") == created
        assert client.post("/logout") == {"result": "logged out"}
        with pytest.raises(client.error("InvalidAuthenticationError")):
            client.get("/me")
        with pytest.raises(client.error("ValueError")) as raised:
            client.post("/users", json={"email": "nobody", "password": PASSWORD})
        assert raised.value.fields[0]["field"] == "email"


# -- servers made here ---------------------------------------------------------


def form(headers):
    return {name.lower(): value for name, value in headers.items()}


class Scripted(resource.Resource):
    """
    Answers each request with the next of ``answers`` (the last one
    repeats): ``(status, headers, body)``, or a function of the request
    (which may return ``server.NOT_DONE_YET``). Records every request.
    """

    isLeaf = True

    def __init__(self, *answers):
        super().__init__()
        self.answers = list(answers)
        self.requests = []
        self.lost = []

    def render(self, request):
        self.requests.append(
            SimpleNamespace(
                method=request.method.decode(),
                uri=request.uri.decode(),
                headers={
                    name.decode().lower(): ", ".join(v.decode() for v in values)
                    for name, values in request.requestHeaders.getAllRawHeaders()
                },
                body=request.content.read(),
            )
        )
        request.notifyFinish().addErrback(self.lost.append)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if callable(answer):
            return answer(request)
        status, headers, body = answer
        request.setResponseCode(status)
        for name, value in headers.items():
            request.setHeader(name, value)
        return body


JSON = {"Content-Type": "application/json; charset=utf-8"}


def envelope(status, code, name, text, **extra):
    error = {"error_code": code, "exception_class": name, "exception_text": text}
    error.update(extra)
    return (status, JSON, json.dumps({"result": None, "error": error}).encode())


UNAVAILABLE = envelope(
    503,
    217,
    "ServiceUnavailableError",
    "The service is not ready to answer this call; try again shortly.",
)
OK = (200, JSON, b'{"result":"ok"}')


class RawAnswer(protocol.Protocol):
    """Reads a request's head, then writes the factory's bytes as they are
    (``None``: closes without answering; ``...``: never answers)."""

    def connectionMade(self):
        self.received = b""

    def dataReceived(self, data):
        self.received += data
        if b"\r\n\r\n" in self.received and self.factory.answer is not ...:
            if self.factory.answer is not None:
                self.transport.write(self.factory.answer)
            self.transport.loseConnection()


def serve(closing, site_resource):
    port = reactor.listenTCP(0, server.Site(site_resource), interface="127.0.0.1")
    closing.append(port)
    return f"http://127.0.0.1:{port.getHost().port}"


def serve_raw(closing, answer):
    factory = protocol.Factory.forProtocol(RawAnswer)
    factory.answer = answer
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    closing.append(port)
    return f"http://127.0.0.1:{port.getHost().port}"


class Flavour:
    """
    One client flavour, driven alike: ``await flavour.run(client, "get",
    "/x")`` gives the result or raises, and ``flavour.waits`` lists the
    seconds waited between tries (on a ``Clock`` for the Twisted client, a
    recording ``sleep`` for the blocking one, so nobody waits for real).
    """

    def __init__(self, name, closing):
        self.name = name
        self.closing = closing
        self.clock = task.Clock()
        self.waits = []

    def client(self, url, **options):
        if self.name == "twisted":
            options.setdefault("timeout", None)
            client = Client(url + "/api", "my_api", "1.0", clock=self.clock, **options)
        else:
            options.setdefault("timeout", 10)
            client = SyncClient(
                url + "/api", "my_api", "1.0", sleep=self.waits.append, **options
            )
        self.closing.append(client)
        return client

    async def run(self, client, method, *args, **options):
        if self.name == "sync":
            return await threads.deferToThread(
                getattr(client, method), *args, **options
            )
        called = getattr(client, method)(*args, **options)
        deadline = time.monotonic() + 10
        while not called.called:
            assert time.monotonic() < deadline, "the call never ended"
            calls = self.clock.getDelayedCalls()
            if calls:
                (call,) = calls
                wait = call.getTime() - self.clock.seconds()
                self.waits.append(wait)
                self.clock.advance(wait)
            else:
                await task.deferLater(reactor, 0.005, lambda: None)
        return await called


@pytest.fixture(params=["twisted", "sync"])
def flavour(request, closing):
    return Flavour(request.param, closing)


@pytest_twisted.ensureDeferred
async def test_what_each_call_sends(flavour, closing):
    api = Scripted(OK)
    client = flavour.client(serve(closing, api), headers={"X-Trace": "t1"})
    assert await flavour.run(
        client,
        "post",
        "/things/1",
        params=[("q", "a b/é"), ("id", [1, 2]), ("flag", True)],
        json={"name": "Ada", "list": [1, 2.5, None]},
    ) == {"result": "ok"}
    assert await flavour.run(
        client,
        "delete",
        "/things/1?force=1",
        params={"why": "old"},
        headers={"x-trace": "t2", "Accept": "text/plain"},
    ) == {"result": "ok"}
    assert await flavour.run(
        client, "put", "/blob", data=b"\x00\x01", content_type="application/x-thing"
    ) == {"result": "ok"}
    await flavour.run(client, "patch", "/things/1", json={"a": 1})
    await flavour.run(client, "get", "things")

    first, second, third, fourth, fifth = api.requests
    assert (first.method, first.uri) == (
        "POST",
        "/api/things/1?q=a%20b%2F%C3%A9&id=1&id=2&flag=true",
    )
    assert first.body == b'{"name":"Ada","list":[1,2.5,null]}'
    assert first.headers["x-api-version"] == "my_api-1.0+prod"
    assert first.headers["accept"] == "application/json"
    assert first.headers["accept-encoding"] == "identity"
    assert first.headers["content-type"] == "application/json; charset=utf-8"
    assert first.headers["x-trace"] == "t1"
    assert "authorization" not in first.headers
    assert (second.method, second.uri, second.body) == (
        "DELETE",
        "/api/things/1?force=1&why=old",
        b"",
    )
    # A call's headers replace the client's, whatever their case.
    assert second.headers["x-trace"] == "t2"
    assert second.headers["accept"] == "text/plain"
    assert "content-type" not in second.headers
    assert (third.method, third.body) == ("PUT", b"\x00\x01")
    assert third.headers["content-type"] == "application/x-thing"
    assert (fourth.method, fourth.body) == ("PATCH", b'{"a":1}')
    assert (fifth.method, fifth.uri) == ("GET", "/api/things")


@pytest_twisted.ensureDeferred
async def test_a_bearer_token_and_problem_details_are_asked_for(flavour, closing):
    api = Scripted(OK)
    client = flavour.client(
        serve(closing, api), token="abc.DEF-123", problem_details=True
    )
    await flavour.run(client, "get", "/x")
    (sent,) = api.requests
    assert sent.headers["authorization"] == "Bearer abc.DEF-123"
    assert sent.headers["accept"] == "application/problem+json, application/json;q=0.9"


@pytest_twisted.ensureDeferred
async def test_what_is_refused_before_sending(flavour, closing):
    api = Scripted(OK)
    client = flavour.client(serve(closing, api))
    for path in ("/a b", "/a\r\nX-Evil: 1", "/café"):
        with pytest.raises(builtins.ValueError):
            await flavour.run(client, "get", path)
    with pytest.raises(builtins.ValueError):
        await flavour.run(client, "get", "/x", headers={"X-A": "1\r\nX-B: 2"})
    with pytest.raises(builtins.ValueError):
        await flavour.run(client, "post", "/x", json={"n": float("nan")})
    with pytest.raises(TypeError):
        await flavour.run(client, "post", "/x", json={"when": object()})
    with pytest.raises(TypeError):
        await flavour.run(client, "get", "/x", params={"q": None})
    assert api.requests == []
    with pytest.raises(builtins.ValueError):
        flavour.client("ftp://127.0.0.1/x")
    with pytest.raises(builtins.ValueError):
        Client("http://127.0.0.1/x", "my_api", "1.0", mode="staging")


def decoding_error(body):
    """What Shiji's JSON decoder says of ``body`` (its words differ by
    interpreter)."""
    with pytest.raises(_json.JSONBodyError) as raised:
        _json.loads(body)
    return str(raised.value)


ANSWERS = {
    "HTML 200": (
        (200, {"Content-Type": "text/html"}, b"<html>captive portal</html>"),
        200,
        "the answer is text/html, not JSON",
    ),
    "HTML 502 from a proxy": (
        (502, {"Content-Type": "text/html"}, b"<html><h1>502 Bad Gateway</h1></html>"),
        502,
        "an error answered as text/html, not JSON",
    ),
    "JSON not valid": (
        (200, JSON, b'{"result": tru'),
        200,
        "the answer is not valid JSON: " + decoding_error(b'{"result": tru'),
    ),
    "error JSON not valid": (
        (500, JSON, b'{"result": null, "error": {'),
        500,
        "an error answer that is not valid JSON: "
        + decoding_error(b'{"result": null, "error": {'),
    ),
    "NaN": (
        (200, JSON, b'{"x": NaN}'),
        200,
        "the answer is not valid JSON: NaN is not a JSON value",
    ),
    "error without the envelope": (
        (404, JSON, b'{"message": "not here"}'),
        404,
        "an error answer without Shiji's exception_class",
    ),
    "problem without exception_class": (
        (
            429,
            {"Content-Type": "application/problem+json"},
            b'{"type": "about:blank", "title": "Too Many Requests", "status": 429}',
        ),
        429,
        "an error answer without Shiji's exception_class",
    ),
    "a redirect": (
        (302, {"Location": "http://elsewhere/", "Content-Type": "text/html"}, b""),
        302,
        "a status that is neither success nor error",
    ),
}


@pytest.mark.parametrize("case", sorted(ANSWERS))
@pytest_twisted.ensureDeferred
async def test_answers_that_are_not_shiji_s_raise_bad_answer_error(
    flavour, closing, case
):
    answer, status, reason = ANSWERS[case]
    client = flavour.client(serve(closing, Scripted(answer)))
    with pytest.raises(BadAnswerError) as raised:
        await flavour.run(client, "get", "/x")
    error = raised.value
    assert (error.status, error.reason, error.body) == (status, reason, answer[2])
    assert error.headers["content-type"] == answer[1]["Content-Type"]
    assert str(error).startswith(f"HTTP {status}: {reason}")


@pytest_twisted.ensureDeferred
async def test_the_body_of_a_success_is_left_to_send(flavour, closing):
    answer = (200, {"Content-Type": "text/csv"}, b"a,b\n1,2\n")
    client = flavour.client(serve(closing, Scripted(answer, (204, {}, b""))))
    response = await flavour.run(client, "send", "GET", "/report")
    assert (response.status, response.body) == (200, b"a,b\n1,2\n")
    assert response.headers.get_all("content-type") == ["text/csv"]
    with pytest.raises(BadAnswerError) as raised:
        assert response.json is None
    assert raised.value.reason == "the answer is text/csv, not JSON"
    assert await flavour.run(client, "get", "/empty") is None


@pytest_twisted.ensureDeferred
async def test_an_answer_cut_off_or_garbled(flavour, closing):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    client = flavour.client(serve_raw(closing, head + b'{"result": [1, 2,'))
    with pytest.raises(BadAnswerError) as raised:
        await flavour.run(client, "get", "/x")
    assert (raised.value.status, raised.value.reason, raised.value.body) == (
        200,
        "the answer was cut off",
        b'{"result": [1, 2,',
    )

    client = flavour.client(serve_raw(closing, b"SMTP ready\r\n\r\n"))
    with pytest.raises(BadAnswerError) as raised:
        await flavour.run(client, "get", "/x")
    assert raised.value.status is None
    assert raised.value.reason.startswith("the answer is not well-formed HTTP")

    client = flavour.client(serve_raw(closing, None))
    with pytest.raises(ConnectionFailedError) as raised:
        await flavour.run(client, "get", "/x")
    assert raised.value.reason == "the connection closed before an answer"
    assert isinstance(raised.value, builtins.ConnectionError)


@pytest_twisted.ensureDeferred
async def test_an_answer_too_large(flavour, closing):
    body = b'{"result": "' + b"x" * 5000 + b'"}'
    client = flavour.client(
        serve(closing, Scripted((200, JSON, body))), max_answer_bytes=1000
    )
    with pytest.raises(BadAnswerError) as raised:
        await flavour.run(client, "get", "/x")
    assert raised.value.reason == "the answer is larger than 1000 bytes"
    assert len(raised.value.body) <= 1000
    assert body.startswith(raised.value.body)


class AccountError(webapi.APIError):
    """Something about an account; never sent itself."""


class FrozenAccountError(AccountError):
    error_code = 301
    exception_text = "The account is frozen."
    http_status = 423


class ClosedAccountError(AccountError):
    error_code = 302
    exception_class = "AccountClosed"
    exception_text = "The account is closed."


@pytest_twisted.ensureDeferred
async def test_server_classes_are_mirrored_with_their_bases(flavour, closing):
    api = Scripted(
        envelope(423, 301, "FrozenAccountError", "The account is frozen."),
        envelope(409, 302, "AccountClosed", "The account is closed."),
        envelope(409, 502, "ValueError", "Invalid value for argument 'id'. No."),
    )
    client = flavour.client(
        serve(closing, api), errors=[FrozenAccountError, ClosedAccountError]
    )
    with pytest.raises(client.error(AccountError)) as raised:
        await flavour.run(client, "get", "/x")
    frozen = raised.value
    assert type(frozen) is client.error("FrozenAccountError")
    assert type(frozen).__doc__ == "FrozenAccountError, as the API answers it."
    assert client.error(AccountError).__doc__ == (
        "Something about an account; never sent itself."
    )
    assert client.error("MethodNotAllowedError").__doc__ == (
        "The call has no handler for the request's method (HTTP 405, with\n``Allow``)."
    )
    assert issubclass(client.error(FrozenAccountError), client.error(AccountError))
    assert client.error(AccountError).__name__ == "AccountError"
    assert (frozen.status, frozen.code, frozen.text) == (
        423,
        301,
        "The account is frozen.",
    )

    # Named on the wire by its exception_class, not its Python name.
    with pytest.raises(client.error("AccountClosed")) as raised:
        await flavour.run(client, "get", "/x")
    assert type(raised.value) is client.error(ClosedAccountError)
    assert isinstance(raised.value, client.error(AccountError))

    # InvalidField answers as ValueError: one class for both.
    assert client.error(webapi.InvalidField) is client.error("ValueError")
    with pytest.raises(client.error(webapi.ValueError)):
        await flavour.run(client, "get", "/x")
    # Shiji's classes are shared by every client.
    other = flavour.client(serve(closing, api))
    assert other.error("ValueError") is client.error("ValueError")
    assert other.error("FrozenAccountError") is not client.error("FrozenAccountError")


@pytest_twisted.ensureDeferred
async def test_unknown_error_names(flavour, closing, monkeypatch):
    monkeypatch.setattr(_client_errors, "_MAX_MADE", 2)
    names = ["OneError", "Not a name!", "TwoError", "ThreeError", "OneError"]
    api = Scripted(*[envelope(409, 1, name, "Text.") for name in names])
    client = flavour.client(serve(closing, api))
    found = []
    for _ in names:
        with pytest.raises(APIError) as raised:
            await flavour.run(client, "get", "/x")
        found.append(type(raised.value))
        assert raised.value.exception_class == names[len(found) - 1]
    one, bad, two, three, one_again = found
    assert one.__name__ == "OneError" and one is one_again
    assert one is client.error("OneError") and issubclass(one, APIError)
    assert bad is APIError
    assert two.__name__ == "TwoError"
    # Past the classes a server's names may make, errors are plain.
    assert three is APIError
    # The caller may still name one.
    assert client.error("ThreeError").__name__ == "ThreeError"


def retry_after_date(seconds_later, server_clock=0):
    now = time.time() + server_clock
    return {
        "Date": email.utils.formatdate(now, usegmt=True),
        "Retry-After": email.utils.formatdate(now + seconds_later, usegmt=True),
    }


RETRIES = {
    "503, back-off": ([UNAVAILABLE, UNAVAILABLE, OK], [0.5, 1.0]),
    "429 with Retry-After seconds": (
        [(429, {"Retry-After": "2", **JSON}, b"{}"), OK],
        [2.0],
    ),
    "429 with Retry-After as an HTTP-date": (
        [(429, {**retry_after_date(3), **JSON}, b"{}"), OK],
        [3.0],
    ),
    "Retry-After as an HTTP-date from a server an hour slow": (
        [(503, {**retry_after_date(3, server_clock=-3600), **JSON}, b"{}"), OK],
        [3.0],
    ),
    "Retry-After in the past": (
        [(503, {**retry_after_date(-30), **JSON}, b"{}"), OK],
        [0.0],
    ),
    "Retry-After garbage": (
        [(503, {"Retry-After": "soon", **JSON}, b"{}"), OK],
        [0.5],
    ),
    "Retry-After of -1": (
        [(503, {"Retry-After": "-1", **JSON}, b"{}"), OK],
        [0.5],
    ),
    "HTML 503 from a proxy": (
        [(503, {"Content-Type": "text/html"}, b"<h1>down</h1>"), OK],
        [0.5],
    ),
}


@pytest.mark.parametrize("case", sorted(RETRIES))
@pytest_twisted.ensureDeferred
async def test_retries(flavour, closing, case):
    answers, waits = RETRIES[case]
    api = Scripted(*answers)
    client = flavour.client(serve(closing, api))
    assert await flavour.run(client, "get", "/x") == {"result": "ok"}
    assert flavour.waits == waits
    assert len(api.requests) == len(answers)
    assert {request.uri for request in api.requests} == {"/api/x"}


@pytest_twisted.ensureDeferred
async def test_retries_stop(flavour, closing):
    api = Scripted(UNAVAILABLE)
    client = flavour.client(serve(closing, api), retry=Retry(attempts=4, max_wait=1.5))
    with pytest.raises(client.error("ServiceUnavailableError")) as raised:
        await flavour.run(client, "get", "/x")
    assert raised.value.status == 503
    assert flavour.waits == [0.5, 1.0, 1.5]
    assert len(api.requests) == 4

    # A wait past max_wait is not waited, nor a huge one.
    for retry_after in ("11", "99999999999999999999999"):
        api = Scripted((429, {"Retry-After": retry_after, **JSON}, b"{}"), OK)
        client = flavour.client(serve(closing, api))
        with pytest.raises(BadAnswerError) as raised:
            await flavour.run(client, "get", "/x")
        assert raised.value.status == 429
        assert raised.value.headers["retry-after"] == retry_after
        assert len(api.requests) == 1
    assert flavour.waits == [0.5, 1.0, 1.5]

    api = Scripted(UNAVAILABLE, OK)
    client = flavour.client(serve(closing, api), retry=None)
    with pytest.raises(client.error("ServiceUnavailableError")):
        await flavour.run(client, "get", "/x")
    assert len(api.requests) == 1


@pytest_twisted.ensureDeferred
async def test_only_idempotent_calls_are_retried_unless_asked(flavour, closing):
    assert sorted(IDEMPOTENT_METHODS) == [
        "DELETE",
        "GET",
        "HEAD",
        "OPTIONS",
        "PUT",
        "TRACE",
    ]
    api = Scripted(UNAVAILABLE)
    client = flavour.client(serve(closing, api))
    for method in ("post", "patch"):
        with pytest.raises(client.error("ServiceUnavailableError")):
            await flavour.run(client, method, "/x", json={})
    assert len(api.requests) == 2

    api = Scripted(UNAVAILABLE, OK)
    client = flavour.client(serve(closing, api))
    assert await flavour.run(client, "post", "/x", json={}, idempotent=True) == {
        "result": "ok"
    }
    assert len(api.requests) == 2

    api = Scripted(UNAVAILABLE, OK)
    client = flavour.client(serve(closing, api), retry=Retry(methods={"post"}))
    assert await flavour.run(client, "post", "/x", json={}) == {"result": "ok"}
    assert [request.method for request in api.requests] == ["POST", "POST"]
    assert [request.body for request in api.requests] == [b"{}", b"{}"]

    api = Scripted(UNAVAILABLE, OK)
    client = flavour.client(serve(closing, api))
    with pytest.raises(client.error("ServiceUnavailableError")):
        await flavour.run(client, "get", "/x", idempotent=False)
    assert flavour.waits == [0.5, 0.5]


def free_port():
    port = reactor.listenTCP(0, protocol.Factory(), interface="127.0.0.1")
    number = port.getHost().port
    return port, number


@pytest_twisted.ensureDeferred
async def test_connection_refused(flavour, closing):
    port, number = free_port()
    await port.stopListening()
    url = f"http://127.0.0.1:{number}"
    client = flavour.client(url)
    with pytest.raises(ConnectionFailedError) as raised:
        await flavour.run(client, "get", "/x")
    assert raised.value.reason == "connection refused"
    assert raised.value.url == f"{url}/api/x"
    assert flavour.waits == []

    client = flavour.client(url, retry=Retry(connection_refused=True))
    with pytest.raises(ConnectionFailedError):
        await flavour.run(client, "post", "/x", json={})
    assert flavour.waits == [0.5, 1.0]


@pytest_twisted.ensureDeferred
async def test_connection_refused_then_served():
    port, number = free_port()
    await port.stopListening()
    clock = task.Clock()
    client = Client(
        f"http://127.0.0.1:{number}/api",
        "my_api",
        "1.0",
        clock=clock,
        timeout=None,
        retry=Retry(connection_refused=True, attempts=2),
    )
    api = Scripted(OK)
    called = client.get("/x")
    deadline = time.monotonic() + 10
    while not clock.getDelayedCalls():
        assert time.monotonic() < deadline
        await task.deferLater(reactor, 0.005, lambda: None)
    assert clock.getDelayedCalls()[0].getTime() == 0.5
    listening = reactor.listenTCP(number, server.Site(api), interface="127.0.0.1")
    try:
        clock.advance(0.5)
        assert await called == {"result": "ok"}
        assert len(api.requests) == 1
    finally:
        await client.close()
        await listening.stopListening()


def hang(request):
    return server.NOT_DONE_YET


@pytest_twisted.ensureDeferred
async def test_timeouts(closing):
    clock = task.Clock()
    api = Scripted(hang)
    url = serve(closing, api)
    client = Client(url + "/api", "my_api", "1.0", clock=clock, timeout=5)
    closing.append(client)
    for timeout, options in [(5, {}), (2, {"timeout": 2})]:
        called = client.get("/x", **options)
        deadline = time.monotonic() + 10
        while len(api.requests) < 1 + (timeout == 2):
            assert time.monotonic() < deadline
            await task.deferLater(reactor, 0.005, lambda: None)
        (timer,) = clock.getDelayedCalls()
        assert timer.getTime() - clock.seconds() == timeout
        clock.advance(timeout)
        with pytest.raises(ClientTimeoutError) as raised:
            await called
        assert raised.value.timeout == timeout
        assert raised.value.url == f"{url}/api/x"
        assert isinstance(raised.value, builtins.TimeoutError)
        assert (
            str(raised.value) == f"no answer from {url}/api/x within {timeout} seconds"
        )
    # The server saw both connections go.
    deadline = time.monotonic() + 10
    while len(api.lost) < 2:
        assert time.monotonic() < deadline
        await task.deferLater(reactor, 0.005, lambda: None)

    # An answer in time leaves no timer behind.
    quick = Client(
        serve(closing, Scripted(OK)) + "/api", "my_api", "1.0", clock=clock, timeout=5
    )
    closing.append(quick)
    assert await quick.get("/x") == {"result": "ok"}
    assert clock.getDelayedCalls() == []


@pytest_twisted.ensureDeferred
async def test_a_call_cancelled_by_its_caller(closing):
    clock = task.Clock()
    api = Scripted(hang)
    client = Client(serve(closing, api) + "/api", "my_api", "1.0", clock=clock)
    closing.append(client)
    called = client.get("/x")
    deadline = time.monotonic() + 10
    while not api.requests:
        assert time.monotonic() < deadline
        await task.deferLater(reactor, 0.005, lambda: None)
    called.cancel()
    with pytest.raises(defer.CancelledError):
        await called
    assert clock.getDelayedCalls() == []


def test_the_sync_client_times_out(tmp_path):
    import socket

    # A server that accepts connections (the kernel does) and never answers.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/api"
        with SyncClient(url, "my_api", "1.0", timeout=0.3) as client:
            started = time.monotonic()
            with pytest.raises(ClientTimeoutError) as raised:
                client.get("/x")
            assert 0.3 <= time.monotonic() - started < 5
            assert raised.value.timeout == 0.3
    finally:
        listener.close()


# -- OAuth 2 client credentials -----------------------------------------------


class TokenEndpoint(resource.Resource):
    """
    Gives tokens t1, t2, ... lasting ``lifetime`` seconds; records each
    request. With ``held``, answers only when ``release()`` is called.
    """

    isLeaf = True

    def __init__(self, lifetime=100, answer=None):
        super().__init__()
        self.lifetime = lifetime
        self.answer = answer
        self.requests = []
        self.held = None

    def render_POST(self, request):
        self.requests.append(
            SimpleNamespace(
                authorization=request.getHeader(b"authorization"),
                content_type=request.getHeader(b"content-type"),
                body=request.content.read(),
            )
        )
        if self.answer is not None:
            status, headers, body = self.answer
            request.setResponseCode(status)
            for name, value in headers.items():
                request.setHeader(name, value)
            return body
        token = {"access_token": f"t{len(self.requests)}", "token_type": "Bearer"}
        if self.lifetime is not None:
            token["expires_in"] = self.lifetime
        request.setHeader(b"content-type", b"application/json")
        if self.held is not None:
            self.held.append((request, json.dumps(token).encode()))
            return server.NOT_DONE_YET
        return json.dumps(token).encode()

    def release(self):
        for request, body in self.held:
            request.write(body)
            request.finish()
        self.held = None


BEARER_REFUSED = {"WWW-Authenticate": 'Bearer realm="my_api", error="invalid_token"'}


class BearerAPI(resource.Resource):
    """
    Accepts the tokens in ``valid``; answers Shiji's 401 to others, with
    a Bearer challenge.
    """

    isLeaf = True

    def __init__(self, *valid):
        super().__init__()
        self.valid = set(valid)
        self.seen = []

    def render(self, request):
        sent = (request.getHeader(b"authorization") or b"").decode()
        self.seen.append(sent)
        token = sent[len("Bearer ") :] if sent.startswith("Bearer ") else None
        status, headers, body = (
            OK
            if token in self.valid
            else envelope(
                401,
                506,
                "InvalidAuthenticationError",
                "Authentication information is invalidly formed and/or "
                "missing required elements.",
            )
        )
        request.setResponseCode(status)
        for name, value in headers.items():
            request.setHeader(name, value)
        if status == 401:
            request.setHeader("WWW-Authenticate", BEARER_REFUSED["WWW-Authenticate"])
        return body


def oauth(closing, endpoint, **options):
    token_url = serve(closing, endpoint) + "/oauth/token"
    return OAuth2ClientCredentials(token_url, "my client", "s3:cr&t", **options)


@pytest_twisted.ensureDeferred
async def test_oauth_token_fetched_kept_and_refreshed_before_expiry(flavour, closing):
    endpoint = TokenEndpoint(lifetime=100)
    api = BearerAPI("t1", "t2")
    credentials = oauth(closing, endpoint, scope="read write")
    now = [1000.0]
    options = {"clock": (lambda: now[0])} if flavour.name == "sync" else {}
    client = flavour.client(serve(closing, api), token=credentials, **options)

    def advance(seconds):
        now[0] += seconds
        flavour.clock.advance(seconds)

    assert await flavour.run(client, "get", "/x") == {"result": "ok"}
    assert await flavour.run(client, "get", "/x") == {"result": "ok"}
    (asked,) = endpoint.requests
    assert asked.authorization == b"Basic " + base64.b64encode(b"my+client:s3%3Acr%26t")
    assert asked.content_type == b"application/x-www-form-urlencoded"
    assert asked.body == b"grant_type=client_credentials&scope=read+write"
    # Refreshed 30 seconds (the leeway) before its 100 are out.
    advance(69.5)
    await flavour.run(client, "get", "/x")
    assert len(endpoint.requests) == 1
    advance(0.5)
    await flavour.run(client, "get", "/x")
    assert len(endpoint.requests) == 2
    assert api.seen == ["Bearer t1"] * 3 + ["Bearer t2"]
    assert "t1" not in repr(credentials) and "s3:cr&t" not in repr(credentials)


@pytest_twisted.ensureDeferred
async def test_oauth_a_401_refreshes_once(flavour, closing):
    endpoint = TokenEndpoint(lifetime=None)
    api = BearerAPI("t1")
    client = flavour.client(serve(closing, api), token=oauth(closing, endpoint))
    assert await flavour.run(client, "get", "/x") == {"result": "ok"}
    api.valid = {"t2"}  # t1 revoked
    assert await flavour.run(client, "get", "/x") == {"result": "ok"}
    assert api.seen == ["Bearer t1", "Bearer t1", "Bearer t2"]
    assert len(endpoint.requests) == 2

    api.valid = set()  # nothing accepted: refreshed once, then raised
    with pytest.raises(client.error("InvalidAuthenticationError")) as raised:
        await flavour.run(client, "post", "/x", json={})
    assert raised.value.status == 401
    assert api.seen[3:] == ["Bearer t2", "Bearer t3"]
    assert len(endpoint.requests) == 3
    assert flavour.waits == []


@pytest_twisted.ensureDeferred
async def test_oauth_concurrent_calls_share_one_refresh(closing):
    endpoint = TokenEndpoint()
    endpoint.held = []
    api = BearerAPI("t1")
    client = Client(
        serve(closing, api) + "/api", "my_api", "1.0", token=oauth(closing, endpoint)
    )
    closing.append(client)
    calls = [client.get("/x") for _ in range(3)]
    deadline = time.monotonic() + 10
    while not endpoint.held:
        assert time.monotonic() < deadline
        await task.deferLater(reactor, 0.005, lambda: None)
    await task.deferLater(reactor, 0.05, lambda: None)
    assert len(endpoint.requests) == 1
    assert api.seen == []
    endpoint.release()
    assert await defer.gatherResults(calls) == [{"result": "ok"}] * 3
    assert api.seen == ["Bearer t1"] * 3
    assert len(endpoint.requests) == 1


def test_oauth_concurrent_sync_calls_share_one_refresh(tmp_path):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    fetched = []
    release = threading.Event()

    def handler(request):
        if request.url.path == "/oauth/token":
            fetched.append(request)
            release.wait(10)
            return httpx.Response(
                200,
                json={"access_token": "t1", "token_type": "bearer", "expires_in": 60},
            )
        assert request.headers["authorization"] == "Bearer t1"
        return httpx.Response(200, json={"result": "ok"})

    credentials = OAuth2ClientCredentials(
        "https://auth.test/oauth/token", "id", "secret", credentials_in_body=True
    )
    client = SyncClient(
        "http://api.test/api",
        "my_api",
        "1.0",
        token=credentials,
        transport=httpx.MockTransport(handler),
    )
    with client, ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(client.get, "/x") for _ in range(3)]
        deadline = time.monotonic() + 10
        while not fetched:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        release.set()
        assert [future.result(10) for future in futures] == [{"result": "ok"}] * 3
    (asked,) = fetched
    assert "authorization" not in asked.headers
    assert asked.content == (
        b"grant_type=client_credentials&client_id=id&client_secret=secret"
    )


TOKEN_FAILURES = {
    "refused": (
        (400, JSON, b'{"error": "invalid_client", "error_description": "Bad secret."}'),
        (400, "invalid_client", "Bad secret."),
    ),
    "not JSON": (
        (502, {"Content-Type": "text/html"}, b"<h1>Bad Gateway</h1>"),
        (502, None, "the answer is not a JSON object"),
    ),
    "no access_token": (
        (200, JSON, b'{"token_type": "Bearer"}'),
        (200, None, "the answer has no access_token"),
    ),
    "not a bearer token": (
        (200, JSON, b'{"access_token": "t", "token_type": "mac"}'),
        (200, None, "token_type 'mac' is not Bearer"),
    ),
    "a token that cannot be a header": (
        (200, JSON, b'{"access_token": "t\\r\\nX: y", "token_type": "Bearer"}'),
        (200, None, "the access_token cannot be sent as a header"),
    ),
    "expires_in not a number": (
        (
            200,
            JSON,
            b'{"access_token": "t", "token_type": "Bearer", "expires_in": "1h"}',
        ),
        (200, None, "expires_in '1h' is not a number"),
    ),
}


@pytest.mark.parametrize("case", sorted(TOKEN_FAILURES))
@pytest_twisted.ensureDeferred
async def test_oauth_token_failures(flavour, closing, case):
    answer, expected = TOKEN_FAILURES[case]
    endpoint = TokenEndpoint(answer=answer)
    api = BearerAPI("t1")
    client = flavour.client(serve(closing, api), token=oauth(closing, endpoint))
    for tries in (1, 2):
        with pytest.raises(TokenError) as raised:
            await flavour.run(client, "get", "/x")
        assert (
            raised.value.status,
            raised.value.error,
            raised.value.description,
        ) == expected
        # Nothing cached: the next call asks again.
        assert len(endpoint.requests) == tries
    assert api.seen == []


def test_retry_is_checked():
    with pytest.raises(builtins.ValueError):
        Retry(attempts=0)
    with pytest.raises(TypeError):
        Retry(attempts=2.5)
    with pytest.raises(builtins.ValueError):
        Retry(backoff=-1)
    assert Retry() == Retry(
        attempts=3,
        backoff=0.5,
        max_wait=10,
        statuses={429, 503},
        methods=IDEMPOTENT_METHODS,
        connection_refused=False,
    )
    assert Retry(methods={"post", "Get"}).methods == {"POST", "GET"}
    assert [Retry(backoff=1, max_wait=5).back_off(n) for n in (1, 2, 3, 4)] == [
        1.0,
        2.0,
        4.0,
        5.0,
    ]


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_the_readme_s_example_works(example):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Calling an API from Python\n", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert "http://127.0.0.1:9990/myloginapi" in code
    code = code.replace("http://127.0.0.1:9990", example.url)
    namespace = {}
    exec(
        "async def example(print):\n"
        + textwrap.indent(code, "    ")
        + "    return client, me\n",
        namespace,
    )
    printed = []
    client, me = await namespace["example"](lambda *line: printed.append(line))
    assert printed == [(401, 111, "The email or the password is wrong.")]
    assert me == {"result": {"id": me["result"]["id"], "email": "ada@example.com"}}
    assert [cookie.name for cookie in client.cookies] == ["session"]


def test_the_client_s_defaults():
    client = Client("http://127.0.0.1:9/api", "my_api", "1.0")
    assert (client.timeout, client.retry, client.max_answer_bytes) == (
        30,
        Retry(),
        16 * 1024 * 1024,
    )
    assert client.version_header == ("X-API-Version", "my_api-1.0+prod")
    with SyncClient("http://127.0.0.1:9/api", "my_api", "1.0") as sync:
        assert (sync.timeout, sync.retry, sync.max_answer_bytes) == (
            30,
            Retry(),
            16 * 1024 * 1024,
        )
    other = Client(
        "http://127.0.0.1:9/api",
        "my_api",
        "2.1",
        "test",
        version_header="X-DigiTar-API-Version",
        retry=None,
    )
    assert other.version_header == ("X-DigiTar-API-Version", "my_api-2.1+test")
    assert other.retry == Retry(attempts=1)


# -- the decisions both flavours share, without I/O ----------------------------


def tries_of(method="GET", headers=None, tokens=None, **retry):
    call = Call(method, "http://api.test/api/x", dict(headers or {}), None)
    return Tries(call, Retry(**retry), None, ErrorClasses(), tokens, now=lambda: 0)


def answer_of(status, headers, body):
    return status, Headers(headers.items()), body


def test_tries_wait_on_a_retried_status_then_raise_its_error():
    tries = tries_of()
    assert tries.start() is tries.call
    assert tries.answered(*answer_of(*UNAVAILABLE)) == Again(0.5)
    tries.start()
    asked = answer_of(503, {"Retry-After": "2", **JSON}, b"{}")
    assert tries.answered(*asked) == Again(2.0)
    tries.start()
    with pytest.raises(APIError) as raised:
        tries.answered(*answer_of(*UNAVAILABLE))
    assert raised.value.exception_class == "ServiceUnavailableError"

    posted = tries_of("POST")
    posted.start()
    with pytest.raises(APIError):
        posted.answered(*answer_of(*UNAVAILABLE))

    done = tries_of()
    done.start()
    response = done.answered(*answer_of(*OK))
    assert isinstance(response, Response)
    assert response.json == {"result": "ok"}


def test_tries_retry_a_refused_connection_only_when_asked():
    url = "http://api.test/api/x"
    refused = ConnectionFailedError(url, CONNECTION_REFUSED)
    tries = tries_of(connection_refused=True, attempts=2)
    tries.start()
    assert tries.failed(refused) == Again(0.5)
    tries.start()
    with pytest.raises(ConnectionFailedError) as raised:
        tries.failed(refused)
    assert raised.value is refused

    for tries, error in [
        (tries_of(), refused),
        (tries_of(connection_refused=True), ConnectionFailedError(url, "no host")),
    ]:
        tries.start()
        with pytest.raises(ConnectionFailedError):
            tries.failed(error)


def test_a_refused_token_is_forgotten_and_the_call_sent_once_more():
    now = [1000.0]
    credentials = OAuth2ClientCredentials("https://auth.test/token", "id", "secret")
    tokens = Tokens(credentials, lambda: now[0])
    assert tokens.current() is None
    assert tokens.request().url == "https://auth.test/token"
    body = b'{"access_token": "t1", "token_type": "Bearer", "expires_in": 100}'
    assert tokens.fetched(200, JSON, body) == "t1"
    assert tokens.current() == "t1"
    now[0] += 70  # within the 30 seconds of leeway
    assert tokens.current() is None
    tokens.fetched(200, JSON, body)

    tries = tries_of(tokens=tokens)
    assert tries.tokens is tokens
    assert tries.start("t1").headers == {"Authorization": "Bearer t1"}
    status, headers, body = envelope(401, 1, "InvalidAuthenticationError", "Who?")
    refused = answer_of(status, {**headers, **BEARER_REFUSED}, body)
    assert tries.answered(*refused) == Again(None)
    assert tokens.current() is None
    tries.start("t2")
    with pytest.raises(APIError) as raised:
        tries.answered(*refused)
    assert raised.value.exception_class == "InvalidAuthenticationError"

    # The caller's own credentials: no token is sent, and a 401 is raised.
    own = tries_of(headers={"authorization": "Basic eDp5"}, tokens=tokens)
    assert own.tokens is None
    own.start()
    with pytest.raises(APIError):
        own.answered(*refused)


def test_an_answer_body_is_kept_up_to_its_limit():
    body = AnswerBody(5, 200, Headers([("Content-Type", "text/plain")]))
    body.add(b"abc")
    assert body.answer()[::2] == (200, b"abc")
    assert body.cut_off().reason == "the answer was cut off"
    with pytest.raises(BadAnswerError) as raised:
        body.add(b"def")
    assert raised.value.reason == "the answer is larger than 5 bytes"
    assert raised.value.body == b"abc"


# -- deadlines, encodings and the API's own 401s ------------------------------


class Trickle(protocol.Protocol):
    """
    Answers a request slowly: the status line, then a header line (or,
    with ``factory.slow == "body"``, a byte of the body) every 0.1 s, and
    after 20 of them the rest of the answer; records a lost connection.
    """

    def connectionMade(self):
        self.received = b""
        self.loop = None

    def dataReceived(self, data):
        self.received += data
        if b"\r\n\r\n" not in self.received or self.loop is not None:
            return
        if self.factory.slow == "body":
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: 35\r\n\r\n" + b'{"result": "'
            )
        else:
            self.transport.write(b"HTTP/1.1 200 OK\r\n")
        self.sent = 0
        self.loop = task.LoopingCall(self.more)
        self.loop.start(0.1)

    def more(self):
        self.sent += 1
        if self.sent > 20:
            self.loop.stop()
            if self.factory.slow == "body":
                self.transport.write(b'"}')
            else:
                self.transport.write(
                    b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
                )
        elif self.factory.slow == "body":
            self.transport.write(b"x")
        else:
            self.transport.write(b"X-Slow-%d: 1\r\n" % self.sent)

    def connectionLost(self, reason):
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        self.factory.lost.append(reason)


@pytest.mark.parametrize("slow", ["headers", "body"])
@pytest_twisted.ensureDeferred
async def test_the_sync_client_s_timeout_bounds_the_whole_call(closing, slow):
    factory = protocol.Factory.forProtocol(Trickle)
    factory.slow, factory.lost = slow, []
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    closing.append(port)
    url = f"http://127.0.0.1:{port.getHost().port}/api"
    # Every read takes 0.1 s, well within the timeout; the whole would
    # take over 2 s.
    client = SyncClient(url, "my_api", "1.0", timeout=0.5, retry=None)
    closing.append(client)
    started = time.monotonic()
    with pytest.raises(ClientTimeoutError) as raised:
        await threads.deferToThread(client.get, "/x")
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 1.5
    assert (raised.value.timeout, raised.value.url) == (0.5, f"{url}/x")
    # The connection was closed, not left to trickle on.
    deadline = time.monotonic() + 10
    while not factory.lost:
        assert time.monotonic() < deadline
        await task.deferLater(reactor, 0.005, lambda: None)


def test_the_sync_client_s_deadline_holds_across_threads():
    from shiji._client_transport import Deadlines

    deadlines = Deadlines()
    assert deadlines.cap(3.0, TimeoutError) == 3.0
    with deadlines.until(time.monotonic() + 100):
        assert 99 < deadlines.cap(None, TimeoutError) <= 100
        assert deadlines.cap(2.0, TimeoutError) == 2.0
        # Another thread's I/O keeps its own (no) deadline.
        seen = []
        other = threading.Thread(
            target=lambda: seen.append(deadlines.cap(7.0, OSError))
        )
        other.start()
        other.join(10)
        assert seen == [7.0]
    with deadlines.until(time.monotonic() - 1), pytest.raises(TimeoutError) as raised:
        deadlines.cap(5.0, TimeoutError)
    assert str(raised.value) == "the call's deadline has passed"
    assert deadlines.cap(None, TimeoutError) is None


def deflated(data):
    import zlib

    return zlib.compress(data)


@pytest_twisted.ensureDeferred
async def test_encoded_answers_are_not_decoded(flavour, closing):
    large = b'{"result": "' + b"0" * 300_000 + b'"}'
    small_when_sent = deflated(large)
    assert len(small_when_sent) < 1000
    encoded = {**JSON, "Content-Encoding": "deflate"}
    api = Scripted(
        (200, encoded, small_when_sent),
        (200, {**JSON, "Content-Encoding": "gzip"}, b"not gzip at all"),
        (200, encoded, small_when_sent),
    )
    client = flavour.client(serve(closing, api), max_answer_bytes=1000)
    with pytest.raises(BadAnswerError) as raised:
        await flavour.run(client, "get", "/x")
    assert (raised.value.status, raised.value.reason, raised.value.body) == (
        200,
        "the answer is encoded as deflate, which was not asked for",
        b"",
    )
    with pytest.raises(BadAnswerError) as raised:
        await flavour.run(client, "get", "/x")
    assert raised.value.reason == (
        "the answer is encoded as gzip, which was not asked for"
    )
    assert [sent.headers["accept-encoding"] for sent in api.requests] == [
        "identity",
        "identity",
    ]
    # Asked for, an encoding is given as it came, counted as it came.
    response = await flavour.run(
        client, "send", "GET", "/x", headers={"Accept-Encoding": "deflate"}
    )
    assert (response.status, response.body) == (200, small_when_sent)
    assert response.headers["content-encoding"] == "deflate"
    assert api.requests[2].headers["accept-encoding"] == "deflate"


def test_an_encoding_not_asked_for_is_refused():
    from shiji._client_answer import encoding_error

    headers = Headers([("Content-Encoding", "GZip")])
    error = encoding_error(200, headers, None)
    assert (error.status, error.reason) == (
        200,
        "the answer is encoded as gzip, which was not asked for",
    )
    assert encoding_error(200, headers, "gzip;q=1.0, br") is None
    assert encoding_error(200, headers, "*") is None
    assert (
        encoding_error(200, Headers([("Content-Encoding", "identity")]), None) is None
    )
    assert encoding_error(200, Headers(), None) is None
    both = Headers([("Content-Encoding", "gzip, br")])
    assert encoding_error(200, both, "gzip").reason == (
        "the answer is encoded as br, which was not asked for"
    )


class LoginAPI(resource.Resource):
    """
    ``POST /api/login`` refuses every password with the example's
    ``LoginFailedError``, and the session cookie's challenge; records the
    tokens sent.
    """

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.seen = []

    def render_POST(self, request):
        self.seen.append((request.getHeader(b"authorization") or b"").decode())
        status, headers, body = envelope(
            401, 111, "LoginFailedError", "The email or the password is wrong."
        )
        request.setResponseCode(status)
        for name, value in headers.items():
            request.setHeader(name, value)
        request.setHeader(
            "WWW-Authenticate", 'Cookie realm="my_api", cookie-name="session"'
        )
        return body


@pytest_twisted.ensureDeferred
async def test_oauth_the_api_s_own_401_is_raised_at_once(flavour, closing):
    endpoint = TokenEndpoint(lifetime=None)
    api = LoginAPI()
    client = flavour.client(
        serve(closing, api), token=oauth(closing, endpoint), errors=login_errors
    )
    for _ in range(2):
        with pytest.raises(client.error("LoginFailedError")) as raised:
            await flavour.run(client, "post", "/login", json={"password": "wrong"})
        assert (raised.value.status, raised.value.code) == (401, 111)
    # Each login sent once, with the one token: it was not refused.
    assert api.seen == ["Bearer t1", "Bearer t1"]
    assert len(endpoint.requests) == 1


CHALLENGES = {
    "none": ([], False),
    "the session cookie's": (['Cookie realm="my_api", cookie-name="session"'], False),
    "HTTP Basic": (['Basic realm="my_api", charset="UTF-8"'], False),
    "Bearer, invalid_token": (['Bearer realm="my_api", error="invalid_token"'], True),
    "Bearer, no error": (["Bearer"], True),
    "bearer, token values": (["bearer error=invalid_token"], True),
    "BEARER among others": (['Basic realm="a, Bearer b", BEARER realm="x"'], True),
    "Bearer in a second header": (
        ['Basic realm="x"', 'Bearer error="invalid_token"'],
        True,
    ),
    "Bearer, another error": (['Bearer error="invalid_request"'], False),
    "Bearer, insufficient_scope": (['Bearer error="insufficient_scope"'], False),
    "Bearer only as a realm": (['Newauth realm="Bearer"'], False),
    "Bearer only in a quoted string": (['Basic realm="x, Bearer"'], False),
    "a token68 before Bearer": (["Negotiate abc==, Bearer"], True),
}


@pytest.mark.parametrize("case", sorted(CHALLENGES))
def test_only_a_bearer_challenge_refreshes_the_token(case):
    values, refreshes = CHALLENGES[case]
    credentials = OAuth2ClientCredentials("https://auth.test/token", "id", "secret")
    tokens = Tokens(credentials, lambda: 0.0)
    tokens.fetched(200, JSON, b'{"access_token": "t1", "token_type": "Bearer"}')
    status, headers, body = envelope(401, 506, "InvalidAuthenticationError", "Who?")
    answer = (
        status,
        Headers([*headers.items(), *(("WWW-Authenticate", v) for v in values)]),
        body,
    )
    tries = tries_of(tokens=tokens)
    tries.start("t1")
    if refreshes:
        assert tries.answered(*answer) == Again(None)
        assert tokens.current() is None
    else:
        with pytest.raises(APIError) as raised:
            tries.answered(*answer)
        assert raised.value.exception_class == "InvalidAuthenticationError"
        assert tokens.current() == "t1"


def test_www_authenticate_is_parsed():
    from shiji._oauth import challenges

    assert challenges(
        [
            'Bearer realm="a\\"b", error="invalid_token", '
            'error_description="The token expired",Basic realm=x',
            "",
            'Newauth abc==, , Digest a=b, c="d, e"',
        ]
    ) == [
        (
            "bearer",
            {
                "realm": 'a"b',
                "error": "invalid_token",
                "error_description": "The token expired",
            },
        ),
        ("basic", {"realm": "x"}),
        ("newauth", {}),
        ("digest", {"a": "b", "c": "d, e"}),
    ]
    # Reading stops at what is not well-formed.
    assert challenges(['Bearer realm="x" junk, Basic']) == [("bearer", {})]
    assert challenges(["=Bearer"]) == []


def test_expires_in_as_a_string_of_digits():
    now = [1000.0]
    credentials = OAuth2ClientCredentials("https://auth.test/token", "id", "secret")
    tokens = Tokens(credentials, lambda: now[0])
    body = b'{"access_token": "t1", "token_type": "Bearer", "expires_in": "100"}'
    assert tokens.fetched(200, JSON, body) == "t1"
    now[0] += 69.5
    assert tokens.current() == "t1"
    now[0] += 0.5  # 30 seconds of leeway
    assert tokens.current() is None
    for bad in ('"1h"', '"-5"', '"inf"', '"NaN"', '" 100"', '""', '"1e3"'):
        body = b'{"access_token": "t", "token_type": "Bearer", "expires_in": %s}' % (
            bad.encode()
        )
        with pytest.raises(TokenError) as raised:
            tokens.fetched(200, JSON, body)
        assert (
            raised.value.description
            == f"expires_in {json.loads(bad)!r} is not a number"
        )


def test_a_token_url_over_http_only_to_a_loopback_host():
    for url in (
        "http://127.0.0.1:9000/token",
        "http://127.8.9.10/token",
        "http://[::1]:9000/token",
        "http://localhost/token",
        "http://LOCALHOST:8080/token",
        "https://auth.example/token",
    ):
        assert OAuth2ClientCredentials(url, "id", "secret").token_url == url
    for url in (
        "http://auth.example/token",
        "http://10.0.0.1/token",
        "http://[::2]/token",
        "http://localhost.example/token",
        "http://128.0.0.1/token",
    ):
        with pytest.raises(builtins.ValueError) as raised:
            OAuth2ClientCredentials(url, "id", "secret")
        assert str(raised.value) == (
            "the token_url must be https, or http to a loopback host: over "
            f"http the client secret would travel in clear: {url!r}"
        )
