"""
json_arguments, url_arguments and paged_results.
"""

import pytest
import pytest_twisted
from apitools import envelope, make_api
from twisted.internet import defer, reactor, task

from shiji import webapi
from shiji.testing import TestClient
from shiji.urldispatch import URLMatchJSONResource


class Typed(URLMatchJSONResource):
    routes = r"typed"

    @webapi.json_arguments(
        [
            ("count", int),
            ("ratio", float),
            ("name", str),
            ("flag", bool),
            ("id", (int, str)),
            ("tags", list, webapi.ARG_OPTIONAL),
            ("extra", dict, webapi.ARG_OPTIONAL),
            ("maybe", (str, type(None)), webapi.ARG_OPTIONAL),
        ]
    )
    def render_POST(self, request):
        return {
            "jsonArgs": request.jsonArgs,
            "types": {k: type(v).__name__ for k, v in request.jsonArgs.items()},
        }

    @webapi.json_arguments([("count", int)], content_type="application/vnd.shiji+json")
    def render_PUT(self, request):
        return request.jsonArgs


class Spec(URLMatchJSONResource):
    """The spec's stack of decorators over inlineCallbacks, and over async."""

    routes = r"spec"

    @webapi.json_arguments(
        [
            ("client_tz", int),
            ("client_id", str),
            ("new_client", bool, webapi.ARG_OPTIONAL),
        ]
    )
    @webapi.url_arguments(["simple_auth_key"])
    @defer.inlineCallbacks
    def render_POST(self, request):
        yield task.deferLater(reactor, 0, lambda: None)
        return {"key": request.args["simple_auth_key"][0], "args": request.jsonArgs}

    @defer.inlineCallbacks
    @webapi.url_arguments(["simple_auth_key"])
    @webapi.json_arguments([("client_tz", int)])
    def render_PUT(self, request):
        yield task.deferLater(reactor, 0, lambda: None)
        return {"key": request.args["simple_auth_key"][0], "args": request.jsonArgs}

    @webapi.url_arguments(["simple_auth_key"])
    @webapi.json_arguments([("client_tz", int)])
    async def render_PATCH(self, request):
        await task.deferLater(reactor, 0, lambda: None)
        return {"key": request.args["simple_auth_key"][0], "args": request.jsonArgs}


class Paged(URLMatchJSONResource):
    routes = r"paged"

    @webapi.paged_results(default_page=0, default_page_len=50, max_page_len=75)
    def render_GET(self, request):
        page = request.args["page"][0]
        page_len = request.args["page_len"][0]
        entries = list(range(200))
        return {
            "page": page,
            "page_len": page_len,
            "entries": entries[page * page_len :][:page_len],
        }


def client(**options):
    api = make_api("a_api", [("1.0", r"1\.0", [Typed, Spec, Paged])])
    return TestClient({"a": api}, **options)


VALID = {"count": 3, "ratio": 0.5, "name": "n", "flag": False, "id": 9}


def value_error(name, text):
    return envelope("ValueError", 502, f"Invalid value for argument '{name}'. {text}")


@pytest_twisted.ensureDeferred
async def test_valid_arguments_reach_the_handler_as_json_args():
    body = dict(VALID, tags=["a"], extra={"k": 1}, maybe=None, unknown="kept")
    response = await client().post("/a/typed", json=body)
    assert response.status == 200
    assert response.json == {
        "jsonArgs": body,
        "types": {
            "count": "int",
            "ratio": "float",
            "name": "str",
            "flag": "bool",
            "id": "int",
            "tags": "list",
            "extra": "dict",
            "maybe": "NoneType",
            "unknown": "str",
        },
    }


@pytest_twisted.ensureDeferred
async def test_an_int_is_accepted_and_converted_where_a_float_is_asked():
    response = await client().post("/a/typed", json=dict(VALID, ratio=2))
    assert response.json["jsonArgs"]["ratio"] == 2.0
    assert response.json["types"]["ratio"] == "float"
    assert b'"ratio":2.0' in response.body


@pytest.mark.parametrize(
    "name, value, text",
    [
        ("count", "3", "Must be of type int"),
        ("count", 3.0, "Must be of type int"),
        ("count", True, "Must be of type int"),
        ("count", False, "Must be of type int"),
        ("count", None, "Must be of type int"),
        ("ratio", "0.5", "Must be of type float"),
        ("ratio", True, "Must be of type float"),
        ("ratio", 10**400, "Must be of type float"),
        ("name", 5, "Must be of type str"),
        ("name", ["n"], "Must be of type str"),
        ("flag", 1, "Must be of type bool"),
        ("flag", "true", "Must be of type bool"),
        ("id", 1.5, "Must be of type int or str"),
        ("id", False, "Must be of type int or str"),
        ("tags", "a", "Must be of type list"),
        ("extra", [], "Must be of type dict"),
        ("maybe", 3, "Must be of type str or NoneType"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_mistyped_arguments(name, value, text):
    response = await client().post("/a/typed", json=dict(VALID, **{name: value}))
    assert response.status == 409
    assert response.json == value_error(name, text)


@pytest.mark.parametrize("missing", ["count", "ratio", "name", "flag", "id"])
@pytest_twisted.ensureDeferred
async def test_missing_required_arguments(missing):
    body = {k: v for k, v in VALID.items() if k != missing}
    response = await client().post("/a/typed", json=body)
    assert response.status == 409
    assert response.json == value_error(missing, "Argument is missing.")


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json;charset=utf-8",
        "Application/JSON; Charset=UTF-8",
        'application/json; charset="utf-8"',
        "application/json; charset=utf8",
        "application/json; boundary=x; charset=UTF-8",
    ],
)
@pytest_twisted.ensureDeferred
async def test_accepted_content_types(content_type):
    response = await client().post("/a/typed", json=VALID, content_type=content_type)
    assert response.status == 200


CONTENT_TYPE_ERROR = envelope(
    "ContentTypeError",
    503,
    "The Content-Type of the API request was not of the expected format...or the "
    "API/version requested does not exist.",
)
CHARSET_ERROR = envelope(
    "CharsetNotUTF8Error",
    504,
    "The Content-Type of the API request did not specify a charset, or the charset "
    "specified was not UTF-8.",
)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonx",
        "application/json-patch+json",
        "multipart/form-data; boundary=x",
        "",
    ],
)
@pytest_twisted.ensureDeferred
async def test_other_content_types_are_406(content_type):
    response = await client().post(
        "/a/typed", body=b'{"count": 1}', headers={"Content-Type": content_type}
    )
    assert response.status == 406
    assert response.json == CONTENT_TYPE_ERROR


@pytest_twisted.ensureDeferred
async def test_missing_content_type_is_406():
    response = await client().post(
        "/a/typed", body=b"{}", headers=[("Content-Type", "")], content_type=None
    )
    assert response.status == 406
    raw = await client().post("/a/typed", body=b"{}", headers={"Content-Type": None})
    assert raw.status == 406
    assert raw.json == CONTENT_TYPE_ERROR


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=latin-1",
        "application/json; charset=utf-16",
        "application/json; charset=",
    ],
)
@pytest_twisted.ensureDeferred
async def test_other_charsets_are_409(content_type):
    response = await client().post("/a/typed", json=VALID, content_type=content_type)
    assert response.status == 409
    assert response.json == CHARSET_ERROR


@pytest_twisted.ensureDeferred
async def test_strict_charset_requires_the_charset_parameter():
    strict = client(strict_charset=True)
    response = await strict.post(
        "/a/typed", json=VALID, content_type="application/json"
    )
    assert response.status == 409
    assert response.json == CHARSET_ERROR
    response = await strict.post(
        "/a/typed", json=VALID, content_type="application/json; charset=utf-8"
    )
    assert response.status == 200


@pytest_twisted.ensureDeferred
async def test_declared_content_type():
    response = await client().put(
        "/a/typed", json={"count": 1}, content_type="application/vnd.shiji+json"
    )
    assert response.json == {"count": 1}
    response = await client().put("/a/typed", json={"count": 1})
    assert response.status == 406


JSON_DECODE_ERROR = envelope(
    "JSONDecodeError",
    205,
    "Arguments passed in API call request are not validly formed JSON.",
)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b'{"count": 1',
        b"{'count': 1}",
        b'{"count": 1,}',
        b'{"count": 01}',
        b'{"name": "caf\xe9"}',
        b"\xff\xfe{\x00}\x00",
        b'\xef\xbb\xbf{"count": 1}',
        b'{"ratio": NaN}',
        b'{"ratio": Infinity}',
        b'{"ratio": -Infinity}',
        b'{"ratio": 1e400}',
        b'{"count": ' + b"9" * 5000 + b"}",
        b"[" * 100000 + b"]" * 100000,
        b'{"a": ' + b'{"a": ' * 50000 + b"1" + b"}" * 50001,
        b'{"count": 1} {"count": 2}',
        b"\x00",
    ],
)
@pytest_twisted.ensureDeferred
async def test_bodies_that_are_not_strict_utf8_json_are_205(body):
    response = await client().post("/a/typed", body=body)
    assert response.status == 409
    assert response.json == JSON_DECODE_ERROR


@pytest.mark.parametrize(
    "body", [b"[]", b'[{"count": 1}]', b'"text"', b"1", b"null", b"true"]
)
@pytest_twisted.ensureDeferred
async def test_json_that_is_not_an_object_is_206(body):
    response = await client().post("/a/typed", body=body)
    assert response.status == 409
    assert response.json == envelope(
        "RequestNotHashError",
        206,
        "Request body must be a JSON-encoded hash table/dictionary.",
    )


@pytest_twisted.ensureDeferred
async def test_duplicate_keys_are_refused_at_any_depth():
    # Parsers disagree on which of two values wins, so a body naming a key
    # twice could mean one thing to a proxy that checked it and another here.
    for body in (
        b'{"count": "x", "ratio": 1.0, "name": "n", "flag": true, "id": 1, "count": 2}',
        b'{"count": 1, "ratio": 1.0, "name": "n", "flag": true, "id": {"a": 1, "a": 1}}',
    ):
        response = await client().post("/a/typed", body=body)
        assert response.status == 409
        assert response.error["exception_class"] == "JSONDecodeError"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
@pytest_twisted.ensureDeferred
async def test_spec_decorator_stacks_with_inline_callbacks_and_async(method):
    response = await client().request(
        method, "/a/spec?simple_auth_key=abc", json={"client_tz": -7, "client_id": "c"}
    )
    assert response.status == 200
    assert response.json["key"] == "abc"
    assert response.json["args"]["client_tz"] == -7


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
@pytest_twisted.ensureDeferred
async def test_missing_url_argument_in_every_stacking_order(method):
    response = await client().request(
        method, "/a/spec", json={"client_tz": -7, "client_id": "c"}
    )
    assert response.status == 409
    assert response.json == value_error("simple_auth_key", "Argument is missing.")


@pytest_twisted.ensureDeferred
async def test_blank_url_argument_is_present():
    response = await client().post(
        "/a/spec?simple_auth_key=", json={"client_tz": 1, "client_id": "c"}
    )
    assert response.json["key"] == ""


@pytest_twisted.ensureDeferred
async def test_url_argument_in_the_body_does_not_count():
    response = await client().post(
        "/a/spec", json={"client_tz": 1, "client_id": "c", "simple_auth_key": "abc"}
    )
    assert response.json == value_error("simple_auth_key", "Argument is missing.")


@pytest.mark.parametrize(
    "query, page, page_len",
    [
        ("", 0, 50),
        ("?page=2", 2, 50),
        ("?page_len=10", 0, 10),
        ("?page=3&page_len=1", 3, 1),
        ("?page=3&page_len=0", 3, 0),
        ("?page=%2B1", 1, 50),
        ("?page=-0", 0, 50),
        ("?page=" + "0" * 40 + "7", 7, 50),
        ("?page=999999999999999999", 999999999999999999, 50),
        ("?page=0&page_len=75", 0, 75),
        ("?page=1&page=9", 1, 50),
        ("?page=007", 7, 50),
    ],
)
@pytest_twisted.ensureDeferred
async def test_paging_arguments(query, page, page_len):
    response = await client().get(f"/a/paged{query}")
    assert response.status == 200
    assert response.json == {
        "page": page,
        "page_len": page_len,
        "entries": list(range(200))[page * page_len :][:page_len],
    }


@pytest.mark.parametrize(
    "query, name, text",
    [
        ("?page=-1", "page", "Argument must be 0 or greater."),
        ("?page=abc", "page", "Argument must be an integer."),
        ("?page=1.5", "page", "Argument must be an integer."),
        ("?page=", "page", "Argument must be an integer."),
        ("?page=%201", "page", "Argument must be an integer."),
        ("?page=1_0", "page", "Argument must be an integer."),
        ("?page=%D9%A3", "page", "Argument must be an integer."),
        ("?page=--1", "page", "Argument must be an integer."),
        ("?page=%2B", "page", "Argument must be an integer."),
        ("?page=%2B-1", "page", "Argument must be an integer."),
        ("?page_len=76", "page_len", "Argument must be 75 or less."),
        ("?page_len=-5", "page_len", "Argument must be 0 or greater."),
        ("?page_len=ten", "page_len", "Argument must be an integer."),
        ("?page_len=" + "9" * 100, "page_len", "Argument must be 75 or less."),
        # page_len is checked first, as the original did.
        ("?page=-1&page_len=ten", "page_len", "Argument must be an integer."),
        ("?page=x&page_len=76", "page_len", "Argument must be 75 or less."),
        # Numbers too long to be pages are refused before they are converted.
        ("?page_len=" + "9" * 4500, "page_len", "Argument must be 75 or less."),
        ("?page_len=-" + "9" * 4500, "page_len", "Argument must be 0 or greater."),
        ("?page=" + "9" * 4500, "page", "Argument must be 999999999999999999 or less."),
        ("?page=1" + "0" * 18, "page", "Argument must be 999999999999999999 or less."),
        ("?page=-" + "9" * 4500, "page", "Argument must be 0 or greater."),
    ],
)
@pytest_twisted.ensureDeferred
async def test_bad_paging_arguments(query, name, text):
    response = await client().get(f"/a/paged{query}")
    assert response.status == 409
    assert response.json == value_error(name, text)


def test_decorators_keep_the_handler_name_and_docstring_and_record_declarations():
    post = Spec.render_POST
    assert post.__name__ == "render_POST"
    assert Spec.render_PATCH.__name__ == "render_PATCH"
    declared = webapi.declarations(post)
    assert declared.url_arguments == ("simple_auth_key",)
    assert declared.json_content_type == "application/json"
    assert [(a.name, a.types, a.optional) for a in declared.json_arguments] == [
        ("client_tz", (int,), False),
        ("client_id", (str,), False),
        ("new_client", (bool,), True),
    ]
    assert declared.paged_results is None
    paging = webapi.declarations(Paged.render_GET).paged_results
    assert paging == webapi.PagingDeclaration(0, 50, 75)
    assert (
        webapi.declarations(Typed.render_PUT).json_content_type
        == "application/vnd.shiji+json"
    )
    assert webapi.declarations(lambda self, request: None) == webapi.CallDeclarations()


def test_documented_handlers_keep_their_docstrings():
    @webapi.json_arguments([("a", int)])
    @webapi.url_arguments(["b"])
    @webapi.paged_results(0, 10, 20)
    def render_GET(self, request):
        """Documented."""

    assert render_GET.__doc__ == "Documented."
    declared = webapi.declarations(render_GET)
    assert declared.url_arguments == ("b",)
    assert declared.paged_results.max_page_len == 20


FLAG_ERROR = (
    "^json_arguments: the flag of 'a' must be ARG_OPTIONAL \\(True\\) or "
    "ARG_REQUIRED \\(False\\)$"
)


@pytest.mark.parametrize(
    "entries, message",
    [
        ([("a",)], "entries are \\(name, type\\[, ARG_OPTIONAL\\]\\)"),
        (["a"], "entries are"),
        ([(1, int)], "argument name 1 is not a string"),
        ([("a", "int")], "the type of 'a' must be a type or a tuple of types"),
        ([("a", ())], "the type of 'a' must be a type"),
        ([("a", int, "optional")], FLAG_ERROR),
        ([("a", int, None)], FLAG_ERROR),
        ([("a", int, 2)], FLAG_ERROR),
    ],
)
def test_malformed_declarations_fail_at_import_time(entries, message):
    with pytest.raises(TypeError, match=message):
        webapi.json_arguments(entries)


def test_malformed_paging_and_url_declarations_fail_at_import_time():
    with pytest.raises(TypeError) as info:
        webapi.paged_results(-1, 10, 20)
    assert str(info.value) == "paged_results: default_page (-1) cannot be < 0"
    with pytest.raises(TypeError) as info:
        webapi.paged_results(0, 30, 20)
    assert str(info.value) == (
        "paged_results: default_page_len (30) must be between 0 and max_page_len (20)"
    )
    with pytest.raises(TypeError) as info:
        webapi.url_arguments("simple_auth_key")
    assert str(info.value) == "url_arguments takes a list of names, not a string"


def test_paging_defaults_and_bounds():
    assert webapi.declarations(
        webapi.paged_results()(lambda self, request: None)
    ).paged_results == webapi.PagingDeclaration(0, 50, 100)
    # The default length may be anything from 0 to the maximum.
    for default_page_len in (0, 1, 20):
        webapi.paged_results(0, default_page_len, 20)
    for default_page_len in (-1, 21):
        with pytest.raises(TypeError, match="must be between 0 and max_page_len"):
            webapi.paged_results(0, default_page_len, 20)
    with pytest.raises(TypeError, match="between 0 and max_page_len \\(-1\\)"):
        webapi.paged_results(0, 0, -1)
    webapi.paged_results(default_page=0)


class DefaultPaged(URLMatchJSONResource):
    routes = r"default_paged"

    @webapi.paged_results()
    def render_GET(self, request):
        return {
            "page": request.args["page"][0],
            "page_len": request.args["page_len"][0],
        }


@pytest.mark.parametrize(
    "query, status, body",
    [
        ("", 200, {"page": 0, "page_len": 50}),
        ("?page_len=100", 200, {"page": 0, "page_len": 100}),
        (
            "?page_len=101",
            409,
            value_error("page_len", "Argument must be 100 or less."),
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_default_paging(query, status, body):
    api = make_api("d_api", [("1.0", r"1\.0", [DefaultPaged])])
    response = await TestClient({"d": api}).get(f"/d/default_paged{query}")
    assert (response.status, response.json) == (status, body)


def test_every_decorator_keeps_what_the_ones_below_declare():
    def handler(self, request):
        """Documented."""

    decorators = [
        webapi.json_arguments([("a", int)]),
        webapi.url_arguments(["b"]),
        webapi.paged_results(0, 10, 20),
        webapi.auth_http_basic(lambda user, password: True, "Realm"),
    ]
    # Each decorator outermost in turn.
    for turn in range(len(decorators)):
        stacked = handler
        for decorator in decorators[turn + 1 :] + decorators[: turn + 1]:
            stacked = decorator(stacked)
        declared = webapi.declarations(stacked)
        assert [a.name for a in declared.json_arguments] == ["a"], turn
        assert declared.url_arguments == ("b",), turn
        assert declared.paged_results == webapi.PagingDeclaration(0, 10, 20), turn
        assert declared.http_basic_realm == "Realm", turn
        assert stacked.__doc__ == "Documented."
