"""
OpenAPI 3.1 documents, validated with openapi-spec-validator.
"""

import importlib
import json
import sys

import pytest
import pytest_twisted
from apitools import make_api
from daemons import TESTS
from openapi_spec_validator import validate

from shiji import auth, urldispatch, webapi
from shiji.admin import cli
from shiji.docs.html import html_document
from shiji.docs.model import describe_api, interface
from shiji.docs.openapi import openapi_document, openapi_index, openapi_path
from shiji.docs.prefix import served_prefix
from shiji.docs.render import json_document, markdown_document
from shiji.testing import TestClient

EXAMPLES = TESTS.parent / "examples"

ERROR_CONTENT = {
    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}},
    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}},
}

#: Shiji's errors every operation lists, by status.
ANY_CALL = {
    "400": ["MalformedRequestError"],
    "406": ["UnknownAPIVersionError"],
    "408": ["RequestReadTimeoutError"],
    "413": ["RequestTooLargeError"],
    "414": ["RequestURITooLongError"],
    "431": ["RequestHeadersTooLargeError"],
    "500": ["JSONEncodeError", "UnexpectedServerError"],
    "503": ["RequestTimeoutError"],
}
BODY = {
    "406": ["ContentTypeError", "UnknownAPIVersionError"],
    "409": ["CharsetNotUTF8Error", "JSONDecodeError", "RequestNotHashError"],
}
GUARDED = {
    "401": ["InvalidAuthenticationError"],
    "409": ["ExpiredSecureCookieError", "InvalidSecureCookieError"],
    "503": ["RequestTimeoutError", "ServiceUnavailableError"],
}

#: What a call keeping state in the shared store may answer besides.
STORE = {"503": ["StorageUnavailableError"]}


def merged(*tables):
    """Error tables merged status by status, each list sorted."""
    found = {}
    for table in tables:
        for status, classes in table.items():
            found[status] = sorted({*found.get(status, ()), *classes})
    return found


def error_classes(operation):
    """The error classes each error status of ``operation`` lists (every
    one of them with both media types)."""
    found = {}
    for status, response in operation["responses"].items():
        if status >= "400":
            assert response["content"] == ERROR_CONTENT, status
            lines = response["description"].split("\n")[2:]
            found[status] = [line.split("`")[1] for line in lines]
    return found


@pytest.fixture(scope="module")
def rich_api():
    sys.path.insert(0, str(TESTS / "daemon_apis"))
    try:
        yield describe_api(importlib.import_module("rich_api"))
    finally:
        sys.path.remove(str(TESTS / "daemon_apis"))


@pytest.fixture(scope="module")
def example():
    import mylogin_api

    return describe_api(mylogin_api)


@pytest.fixture(scope="module")
def document(example):
    return openapi_document(
        example,
        "1.0",
        prefix=served_prefix("myloginapi", "mylogin_api"),
        server="http://127.0.0.1:9990",
        version_header="X-DigiTar-API-Version",
    )


def test_every_document_is_valid_openapi_3_1(rich_api, example):
    for doc in (rich_api, example):
        for version in doc.versions:
            document = openapi_document(doc, version.version)
            validate(document)
            assert document["openapi"] == "3.1.0"
            assert document["info"]["version"] == version.version


def test_the_example_document(document):
    assert document["servers"] == [{"url": "http://127.0.0.1:9990/myloginapi"}]
    assert document["info"] == {
        "title": "mylogin_api",
        "version": "1.0",
        "description": (
            "mylogin_api: the example API of the Shiji documentation.\n\n"
            "api_name, api_versions and version_router are what APIRouter "
            "requires of an\nAPI package.\n\n"
            "Every call names the API, version and mode that should answer in "
            "the `X-DigiTar-API-Version` header: `mylogin_api-1.0+prod`, or "
            "`mylogin_api-1.0+test` for the test mode. Errors come as the JSON "
            'envelope `{"result": null, "error": {...}}`, or as RFC 9457 problem '
            "details when the request's `Accept` asks for "
            "`application/problem+json`."
        ),
        "contact": {"name": "The Shiji developers"},
        "license": {"name": "MIT License", "identifier": "MIT"},
    }
    # Relative to where the API is served; one operation id per call and
    # method, with the path's words for calls served at several paths.
    assert {
        (path, method): operation["operationId"]
        for path, item in document["paths"].items()
        for method, operation in item.items()
    } == {
        ("/ping/{timestamp}", "get"): "PingCall_get_ping_timestamp",
        ("/ping/{timestamp}", "post"): "PingCall_post_ping_timestamp",
        ("/ping", "get"): "PingCall_get_ping",
        ("/ping", "post"): "PingCall_post_ping",
        ("/sample_error/{kind}", "get"): "SampleErrorsCall_get",
        ("/users", "post"): "SignupCall_post",
        ("/login", "post"): "LoginCall_post",
        ("/logout", "post"): "LogoutCall_post",
        ("/me", "get"): "MeCall_get",
        ("/me/sessions", "get"): "SessionsCall_get",
        ("/list_versions", "get"): "ListVersionsCall_get",
    }
    assert [tag["name"] for tag in document["tags"]] == [
        "PingCall",
        "SampleErrorsCall",
        "SignupCall",
        "LoginCall",
        "LogoutCall",
        "MeCall",
        "SessionsCall",
        "ListVersionsCall",
    ]
    assert document["tags"][3] == {
        "name": "LoginCall",
        "description": "Log in: the session cookie comes with the answer.",
    }
    for item in document["paths"].values():
        for operation in item.values():
            assert operation["tags"] == [operation["operationId"].split("_")[0]]
    assert sorted(document) == [
        "components",
        "info",
        "openapi",
        "paths",
        "servers",
        "tags",
    ]


def test_every_operation_lists_every_error_it_can_answer(document):
    """Shiji's errors, those its decorators and guards declare, and the
    API's own that ``webapi.raises`` lists; at their statuses."""
    paths = document["paths"]
    ping = merged(ANY_CALL, {"409": ["ValueError"]})
    timestamp = merged(ping, {"404": ["UnknownAPICallError"]})
    body = merged(ping, BODY)
    guarded = merged(ANY_CALL, GUARDED)
    expected = {
        ("/ping/{timestamp}", "get"): timestamp,
        ("/ping/{timestamp}", "post"): merged(timestamp, BODY),
        ("/ping", "get"): ping,
        ("/ping", "post"): body,
        ("/sample_error/{kind}", "get"): merged(
            ANY_CALL,
            {
                "404": ["UnknownAPICallError"],
                "409": ["SampleAdvancedError", "SampleNormalError"],
            },
        ),
        ("/users", "post"): merged(
            body,
            {"409": ["EmailTakenError"], "429": ["TooManyAttemptsError"]},
            STORE,
        ),
        ("/login", "post"): merged(
            body,
            {"401": ["LoginFailedError"], "429": ["TooManyAttemptsError"]},
            STORE,
        ),
        # The session filter's: declared once, on the filter.
        ("/logout", "post"): merged(guarded, STORE),
        ("/me", "get"): merged(guarded, STORE),
        ("/me/sessions", "get"): merged(guarded, {"409": ["ValueError"]}, STORE),
        # Shiji's own call raises none of the API's errors.
        ("/list_versions", "get"): ANY_CALL,
    }
    assert {
        (path, method): error_classes(operation)
        for path, item in paths.items()
        for method, operation in item.items()
    } == expected
    # The declared success status, and no other.
    assert [s for s in paths["/users"]["post"]["responses"] if s < "400"] == ["201"]
    login = paths["/login"]["post"]["responses"]
    assert login["401"] == {
        "description": (
            "Unauthorized.\n\n"
            "- `LoginFailedError` (111): The email or the password is wrong."
        ),
        "headers": {
            "WWW-Authenticate": {"$ref": "#/components/headers/WWW-Authenticate"}
        },
        "content": ERROR_CONTENT,
    }
    assert login["429"] == {
        "description": (
            "Too Many Requests.\n\n"
            "- `TooManyAttemptsError` (112): Too many attempts; try again in %s "
            "seconds."
        ),
        "headers": {"Retry-After": {"$ref": "#/components/headers/Retry-After"}},
        "content": ERROR_CONTENT,
    }
    assert paths["/ping"]["post"]["responses"]["409"] == {
        "description": (
            "Conflict.\n\n"
            "- `CharsetNotUTF8Error` (504): The Content-Type of the API request "
            "did not specify a charset, or the charset specified was not UTF-8.\n"
            "- `JSONDecodeError` (205): Arguments passed in API call request are "
            "not validly formed JSON.\n"
            "- `RequestNotHashError` (206): Request body must be a JSON-encoded "
            "hash table/dictionary.\n"
            "- `ValueError` (502): Invalid value for argument '%s'. %s"
        ),
        "content": ERROR_CONTENT,
    }
    components = document["components"]
    assert sorted(components) == [
        "headers",
        "parameters",
        "schemas",
        "securitySchemes",
    ]
    assert components["headers"] == {
        "WWW-Authenticate": {
            "description": "The challenge saying how to authenticate (RFC 9110).",
            "required": True,
            "schema": {"type": "string"},
        },
        "Retry-After": {
            "description": "Seconds to wait before trying again, if the error says.",
            "schema": {"type": "string"},
        },
    }
    classes = components["schemas"]["Error"]["properties"]["error"]["properties"][
        "exception_class"
    ]["enum"]
    assert "SampleNormalError" in classes and "UnknownAPIVersionError" in classes


def test_the_version_header_is_one_parameter_with_a_default(document):
    components = document["components"]
    assert components["parameters"] == {
        "VersionHeader": {
            "name": "X-DigiTar-API-Version",
            "in": "header",
            "required": True,
            "description": (
                "The API, version and mode that should answer; this document's "
                "version in production mode by default."
            ),
            "schema": {
                "allOf": [{"$ref": "#/components/schemas/VersionHeader"}],
                "default": "mylogin_api-1.0+prod",
            },
        }
    }
    assert components["schemas"]["VersionHeader"] == {
        "description": "A value of the version header: <api>-<version>+<mode>.",
        "type": "string",
        "enum": ["mylogin_api-1.0+prod", "mylogin_api-1.0+test"],
        "default": "mylogin_api-1.0+prod",
    }
    for item in document["paths"].values():
        for operation in item.values():
            references = [p for p in operation["parameters"] if "$ref" in p]
            assert references == [{"$ref": "#/components/parameters/VersionHeader"}]
            assert "X-DigiTar-API-Version" not in [
                p.get("name") for p in operation["parameters"]
            ]


def test_the_declarations_of_an_operation(document):
    post = document["paths"]["/ping/{timestamp}"]["post"]
    assert post["summary"] == (
        "Measure how long a round trip through the server's thread pool takes "
        "(where blocking work such as database queries…"
    )
    assert post["parameters"] == [
        {
            "name": "timestamp",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": "^(?:[0-9]+)$"},
        },
        {"$ref": "#/components/parameters/VersionHeader"},
        {
            "name": "simple_auth_key",
            "in": "query",
            "required": True,
            "schema": {"type": "string"},
        },
    ]
    assert post["requestBody"] == {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "client_tz": {"type": "integer"},
                        "client_id": {"type": "string"},
                        "new_client": {"type": "boolean"},
                    },
                    "required": ["client_tz", "client_id"],
                }
            }
        },
    }
    assert post["security"] == []
    assert post["responses"]["200"] == {
        "description": "OK.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "result": {
                            "type": "object",
                            "properties": {
                                "latency": {"type": "number"},
                                "client_tz": {"type": "integer"},
                                "client_id": {"type": "string"},
                                "new_client": {"type": "boolean"},
                            },
                            "required": [
                                "latency",
                                "client_tz",
                                "client_id",
                                "new_client",
                            ],
                            "title": "Latency",
                            "description": (
                                "A round trip's latency, and the arguments echoed."
                            ),
                        }
                    },
                    "required": ["result"],
                    "title": "PingResult",
                }
            }
        },
    }
    # The GET declares the timestamp an integer, and its answer.
    get = document["paths"]["/ping/{timestamp}"]["get"]
    assert get["parameters"][0] == {
        "name": "timestamp",
        "in": "path",
        "required": True,
        "description": "A client-supplied UNIX timestamp.",
        "schema": {
            "type": "integer",
            "description": "A client-supplied UNIX timestamp.",
        },
    }
    assert get["responses"]["200"] == {
        "description": "Names the API, version and mode.",
        "content": {"application/json": {"schema": {"type": "string"}}},
    }
    signup = document["paths"]["/users"]["post"]
    assert signup["requestBody"]["content"]["application/json"]["schema"] == {
        "type": "object",
        "properties": {
            "email": {
                "type": "string",
                "maxLength": 320,
                "description": (
                    "The account's email; case and surrounding spaces are ignored."
                ),
            },
            "password": {
                "type": "string",
                "minLength": 8,
                "maxLength": 1024,
                "description": "The account's password.",
            },
        },
        "required": ["email", "password"],
    }
    kind = document["paths"]["/sample_error/{kind}"]["get"]["parameters"][0]
    assert kind["schema"]["pattern"] == "^(?:normal|advanced)$"


def test_the_session_cookie_guards_what_the_auth_backend_guards(document):
    paths = document["paths"]
    me = paths["/me"]["get"]
    assert me["security"] == [{"session": []}]
    assert me["x-shiji-requires"] == "a logged-in caller"
    assert "403" not in me["responses"]
    assert {
        (path, method)
        for path, item in paths.items()
        for method, operation in item.items()
        if operation["security"]
    } == {("/logout", "post"), ("/me", "get"), ("/me/sessions", "get")}
    ping = paths["/ping"]["get"]
    assert "x-shiji-requires" not in ping and "401" not in ping["responses"]
    # As the example's calls module declares it; no HTTP Basic: no call
    # uses it.
    assert document["components"]["securitySchemes"] == {
        "session": {
            "type": "apiKey",
            "in": "cookie",
            "name": "session",
            "description": (
                "The signed cookie holding the id of the server-side session "
                "that login fills: `session` (shijid's [sessions] cookie_name), "
                "or `__Host-session` when cookies are sent over HTTPS only "
                "([auth] cookie_secure)."
            ),
        }
    }
    problem = document["components"]["schemas"]["Problem"]
    assert problem["required"] == [
        "type",
        "title",
        "status",
        "detail",
        "error_code",
        "exception_class",
    ]
    assert "EmailTakenError" in problem["properties"]["exception_class"]["enum"]


def test_declarations_become_parameters_bodies_and_security(rich_api):
    document = openapi_document(rich_api, "1.0")
    assert document["servers"] == [{"url": "/rich_api"}]
    items = document["paths"]["/items"]
    paging = {
        p["name"]: p["schema"]
        for p in items["get"]["parameters"]
        if p.get("in") == "query"
    }
    assert paging == {
        "page": {"type": "integer", "minimum": 0, "default": 0},
        "page_len": {"type": "integer", "minimum": 0, "maximum": 100, "default": 20},
    }
    post = items["post"]
    assert post["security"] == [{"basic": []}]
    assert error_classes(post)["401"] == ["InvalidAuthenticationError"]
    assert items["get"]["security"] == []
    assert document["components"]["securitySchemes"] == {
        "basic": {
            "type": "http",
            "scheme": "basic",
            "description": "HTTP Basic credentials (RFC 7617).",
        }
    }
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"] == {
        "name": {"type": "string"},
        "price": {"type": "number"},
        # Any items: an array's items are always described.
        "tags": {"type": "array", "items": {}},
        "stock": {"type": ["integer", "null"]},
        "extra": {"type": "object"},
        "active": {"type": "boolean"},
    }
    assert schema["required"] == ["name", "price"]
    patch = document["paths"]["/items/{item_id}"]["patch"]
    assert list(patch["requestBody"]["content"]) == ["application/merge-patch+json"]
    assert "<dl" in items["get"]["description"]  # reST rendered
    assert document["x-shiji-unlisted-routes"] == ["search(es)?/<term>"]
    # Without webapi.raises, a handler may raise any of its version's errors.
    delete = document["paths"]["/items/{item_id}"]["delete"]
    assert error_classes(delete)["404"] == ["ItemsError", "UnknownAPICallError"]
    # An operation without a docstring is summed up by its method and path.
    assert (delete["summary"], delete["description"]) == (
        "DELETE /items/{item_id}",
        "DELETE /items/{item_id}",
    )
    assert document["tags"][1] == {
        "name": "Item",
        "description": "The call at `/items/{item_id}`.",
    }


def test_a_version_reusing_another_versions_calls(rich_api):
    document = openapi_document(rich_api, "2.0")
    assert sorted(document["paths"]) == [
        "/items",
        "/items/{item_id}",
        "/list_versions",
    ]
    # The reused calls raise the error their own module defines.
    classes = document["components"]["schemas"]["Error"]["properties"]["error"]
    assert "ItemsError" in classes["properties"]["exception_class"]["enum"]
    delete = document["paths"]["/items/{item_id}"]["delete"]
    assert error_classes(delete)["404"] == ["ItemsError", "UnknownAPICallError"]


class OwnError(webapi.APIError):
    error_code = 900
    exception_text = "Own."
    http_status = 402


class OtherError(webapi.APIError):
    error_code = 901
    exception_text = "Other."
    http_status = 418


class Declared(urldispatch.URLMatchJSONResource):
    routes = r"declared"

    @webapi.raises(OwnError)
    @webapi.url_arguments(["q"])
    @webapi.raises(OtherError)
    def render_GET(self, request):
        """Raise both."""

    @webapi.raises()
    def render_PUT(self, request):
        """Raise none."""

    def render_POST(self, request):
        """Raise any."""


def test_raises_lists_the_handlers_own_errors_in_every_format():
    calls = type(sys)("raising_api.calls")
    calls.Declared, calls.OwnError, calls.OtherError = Declared, OwnError, OtherError
    api = make_api("raising_api", [("1.0", r"1\.0", [Declared])])
    api.api_versions["1.0"][1].call_router = urldispatch.CallRouter(calls)
    sys.modules["raising_api.calls"] = calls
    try:
        doc = describe_api(api)
    finally:
        del sys.modules["raising_api.calls"]
    item = openapi_document(doc, "1.0")["paths"]["/declared"]
    assert error_classes(item["get"]) == merged(
        ANY_CALL, {"402": ["OwnError"], "409": ["ValueError"], "418": ["OtherError"]}
    )
    assert error_classes(item["put"]) == ANY_CALL
    assert error_classes(item["post"]) == merged(
        ANY_CALL, {"402": ["OwnError"], "418": ["OtherError"]}
    )
    [call] = doc.version("1.0").calls
    get = interface(call.routes, call.methods[0])
    assert [e.exception_class for e in get.errors] == [
        "OwnError",
        "ValueError",
        "OtherError",
    ]
    assert get.handler_errors
    declarations = json_document(doc)["versions"]["1.0"]["declarations"]["declared"]
    assert [e["exception_class"] for e in declarations["GET"]["errors"]] == [
        "OwnError",
        "ValueError",
        "OtherError",
    ]
    with pytest.raises(TypeError, match=r"raises\(\) takes APIError subclasses"):
        webapi.raises(KeyError)


class Answered(urldispatch.URLMatchJSONResource):
    routes = r"answered"

    @webapi.raises()
    def render_GET(self, request):
        """Read it."""
        return {}

    @webapi.raises(OtherError)
    def render_OPTIONS(self, request):
        """Never run: the router answers OPTIONS."""
        raise OtherError(request)


@pytest_twisted.ensureDeferred
async def test_only_the_methods_the_server_runs_are_documented():
    api = make_api("answered_api", [("1.0", r"1\.0", [Answered])])
    doc = describe_api(api)
    call = doc.version("1.0").calls[0]
    assert (call.name, [method.method for method in call.methods]) == (
        "Answered",
        ["GET"],
    )
    document = openapi_document(doc, "1.0")
    assert list(document["paths"]["/answered"]) == ["get"]
    assert "OtherError" not in json.dumps(document["paths"])
    version = json_document(doc)["versions"]["1.0"]
    assert list(version["calls"]["answered"]) == ["GET"]
    assert list(version["declarations"]["answered"]) == ["GET"]
    assert "OPTIONS" not in markdown_document(doc)
    assert "OPTIONS" not in html_document(doc)
    # What the server does answer to OPTIONS: the router's 204.
    response = await TestClient({"answered_api": api}).options("/answered_api/answered")
    assert (response.status, response.headers["allow"]) == (204, "GET, HEAD, OPTIONS")


class Guarded(urldispatch.URLMatchJSONResource):
    routes = r"accounts/(?P<account>[a-z]+)"

    @auth.access("account", False, "read")
    @webapi.raises()
    def render_GET(self, request):
        """An account."""


def test_a_guard_reading_a_namespace_lists_the_namespace_given_twice():
    doc = describe_api(make_api("guarded_api", [("1.0", r"1\.0", [Guarded])]))
    operation = openapi_document(doc, "1.0")["paths"]["/accounts/{account}"]["get"]
    assert error_classes(operation) == merged(
        ANY_CALL,
        GUARDED,
        {"403": ["AccessDeniedError"], "404": ["UnknownAPICallError"]},
        {"409": ["ValueError"]},
    )
    assert "<code>ValueError</code>" in html_document(doc).split("<h5>Errors</h5>")[1]


@pytest.mark.parametrize(
    "pattern, server, expected",
    [
        ("myloginapi", None, {"url": "/myloginapi"}),
        (
            "(myloginapi|login)",
            "http://127.0.0.1:9990",
            {
                "url": "http://127.0.0.1:9990/{api}",
                "variables": {
                    "api": {"default": "myloginapi", "enum": ["myloginapi", "login"]}
                },
            },
        ),
        (
            "[a-z_]+api",
            "https://api.example.com/",
            {
                "url": "https://api.example.com/{api}",
                "variables": {
                    "api": {
                        "default": "mylogin_api",
                        "description": (
                            "The first path segment: any that fully matches the "
                            "regular expression [a-z_]+api"
                        ),
                    }
                },
            },
        ),
        (
            "v[0-9]+",
            "http://127.0.0.1:9990",
            {
                "url": "http://127.0.0.1:9990/{api}",
                "variables": {
                    "api": {
                        "default": "mylogin_api",
                        "description": (
                            "The first path segment: any that fully matches the "
                            "regular expression v[0-9]+"
                        ),
                    }
                },
            },
        ),
    ],
)
def test_the_server_is_where_the_api_is_served(example, pattern, server, expected):
    prefix = served_prefix(pattern, "mylogin_api")
    document = openapi_document(example, "1.0", prefix=prefix, server=server)
    assert document["servers"] == [expected]
    validate(document)
    errors = error_classes(document["paths"]["/me"]["get"])
    # A segment the expression refuses is an unknown API.
    assert ("404" in errors) is (not prefix.literal)


@pytest.mark.parametrize(
    "route, path",
    [
        (r"ping", "/ping"),
        (r"ping/(?P<ts>\d+)$", "/ping/{ts}"),
        (r"a/(?P<x>[^/]+)/b/(?P<y>.+)", "/a/{x}/b/{y}"),
        (r"files/(?P<name>[a-z]+)\.json", "/files/{name}.json"),
        (r"ping[^/]*", None),
        (r"(a|b)", None),
        (r"", "/"),
    ],
)
def test_openapi_paths(route, path):
    assert openapi_path(route) == path
    assert openapi_path(route, "/api") == (path and ("/api" + path).rstrip("/"))


def test_the_index_lists_the_versions_newest_first(rich_api):
    assert openapi_index(rich_api, lambda v: f"/docs/{v}.json") == {
        "api_name": "rich_api",
        "versions": [
            {"version": "2.0", "openapi": "/docs/2.0.json"},
            {"version": "1.0", "openapi": "/docs/1.0.json"},
        ],
    }


def test_the_command_writes_every_version_and_an_index(tmp_path, capsys):
    rich_path = str(TESTS / "daemon_apis")
    assert (
        cli.main(
            ["-D", "rich_api", "-p", rich_path, "-T", "openapi", "-o", str(tmp_path)]
        )
        == 0
    )
    index = json.loads((tmp_path / "index.json").read_text())
    assert index == {
        "api_name": "rich_api",
        "versions": [
            {"version": "2.0", "openapi": "rich_api-2.0.openapi.json"},
            {"version": "1.0", "openapi": "rich_api-1.0.openapi.json"},
        ],
    }
    for entry in index["versions"]:
        document = json.loads((tmp_path / entry["openapi"]).read_text())
        validate(document)
        assert document["servers"] == [{"url": "http://127.0.0.1:9990/rich_api"}]
    assert (
        cli.main(
            ["-D", "mylogin_api", "-p", str(EXAMPLES), "-T", "openapi", "-V", "1.0"]
        )
        == 0
    )
    validate(json.loads(capsys.readouterr().out))
    assert (
        cli.main(
            ["-D", "mylogin_api", "-p", str(EXAMPLES), "-T", "openapi", "-V", "9.0"]
        )
        == 1
    )
    assert (
        capsys.readouterr().err
        == "shiji_admin: error: mylogin_api has no version 9.0 (it has 1.0)\n"
    )
    assert cli.main(["-D", "mylogin_api", "-p", str(EXAMPLES), "-T", "openapi"]) == 1
    assert capsys.readouterr().err == (
        "shiji_admin: error: -T openapi needs -V VERSION, or -o DIRECTORY for every version\n"
    )


@pytest.fixture(scope="module")
def filter_api():
    sys.path.insert(0, str(TESTS / "daemon_apis"))
    try:
        yield describe_api(importlib.import_module("filter_api"))
    finally:
        sys.path.remove(str(TESTS / "daemon_apis"))


def test_filters_are_an_extension_of_each_operation(filter_api):
    document = openapi_document(filter_api, "1.0", server="http://127.0.0.1:9990")
    validate(document)
    names = ["require_api_key", "cache_for_a_minute", "csv_if_accepted"]
    for method in ("get", "post"):
        operation = document["paths"]["/users"][method]
        assert [f["name"] for f in operation["x-shiji-filters"]] == names
        # The API's filter declares the error it answers with.
        assert error_classes(operation)["401"] == ["APIKeyError"]


@pytest.mark.slow
def test_a_document_with_filters_passes_both_linters(filter_api, tmp_path):
    from linters import find, redocly, spectral

    if find("redocly") is None or find("spectral") is None:
        pytest.skip("the OpenAPI linters are not installed: run .ci/tools")
    target = tmp_path / "filter_api-1.0.json"
    document = openapi_document(filter_api, "1.0", server="http://127.0.0.1:9990")
    target.write_text(json.dumps(document, indent=2))
    status, [report] = redocly([target])
    assert (status, report["totals"], report["problems"]) == (
        0,
        {"errors": 0, "warnings": 0, "ignored": 0},
        [],
    )
    assert spectral([target]) == (0, [])
