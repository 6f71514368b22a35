"""
Filters: functions chained around a call, declared on an API, a version
and a call class; what they may do before and after the call, how their
errors are answered, what they are never asked about, how they are
documented, and how bad declarations are refused.
"""

import gc
import json
import sys
from types import ModuleType

import pytest
import pytest_twisted
from apitools import envelope, without_date
from daemons import TESTS, failing_run, run_shijid
from twisted.internet import defer, reactor, task
from twisted.logger import formatEvent, globalLogPublisher

from shiji import webapi
from shiji.docs import (
    describe_api,
    html_document,
    json_document,
    markdown_document,
    openapi_document,
)
from shiji.testing import TestClient
from shiji.urldispatch import (
    APIDefinitionError,
    APIRouter,
    CallRouter,
    URLMatchJSONResource,
    VersionRouter,
)

JSON = "application/json; charset=utf-8"
KEY = {"X-API-Key": "k3y-for-tests"}


@pytest.fixture
def logged():
    events = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


@pytest.fixture(scope="module")
def filter_api():
    """The README's three examples: tests/daemon_apis/filter_api."""
    sys.path.insert(0, str(TESTS / "daemon_apis"))
    try:
        import filter_api

        yield filter_api
    finally:
        sys.path.remove(str(TESTS / "daemon_apis"))


def make_api(calls, api_filters=None, version_filters=None, name="f_api"):
    """An API of one version, 1.0, with filters where asked for."""
    calls_module = ModuleType(f"{name}.v1_0.calls")
    for call in calls:
        setattr(calls_module, call.__name__, call)
    version = ModuleType(f"{name}.v1_0")
    version.call_router = CallRouter(calls_module, filters=version_filters)
    api = ModuleType(name)
    api.api_name = name
    api.api_versions = {"1.0": (r"1\.0", version)}
    api.version_router = VersionRouter(api.api_versions)
    if api_filters is not None:
        api.filters = api_filters
    return api


def client(calls, **filters):
    return TestClient({"f": make_api(calls, **filters)})


class Echo(URLMatchJSONResource):
    """Says what it was asked, and records that it ran."""

    routes = r"echo/(?P<word>[a-z]+)"
    seen = []

    def render_GET(self, request):
        Echo.seen.append("handler")
        return {"word": self.url_matches["word"]}


def echo_with(filters):
    """An ``Echo`` whose class declares ``filters``."""
    return type("Echo", (Echo,), {"filters": filters})


@pytest.fixture(autouse=True)
def fresh_record():
    Echo.seen = []
    yield


# The three kinds of filter, each recording what runs around it.


def plain(name):
    def plain_filter(request, call_next):
        Echo.seen.append(f"{name} in")
        result = call_next(request)
        Echo.seen.append(f"{name} after call_next")
        return result

    return plain_filter


def deferred(name):
    def deferred_filter(request, call_next):
        Echo.seen.append(f"{name} in")

        def after(result):
            Echo.seen.append(f"{name} out")
            return result

        return call_next(request).addCallback(after)

    return deferred_filter


def coroutine(name):
    async def async_filter(request, call_next):
        Echo.seen.append(f"{name} in")
        result = await call_next(request)
        Echo.seen.append(f"{name} out")
        return result

    return async_filter


# Each level, and the order of the chain.


def header_filter(value):
    async def add_header(request, call_next):
        result = await call_next(request)
        request.add_header("X-Filtered", value)
        return result

    return add_header


@pytest.mark.parametrize("level", ["api", "version", "call"])
@pytest_twisted.ensureDeferred
async def test_a_filter_at_each_level_runs_around_the_call(level):
    filters = [header_filter(level)]
    if level == "call":
        test_client = client([echo_with(filters)])
    else:
        test_client = client([Echo], **{f"{level}_filters": filters})
    response = await test_client.get("/f/echo/hello")
    assert response.status == 200
    assert without_date(response.headers) == {
        "server": "Shiji API Server",
        "x-filtered": level,
        "content-type": JSON,
        "content-length": "16",
    }
    assert response.body == b'{"word":"hello"}'
    assert Echo.seen == ["handler"]


@pytest_twisted.ensureDeferred
async def test_the_chain_runs_api_then_version_then_call_first_filter_outermost():
    test_client = client(
        [echo_with([plain("call 1"), deferred("call 2")])],
        api_filters=[deferred("api 1"), coroutine("api 2")],
        version_filters=[coroutine("version")],
    )
    response = await test_client.get("/f/echo/hello")
    assert response.status == 200
    assert response.json == {"word": "hello"}
    assert Echo.seen == [
        "api 1 in",
        "api 2 in",
        "version in",
        "call 1 in",
        "call 2 in",
        "handler",
        "call 2 out",
        "call 1 after call_next",
        "version out",
        "api 2 out",
        "api 1 out",
    ]


@pytest_twisted.ensureDeferred
async def test_each_call_of_each_version_has_its_own_chain():
    class Other(URLMatchJSONResource):
        routes = r"other"

        def render_GET(self, request):
            return {"other": True}

    test_client = client(
        [echo_with([header_filter("echo")]), Other],
        api_filters=[coroutine("api")],
    )
    response = await test_client.get("/f/other")
    assert response.json == {"other": True}
    assert "x-filtered" not in response.headers
    assert Echo.seen == ["api in", "api out"]


# Before the call: answering alone, refusing, changing the request.


@pytest_twisted.ensureDeferred
async def test_a_filter_answers_alone_by_returning_a_result():
    def cached(request, call_next):
        request.setHeader("X-Cache", "hit")
        return {"word": "cached"}

    response = await client([echo_with([cached])]).get("/f/echo/hello")
    assert response.status == 200
    assert without_date(response.headers) == {
        "server": "Shiji API Server",
        "x-cache": "hit",
        "content-type": JSON,
        "content-length": "17",
    }
    assert response.body == b'{"word":"cached"}'
    assert Echo.seen == []


class QuotaError(webapi.APIError):
    error_code = 701
    exception_text = "The quota of %s calls is spent."
    http_status = 429


def over_quota(request, call_next):
    """Refuse every call: the quota is spent."""
    raise QuotaError(request, "100")


@pytest_twisted.ensureDeferred
async def test_a_filter_refuses_with_an_api_error():
    response = await client([Echo], api_filters=[over_quota]).get("/f/echo/hello")
    assert response.status == 429
    assert without_date(response.headers) == {
        "server": "Shiji API Server",
        "content-type": JSON,
        "vary": "Accept",
        "content-length": "125",
    }
    assert response.json == envelope(
        "QuotaError", 701, "The quota of 100 calls is spent."
    )
    assert Echo.seen == []


@pytest_twisted.ensureDeferred
async def test_a_filters_api_error_as_problem_details():
    response = await client([Echo], version_filters=[over_quota]).get(
        "/f/echo/hello", headers={"Accept": "application/problem+json"}
    )
    assert response.status == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json == {
        "type": "about:blank",
        "title": "Too Many Requests",
        "status": 429,
        "detail": "The quota of 100 calls is spent.",
        "error_code": 701,
        "exception_class": "QuotaError",
    }
    assert Echo.seen == []


@pytest_twisted.ensureDeferred
async def test_an_async_filter_refusing_after_a_wait():
    async def later_refusal(request, call_next):
        await task.deferLater(reactor, 0, lambda: None)
        raise QuotaError(request, "5")

    response = await client([echo_with([later_refusal])]).get("/f/echo/hello")
    assert response.status == 429
    assert response.json == envelope(
        "QuotaError", 701, "The quota of 5 calls is spent."
    )
    assert Echo.seen == []


@pytest.mark.parametrize("kind", ["plain", "async"])
@pytest_twisted.ensureDeferred
async def test_an_exception_in_a_filter_is_a_500_with_a_request_id(kind, logged):
    def broken(request, call_next):
        raise KeyError("secret detail")

    async def broken_async(request, call_next):
        await call_next(request)
        raise KeyError("secret detail")

    chosen = broken if kind == "plain" else broken_async
    response = await client([Echo], api_filters=[chosen]).get("/f/echo/hello")
    assert response.status == 500
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 16
    assert response.json == envelope(
        "UnexpectedServerError",
        505,
        "An unexpected error has occurred processing the request. "
        f"Error: 'request id {request_id}'",
    )
    assert b"secret" not in response.body
    [failure] = [e for e in logged if e.get("request_id") == request_id]
    assert "secret detail" in failure["log_failure"].getTraceback()
    assert formatEvent(failure) == (
        f"Unexpected error answering GET /f/echo/hello (request id {request_id})"
    )
    gc.collect()
    assert [e for e in logged if "Unhandled error" in formatEvent(e)] == []
    assert Echo.seen == ([] if kind == "plain" else ["handler"])


class Reads(URLMatchJSONResource):
    routes = r"reads"

    def render_GET(self, request):
        return {
            "args": request.args,
            "tenant": request.tenant,
            "api_call": request.api_call,
        }


@pytest_twisted.ensureDeferred
async def test_a_filter_changes_the_request_before_the_call():
    def rewrite(request, call_next):
        """Set the tenant, and a default for ``lang``."""
        request.tenant = f"tenant of {request.api_call} {request.api_version}"
        request.args.setdefault("lang", ["en"])
        return call_next(request)

    test_client = client([Reads], version_filters=[rewrite])
    response = await test_client.get("/f/reads?x=1")
    assert response.status == 200
    assert response.json == {
        "args": {"x": ["1"], "lang": ["en"]},
        "tenant": "tenant of Reads 1.0",
        "api_call": "Reads",
    }
    response = await test_client.get("/f/reads?lang=fr")
    assert response.json["args"] == {"lang": ["fr"]}


class Headers(URLMatchJSONResource):
    routes = r"headers"

    def render_GET(self, request):
        return {
            "authorization": request.getHeader("Authorization"),
            "legacy": request.getHeader("X-Legacy-Token"),
            "all": [value.decode() for value in request.header_values(b"x-tag")],
            "session": request.getCookie(b"session").decode(),
        }


@pytest_twisted.ensureDeferred
async def test_a_filter_changes_the_request_headers_before_the_call():
    def legacy_token(request, call_next):
        """Move X-Legacy-Token into Authorization."""
        token = request.getHeader("X-Legacy-Token")
        if token is not None:
            request.set_request_header("Authorization", f"Bearer {token}")
            request.set_request_header(b"X-Legacy-Token", None)
        request.set_request_header("X-Tag", "one\r\nInjected: yes")
        request.set_request_header("Cookie", "session=s2")
        return call_next(request)

    test_client = client([Headers], version_filters=[legacy_token])
    response = await test_client.get(
        "/f/headers",
        headers={
            "X-Legacy-Token": "abc",
            "Authorization": "Basic eA==",
            "X-Tag": "a",
            "Cookie": "session=s1",
        },
    )
    assert response.status == 200
    assert response.json == {
        "authorization": "Bearer abc",
        "legacy": None,
        "all": ["one Injected: yes"],
        "session": "s2",
    }


# After the call: changing the result, the status and the headers.


@pytest_twisted.ensureDeferred
async def test_a_filter_changes_the_result_and_the_headers_after_the_call():
    def wrap(request, call_next):
        def enveloped(result):
            request.setResponseCode(203)
            request.setHeader("X-Wrapped", "yes")
            return {"data": result, "call": request.api_call}

        return call_next(request).addCallback(enveloped)

    response = await client([echo_with([wrap])]).get("/f/echo/hello")
    assert response.status == 203
    assert without_date(response.headers) == {
        "server": "Shiji API Server",
        "x-wrapped": "yes",
        "content-type": JSON,
        "content-length": "39",
    }
    assert response.body == b'{"data":{"word":"hello"},"call":"Echo"}'


class Slow(URLMatchJSONResource):
    routes = r"slow/(?P<how>[a-z]+)"

    def render_GET(self, request):
        how = self.url_matches["how"]
        if how == "deferred":
            return task.deferLater(reactor, 0.01, lambda: {"slow": "deferred"})
        if how == "refuses":
            return task.deferLater(
                reactor, 0, lambda: QuotaError(request, "0")
            ).addCallback(_raise)
        raise AssertionError(how)

    async def render_POST(self, request):
        await task.deferLater(reactor, 0, lambda: None)
        return {"slow": "coroutine"}


def _raise(error):
    raise error


@pytest.mark.parametrize(
    "method, path, expected",
    [
        ("GET", "/f/slow/deferred", {"slow": "deferred", "seen": ["1", "2"]}),
        ("POST", "/f/slow/any", {"slow": "coroutine", "seen": ["1", "2"]}),
    ],
)
@pytest_twisted.ensureDeferred
async def test_async_and_deferred_filters_around_async_handlers(method, path, expected):
    async def first(request, call_next):
        result = await call_next(request)
        return {**result, "seen": ["1", *result["seen"]]}

    def second(request, call_next):
        later = task.deferLater(reactor, 0, lambda: None)
        later.addCallback(lambda _: call_next(request))
        return later.addCallback(lambda result: {**result, "seen": ["2"]})

    test_client = client([Slow], api_filters=[first], version_filters=[second])
    response = await test_client.request(method, path)
    assert response.status == 200
    assert response.json == expected


@pytest_twisted.ensureDeferred
async def test_a_filter_catches_the_handlers_error_and_answers_instead():
    async def forgiving(request, call_next):
        try:
            return await call_next(request)
        except QuotaError as error:
            request.setResponseCode(202)
            return {"queued": error.exception_text}

    response = await client([Slow], version_filters=[forgiving]).get("/f/slow/refuses")
    assert response.status == 202
    assert response.json == {"queued": "The quota of 0 calls is spent."}


@pytest_twisted.ensureDeferred
async def test_the_handlers_error_passes_through_the_filters():
    response = await client([Slow], api_filters=[coroutine("api")]).get(
        "/f/slow/refuses"
    )
    assert response.status == 429
    assert response.json == envelope(
        "QuotaError", 701, "The quota of 0 calls is spent."
    )
    assert Echo.seen == ["api in"]


class Fails(URLMatchJSONResource):
    routes = r"fails/(?P<how>[a-z]+)"

    def render_GET(self, request):
        if self.url_matches["how"] == "refuses":
            raise QuotaError(request, "1")
        raise KeyError("secret detail")


def passthrough(request, call_next):
    """Go on."""
    return call_next(request)


@pytest_twisted.ensureDeferred
async def test_a_handlers_error_through_a_plain_filter_is_answered_once(logged):
    test_client = client([Fails], api_filters=[passthrough])
    response = await test_client.get("/f/fails/refuses")
    assert response.status == 429
    assert response.json == envelope(
        "QuotaError", 701, "The quota of 1 calls is spent."
    )
    response = await test_client.get("/f/fails/crashes")
    assert response.status == 500
    request_id = response.headers["x-request-id"]
    [failure] = [e for e in logged if e.get("request_id") == request_id]
    assert "secret detail" in failure["log_failure"].getTraceback()
    assert b"secret" not in response.body
    gc.collect()  # a Deferred left failed says so when it is collected
    assert [e for e in logged if "Unhandled error" in formatEvent(e)] == []


@pytest_twisted.ensureDeferred
async def test_a_filter_that_goes_on_waiting_after_a_quick_handler():
    def later(request, call_next):
        def wait(result):
            return task.deferLater(reactor, 0, lambda: {**result, "late": True})

        return call_next(request).addCallback(wait)

    response = await client([echo_with([later])]).get("/f/echo/hello")
    assert response.status == 200
    assert response.json == {"word": "hello", "late": True}


# Misuse: call_next twice, or its result left alone.


def raw_get(path):
    return (
        b"GET %s HTTP/1.1\r\nHost: localhost\r\nX-API-Version: f_api-1.0+prod\r\n\r\n"
        % path
    )


def test_call_next_twice_is_a_500_and_the_handler_runs_once(logged):
    def twice(request, call_next):
        call_next(request)
        return call_next(request)

    test_client = client([echo_with([twice])])
    connection = test_client.connect()
    connection.send(raw_get(b"/f/echo/hello"))
    [response] = connection.responses()
    assert response.status == 500
    request_id = response.headers["x-request-id"]
    [failure] = [e for e in logged if e.get("request_id") == request_id]
    assert failure["log_failure"].getErrorMessage() == (
        "the filter twice called call_next twice; it runs the rest of the "
        "chain once per request"
    )
    assert Echo.seen == ["handler"]
    connection.close()


class Writes(URLMatchJSONResource):
    routes = r"writes"

    def render_GET(self, request):
        Echo.seen.append("handler")
        webapi.write_json(request, {"written": "by the handler"})


def test_call_next_twice_after_the_handler_answered_writes_nothing_more(logged):
    async def twice(request, call_next):
        await call_next(request)
        return await call_next(request)

    test_client = client([Writes], version_filters=[twice])
    connection = test_client.connect()
    connection.send(raw_get(b"/f/writes"))
    [response] = connection.responses()
    assert response.status == 200
    assert response.json == {"written": "by the handler"}
    assert connection.received.endswith(b'{"written":"by the handler"}')
    [failure] = [e for e in logged if "log_failure" in e]
    assert "called call_next twice" in failure["log_failure"].getErrorMessage()
    assert Echo.seen == ["handler"]
    connection.close()


@pytest_twisted.ensureDeferred
async def test_a_filter_ignoring_what_call_next_gives_answers_with_its_own():
    def ignores(request, call_next):
        call_next(request)
        return {"word": "the filter's"}

    response = await client([echo_with([ignores])]).get("/f/echo/hello")
    assert response.status == 200
    assert response.json == {"word": "the filter's"}
    assert Echo.seen == ["handler"]


@pytest_twisted.ensureDeferred
async def test_a_handler_that_answered_itself_keeps_its_answer(logged):
    def ignores(request, call_next):
        call_next(request)
        return {"word": "the filter's"}

    response = await client([Writes], api_filters=[ignores]).get("/f/writes")
    assert response.status == 200
    assert response.json == {"written": "by the handler"}
    warnings = [
        formatEvent(e)
        for e in logged
        if "after finishing the response" in e.get("log_format", "")
    ]
    assert warnings == [
        "GET /f/writes: the handler returned a value after finishing the "
        "response; the value was dropped"
    ]


# Deadlines, HEAD, and what routing answers before any filter.


class Hangs(URLMatchJSONResource):
    routes = r"hangs"
    cancelled = []

    def render_GET(self, request):
        Echo.seen.append("handler")
        return defer.Deferred(lambda d: Hangs.cancelled.append(True))


@pytest_twisted.ensureDeferred
async def test_the_request_timeout_covers_the_whole_chain():
    Hangs.cancelled = []
    api = make_api([Hangs], api_filters=[coroutine("api")])
    test_client = TestClient({"f": api}, request_timeout=0.05)
    pending = test_client.get("/f/hangs")
    test_client.clock.advance(0.04)
    assert not pending.called
    test_client.clock.advance(0.02)
    response = await pending
    assert response.status == 503
    assert response.json == envelope(
        "RequestTimeoutError", 211, "The API call did not complete within 0.05 seconds."
    )
    assert Hangs.cancelled == [True]
    assert Echo.seen == ["api in", "handler"]


@pytest_twisted.ensureDeferred
async def test_the_request_timeout_covers_a_filter_that_never_goes_on():
    def stalls(request, call_next):
        return defer.Deferred()

    api = make_api([Echo], version_filters=[stalls])
    test_client = TestClient({"f": api}, request_timeout=0.05)
    pending = test_client.get("/f/echo/hello")
    test_client.clock.advance(0.06)
    response = await pending
    assert response.status == 503
    assert response.json["error"]["exception_class"] == "RequestTimeoutError"
    assert Echo.seen == []


@pytest_twisted.ensureDeferred
async def test_head_runs_the_filters_around_render_get():
    test_client = client(
        [echo_with([header_filter("call")])], api_filters=[plain("api")]
    )
    response = await test_client.head("/f/echo/hello")
    assert response.status == 200
    assert without_date(response.headers) == {
        "server": "Shiji API Server",
        "x-filtered": "call",
        "content-type": JSON,
        "content-length": "16",
    }
    assert response.body == b""
    assert Echo.seen == ["api in", "handler", "api after call_next"]


@pytest.mark.parametrize(
    "method, path, version, status, error_class",
    [
        ("GET", "/nothing/echo/hello", "1.0", 404, "UnknownAPIError"),
        ("GET", "/f/echo/hello", "9.0", 406, "UnknownAPIVersionError"),
        ("GET", "/f/nothing", "1.0", 404, "UnknownAPICallError"),
        ("GET", "/f/echo/NOT", "1.0", 404, "UnknownAPICallError"),
        ("DELETE", "/f/echo/hello", "1.0", 405, "MethodNotAllowedError"),
        ("OPTIONS", "/f/echo/hello", None, 204, None),
    ],
)
@pytest_twisted.ensureDeferred
async def test_routing_answers_without_the_filters(
    method, path, version, status, error_class
):
    test_client = client(
        [echo_with([plain("call")])],
        api_filters=[plain("api")],
        version_filters=[plain("version")],
    )
    response = await test_client.request(method, path, version=version)
    assert response.status == status
    if error_class is None:
        assert response.headers["allow"] == "GET, HEAD, OPTIONS"
    else:
        assert response.json["error"]["exception_class"] == error_class
    assert Echo.seen == []


# The README's examples, in tests/daemon_apis/filter_api.


@pytest_twisted.ensureDeferred
async def test_the_api_key_example(filter_api):
    test_client = TestClient({"f": filter_api})
    for headers in ({}, {"X-API-Key": "wrong"}):
        response = await test_client.get("/f/users", headers=headers)
        assert response.status == 401
        assert without_date(response.headers) == {
            "server": "Shiji API Server",
            "www-authenticate": 'APIKey realm="filter_api"',
            "content-type": JSON,
            "vary": "Accept",
            "content-length": "131",
        }
        assert response.json == envelope(
            "APIKeyError", 601, "A valid X-API-Key header is required."
        )
    response = await test_client.post("/f/users", json={}, headers=KEY)
    assert response.status == 201
    assert response.json == {"added": True}


@pytest_twisted.ensureDeferred
async def test_the_response_header_example(filter_api):
    test_client = TestClient({"f": filter_api})
    response = await test_client.get("/f/users", headers=KEY)
    assert response.status == 200
    assert without_date(response.headers) == {
        "server": "Shiji API Server",
        "vary": "Accept",
        "cache-control": "max-age=60",
        "content-type": JSON,
        "content-length": "60",
    }
    assert response.json == [
        {"name": "ada", "role": "admin"},
        {"name": "bob", "role": "user"},
    ]
    response = await test_client.head("/f/users", headers=KEY)
    assert response.headers["cache-control"] == "max-age=60"
    response = await test_client.post("/f/users", json={}, headers=KEY)
    assert "cache-control" not in response.headers


@pytest_twisted.ensureDeferred
async def test_the_csv_example(filter_api):
    test_client = TestClient({"f": filter_api})
    response = await test_client.get("/f/users", headers={**KEY, "Accept": "text/csv"})
    assert response.status == 200
    assert without_date(response.headers) == {
        "server": "Shiji API Server",
        "vary": "Accept",
        "content-type": "text/csv; charset=utf-8",
        "cache-control": "max-age=60",
        "content-length": "32",
    }
    assert response.body == b"name,role\r\nada,admin\r\nbob,user\r\n"


@pytest.mark.slow
def test_an_api_filter_over_a_socket(shijid):
    daemon = shijid({"apis": {"filter_api": "filtered"}})
    version = {"X-API-Version": "filter_api-1.0+prod"}
    status, headers, body = daemon.request("GET", "/filtered/users", headers=version)
    assert status == 401
    assert headers["WWW-Authenticate"] == 'APIKey realm="filter_api"'
    assert json.loads(body) == envelope(
        "APIKeyError", 601, "A valid X-API-Key header is required."
    )
    status, headers, body = daemon.request(
        "GET", "/filtered/users", headers={**version, **KEY, "Accept": "text/csv"}
    )
    assert status == 200
    assert headers["Content-Type"] == "text/csv; charset=utf-8"
    assert headers["Cache-Control"] == "max-age=60"
    assert body == b"name,role\r\nada,admin\r\nbob,user\r\n"
    # Another API served beside it has no filter.
    status, _, _ = daemon.request("GET", "/probe/probe")
    assert status == 200


# Declarations refused when the API is loaded.


def one_argument(request):
    return {}


async def three_arguments(request, call_next, extra):
    return {}


def keyword_only(request, *, call_next):
    return {}


def flexible(request, call_next, *more, option=None, **named):
    """Takes what a filter is given, and more."""
    return call_next(request)


BAD_FILTERS = [
    (
        flexible,
        " must be a list of filter(request, call_next) functions, not function",
    ),
    ("flexible", " must be a list of filter(request, call_next) functions, not str"),
    ([flexible, 3], "[1] is int, not a filter(request, call_next)"),
    (
        [one_argument],
        "[0]: one_argument(request) cannot be called as filter(request, call_next)",
    ),
    (
        (flexible, three_arguments),
        "[1]: three_arguments(request, call_next, extra) cannot be called as "
        "filter(request, call_next)",
    ),
    (
        [keyword_only],
        "[0]: keyword_only(request, *, call_next) cannot be called as "
        "filter(request, call_next)",
    ),
]


@pytest.mark.parametrize("filters, message", BAD_FILTERS)
def test_bad_api_filters_are_refused_when_the_router_is_built(filters, message):
    api = make_api([Echo], api_filters=filters)
    with pytest.raises(APIDefinitionError) as raised:
        APIRouter({"f": api})
    assert str(raised.value) == f"f_api.filters{message}"
    with pytest.raises(APIDefinitionError) as raised:
        describe_api(api)
    assert str(raised.value) == f"f_api.filters{message}"


@pytest.mark.parametrize("filters, message", BAD_FILTERS)
def test_bad_version_filters_are_refused(filters, message):
    with pytest.raises(APIDefinitionError) as raised:
        make_api([Echo], version_filters=filters)
    assert str(raised.value) == f"CallRouter(f_api.v1_0.calls, filters=...){message}"


@pytest.mark.parametrize("filters, message", BAD_FILTERS)
def test_bad_call_filters_are_refused(filters, message):
    with pytest.raises(APIDefinitionError) as raised:
        make_api([echo_with(filters)])
    assert str(raised.value) == f"test_filters.Echo.filters{message}"


@pytest_twisted.ensureDeferred
async def test_a_module_named_filters_is_no_declaration():
    # An API written before filters existed may have a module of that name.
    api = make_api([Echo], api_filters=ModuleType("f_api.filters"))
    router = APIRouter({"f": api})
    assert router.apis[0][1] is api
    response = await TestClient({"f": api}).get("/f/echo/hi")
    assert response.status == 200
    assert response.json == {"word": "hi"}
    assert Echo.seen == ["handler"]


def test_filters_that_take_more_are_accepted():
    class Checker:
        def __call__(self, request, call_next, *rest):
            return call_next(request)

    api = make_api([echo_with((flexible,))], api_filters=[Checker(), print])
    assert APIRouter({"f": api}).apis[0][1] is api
    assert api.version_router.call_routers()[0].filters_of(Echo) == ()


BAD_PACKAGE = """
from shiji import urldispatch

from . import v1_0

api_name = "bad_api"
api_versions = {"1.0": (r"1\\.0", v1_0)}
version_router = urldispatch.VersionRouter(api_versions)
filters = ["not a filter"]
"""

BAD_VERSION = """
from shiji import urldispatch

from . import calls



def late(request):
    return None


call_router = urldispatch.CallRouter(calls, filters=[print, late])
"""


@pytest.mark.slow
@pytest.mark.parametrize("where", ["api", "version"])
def test_shijid_refuses_bad_filters_in_one_line(tmp_path, where):
    apis = tmp_path / "apis"
    version = apis / "bad_api" / "v1_0"
    version.mkdir(parents=True)
    (apis / "bad_api" / "__init__.py").write_text(
        BAD_PACKAGE if where == "api" else BAD_PACKAGE.replace("filters = ", "# ")
    )
    (version / "__init__.py").write_text(
        BAD_VERSION if where == "version" else BAD_VERSION.replace(", filters=[", ")#")
    )
    (version / "calls.py").write_text("")
    text = (
        f"[general]\nlisten_ip: 127.0.0.1\nlisten_port: 0\nbase_path: {apis}\n\n"
        "[apis]\nbad_api: bad\n"
    )
    path, line = failing_run(tmp_path / "run", text=text)
    if where == "api":
        assert line == (
            f"shijid: error: {path}: [apis]: bad_api.filters[0] is str, not a "
            "filter(request, call_next)"
        )
    else:
        prefix = (
            f"shijid: error: {path}: [apis] bad_api: cannot import bad_api: "
            "APIDefinitionError: CallRouter(bad_api.v1_0.calls, filters=...)[1]: "
            "late(request) cannot be called as filter(request, call_next) ("
        )
        assert line == prefix + f"{version / '__init__.py'}, line 12)"
    check = run_shijid("--check", "-c", str(path))
    assert (check.returncode, check.stdout) == (1, "")
    assert check.stderr.splitlines() == [line]


# The documentation.


def test_the_model_lists_each_calls_filters_in_chain_order(filter_api):
    [version] = describe_api(filter_api).versions
    [users] = version.calls
    assert [(f.name, f.description) for f in users.filters] == [
        ("require_api_key", "Refuse calls without a known X-API-Key header."),
        (
            "cache_for_a_minute",
            "Let clients keep a successful GET's answer for a minute.",
        ),
        (
            "csv_if_accepted",
            "Answer with CSV when the client's Accept asks for text/csv.",
        ),
    ]


def test_errors_a_filter_declares_are_the_calls(filter_api):
    declarations = json_document(describe_api(filter_api))["versions"]["1.0"][
        "declarations"
    ]
    filters = [
        {
            "name": "require_api_key",
            "description": "Refuse calls without a known X-API-Key header.",
        },
        {
            "name": "cache_for_a_minute",
            "description": "Let clients keep a successful GET's answer for a minute.",
        },
        {
            "name": "csv_if_accepted",
            "description": "Answer with CSV when the client's Accept asks for text/csv.",
        },
    ]
    for method in ("GET", "POST"):
        assert declarations["users"][method]["errors"] == [
            {"exception_class": "APIKeyError", "error_code": 601, "http_status": 401}
        ]
        assert declarations["users"][method]["filters"] == filters


def test_a_filters_raises_leaves_the_handlers_errors_undeclared():
    class OwnError(webapi.APIError):
        error_code = 801
        exception_text = "The handler's own."

    class Plain(URLMatchJSONResource):
        routes = r"plain"

        def render_GET(self, request):
            raise OwnError(request)

    @webapi.raises(QuotaError)
    def quota(request, call_next):
        return call_next(request)

    calls = ModuleType("f_api.v1_0.calls")
    calls.Plain, calls.OwnError = Plain, OwnError
    version = ModuleType("f_api.v1_0")
    version.call_router = CallRouter(calls, filters=[quota])
    sys.modules["f_api.v1_0.calls"] = calls
    try:
        api = ModuleType("f_api")
        api.api_name = "f_api"
        api.api_versions = {"1.0": (r"1\.0", version)}
        api.version_router = VersionRouter(api.api_versions)
        doc = describe_api(api)
    finally:
        del sys.modules["f_api.v1_0.calls"]
    [plain_call] = doc.versions[0].calls
    [get] = plain_call.methods
    assert [d.handler_errors for d in get.described] == [False]
    operation = openapi_document(doc, "1.0")["paths"]["/plain"]["get"]
    assert "QuotaError" in operation["responses"]["429"]["description"]
    assert "OwnError" in operation["responses"]["409"]["description"]


def test_markdown_and_html_list_the_filters(filter_api):
    doc = describe_api(filter_api)
    markdown = markdown_document(doc)
    assert (
        "The users, as JSON or CSV.\n\n"
        "Filters, in the order they run:\n\n"
        "- `require_api_key`: Refuse calls without a known X-API-Key header.\n"
        "- `cache_for_a_minute`: Let clients keep a successful GET's answer for a "
        "minute.\n"
        "- `csv_if_accepted`: Answer with CSV when the client's Accept asks for "
        "text/csv.\n\n"
        "#### GET\n\nEvery user and their role.\n\nErrors: APIKeyError (401).\n"
    ) in markdown
    html = html_document(doc)
    assert (
        "<p>Filters, in the order they run:</p><ul>"
        "<li><code>require_api_key</code>: Refuse calls without a known "
        "X-API-Key header.</li>"
        "<li><code>cache_for_a_minute</code>: Let clients keep a successful "
        "GET&#x27;s answer for a minute.</li>"
        "<li><code>csv_if_accepted</code>: Answer with CSV when the client&#x27;s "
        "Accept asks for text/csv.</li></ul>"
    ) in html


def test_openapi_operations_carry_x_shiji_filters(filter_api):
    document = openapi_document(describe_api(filter_api), "1.0")
    for method in ("get", "post"):
        operation = document["paths"]["/users"][method]
        assert operation["x-shiji-filters"] == [
            {
                "name": "require_api_key",
                "description": "Refuse calls without a known X-API-Key header.",
            },
            {
                "name": "cache_for_a_minute",
                "description": "Let clients keep a successful GET's answer for a "
                "minute.",
            },
            {
                "name": "csv_if_accepted",
                "description": "Answer with CSV when the client's Accept asks for "
                "text/csv.",
            },
        ]
        assert "APIKeyError" in operation["responses"]["401"]["description"]


def test_calls_without_filters_are_documented_as_before():
    doc = describe_api(make_api([Echo]))
    [echo] = doc.versions[0].calls
    assert echo.filters == ()
    declared = json_document(doc)["versions"]["1.0"]["declarations"]["echo/<word>"]
    assert "filters" not in declared["GET"]
    assert "Filters" not in markdown_document(doc)
    assert "Filters" not in html_document(doc)
    operation = openapi_document(doc, "1.0")["paths"]["/echo/{word}"]["get"]
    assert "x-shiji-filters" not in operation


@pytest_twisted.ensureDeferred
async def test_a_filter_declared_at_several_levels_runs_once_at_the_outermost():
    outer, inner = plain("outer"), plain("inner")
    api = make_api(
        [echo_with([inner, outer])], api_filters=[outer], version_filters=[inner]
    )
    response = await TestClient({"f": api}).get("/f/echo/hi")
    assert (response.status, response.json) == (200, {"word": "hi"})
    assert Echo.seen == [
        "outer in",
        "inner in",
        "handler",
        "inner after call_next",
        "outer after call_next",
    ]
