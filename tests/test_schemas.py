"""
Richer declarations: Arg rules, nested and model bodies, typed query, path
and header arguments, field errors, webapi.returns and bad declarations.
"""

import dataclasses
import enum
import json
from typing import Annotated, Dict, List, Literal, Optional, Union

import pytest
import pytest_twisted
from apitools import make_api

from shiji import webapi
from shiji.testing import ResponseMismatchError, TestClient
from shiji.urldispatch import APIDefinitionError, CallRouter, URLMatchJSONResource
from shiji.webapi import Arg, Constraints


def field(name, reason, expected, location="body", pointer=None):
    found = {"field": name, "in": location, "reason": reason, "expected": expected}
    if location == "body":
        found["pointer"] = pointer or "#/" + name.replace(".", "/")
    return found


def refusal(text_field, sentence, *fields):
    return {
        "result": None,
        "error": {
            "error_code": 502,
            "exception_class": "ValueError",
            "exception_text": f"Invalid value for argument '{text_field}'. {sentence}",
            "fields": list(fields),
        },
    }


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Rules(URLMatchJSONResource):
    routes = r"rules"

    @webapi.json_arguments(
        [
            Arg("age", int, minimum=0, maximum=150),
            Arg("score", float, exclusive_minimum=0, exclusive_maximum=1, default=0.5),
            Arg("name", str, min_length=2, max_length=5, description="A short name."),
            Arg("code", str, pattern=r"[A-Z]{3}", required=False),
            Arg("size", str, enum=["S", "M", "L"], required=False),
            Arg("color", Color, required=False),
            Arg("mode", Literal["fast", "slow"], required=False),
            Arg("tags", List[str], max_items=3, min_items=1, default=["x"]),
            Arg("when", str, convert=int, expected="digits", required=False),
            Arg("userName", str, rename="user_name", required=False),
            Arg("nothing", Optional[int], required=False),
        ]
    )
    def render_POST(self, request):
        args = dict(request.jsonArgs)
        if "color" in args:
            args["color"] = args["color"].name
        return {"args": args, "types": {k: type(v).__name__ for k, v in args.items()}}


class Nested(URLMatchJSONResource):
    routes = r"nested"

    @webapi.json_arguments(
        [
            Arg(
                "client",
                [
                    Arg(
                        "address",
                        [
                            Arg("zip", str, min_length=5),
                            Arg("lines", List[str], max_items=2, default=[]),
                        ],
                    ),
                    ("id", int),
                ],
            ),
            Arg(
                "items",
                List[webapi.Object([Arg("sku", str), Arg("qty", int, minimum=1)])],
            ),
            Arg("counts", Dict[str, int], required=False),
        ]
    )
    def render_POST(self, request):
        return {"args": request.jsonArgs}


@dataclasses.dataclass
class Address:
    """Where to send it."""

    zip: Annotated[str, Constraints(min_length=5)]
    city: str = "Paris"


@dataclasses.dataclass
class Order:
    address: Address
    lines: Annotated[List[int], Constraints(max_items=3)]
    note: Optional[str] = None


class Models(URLMatchJSONResource):
    routes = r"models"

    @webapi.json_arguments(Order)
    def render_POST(self, request):
        model = request.json_model
        return {
            "model": type(model).__name__,
            "address": type(model.address).__name__,
            "args": request.jsonArgs,
        }

    @webapi.json_arguments(
        {
            "type": "object",
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "kind": {"enum": ["a", "b"]},
                "labels": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
            },
            "required": ["id"],
            "additionalProperties": False,
        }
    )
    def render_PUT(self, request):
        return {"args": request.jsonArgs}


class Strict(URLMatchJSONResource):
    routes = r"strict"

    @webapi.json_arguments(
        [("a", int), Arg("inner", [("b", int)], allow_extra=False)], allow_extra=False
    )
    def render_POST(self, request):
        return {"args": request.jsonArgs}

    @webapi.json_arguments([("a", int)])
    def render_PUT(self, request):
        return {"args": request.jsonArgs}


class Query(URLMatchJSONResource):
    routes = r"query"

    @webapi.url_arguments(
        [
            Arg("n", int, minimum=0, default=10),
            Arg("ratio", float, required=False),
            Arg("on", bool, default=False),
            Arg("color", Color, required=False),
            Arg("ids", List[int], max_items=3, default=[]),
            ("key", str),
            "legacy",
        ]
    )
    def render_GET(self, request):
        found = dict(request.query_args)
        if "color" in found:
            found["color"] = found["color"].name
        return {
            "query": found,
            "types": {k: type(v).__name__ for k, v in found.items()},
            "args": {k: v for k, v in request.args.items()},
        }


class Paths(URLMatchJSONResource):
    routes = [r"stamp/(?P<timestamp>[0-9]+)", r"stamp"]

    @webapi.path_arguments([Arg("timestamp", int, maximum=2**31)])
    def render_GET(self, request):
        return {"matches": dict(self.url_matches), "request": dict(request.url_matches)}


class Headers(URLMatchJSONResource):
    routes = r"headers"

    @webapi.header_arguments(
        [
            Arg("X-Priority", int, minimum=0, maximum=9, default=5),
            Arg("X-Trace", str, rename="trace"),
            Arg("X-Tag", List[str], required=False),
        ]
    )
    def render_GET(self, request):
        return {"headers": dict(request.header_args)}


@dataclasses.dataclass
class Created:
    id: int
    email: str


class Answers(URLMatchJSONResource):
    routes = r"answers/(?P<case>[a-z]+)"

    @webapi.returns(201, Created, description="The new account.")
    @webapi.returns(204, None)
    def render_POST(self, request):
        case = self.url_matches["case"]
        if case == "good":
            return {"id": 1, "email": "a@b.c"}
        if case == "empty":
            request.setResponseCode(204)
            return b""
        if case == "undeclared":
            request.setResponseCode(200)
            return {"id": 1, "email": "a@b.c"}
        if case == "text":
            return '{"id": "one", "email": "a@b.c"}'
        if case == "direct":
            webapi.write_json(request, {"id": 1})
            return None
        if case == "error":
            raise webapi.InvalidField(request, "id", expected="the id of a user")
        return {"id": "one", "email": None}


class Handlers(URLMatchJSONResource):
    routes = r"handler"

    @webapi.json_arguments([("id", int)])
    def render_POST(self, request):
        raise webapi.InvalidField(
            request, "id", "No such user.", reason="unknown", expected="a user's id"
        )


API = make_api(
    "s_api",
    [
        (
            "1.0",
            r"1\.0",
            [Rules, Nested, Models, Strict, Query, Paths, Headers, Answers, Handlers],
        )
    ],
)


@pytest.fixture
def client():
    return TestClient({"s": API})


# ---------------------------------------------------------------------------
# Rules on body arguments


@pytest_twisted.ensureDeferred
async def test_rules_accept_and_convert(client):
    response = await client.post(
        "/s/rules",
        json={
            "age": 30,
            "name": "Ann",
            "code": "ABC",
            "size": "M",
            "color": "red",
            "mode": "fast",
            "when": "0042",
            "userName": "ann",
            "nothing": None,
            "extra": [1],
        },
    )
    assert response.status == 200
    assert response.json == {
        "args": {
            "age": 30,
            "score": 0.5,
            "name": "Ann",
            "code": "ABC",
            "size": "M",
            "color": "RED",
            "mode": "fast",
            "tags": ["x"],
            "when": 42,
            "user_name": "ann",
            "nothing": None,
            "extra": [1],
        },
        "types": {
            "age": "int",
            "score": "float",
            "name": "str",
            "code": "str",
            "size": "str",
            "color": "str",
            "mode": "str",
            "tags": "list",
            "when": "int",
            "user_name": "str",
            "nothing": "NoneType",
            "extra": "list",
        },
    }


@pytest_twisted.ensureDeferred
async def test_defaults_are_copied_for_each_request(client):
    class Mutating(URLMatchJSONResource):
        routes = r"mutating"

        @webapi.json_arguments([Arg("tags", List[str], default=[])])
        def render_POST(self, request):
            request.jsonArgs["tags"].append("seen")
            return {"tags": request.jsonArgs["tags"]}

    mutating = TestClient({"m": make_api("m_api", [("1.0", r"1\.0", [Mutating])])})
    for _ in range(2):
        response = await mutating.post("/m/mutating", json={})
        assert response.json == {"tags": ["seen"]}


@pytest.mark.parametrize(
    "changes, first, sentence, fields",
    [
        (
            {"age": -1},
            "age",
            "Must be at least 0.",
            [field("age", "too small", "at least 0")],
        ),
        (
            {"age": 151},
            "age",
            "Must be at most 150.",
            [field("age", "too large", "at most 150")],
        ),
        (
            {"age": 1.0},
            "age",
            "Must be of type int",
            [field("age", "wrong type", "int")],
        ),
        (
            {"age": True},
            "age",
            "Must be of type int",
            [field("age", "wrong type", "int")],
        ),
        (
            {"score": 0},
            "score",
            "Must be greater than 0.",
            [field("score", "too small", "greater than 0")],
        ),
        (
            {"score": 1},
            "score",
            "Must be less than 1.",
            [field("score", "too large", "less than 1")],
        ),
        (
            {"name": "A"},
            "name",
            "Must be at least 2 characters long.",
            [field("name", "too short", "at least 2 characters")],
        ),
        (
            {"name": "Annabel"},
            "name",
            "Must be at most 5 characters long.",
            [field("name", "too long", "at most 5 characters")],
        ),
        (
            {"code": "abc"},
            "code",
            "Must match [A-Z]{3}.",
            [field("code", "no match", "matching [A-Z]{3}")],
        ),
        (
            {"code": "ABCD"},
            "code",
            "Must match [A-Z]{3}.",
            [field("code", "no match", "matching [A-Z]{3}")],
        ),
        (
            {"size": "XL"},
            "size",
            "Must be one of 'S', 'M', 'L'.",
            [field("size", "not allowed", "one of 'S', 'M', 'L'")],
        ),
        (
            {"color": "blue"},
            "color",
            "Must be one of 'red', 'green'.",
            [field("color", "not allowed", "one of 'red', 'green'")],
        ),
        (
            {"mode": "FAST"},
            "mode",
            "Must be one of 'fast', 'slow'.",
            [field("mode", "not allowed", "one of 'fast', 'slow'")],
        ),
        (
            {"tags": []},
            "tags",
            "Must be at least 1 item long.",
            [field("tags", "too short", "at least 1 item")],
        ),
        (
            {"tags": ["a", "b", "c", "d"]},
            "tags",
            "Must be at most 3 items long.",
            [field("tags", "too long", "at most 3 items")],
        ),
        (
            {"tags": ["a", 2, None]},
            "tags[1]",
            "Must be of type str",
            [
                field("tags[1]", "wrong type", "str", pointer="#/tags/1"),
                field("tags[2]", "wrong type", "str", pointer="#/tags/2"),
            ],
        ),
        (
            {"when": "soon"},
            "when",
            "Must be digits.",
            [field("when", "invalid", "digits")],
        ),
        (
            {"nothing": "x"},
            "nothing",
            "Must be of type int or NoneType",
            [field("nothing", "wrong type", "int or NoneType")],
        ),
        (
            {"age": "x", "name": None, "size": 1},
            "age",
            "Must be of type int",
            [
                field("age", "wrong type", "int"),
                field("name", "wrong type", "str"),
                field("size", "wrong type", "str"),
            ],
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_rules_refuse_with_every_failing_field(
    client, changes, first, sentence, fields
):
    body = {"age": 30, "name": "Ann", **changes}
    response = await client.post("/s/rules", json=body)
    assert response.status == 409
    assert response.json == refusal(first, sentence, *fields)


@pytest_twisted.ensureDeferred
async def test_missing_arguments_are_listed_in_declared_order(client):
    response = await client.post("/s/rules", json={})
    assert response.json == refusal(
        "age",
        "Argument is missing.",
        field("age", "missing", "an int"),
        field("name", "missing", "a str"),
    )


@pytest_twisted.ensureDeferred
async def test_problem_details_carry_the_fields_as_errors(client):
    response = await client.post(
        "/s/rules",
        json={"age": -1},
        headers={"Accept": "application/problem+json"},
    )
    assert response.status == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": "Invalid value for argument 'age'. Must be at least 0.",
        "error_code": 502,
        "exception_class": "ValueError",
        "errors": [
            field("age", "too small", "at least 0"),
            field("name", "missing", "a str"),
        ],
    }


# ---------------------------------------------------------------------------
# Nested bodies


@pytest_twisted.ensureDeferred
async def test_nested_objects_and_lists_are_checked_and_kept(client):
    body = {
        "client": {"address": {"zip": "75001"}, "id": 7, "vip": True},
        "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}],
        "counts": {"a": 1},
    }
    response = await client.post("/s/nested", json=body)
    assert response.status == 200
    assert response.json == {
        "args": {
            "client": {"address": {"zip": "75001", "lines": []}, "id": 7, "vip": True},
            "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}],
            "counts": {"a": 1},
        }
    }


@pytest.mark.parametrize(
    "body, fields",
    [
        (
            {"client": [], "items": []},
            [field("client", "wrong type", "object")],
        ),
        (
            {"client": {"address": "x", "id": 1}, "items": []},
            [field("client.address", "wrong type", "object")],
        ),
        (
            {"client": {"address": {"zip": 75001}, "id": "1"}, "items": []},
            [
                field("client.address.zip", "wrong type", "str"),
                field("client.id", "wrong type", "int"),
            ],
        ),
        (
            {"client": {"address": {"zip": "7", "lines": ["a", "b", "c"]}, "id": 1}},
            [
                field("client.address.zip", "too short", "at least 5 characters"),
                field("client.address.lines", "too long", "at most 2 items"),
                field("items", "missing", "a list of object"),
            ],
        ),
        (
            {
                "client": {"address": {}, "id": 1},
                "items": [{"sku": "a", "qty": 0}, "x", {"qty": 1}],
            },
            [
                field("client.address.zip", "missing", "a str"),
                field(
                    "items[0].qty", "too small", "at least 1", pointer="#/items/0/qty"
                ),
                field("items[1]", "wrong type", "object", pointer="#/items/1"),
                field("items[2].sku", "missing", "a str", pointer="#/items/2/sku"),
            ],
        ),
        (
            {
                "client": {"address": {"zip": "75001"}, "id": 1},
                "items": [],
                "counts": {"a": "1", "b/c": None},
            },
            [
                field("counts.a", "wrong type", "int"),
                field("counts.b/c", "wrong type", "int", pointer="#/counts/b~1c"),
            ],
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_wrong_values_at_every_depth(client, body, fields):
    response = await client.post("/s/nested", json=body)
    assert response.status == 409
    assert response.json["error"]["fields"] == fields
    first = fields[0]
    sentence = {
        "wrong type": f"Must be of type {first['expected']}",
        "missing": "Argument is missing.",
        "too short": f"Must be {first['expected']} long.",
        "too small": f"Must be {first['expected']}.",
    }[first["reason"]]
    assert response.json["error"]["exception_text"] == (
        f"Invalid value for argument '{first['field']}'. {sentence}"
    )


@pytest_twisted.ensureDeferred
async def test_a_huge_list_is_refused_by_its_max_items(client):
    body = {"client": {"address": {"zip": "75001", "lines": ["x"] * 100000}, "id": 1}}
    body["items"] = []
    response = await client.post("/s/nested", json=body)
    assert response.status == 409
    assert response.json["error"]["fields"] == [
        field("client.address.lines", "too long", "at most 2 items")
    ]


@pytest_twisted.ensureDeferred
async def test_a_huge_list_of_wrong_items_lists_a_hundred(client):
    body = {"client": {"address": {"zip": "75001"}, "id": 1}, "items": ["x"] * 50000}
    response = await client.post("/s/nested", json=body)
    assert response.status == 409
    fields = response.json["error"]["fields"]
    assert fields == [
        field(f"items[{i}]", "wrong type", "object", pointer=f"#/items/{i}")
        for i in range(100)
    ]


@pytest_twisted.ensureDeferred
async def test_too_many_items_are_refused_before_their_items_are_checked(client):
    body = {
        "client": {"address": {"zip": "75001", "lines": [1] * 100000}, "id": 1},
        "items": [],
    }
    response = await client.post("/s/nested", json=body)
    assert response.json["error"]["fields"] == [
        field("client.address.lines", "too long", "at most 2 items")
    ]


# ---------------------------------------------------------------------------
# Whole-body models


@pytest_twisted.ensureDeferred
async def test_a_dataclass_body_gives_the_instance(client):
    response = await client.post(
        "/s/models", json={"address": {"zip": "75001"}, "lines": [1, 2]}
    )
    assert response.status == 200
    assert response.json == {
        "model": "Order",
        "address": "Address",
        "args": {
            "address": {"zip": "75001", "city": "Paris"},
            "lines": [1, 2],
            "note": None,
        },
    }


@pytest_twisted.ensureDeferred
async def test_a_dataclass_body_refuses_with_fields(client):
    response = await client.post(
        "/s/models", json={"address": {"zip": "7"}, "lines": [1, 2, 3, 4], "note": 3}
    )
    assert response.status == 409
    assert response.json == refusal(
        "address.zip",
        "Must be at least 5 characters long.",
        field("address.zip", "too short", "at least 5 characters"),
        field("lines", "too long", "at most 3 items"),
        field("note", "wrong type", "str or NoneType"),
    )


@pytest_twisted.ensureDeferred
async def test_a_json_schema_body(client):
    response = await client.put("/s/models", json={"id": 2, "kind": "a"})
    assert (response.status, response.json) == (200, {"args": {"id": 2, "kind": "a"}})
    response = await client.put(
        "/s/models", json={"id": 0, "kind": "c", "labels": [1, "a", "b"], "more": 1}
    )
    assert response.status == 409
    assert response.json == refusal(
        "id",
        "Must be at least 1.",
        field("id", "too small", "at least 1"),
        field("kind", "not allowed", "one of 'a', 'b'"),
        field("labels", "too long", "at most 2 items"),
        field("more", "unexpected", "no such field"),
    )


def test_pydantic_models_when_pydantic_is_installed():
    pydantic = pytest.importorskip("pydantic")

    class Signup(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")
        email: str = pydantic.Field(max_length=10)
        age: int = pydantic.Field(ge=18)

    class Calls(URLMatchJSONResource):
        routes = r"p"

        @webapi.json_arguments(Signup)
        def render_POST(self, request):
            return {
                "model": type(request.json_model).__name__,
                "args": request.jsonArgs,
            }

    pclient = TestClient({"p": make_api("p_api", [("1.0", r"1\.0", [Calls])])})
    good = pclient.post("/p/p", json={"email": "a@b.c", "age": 20}).result
    assert (good.status, good.json) == (
        200,
        {"model": "Signup", "args": {"email": "a@b.c", "age": 20}},
    )
    bad = pclient.post("/p/p", json={"email": "a" * 11, "age": 3, "x": 1}).result
    assert bad.status == 409
    assert [
        (f["field"], f["in"], f["reason"]) for f in bad.json["error"]["fields"]
    ] == [
        ("email", "body", "too long"),
        ("age", "body", "too small"),
        ("x", "body", "unexpected"),
    ]
    assert bad.json["error"]["exception_text"] == (
        "Invalid value for argument 'email'. String should have at most 10 characters."
    )
    schema = webapi.declarations(Calls.render_POST).described[-1].body.schema
    assert schema["properties"]["age"] == {
        "minimum": 18,
        "title": "Age",
        "type": "integer",
    }


# ---------------------------------------------------------------------------
# Fields a declaration does not name


@pytest_twisted.ensureDeferred
async def test_unexpected_fields_are_allowed_by_default_and_refusable(client):
    response = await client.put("/s/strict", json={"a": 1, "b": 2})
    assert (response.status, response.json) == (200, {"args": {"a": 1, "b": 2}})
    response = await client.post("/s/strict", json={"a": 1, "inner": {"b": 1}})
    assert (response.status, response.json) == (
        200,
        {"args": {"a": 1, "inner": {"b": 1}}},
    )
    response = await client.post(
        "/s/strict", json={"a": 1, "inner": {"b": 1, "c": 2}, "d": 3}
    )
    assert response.status == 409
    assert response.json == refusal(
        "inner.c",
        "Is not an argument of this call.",
        field("inner.c", "unexpected", "no such field"),
        field("d", "unexpected", "no such field"),
    )


# ---------------------------------------------------------------------------
# The original form answers as the original did


SPEC_BODY = {
    "client_tz": "notaninteger",
    "client_id": "myclient012",
    "new_client": True,
}


class Spec(URLMatchJSONResource):
    routes = r"spec"

    @webapi.json_arguments(
        [
            ("client_tz", int),
            ("client_id", str),
            ("new_client", bool, webapi.ARG_OPTIONAL),
        ]
    )
    @webapi.url_arguments(["simple_auth_key"])
    def render_POST(self, request):
        return {"args": request.jsonArgs}


SPEC_API = make_api("spec_api", [("1.0", r"1\.0", [Spec])])


@pytest.mark.parametrize(
    "path, body, raw, fields",
    [
        (
            "/spec/spec?simple_auth_key=abc",
            SPEC_BODY,
            b'{"result":null,"error":{"error_code":502,"exception_class":"ValueError",'
            b'"exception_text":"Invalid value for argument \'client_tz\'. Must be of '
            b'type int"}}',
            [field("client_tz", "wrong type", "int")],
        ),
        (
            "/spec/spec",
            {"client_tz": -7, "client_id": "myclient012", "new_client": True},
            b'{"result":null,"error":{"error_code":502,"exception_class":"ValueError",'
            b'"exception_text":"Invalid value for argument \'simple_auth_key\'. '
            b'Argument is missing."}}',
            [field("simple_auth_key", "missing", "a str", location="query")],
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_the_original_form_answers_byte_for_byte(path, body, raw, fields):
    response = await TestClient({"spec": SPEC_API}).post(path, json=body)
    assert (response.status, response.body) == (409, raw)
    problem = await TestClient({"spec": SPEC_API}).post(
        path, json=body, headers={"Accept": "application/problem+json"}
    )
    assert problem.json["errors"] == fields
    listed = await TestClient({"spec": SPEC_API}, field_errors=True).post(
        path, json=body
    )
    assert listed.json["error"]["fields"] == fields
    assert (
        listed.json["error"]["exception_text"]
        == json.loads(raw)["error"]["exception_text"]
    )


# ---------------------------------------------------------------------------
# Errors raised by handlers


@pytest_twisted.ensureDeferred
async def test_handlers_raise_field_errors(client):
    response = await client.post("/s/handler", json={"id": 3})
    assert response.status == 409
    assert response.json == {
        "result": None,
        "error": {
            "error_code": 502,
            "exception_class": "ValueError",
            "exception_text": "Invalid value for argument 'id'. No such user.",
            "fields": [
                {
                    "field": "id",
                    "in": "body",
                    "reason": "unknown",
                    "expected": "a user's id",
                }
            ],
        },
    }


def test_invalid_field_needs_words():
    with pytest.raises(TypeError, match="needs a message or what is expected"):
        webapi.InvalidField(None, "id")
    error = webapi.InvalidField(None, "id", expected="a positive number")
    assert error.exception_text == (
        "Invalid value for argument 'id'. Must be a positive number."
    )
    assert isinstance(error, webapi.ValueError)
    with pytest.raises(TypeError, match="needs field, in, reason, expected"):
        webapi.ValueError(None, "x", "y", fields=[{"field": "x"}])


# ---------------------------------------------------------------------------
# Query arguments


@pytest_twisted.ensureDeferred
async def test_typed_query_arguments(client):
    response = await client.get(
        "/s/query?key=k&legacy=1&n=%2B3&ratio=-1.5e2&on=TRUE&color=green&ids=1&ids=2&n=4"
    )
    assert response.status == 200
    assert response.json == {
        "query": {
            "n": 3,
            "ratio": -150.0,
            "on": True,
            "color": "GREEN",
            "ids": [1, 2],
            "key": "k",
        },
        "types": {
            "n": "int",
            "ratio": "float",
            "on": "bool",
            "color": "str",
            "ids": "list",
            "key": "str",
        },
        "args": {
            "key": ["k"],
            "legacy": ["1"],
            "n": ["+3", "4"],
            "ratio": ["-1.5e2"],
            "on": ["TRUE"],
            "color": ["green"],
            "ids": ["1", "2"],
        },
    }


@pytest_twisted.ensureDeferred
async def test_query_defaults(client):
    response = await client.get("/s/query?key=&legacy=")
    assert response.json["query"] == {"n": 10, "on": False, "ids": [], "key": ""}


@pytest.mark.parametrize(
    "query, fields",
    [
        ("", [("key", "missing", "a str"), ("legacy", "missing", "a str")]),
        ("key=1&legacy&n=-1", [("n", "too small", "at least 0")]),
        ("key=1&legacy&n=1.5", [("n", "wrong type", "int")]),
        ("key=1&legacy&n=" + "9" * 101, [("n", "wrong type", "int")]),
        ("key=1&legacy&n=1_000", [("n", "wrong type", "int")]),
        ("key=1&legacy&n=%EF%BC%91", [("n", "wrong type", "int")]),
        ("key=1&legacy&ratio=inf", [("ratio", "wrong type", "float")]),
        ("key=1&legacy&ratio=nan", [("ratio", "wrong type", "float")]),
        ("key=1&legacy&ratio=1e999", [("ratio", "wrong type", "float")]),
        ("key=1&legacy&ratio=1_0", [("ratio", "wrong type", "float")]),
        ("key=1&legacy&on=yes", [("on", "wrong type", "bool")]),
        ("key=1&legacy&color=RED", [("color", "not allowed", "one of 'red', 'green'")]),
        ("key=1&legacy&ids=1&ids=x&ids=3", [("ids[1]", "wrong type", "int")]),
        (
            "key=1&legacy&" + "&".join(["ids=1"] * 4),
            [("ids", "too long", "at most 3 items")],
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_bad_query_arguments(client, query, fields):
    response = await client.get("/s/query?" + query)
    assert response.status == 409
    assert response.json["error"]["fields"] == [
        {"field": f, "in": "query", "reason": r, "expected": e} for f, r, e in fields
    ]


@pytest_twisted.ensureDeferred
async def test_a_body_on_get_is_not_an_argument(client):
    response = await client.get("/s/query?key=1&legacy", json={"n": "x", "key": 3})
    assert response.status == 200
    assert response.json["query"] == {"n": 10, "on": False, "ids": [], "key": "1"}


# ---------------------------------------------------------------------------
# Path and header arguments


@pytest_twisted.ensureDeferred
async def test_typed_path_arguments(client):
    response = await client.get("/s/stamp/0042")
    assert response.json == {"matches": {"timestamp": 42}, "request": {"timestamp": 42}}
    response = await client.get("/s/stamp")
    assert response.json == {"matches": {}, "request": {}}
    response = await client.get("/s/stamp/" + "9" * 12)
    assert response.status == 409
    assert response.json["error"] == {
        "error_code": 502,
        "exception_class": "ValueError",
        "exception_text": "Invalid value for argument 'timestamp'. Must be at most "
        "2147483648.",
        "fields": [
            {
                "field": "timestamp",
                "in": "path",
                "reason": "too large",
                "expected": "at most 2147483648",
            }
        ],
    }


def test_path_arguments_must_name_route_groups():
    class Wrong(URLMatchJSONResource):
        routes = r"wrong/(?P<id>[0-9]+)"

        @webapi.path_arguments([("ident", int)])
        def render_GET(self, request):
            return {}

    calls = type(json)("wrong_calls")
    calls.Wrong = Wrong
    with pytest.raises(APIDefinitionError) as info:
        CallRouter(calls)
    assert str(info.value) == (
        f"{__name__}.test_path_arguments_must_name_route_groups.<locals>.Wrong."
        "render_GET: path_arguments: 'ident' is not a named group of the call's "
        "routes (id)"
    )


@pytest_twisted.ensureDeferred
async def test_typed_headers(client):
    response = await client.get(
        "/s/headers",
        headers=[
            ("x-priority", "7"),
            ("X-Trace", "t1"),
            ("X-Tag", "a"),
            ("X-Tag", "b"),
        ],
    )
    assert response.json == {
        "headers": {"X-Priority": 7, "trace": "t1", "X-Tag": ["a", "b"]}
    }
    response = await client.get("/s/headers", headers={"X-Trace": "t"})
    assert response.json == {"headers": {"X-Priority": 5, "trace": "t"}}
    response = await client.get("/s/headers", headers={"X-Priority": "10"})
    assert response.status == 409
    assert response.json["error"]["fields"] == [
        {
            "field": "X-Priority",
            "in": "header",
            "reason": "too large",
            "expected": "at most 9",
        },
        {"field": "X-Trace", "in": "header", "reason": "missing", "expected": "a str"},
    ]


# ---------------------------------------------------------------------------
# Declared answers


@pytest_twisted.ensureDeferred
async def test_returns_sets_the_status_and_checks_the_body(client):
    response = await client.post("/s/answers/good")
    assert (response.status, response.json) == (201, {"id": 1, "email": "a@b.c"})
    response = await client.post("/s/answers/empty")
    assert (response.status, response.body) == (204, b"")
    response = await client.post("/s/answers/error")
    assert response.status == 409
    for case, problem in [
        ("bad", "id: wrong type, expected int; email: wrong type, expected str"),
        ("undeclared", "status 200 is not declared (declared: 201, 204)"),
        ("text", "id: wrong type, expected int"),
        ("direct", "email: missing, expected a str"),
    ]:
        with pytest.raises(ResponseMismatchError) as info:
            await client.post(f"/s/answers/{case}")
        assert str(info.value) == (
            "the answer does not match its declaration: "
            f"{__name__}.Answers.render_POST: {problem}"
        )


@pytest_twisted.ensureDeferred
async def test_a_mismatch_is_a_500_where_responses_are_validated(client):
    client.site.on_response_mismatch = None
    response = await client.post("/s/answers/bad")
    assert response.status == 500
    request_id = response.headers["x-request-id"]
    assert response.json["error"]["exception_text"] == (
        "An unexpected error has occurred processing the request. Error: "
        f"'request id {request_id}'"
    )
    unchecked = TestClient({"s": API}, validate_responses=False)
    response = await unchecked.post("/s/answers/bad")
    assert (response.status, response.json) == (201, {"id": "one", "email": None})


# ---------------------------------------------------------------------------
# Bad declarations fail when the module is imported


def declare_body(entries, **options):
    def render_POST(self, request):
        return {}

    return webapi.json_arguments(entries, **options)(render_POST)


HERE = f"{__name__}.declare_body.<locals>.render_POST: json_arguments"


@pytest.mark.parametrize(
    "entries, message",
    [
        (
            [Arg("a", str, minimum=1)],
            f"{HERE}: 'a': minimum applies to numbers, not to str",
        ),
        (
            [Arg("a", int, max_length=1)],
            f"{HERE}: 'a': max_length applies to strings, not to int",
        ),
        (
            [Arg("a", List[int], pattern="x")],
            f"{HERE}: 'a': pattern applies to strings, not to list of int",
        ),
        (
            [Arg("a", str, max_items=2)],
            f"{HERE}: 'a': max_items applies to arrays, not to str",
        ),
        (
            [Arg("a", str, pattern="(")],
            f"{HERE}: 'a': pattern '(' is not a valid regular expression: missing ), unterminated subpattern at position 0",
        ),
        ([Arg("a", str, enum=[1])], f"{HERE}: 'a': enum value 1 is not of type str"),
        ([Arg("a", str, enum=[])], f"{HERE}: 'a': enum must list at least one value"),
        (
            [Arg("a", int, default="x")],
            f"{HERE}: 'a': the default 'x' is refused by its own declaration: Must be of type int",
        ),
        (
            [Arg("a", int, minimum=5, default=1)],
            f"{HERE}: 'a': the default 1 is refused by its own declaration: Must be at least 5.",
        ),
        (
            [Arg("a", int, min_length=-1)],
            f"{HERE}: 'a': min_length applies to strings, not to int",
        ),
        (
            [Arg("a", str, min_length=-1)],
            f"{HERE}: 'a': min_length must be an integer >= 0, not -1",
        ),
        (
            [Arg("a", int, minimum="1")],
            f"{HERE}: 'a': minimum must be a finite number, not '1'",
        ),
        (
            [Arg("a", Dict[int, str])],
            f"{HERE}: 'a': typing.Dict[int, str]: JSON objects have string keys (Dict[str, X])",
        ),
        ([("a", int), Arg("a", str)], f"{HERE}: 'a' is declared twice"),
        (
            [Arg("a", int, rename="c"), Arg("b", int, rename="c")],
            f"{HERE}: two arguments are renamed to the same key",
        ),
        ([Arg("a", int, convert=3)], f"{HERE}: 'a': convert must be callable"),
        (
            [Arg("a", {"type": "integer", "multipleOf": 2})],
            f"{HERE}: 'a': the JSON Schema keyword 'multipleOf' is not one Shiji checks; use a dataclass, Arg entries or a pydantic model instead",
        ),
        ([Arg("a", {"type": "int"})], f"{HERE}: 'a': 'int' is not a JSON Schema type"),
        ([Arg("", int)], f"{HERE}: argument name '' is not a string"),
        (
            [Arg("a", int, minimum=5, maximum=1)],
            f"{HERE}: 'a': minimum (5) is above maximum (1): no value can pass",
        ),
        (
            [Arg("a", str, min_length=5, max_length=1)],
            f"{HERE}: 'a': min_length (5) is above max_length (1): no value can pass",
        ),
        (
            [Arg("a", float, maximum=float("nan"))],
            f"{HERE}: 'a': maximum must be a finite number, not nan",
        ),
        (
            [Arg("a", str, pattern=b"a")],
            f"{HERE}: 'a': pattern must be a string, not b'a'",
        ),
        (
            [Arg("a", str, enum="abc")],
            f"{HERE}: 'a': enum must be a list of values, not 'abc'",
        ),
        (
            [Arg("a", {"type": [["x"]]})],
            f"{HERE}: 'a': type must be a name or a list of names",
        ),
        (
            [Arg("a", {"type": "string", "enum": ["x", 1]})],
            f"{HERE}: 'a': enum value 1 is not of the schema's type",
        ),
        (
            [Arg("a", {"type": "string", "anyOf": [{"type": "string"}]})],
            f"{HERE}: 'a': 'type' beside anyOf is not checked; move it into each of "
            "anyOf's schemas",
        ),
        (
            [Arg("a", {"type": "object"}, allow_extra=False)],
            f"{HERE}: 'a': allow_extra applies to entries and dataclasses; a JSON "
            "Schema says additionalProperties, a pydantic model extra='forbid'",
        ),
    ],
)
def test_bad_declarations_name_the_call_and_the_argument(entries, message):
    with pytest.raises(APIDefinitionError) as info:
        declare_body(entries)
    assert str(info.value) == message


def test_unknown_arg_options_and_bad_models():
    with pytest.raises(TypeError) as info:
        Arg("a", int, minimun=1)
    assert str(info.value).startswith(
        "Arg 'a': unknown option 'minimun'; the options are"
    )
    with pytest.raises(APIDefinitionError) as info:
        declare_body({"type": "array"})
    assert str(info.value) == f"{HERE}: a request body's model must be an object"
    with pytest.raises(TypeError, match="takes a list of entries or a model"):
        webapi.json_arguments("a")


@pytest.mark.parametrize(
    "declare, message",
    [
        (
            lambda: webapi.url_arguments([Arg("a", Dict[str, int])]),
            "url_arguments: 'a': typing.Dict[str, int] cannot be sent as text; use "
            "str, int, float, bool, an Enum, a Literal, or a list of one of them",
        ),
        (
            lambda: webapi.header_arguments([("X-A", str), ("x-a", str)]),
            "header_arguments: 'x-a' is declared twice",
        ),
        (
            lambda: webapi.returns(200, {"type": "strange"}),
            "returns(200): 'strange' is not a JSON Schema type",
        ),
    ],
)
def test_bad_text_and_answer_declarations(declare, message):
    def render_GET(self, request):
        return {}

    with pytest.raises(APIDefinitionError) as info:
        declare()(render_GET)
    here = f"{__name__}.test_bad_text_and_answer_declarations.<locals>.render_GET"
    assert str(info.value) == f"{here}: {message}"


def test_returns_refuses_bad_statuses():
    for status in (99, 600, True, "200"):
        with pytest.raises(APIDefinitionError) as info:
            webapi.returns(status)
        assert str(info.value) == f"returns: {status!r} is not an HTTP status"

    def render_GET(self, request):
        return {}

    with pytest.raises(APIDefinitionError, match="status 200 is declared twice"):
        webapi.returns(200)(webapi.returns(200)(render_GET))


class Paged(URLMatchJSONResource):
    routes = r"paged"

    @webapi.paged_results(default_page_len=5, max_page_len=10)
    def render_GET(self, request):
        return {
            "page": request.args["page"][0],
            "page_len": request.args["page_len"][0],
        }


PAGED_API = make_api("paged_api", [("1.0", r"1\.0", [Paged])])


@pytest.mark.parametrize(
    "query, text, field_error",
    [
        ("page=x", "Argument must be an integer.", ("page", "wrong type", "int")),
        (
            "page=-1",
            "Argument must be 0 or greater.",
            ("page", "too small", "at least 0"),
        ),
        (
            "page_len=11",
            "Argument must be 10 or less.",
            ("page_len", "too large", "at most 10"),
        ),
        (
            "page_len=-" + "9" * 30,
            "Argument must be 0 or greater.",
            ("page_len", "too small", "at least 0"),
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_paging_errors_keep_the_original_texts_and_list_their_field(
    query, text, field_error
):
    name, reason, expected = field_error
    listed = {"field": name, "in": "query", "reason": reason, "expected": expected}
    plain = await TestClient({"p": PAGED_API}).get("/p/paged?" + query)
    assert (plain.status, plain.json) == (
        409,
        {
            "result": None,
            "error": {
                "error_code": 502,
                "exception_class": "ValueError",
                "exception_text": f"Invalid value for argument '{name}'. {text}",
            },
        },
    )
    problem = await TestClient({"p": PAGED_API}).get(
        "/p/paged?" + query, headers={"Accept": "application/problem+json"}
    )
    assert problem.json["errors"] == [listed]
    fields = await TestClient({"p": PAGED_API}, field_errors=True).get(
        "/p/paged?" + query
    )
    assert fields.json["error"]["fields"] == [listed]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"age": NaN, "name": "Ann"}',
        b'{"age": 1e999, "name": "Ann"}',
        b'{"age": -Infinity}',
    ],
)
@pytest_twisted.ensureDeferred
async def test_non_finite_numbers_are_not_json(client, raw):
    response = await client.post("/s/rules", body=raw)
    assert (response.status, response.json) == (
        409,
        {
            "result": None,
            "error": {
                "error_code": 205,
                "exception_class": "JSONDecodeError",
                "exception_text": "Arguments passed in API call request are not validly "
                "formed JSON.",
            },
        },
    )


@pytest_twisted.ensureDeferred
async def test_a_mismatch_is_logged_with_its_request_id(client):
    from twisted.logger import formatEvent, globalLogPublisher

    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        client.site.on_response_mismatch = None
        response = await client.post("/s/answers/bad")
    finally:
        globalLogPublisher.removeObserver(events.append)
    request_id = response.headers["x-request-id"]
    [logged] = [e for e in events if e.get("log_namespace") == "shiji.responses"]
    assert formatEvent(logged) == (
        f"The answer of {__name__}.Answers.render_POST does not match its "
        f"declaration (request id {request_id}): id: wrong type, expected int; "
        "email: wrong type, expected str"
    )


def test_a_value_fails_its_first_broken_rule_only():
    calls = []

    def pattern_seen(value):
        calls.append(value)
        return value

    class Once(URLMatchJSONResource):
        routes = r"once"

        @webapi.json_arguments(
            [Arg("code", str, max_length=3, pattern=r"[a-z]+", convert=pattern_seen)]
        )
        def render_POST(self, request):
            return {}

    once = TestClient({"o": make_api("o_api", [("1.0", r"1\.0", [Once])])})
    response = once.post("/o/once", json={"code": "A" * 100000}).result
    assert response.json["error"]["fields"] == [
        field("code", "too long", "at most 3 characters")
    ]
    assert calls == []


class Kinds(URLMatchJSONResource):
    routes = r"kinds"

    @webapi.json_arguments(
        [
            Arg("name", Optional[str], max_length=5, pattern="[a-z]+", required=False),
            Arg("count", Optional[int], minimum=1, maximum=9, required=False),
            Arg("id", (int, str), max_length=3, minimum=0, required=False),
            Arg("n", Union[int, str], minimum=1, required=False),
            Arg("ratio", float, enum=[1, 2], required=False),
            Arg("doc", {"type": ["string", "null"], "maxLength": 3}, required=False),
            Arg("found", {"type": "string", "pattern": "[0-9]+"}, required=False),
        ]
    )
    def render_POST(self, request):
        return {"args": request.jsonArgs}


KINDS_API = make_api("k_api", [("1.0", r"1\.0", [Kinds])])


@pytest.mark.parametrize(
    "body, status, fields",
    [
        ({"name": None, "count": None, "doc": None}, 200, None),
        ({"id": 12345}, 200, None),
        ({"id": "abc"}, 200, None),
        ({"n": "abc"}, 200, None),
        ({"ratio": 1}, 200, None),
        ({"ratio": 2.0}, 200, None),
        ({"found": "a1"}, 200, None),
        ({"name": "abcdef"}, 409, [field("name", "too long", "at most 5 characters")]),
        ({"name": "ab1"}, 409, [field("name", "no match", "matching [a-z]+")]),
        ({"count": 0}, 409, [field("count", "too small", "at least 1")]),
        ({"count": 10}, 409, [field("count", "too large", "at most 9")]),
        ({"id": "abcd"}, 409, [field("id", "too long", "at most 3 characters")]),
        ({"id": -1}, 409, [field("id", "too small", "at least 0")]),
        ({"n": 0}, 409, [field("n", "too small", "at least 1")]),
        ({"ratio": 3}, 409, [field("ratio", "not allowed", "one of 1.0, 2.0")]),
        ({"doc": "abcd"}, 409, [field("doc", "too long", "at most 3 characters")]),
        ({"found": "ab"}, 409, [field("found", "no match", "matching [0-9]+")]),
    ],
)
@pytest_twisted.ensureDeferred
async def test_rules_look_only_at_values_of_their_kind(body, status, fields):
    response = await TestClient({"k": KINDS_API}).post("/k/kinds", json=body)
    assert response.status == status
    if fields is None:
        assert response.json == {"args": body}
    else:
        assert response.json["error"]["fields"] == fields


def test_whole_match_patterns_are_published_anchored():
    schema = webapi.declarations(Kinds.render_POST).described[-1].body.schema
    assert schema["properties"]["name"]["pattern"] == "^(?:[a-z]+)$"
    assert schema["properties"]["found"]["pattern"] == "[0-9]+"
    assert schema["properties"]["ratio"]["enum"] == [1, 2]


class Pet(enum.Enum):
    CAT = "cat"


@dataclasses.dataclass
class Span:
    low: int
    high: int
    made: List[int] = dataclasses.field(default_factory=list)

    def __post_init__(self):
        if self.low > self.high:
            raise ValueError("low must not exceed high")
        self.made.append(1)


class Review(URLMatchJSONResource):
    routes = r"review/(?P<case>[a-z]+)"

    @webapi.json_arguments(
        [
            Arg(
                "pet",
                Union[
                    webapi.Object([("kind", Pet), ("lives", int)]),
                    webapi.Object([("kind", str), ("bark", bool)]),
                ],
                required=False,
            ),
            Arg("addr", Optional[Address], required=False),
            Arg("userName", int, rename="user_name", required=False),
            Arg("kind", Pet, default=Pet.CAT),
            Arg("ratio", float, default=1),
            Arg("when", str, convert=int, default="5"),
            Arg("c", object, enum=[[1]], required=False),
        ]
    )
    def render_POST(self, request):
        args = dict(request.jsonArgs)
        args["kind"] = args["kind"].name
        if "addr" in args and args["addr"] is not None:
            args["addr"] = dataclasses.asdict(args["addr"])
        if "c" in args:
            args["c"].append(99)
        return {"args": args, "types": {k: type(v).__name__ for k, v in args.items()}}

    @webapi.json_arguments(Span)
    def render_PUT(self, request):
        return {"args": request.jsonArgs}

    @webapi.json_arguments([("color", Color), ("n", int)])
    def render_PATCH(self, request):
        return {}

    @webapi.returns(200, webapi.Object([("x", float), ("color", Color)]))
    def render_GET(self, request):
        return {"x": 1, "color": "red"}


REVIEW_API = make_api("r_api", [("1.0", r"1\.0", [Review])])


@pytest_twisted.ensureDeferred
async def test_union_options_check_copies_and_the_only_taker_explains():
    client = TestClient({"r": REVIEW_API})
    response = await client.post(
        "/r/review/x", json={"pet": {"kind": "cat", "bark": True}}
    )
    assert response.status == 200
    assert response.json["args"]["pet"] == {"kind": "cat", "bark": True}
    response = await client.post("/r/review/x", json={"addr": {"zip": 1}})
    assert response.json["error"]["fields"] == [field("addr.zip", "wrong type", "str")]


@pytest_twisted.ensureDeferred
async def test_defaults_are_given_as_values_sent_would_be():
    client = TestClient({"r": REVIEW_API})
    response = await client.post("/r/review/x", json={})
    assert response.json == {
        "args": {"kind": "CAT", "ratio": 1.0, "when": 5},
        "types": {"kind": "str", "ratio": "float", "when": "int"},
    }


@pytest_twisted.ensureDeferred
async def test_a_renamed_key_cannot_be_sent_unchecked():
    client = TestClient({"r": REVIEW_API})
    response = await client.post("/r/review/x", json={"user_name": "not an int"})
    assert response.json["error"]["fields"] == [
        field("user_name", "unexpected", "no such field")
    ]


@pytest_twisted.ensureDeferred
async def test_enums_compare_as_json_and_give_the_value_sent():
    client = TestClient({"r": REVIEW_API})
    response = await client.post("/r/review/x", json={"c": [True]})
    assert response.json["error"]["fields"] == [field("c", "not allowed", "one of [1]")]
    for _ in range(2):
        response = await client.post("/r/review/x", json={"c": [1]})
        assert response.json["args"]["c"] == [1, 99]


@pytest_twisted.ensureDeferred
async def test_a_dataclass_refusing_its_fields_is_a_field_error():
    client = TestClient({"r": REVIEW_API})
    response = await client.put("/r/review/x", json={"low": 2, "high": 1})
    assert (response.status, response.json["error"]["fields"]) == (
        409,
        [
            {
                "field": "",
                "in": "body",
                "reason": "invalid",
                "expected": "low must not exceed high",
                "pointer": "#",
            }
        ],
    )
    for _ in range(2):
        response = await client.put("/r/review/x", json={"low": 1, "high": 2})
        assert response.json == {"args": {"low": 1, "high": 2, "made": [1]}}


@pytest_twisted.ensureDeferred
async def test_the_original_form_names_the_first_failure_after_conversions():
    client = TestClient({"r": REVIEW_API})
    response = await client.patch("/r/review/x", json={"color": "red", "n": "x"})
    assert response.json["error"]["exception_text"] == (
        "Invalid value for argument 'n'. Must be of type int"
    )


@pytest_twisted.ensureDeferred
async def test_checking_an_answer_does_not_change_it():
    for validate in (True, False):
        client = TestClient({"r": REVIEW_API}, validate_responses=validate)
        response = await client.get("/r/review/x")
        assert (response.status, response.body) == (200, b'{"x":1,"color":"red"}')


def test_initvars_are_refused():
    @dataclasses.dataclass
    class WithInit:
        a: int
        secret: dataclasses.InitVar[str]

    with pytest.raises(APIDefinitionError) as info:
        declare_body(WithInit)
    assert str(info.value) == (
        f"{HERE}: test_initvars_are_refused.<locals>.WithInit.secret is an InitVar, "
        "which Shiji cannot fill from a JSON object"
    )


def test_query_names_are_case_sensitive_and_keys_unique():
    def render_GET(self, request):
        return {}

    webapi.url_arguments(["id", "ID"])(render_GET)
    with pytest.raises(
        APIDefinitionError, match="two arguments are given under the key 'b'"
    ):
        webapi.url_arguments([Arg("a", int, rename="b"), Arg("b", str)])(render_GET)


class PagedTyped(URLMatchJSONResource):
    routes = r"pt"

    @webapi.paged_results(default_page_len=5, max_page_len=10)
    @webapi.url_arguments([Arg("page_len", int, maximum=10, default=5)])
    def render_GET(self, request):
        return {"query": dict(request.query_args)}


@pytest_twisted.ensureDeferred
async def test_typed_arguments_under_paged_results():
    client = TestClient({"p": make_api("pt_api", [("1.0", r"1\.0", [PagedTyped])])})
    response = await client.get("/p/pt?page_len=7")
    assert (response.status, response.json) == (200, {"query": {"page_len": 7}})


def test_pointers_are_percent_encoded_in_their_fragment():
    from shiji._field_errors import FieldFailure, Invalid

    invalid = Invalid(
        [FieldFailure(("m", "100%", "é#", "a/b~c", 0), "invalid", "x", "")]
    )
    [error] = invalid.field_errors("body")
    assert error.pointer == "#/m/100%25/%C3%A9%23/a~1b~0c/0"
    assert error.field == "m.100%.é#.a/b~c[0]"
