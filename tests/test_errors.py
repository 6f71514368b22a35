"""
The APIError hierarchy: the built-in table, custom errors, the envelope.
"""

import json

import pytest
import pytest_twisted
from apitools import make_api
from twisted.internet import defer

from shiji import webapi
from shiji.testing import TestClient
from shiji.urldispatch import URLMatchJSONResource

BUILT_IN = [
    ("UnknownAPICallError", 203, "The requested API call '%s' is unknown.", 404),
    (
        "JSONEncodeError",
        204,
        "An unrecoverable error has occurred JSON-encoding the API call result.",
        500,
    ),
    (
        "JSONDecodeError",
        205,
        "Arguments passed in API call request are not validly formed JSON.",
        409,
    ),
    (
        "RequestNotHashError",
        206,
        "Request body must be a JSON-encoded hash table/dictionary.",
        409,
    ),
    (
        "UnknownAPIVersionError",
        207,
        "API version '%s' is invalid or specifies an API/version that does not exist.",
        406,
    ),
    ("UnknownAPIError", 208, "The requested API '%s' is unknown.", 404),
    (
        "MethodNotAllowedError",
        209,
        "The HTTP method '%s' is not allowed for this API call.",
        405,
    ),
    ("APIVersionGoneError", 212, "API version '%s' was retired on %s.", 410),
    (
        "RequestTooLargeError",
        210,
        "The request body is larger than the %s bytes this server accepts.",
        413,
    ),
    ("MalformedRequestError", 213, "The request is not well-formed HTTP/1.1.", 400),
    (
        "RequestURITooLongError",
        214,
        "The request line is longer than the %s bytes this server reads.",
        414,
    ),
    (
        "RequestHeadersTooLargeError",
        215,
        "The request headers are larger than this server reads.",
        431,
    ),
    (
        "RequestReadTimeoutError",
        216,
        "The request was not received within %s seconds.",
        408,
    ),
    (
        "RequestTimeoutError",
        211,
        "The API call did not complete within %s seconds.",
        503,
    ),
    (
        "ServiceUnavailableError",
        217,
        "The service is not ready to answer this call; try again shortly.",
        503,
    ),
    (
        "StorageUnavailableError",
        218,
        "The shared store cannot be reached; try again shortly.",
        503,
    ),
    (
        "AccessDeniedError",
        501,
        "Insufficient permission to perform the requested action.",
        403,
    ),
    ("ValueError", 502, "Invalid value for argument '%s'. %s", 409),
    (
        "ContentTypeError",
        503,
        "The Content-Type of the API request was not of the expected format...or the "
        "API/version requested does not exist.",
        406,
    ),
    (
        "CharsetNotUTF8Error",
        504,
        "The Content-Type of the API request did not specify a charset, or the charset "
        "specified was not UTF-8.",
        409,
    ),
    (
        "UnexpectedServerError",
        505,
        "An unexpected error has occurred processing the request. Error: '%s'",
        500,
    ),
    (
        "InvalidAuthenticationError",
        506,
        "Authentication information is invalidly formed and/or missing required elements.",
        401,
    ),
    (
        "InvalidSecureCookieError",
        507,
        "Secure cookie '%s' signature '%s' is invalid.",
        409,
    ),
    ("ExpiredSecureCookieError", 508, "Secure cookie '%s' is expired.", 409),
]


@pytest.mark.parametrize("name, code, text, status", BUILT_IN)
def test_built_in_errors(name, code, text, status):
    cls = getattr(webapi, name)
    assert issubclass(cls, webapi.APIError)
    assert issubclass(cls, Exception)
    assert cls.exception_class == name
    assert cls.error_code == code
    assert cls.exception_text == text
    assert cls.http_status == status


def test_the_built_in_table_is_complete():
    found = {
        name
        for name in webapi.__all__
        if isinstance(getattr(webapi, name), type)
        and issubclass(getattr(webapi, name), webapi.APIError)
        and getattr(webapi, name) is not webapi.APIError
        # InvalidField answers as the ValueError it is.
        and getattr(webapi, name).exception_class == name
    }
    assert found == {row[0] for row in BUILT_IN}


def test_texts_are_formatted_with_arguments_only_when_given():
    error = webapi.ValueError(None, "client_tz", "Must be of type int")
    assert (
        error.exception_text
        == "Invalid value for argument 'client_tz'. Must be of type int"
    )
    assert webapi.ValueError.exception_text == "Invalid value for argument '%s'. %s"
    assert (
        webapi.UnknownAPIError().exception_text == "The requested API '%s' is unknown."
    )


def test_str_is_the_json_envelope():
    error = webapi.InvalidSecureCookieError("request", "username", "1c5d")
    assert error.request == "request"
    assert json.loads(str(error)) == {
        "result": None,
        "error": {
            "error_code": 507,
            "exception_class": "InvalidSecureCookieError",
            "exception_text": "Secure cookie 'username' signature '1c5d' is invalid.",
        },
    }
    assert list(json.loads(str(error))["error"]) == [
        "error_code",
        "exception_class",
        "exception_text",
    ]
    assert repr(error) == (
        "<InvalidSecureCookieError 507 http=409 "
        "\"Secure cookie 'username' signature '1c5d' is invalid.\">"
    )


class SampleNormalError(webapi.APIError):
    error_code = 100
    exception_class = "SampleNormalError"
    exception_text = (
        "A sample normal error that doesn't take arguments except for 'request'."
    )


class SampleAdvancedError(webapi.APIError):
    error_code = 101
    exception_class = "SampleAdvancedError"
    exception_text = "A sample error that takes arguments in addition to 'request'. Extra Arg Value: %s"

    def __init__(self, request_object, extra_arg):
        self.exception_text = self.exception_text % extra_arg
        webapi.APIError.__init__(self, request_object)


class Teapot(webapi.APIError):
    error_code = 418
    exception_text = "I'm a teapot, not %s."
    http_status = 418


class Custom(URLMatchJSONResource):
    routes = r"custom/(?P<which>[a-z]+)"

    def render_GET(self, request):
        which = self.url_matches["which"]
        if which == "normal":
            return str(SampleNormalError(request))
        if which == "advanced":
            return defer.succeed(str(SampleAdvancedError(request, "extra argument")))
        if which == "teapot":
            raise Teapot(request, "a coffee pot")
        if which == "headers":
            error = webapi.AccessDeniedError(request)
            error.headers["X-Reason"] = "policy"
            raise error
        raise AssertionError(which)


def client():
    return TestClient({"c": make_api("c", [("1.0", r"1\.0", [Custom])])})


@pytest.mark.parametrize(
    "which, status, code, exception_class, text",
    [
        ("normal", 409, 100, "SampleNormalError", SampleNormalError.exception_text),
        (
            "advanced",
            409,
            101,
            "SampleAdvancedError",
            "A sample error that takes arguments in addition to 'request'. "
            "Extra Arg Value: extra argument",
        ),
        ("teapot", 418, 418, "Teapot", "I'm a teapot, not a coffee pot."),
    ],
)
@pytest_twisted.ensureDeferred
async def test_custom_errors(which, status, code, exception_class, text):
    response = await client().get(f"/c/custom/{which}")
    assert response.status == status
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json == {
        "result": None,
        "error": {
            "error_code": code,
            "exception_class": exception_class,
            "exception_text": text,
        },
    }


def test_exception_class_defaults_to_the_class_name():
    assert Teapot.exception_class == "Teapot"
    assert SampleNormalError.exception_class == "SampleNormalError"

    class Renamed(Teapot):
        exception_class = "Kettle"

    class Child(Renamed):
        pass

    assert Renamed.exception_class == "Kettle"
    assert Child.exception_class == "Child"


@pytest_twisted.ensureDeferred
async def test_errors_carry_their_extra_headers():
    response = await client().get("/c/custom/headers")
    assert response.status == 403
    assert response.headers["x-reason"] == "policy"


@pytest_twisted.ensureDeferred
async def test_method_not_allowed_is_405_with_allow():
    response = await client().post("/c/custom/normal")
    assert response.status == 405
    assert response.headers["allow"] == "GET, HEAD, OPTIONS"
    assert response.json == {
        "result": None,
        "error": {
            "error_code": 209,
            "exception_class": "MethodNotAllowedError",
            "exception_text": "The HTTP method 'POST' is not allowed for this API call.",
        },
    }


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "TRACE", "BREW", "get"])
@pytest_twisted.ensureDeferred
async def test_every_unsupported_method_is_a_json_405(method):
    response = await client().request(method, "/c/custom/normal")
    assert response.status == 405
    assert response.error["exception_text"] == (
        f"The HTTP method '{method}' is not allowed for this API call."
    )


@pytest_twisted.ensureDeferred
async def test_a_crashing_router_still_answers_json(monkeypatch):
    test_client = client()

    def crash(request):
        raise RuntimeError("router bug")

    monkeypatch.setattr(test_client.router, "_dispatch", crash)
    response = await test_client.get("/c/custom/normal")
    assert response.status == 500
    assert response.error["exception_class"] == "UnexpectedServerError"
    assert b"router bug" not in response.body


@pytest_twisted.ensureDeferred
async def test_a_failure_outside_the_router_is_answered_in_json(monkeypatch):
    test_client = client()

    def crash(request):
        raise RuntimeError("render bug")

    monkeypatch.setattr(test_client.router, "render", crash)
    response = await test_client.get("/c/custom/normal")
    assert response.status == 500
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.error["exception_class"] == "UnexpectedServerError"
    assert b"<html" not in response.body.lower()


class PostOnly(URLMatchJSONResource):
    routes = r"post_only"

    def render_POST(self, request):
        return {}


@pytest_twisted.ensureDeferred
async def test_head_without_get_is_405_not_a_crash():
    test_client = TestClient({"p": make_api("p", [("1.0", r"1\.0", [PostOnly])])})
    response = await test_client.head("/p/post_only")
    assert response.status == 405
    assert response.headers["allow"] == "OPTIONS, POST"
    response = await test_client.options("/p/post_only", version=None)
    assert response.headers["allow"] == "OPTIONS, POST"


@pytest.mark.parametrize(
    "accept, problem",
    [
        ("application/problem+json", True),
        ("application/problem+json, application/json", True),
        ("application/json;q=0.5, application/problem+json", True),
        ("Application/Problem+JSON; q=0.8, application/json; q=0.8", True),
        ("application/json, application/problem+json;q=0.9", False),
        ("application/problem+json;q=0", False),
        ("application/problem+json;q=zero", False),
        ("application/json", False),
        ("*/*", False),
        ("application/*", False),
        ("text/problem+json-ish", False),
        (None, False),
    ],
)
def test_problem_details_only_when_accept_asks(accept, problem):
    from shiji._response import wants_problem

    raw = accept.encode() if accept is not None else None
    assert wants_problem(raw) is problem


@pytest_twisted.ensureDeferred
async def test_errors_as_rfc_9457_problem_details():
    client = TestClient({"myloginapi": __import__("mylogin_api")})
    response = await client.get(
        "/myloginapi/sample_error/advanced",
        headers={"Accept": "application/problem+json"},
    )
    assert response.status == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["vary"] == "Accept"
    assert json.loads(response.body) == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": (
            "A sample error that takes arguments in addition to 'request'. "
            "Extra Arg Value: extra argument"
        ),
        "error_code": 101,
        "exception_class": "SampleAdvancedError",
    }
    # The same request without asking: the envelope.
    plain = await client.get("/myloginapi/sample_error/advanced")
    assert plain.headers["content-type"] == "application/json; charset=utf-8"
    assert plain.error == {
        "error_code": 101,
        "exception_class": "SampleAdvancedError",
        "exception_text": (
            "A sample error that takes arguments in addition to 'request'. "
            "Extra Arg Value: extra argument"
        ),
    }
    # Routing errors and unknown statuses too; successes are unchanged.
    unknown = await client.get(
        "/nowhere", headers={"Accept": "application/problem+json"}
    )
    assert json.loads(unknown.body)["title"] == "Not Found"
    ok = await client.get(
        "/myloginapi/ping", headers={"Accept": "application/problem+json"}
    )
    assert ok.status == 200
    assert ok.headers["content-type"] == "application/json; charset=utf-8"


def test_problem_title_of_a_status_without_a_phrase():
    class Odd(webapi.APIError):
        error_code = 1
        exception_text = "Odd."
        http_status = 499

    assert Odd().problem()["title"] == "Error"
