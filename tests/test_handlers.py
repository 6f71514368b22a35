"""
What handlers may return or raise, and what the request carries.
"""

import asyncio

import pytest
import pytest_twisted
from apitools import envelope, make_api, without_date
from twisted.internet import defer, reactor, task
from twisted.logger import formatEvent, globalLogPublisher
from twisted.web.server import NOT_DONE_YET

from shiji import webapi
from shiji.metrics import NullMetrics
from shiji.testing import TestClient
from shiji.urldispatch import URLMatchJSONResource

JSON = "application/json; charset=utf-8"


class Returns(URLMatchJSONResource):
    routes = r"returns/(?P<kind>[a-z_]+)"

    def render_GET(self, request):
        kind = self.url_matches["kind"]
        if kind == "bytes":
            return b'{"raw": "bytes"}'
        if kind == "str":
            return '{"text": "caf\u00e9"}'
        if kind == "dict":
            return {"a": 1, "nested": {"b": [True, None, 1.5]}}
        if kind == "list":
            return [1, "two", {"three": 3}]
        if kind == "number":
            return 42
        if kind == "write_json":
            webapi.write_json(request, {"written": True})
            return None
        if kind == "none":
            return None
        if kind == "unserialisable":
            return {"when": object()}
        if kind == "nan":
            return {"x": float("nan")}
        if kind == "created":
            request.setResponseCode(201)
            return {"id": 7}
        if kind == "text_plain":
            request.setHeader("Content-Type", "text/plain; charset=utf-8")
            return "hello"
        if kind == "not_done_yet":
            reactor.callLater(0, lambda: (request.write(b'"later"'), request.finish()))
            return NOT_DONE_YET
        if kind == "after_finish":
            webapi.write_json(request, "first")
            return {"second": True}
        if kind == "writes_after_finish":
            webapi.write_json(request, "first")
            request.write(b"garbage after the answer")
            return None
        raise AssertionError(kind)


class Deferreds(URLMatchJSONResource):
    routes = r"deferred/(?P<kind>[a-z_]+)"

    def render_GET(self, request):
        kind = self.url_matches["kind"]
        if kind == "fired":
            return defer.succeed({"fired": True})
        if kind == "later":
            return task.deferLater(reactor, 0.01, lambda: {"later": True})
        if kind == "api_error":
            return task.deferLater(
                reactor,
                0,
                lambda: (_ for _ in ()).throw(webapi.ValueError(request, "x", "Bad.")),
            )
        if kind == "exception":
            return defer.fail(ZeroDivisionError("secret detail"))
        if kind == "write_json":
            return task.deferLater(reactor, 0, webapi.write_json, request, ["w"])
        raise AssertionError(kind)


class InlineCallbacks(URLMatchJSONResource):
    routes = r"inline"

    @defer.inlineCallbacks
    def render_GET(self, request):
        value = yield task.deferLater(reactor, 0, lambda: 5)
        return {"inline": value}


class Coroutines(URLMatchJSONResource):
    routes = r"coroutine/(?P<kind>[a-z_]+)"

    async def render_GET(self, request):
        kind = self.url_matches["kind"]
        value = await task.deferLater(reactor, 0, lambda: "awaited")
        if kind == "value":
            return {"coroutine": value}
        if kind == "raise":
            raise webapi.AccessDeniedError(request)
        if kind == "return_error":
            return str(webapi.ValueError(request, "y", "Nope."))
        if kind == "crash":
            raise KeyError("hidden")
        raise AssertionError(kind)


class Errors(URLMatchJSONResource):
    routes = r"errors/(?P<how>[a-z_]+)"

    def render_GET(self, request):
        error = webapi.ValueError(request, "simple_auth_key", "Key isn't valid!")
        how = self.url_matches["how"]
        if how == "raise":
            raise error
        if how == "return":
            return error
        if how == "return_str":
            return str(error)
        if how == "deferred_str":
            return defer.succeed(str(error))
        if how == "constructed_unused":
            webapi.ValueError(request, "unused", "Not returned.")
            return {"ok": True}
        raise AssertionError(how)


class Attributes(URLMatchJSONResource):
    routes = r"attributes/(?P<thing>[^/]+)"

    def render_GET(self, request):
        return {
            "api_name": request.api_name,
            "api_version": request.api_version,
            "api_mode": request.api_mode,
            "api_config": request.api_config,
            "metrics": type(request.metrics).__name__,
            "url_matches": dict(request.url_matches),
            "self_url_matches": dict(self.url_matches),
            "args": request.args,
            "arg_types": sorted(
                {type(k).__name__ for k in request.args}
                | {type(v).__name__ for vs in request.args.values() for v in vs}
            ),
        }

    def render_POST(self, request):
        request.metrics.increment("calls.attributes")
        return {"args": request.args["simple_auth_key"][0]}


def client(**options):
    api = make_api(
        "h_api",
        [
            (
                "1.0",
                r"1\.0",
                [Returns, Deferreds, InlineCallbacks, Coroutines, Errors, Attributes],
            )
        ],
    )
    return TestClient({"h": api}, **options)


class Recorder(NullMetrics):
    """Metrics that remember the counters they are given."""

    def __init__(self):
        self.seen = []

    def increment(self, name, value=1, sample_rate=1.0):
        self.seen.append((name, value))


@pytest.fixture
def logged():
    events = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


@pytest.mark.parametrize(
    "kind, status, content_type, body",
    [
        ("bytes", 200, JSON, b'{"raw": "bytes"}'),
        ("str", 200, JSON, '{"text": "caf\u00e9"}'.encode()),
        ("dict", 200, JSON, b'{"a":1,"nested":{"b":[true,null,1.5]}}'),
        ("list", 200, JSON, b'[1,"two",{"three":3}]'),
        ("number", 200, JSON, b"42"),
        ("write_json", 200, JSON, b'{"written":true}'),
        ("created", 201, JSON, b'{"id":7}'),
        ("text_plain", 200, "text/plain; charset=utf-8", b"hello"),
        ("not_done_yet", 200, JSON, b'"later"'),
        ("after_finish", 200, JSON, b'"first"'),
    ],
)
@pytest_twisted.ensureDeferred
async def test_return_values(kind, status, content_type, body):
    response = await client().get(f"/h/returns/{kind}")
    assert response.status == status
    assert response.body == body
    assert response.headers["content-type"] == content_type


@pytest_twisted.ensureDeferred
async def test_a_full_response_exactly():
    response = await client().get("/h/returns/dict")
    assert response.status == 200
    assert without_date(response.headers) == {
        "server": "Shiji API Server",
        "content-type": JSON,
        "content-length": "38",
    }
    assert response.body == b'{"a":1,"nested":{"b":[true,null,1.5]}}'


@pytest_twisted.ensureDeferred
async def test_value_returned_after_finishing_is_dropped_with_a_warning(logged):
    await client().get("/h/returns/after_finish")
    warnings = [
        e for e in logged if "after finishing the response" in e.get("log_format", "")
    ]
    assert len(warnings) == 1


@pytest_twisted.ensureDeferred
async def test_a_handler_writing_after_finishing_leaves_the_answer_whole(logged):
    response = await client().get("/h/returns/writes_after_finish")
    assert response.status == 200
    assert response.body == b'"first"'
    assert response.headers["content-length"] == "7"
    failures = [e for e in logged if "log_failure" in e]
    assert len(failures) == 1
    assert "after Request.finish" in str(failures[0]["log_failure"].value)


@pytest.mark.parametrize(
    "path, status, body",
    [
        ("/h/deferred/fired", 200, {"fired": True}),
        ("/h/deferred/later", 200, {"later": True}),
        ("/h/deferred/write_json", 200, ["w"]),
        ("/h/inline", 200, {"inline": 5}),
        ("/h/coroutine/value", 200, {"coroutine": "awaited"}),
        (
            "/h/deferred/api_error",
            409,
            envelope("ValueError", 502, "Invalid value for argument 'x'. Bad."),
        ),
        (
            "/h/coroutine/raise",
            403,
            envelope(
                "AccessDeniedError",
                501,
                "Insufficient permission to perform the requested action.",
            ),
        ),
        (
            "/h/coroutine/return_error",
            409,
            envelope("ValueError", 502, "Invalid value for argument 'y'. Nope."),
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_deferreds_and_coroutines(path, status, body):
    response = await client().get(path)
    assert response.status == status
    assert response.json == body
    assert response.headers["content-type"] == JSON


@pytest.mark.parametrize("how", ["raise", "return", "return_str", "deferred_str"])
@pytest_twisted.ensureDeferred
async def test_raised_returned_and_stringified_errors_give_the_same_response(how):
    response = await client().get(f"/h/errors/{how}")
    assert response.status == 409
    assert without_date(response.headers) == {
        "server": "Shiji API Server",
        "content-type": JSON,
        "content-length": str(len(response.body)),
        "vary": "Accept",
    }
    assert response.body == (
        b'{"result":null,"error":{"error_code":502,"exception_class":"ValueError",'
        b'"exception_text":"Invalid value for argument \'simple_auth_key\'. '
        b"Key isn't valid!\"}}"
    )


@pytest_twisted.ensureDeferred
async def test_constructing_an_error_without_returning_it_changes_nothing():
    response = await client().get("/h/errors/constructed_unused")
    assert response.status == 200
    assert response.json == {"ok": True}


@pytest.mark.parametrize(
    "path, detail",
    [
        ("/h/deferred/exception", "secret detail"),
        ("/h/coroutine/crash", "hidden"),
        ("/h/returns/none", "without finishing the response"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_unexpected_exceptions_are_500_with_a_request_id_and_no_traceback(
    path, detail, logged
):
    response = await client().get(path)
    assert response.status == 500
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 16
    assert response.json == envelope(
        "UnexpectedServerError",
        505,
        "An unexpected error has occurred processing the request. "
        f"Error: 'request id {request_id}'",
    )
    assert detail.encode() not in response.body
    assert b"Traceback" not in response.body
    failures = [e for e in logged if e.get("request_id") == request_id]
    assert len(failures) == 1
    assert detail in failures[0]["log_failure"].getTraceback()
    assert failures[0]["path"] == path
    assert formatEvent(failures[0]) == (
        f"Unexpected error answering GET {path} (request id {request_id})"
    )


@pytest.mark.parametrize("kind", ["unserialisable", "nan"])
@pytest_twisted.ensureDeferred
async def test_results_json_cannot_encode_are_500_json_encode_errors(kind, logged):
    response = await client().get(f"/h/returns/{kind}")
    assert response.status == 500
    assert response.json == envelope(
        "JSONEncodeError",
        204,
        "An unrecoverable error has occurred JSON-encoding the API call result.",
    )
    assert any("Cannot JSON-encode" in e.get("log_format", "") for e in logged)


@pytest_twisted.ensureDeferred
async def test_request_attributes():
    response = await client(config={"h_api": {"db": "x.sqlite"}, "other": {}}).get(
        "/h/attributes/caf%C3%A9?simple_auth_key=abc&list=1&list=2&blank=&caf%C3%A9=th%C3%A9+x",
        mode="test",
    )
    assert response.status == 200
    assert response.json == {
        "api_name": "h_api",
        "api_version": "1.0",
        "api_mode": "test",
        "api_config": {"h_api": {"db": "x.sqlite"}, "other": {}},
        "metrics": "NullMetrics",
        "url_matches": {"thing": "café"},
        "self_url_matches": {"thing": "café"},
        "args": {
            "simple_auth_key": ["abc"],
            "list": ["1", "2"],
            "blank": [""],
            "café": ["thé x"],
        },
        "arg_types": ["str"],
    }


@pytest.mark.parametrize(
    "query, args",
    [
        ("?a=b+c", {"a": ["b c"]}),
        ("?a+b=c", {"a b": ["c"]}),
        ("?a=b%2Bc+d", {"a": ["b+c d"]}),
        ("?a=x=y", {"a": ["x=y"]}),
        ("?a=1?b=2", {"a": ["1?b=2"]}),
        ("?&&a=1&&b=2&", {"a": ["1"], "b": ["2"]}),
        ("?a", {"a": [""]}),
        ("?=v", {"": ["v"]}),
        ("?", {}),
        ("", {}),
    ],
)
@pytest_twisted.ensureDeferred
async def test_query_string_edge_cases(query, args):
    response = await client().get(f"/h/attributes/x{query}")
    assert response.json["args"] == args


@pytest_twisted.ensureDeferred
async def test_the_spec_style_of_reading_query_arguments():
    response = await client().post("/h/attributes/x?simple_auth_key=abc")
    assert response.json == {"args": "abc"}


@pytest_twisted.ensureDeferred
async def test_form_bodies_never_become_query_arguments():
    response = await client().post(
        "/h/attributes/x",
        body=b"simple_auth_key=from-the-body",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status == 500  # KeyError: the handler found no query argument


@pytest_twisted.ensureDeferred
async def test_query_arguments_that_are_not_utf8_are_refused():
    response = await client().get("/h/attributes/x?na%FFme=1")
    assert response.status == 409
    assert response.json == envelope(
        "ValueError",
        502,
        "Invalid value for argument 'na\ufffdme'. Query arguments must be percent-encoded UTF-8.",
    )
    response = await client().get("/h/attributes/x?name=%C3")
    assert response.status == 409
    assert response.error["exception_text"].startswith(
        "Invalid value for argument 'name'."
    )


@pytest_twisted.ensureDeferred
async def test_metrics_given_to_the_router_reach_handlers():
    recorder = Recorder()
    await client(metrics=recorder).post("/h/attributes/x?simple_auth_key=k")
    assert recorder.seen == [
        ("calls.attributes", 1),
        # and the site's count of every request, by call, status class and
        # status
        ("h_api.prod.1_0.Attributes.POST", 1),
        ("h_api.prod.1_0.Attributes.POST.2xx", 1),
        ("h_api.prod.1_0.Attributes.POST.status.200", 1),
    ]


@pytest_twisted.ensureDeferred
async def test_errors_are_counted_by_call_and_class():
    recorder = Recorder()
    response = await client(metrics=recorder).post("/h/attributes/x")
    assert response.status == 500  # KeyError: no simple_auth_key
    response = await client(metrics=recorder).get("/h/errors/raise")
    assert response.status == 409
    assert recorder.seen == [
        ("calls.attributes", 1),  # the handler's own, before it failed
        ("h_api.prod.1_0.Attributes.POST", 1),
        ("h_api.prod.1_0.Attributes.POST.5xx", 1),
        ("h_api.prod.1_0.Attributes.POST.status.500", 1),
        ("h_api.prod.1_0.Attributes.POST.errors.UnexpectedServerError", 1),
        ("h_api.prod.1_0.Errors.GET", 1),
        ("h_api.prod.1_0.Errors.GET.4xx", 1),
        ("h_api.prod.1_0.Errors.GET.status.409", 1),
        ("h_api.prod.1_0.Errors.GET.errors.ValueError", 1),
    ]


@pytest_twisted.ensureDeferred
async def test_errors_are_counted_by_api_and_class_under_v1_names():
    recorder = Recorder()
    response = await client(metrics=recorder, metric_names="v1").post("/h/attributes/x")
    assert response.status == 500  # KeyError: no simple_auth_key
    response = await client(metrics=recorder, metric_names="v1").get("/h/errors/raise")
    assert response.status == 409
    assert recorder.seen == [
        ("calls.attributes", 1),  # the handler's own, before it failed
        ("h_api.error.UnexpectedServerError", 1),
        ("h_api.1_0.Attributes.POST", 1),
        ("h_api.1_0.Attributes.POST.5xx", 1),
        ("h_api.error.ValueError", 1),
        ("h_api.1_0.Errors.GET", 1),
        ("h_api.1_0.Errors.GET.4xx", 1),
    ]


@pytest_twisted.ensureDeferred
async def test_a_call_that_cannot_be_made_is_a_json_500(logged):
    class Broken(URLMatchJSONResource):
        routes = r"broken"

        def __init__(self, request=None, url_matches=None):
            raise RuntimeError("cannot make the call")

        def render_GET(self, request):
            return {}

    test_client = TestClient({"b": make_api("b", [("1.0", r"1\.0", [Broken])])})
    response = await test_client.get("/b/broken")
    assert response.status == 500
    assert response.headers["content-type"] == JSON
    assert response.error["exception_class"] == "UnexpectedServerError"
    request_id = response.headers["x-request-id"]
    [failure] = [e for e in logged if e.get("request_id") == request_id]
    assert "cannot make the call" in failure["log_failure"].getTraceback()


@pytest_twisted.ensureDeferred
async def test_head_answers_with_the_get_headers_and_no_body():
    response = await client().head("/h/returns/dict")
    assert response.status == 200
    assert response.body == b""
    assert response.headers["content-length"] == "38"
    assert response.headers["content-type"] == JSON


@pytest_twisted.ensureDeferred
async def test_a_client_that_disconnects_before_the_answer_causes_no_error(logged):
    started = defer.Deferred()
    release = defer.Deferred()

    class Slow(URLMatchJSONResource):
        routes = r"slow"

        def render_GET(self, request):
            started.callback(request)
            return release

    test_client = TestClient({"s": make_api("s", [("1.0", r"1\.0", [Slow])])})
    pending = test_client.get("/s/slow")
    request = await started
    request.channel.transport.loseConnection()
    request.channel.connectionLost(Exception("gone"))
    release.callback({"too": "late"})
    assert request.finished == 0
    with pytest.raises(Exception, match="gone"):
        await pending
    assert not [
        e for e in logged if e.get("log_level") and e["log_level"].name == "critical"
    ]


@pytest_twisted.ensureDeferred
async def test_async_handlers_may_use_asyncio_style_coroutines_over_deferreds():
    # Coroutines are driven by Twisted: awaiting Deferreds works, and so does
    # a plain coroutine with no awaits at all.
    class Plain(URLMatchJSONResource):
        routes = r"plain"

        async def render_GET(self, request):
            return {"plain": asyncio.iscoroutinefunction(Plain.render_GET)}

    test_client = TestClient({"p": make_api("p", [("1.0", r"1\.0", [Plain])])})
    assert (await test_client.get("/p/plain")).json == {"plain": True}


class Hangs(URLMatchJSONResource):
    routes = r"hangs/(?P<how>[a-z]+)"

    def render_GET(self, request):
        how = self.url_matches["how"]
        if how == "deferred":
            cancelled = []
            d = defer.Deferred(lambda d: cancelled.append(True))
            Hangs.cancelled = cancelled
            return d
        if how == "quick":
            return task.deferLater(reactor, 0, lambda: {"quick": True})
        raise AssertionError(how)

    async def render_POST(self, request):
        await defer.Deferred()


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest_twisted.ensureDeferred
async def test_calls_running_past_the_request_timeout_are_cancelled_with_503(method):
    api = make_api("slow_api", [("1.0", r"1\.0", [Hangs])])
    test_client = TestClient({"s": api}, request_timeout=0.05)
    pending = test_client.request(method, "/s/hangs/deferred")
    test_client.clock.advance(0.04)
    assert not pending.called
    test_client.clock.advance(0.02)
    response = await pending
    assert response.status == 503
    assert response.json == envelope(
        "RequestTimeoutError", 211, "The API call did not complete within 0.05 seconds."
    )
    if method == "GET":
        assert Hangs.cancelled == [True]
    response = await test_client.get("/s/hangs/quick")
    assert response.json == {"quick": True}
