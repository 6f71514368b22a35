"""
The documentation reads what each decorator describes: every format
(OpenAPI, Markdown, HTML, JSON) shows a method's parameters, body, answers,
errors and requirements from ``declarations(handler).described``, whatever
the decorator.
"""

import dataclasses
import functools
import inspect
import json
import re
from html.parser import HTMLParser
from typing import Annotated, List, Literal, Optional

import pytest
from apitools import make_api
from openapi_spec_validator import validate

from shiji import auth, webapi
from shiji._declarations import CallDeclarations, Described, Parameter, declare
from shiji.docs import html, model, openapi, render, schema_words
from shiji.docs.html import html_document
from shiji.docs.model import ParameterDoc, describe_api, interface
from shiji.docs.openapi import openapi_document
from shiji.docs.render import json_document, markdown_document
from shiji.docs.schema_words import (
    FieldRow,
    field_rows,
    rule_words,
    schema_row,
    type_words,
)
from shiji.urldispatch import URLMatchJSONResource
from shiji.webapi import Arg, Constraints


@dataclasses.dataclass
class Address:
    street: str
    zip: Annotated[str, Constraints(min_length=5, max_length=5, pattern="^[0-9]+$")]


@dataclasses.dataclass
class Order:
    """An order as stored."""

    id: int
    tags: List[str]
    address: Optional[Address] = None


def check_password(username, password):
    return username == "shop" and password == "secret"


class Orders(URLMatchJSONResource):
    """Orders of the shop."""

    routes = r"orders/(?P<order_id>[0-9]+)"

    @webapi.returns(201, Order, description="The order.")
    @webapi.returns(204, None, description="Nothing changed.")
    @auth.login_required("clerk")
    @webapi.auth_http_basic(check_password, "shop")
    @webapi.json_arguments(
        [
            Arg(
                "client",
                [Arg("name", str, max_length=20), Arg("address", Address)],
                description="Who orders.",
            ),
            Arg("tags", List[str], default=[], max_items=3),
            Arg("count", int, minimum=1, maximum=100, description="How many."),
            ("note", str, webapi.ARG_OPTIONAL),
            Arg("color", Literal["red", "blue"], default="red"),
        ]
    )
    @webapi.url_arguments([Arg("limit", int, default=10, minimum=1, maximum=50)])
    @webapi.path_arguments([Arg("order_id", int, description="The order's number.")])
    @webapi.header_arguments(
        [Arg("X-Shop-Tag", str, required=False, min_length=3, pattern="^[a-z]+$")]
    )
    @webapi.paged_results(0, 20, 100)
    def render_POST(self, request):
        """Place an order."""

    @webapi.json_arguments(Address, content_type="application/vnd.shop+json")
    def render_PUT(self, request):
        """Change the order's address."""


class Receipts(URLMatchJSONResource):
    routes = [r"receipts/(?P<year>[0-9]{4})", r"receipts"]

    @webapi.url_arguments(["since"])
    def render_GET(self, request):
        pass


@pytest.fixture(scope="module")
def shop():
    return describe_api(make_api("shop_api", [("1.0", r"1\.0", [Orders, Receipts])]))


ERROR_CONTENT = {
    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}},
    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}},
}


def error_classes(responses):
    """The error classes each error status lists (each with both media
    types), and the rest of the responses."""
    errors, others = {}, {}
    for status, response in responses.items():
        if status < "400":
            others[status] = response
            continue
        assert response["content"] == ERROR_CONTENT, status
        lines = response["description"].split("\n")[2:]
        errors[status] = [line.split("`")[1] for line in lines]
    return errors, others


ADDRESS = {
    "type": "object",
    "properties": {
        "street": {"type": "string"},
        "zip": {
            "type": "string",
            "minLength": 5,
            "maxLength": 5,
            "pattern": "^[0-9]+$",
        },
    },
    "required": ["street", "zip"],
    "title": "Address",
}

BODY = {
    "type": "object",
    "properties": {
        "client": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 20},
                "address": ADDRESS,
            },
            "required": ["name", "address"],
            "description": "Who orders.",
        },
        "tags": {
            "type": "array",
            "items": {"type": "string"},
            "maxItems": 3,
            "default": [],
        },
        "count": {
            "type": "integer",
            "minimum": 1,
            "maximum": 100,
            "description": "How many.",
        },
        "note": {"type": "string"},
        "color": {"enum": ["red", "blue"], "default": "red"},
    },
    "required": ["client", "count"],
}

ORDER = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "address": {"anyOf": [ADDRESS, {"type": "null"}], "default": None},
    },
    "required": ["id", "tags"],
    "title": "Order",
    "description": "An order as stored.",
}


def test_the_openapi_operation_of_every_decorator(shop):
    document = openapi_document(shop, "1.0")
    validate(document)
    post = document["paths"]["/orders/{order_id}"]["post"]
    errors, answers = error_classes(post.pop("responses"))
    assert post == {
        "operationId": "Orders_post",
        "tags": ["Orders"],
        "summary": "Place an order.",
        "description": "Place an order.",
        "parameters": [
            {
                "name": "order_id",
                "in": "path",
                "required": True,
                "description": "The order's number.",
                "schema": {"type": "integer", "description": "The order's number."},
            },
            {"$ref": "#/components/parameters/VersionHeader"},
            # Authorization is left to the security scheme, as OpenAPI asks.
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 50,
                    "default": 10,
                },
            },
            {
                "name": "X-Shop-Tag",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "minLength": 3, "pattern": "^[a-z]+$"},
            },
            {
                "name": "page",
                "in": "query",
                "required": False,
                "description": "The zero-based page of results.",
                "schema": {"type": "integer", "minimum": 0, "default": 0},
            },
            {
                "name": "page_len",
                "in": "query",
                "required": False,
                "description": "How many results a page holds.",
                "schema": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 100,
                    "default": 20,
                },
            },
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": BODY}},
        },
        # Both: the guard's session cookie and HTTP Basic.
        "security": [{"session": [], "basic": []}],
        "x-shiji-requires": "a logged-in caller with the role clerk",
    }
    assert answers == {
        "201": {
            "description": "The order.",
            "content": {"application/json": {"schema": ORDER}},
        },
        "204": {"description": "Nothing changed."},
    }
    assert errors == {
        "400": ["MalformedRequestError"],
        "401": ["InvalidAuthenticationError"],
        "403": ["AccessDeniedError"],
        "404": ["UnknownAPICallError"],
        "406": ["ContentTypeError", "UnknownAPIVersionError"],
        "408": ["RequestReadTimeoutError"],
        "409": [
            "CharsetNotUTF8Error",
            "ExpiredSecureCookieError",
            "InvalidSecureCookieError",
            "JSONDecodeError",
            "RequestNotHashError",
            "ValueError",
        ],
        "413": ["RequestTooLargeError"],
        "414": ["RequestURITooLongError"],
        "431": ["RequestHeadersTooLargeError"],
        "500": ["JSONEncodeError", "UnexpectedServerError"],
        "503": ["RequestTimeoutError", "ServiceUnavailableError"],
    }
    assert document["components"]["securitySchemes"] == {
        "basic": {
            "type": "http",
            "scheme": "basic",
            "description": "HTTP Basic credentials (RFC 7617).",
        },
        # No auth_scheme declared: the session cookie.
        "session": {
            "type": "apiKey",
            "in": "cookie",
            "name": "session",
            "description": "The signed session cookie the server's auth backend checks.",
        },
    }
    # The document's schemas are copies: changing them changes no
    # declaration.
    post["requestBody"]["content"]["application/json"]["schema"].clear()
    post["parameters"][0]["schema"].clear()
    again = openapi_document(shop, "1.0")["paths"]["/orders/{order_id}"]
    assert again["post"]["requestBody"]["content"]["application/json"] == {
        "schema": BODY
    }
    assert again["post"]["parameters"][0]["schema"] == {
        "type": "integer",
        "description": "The order's number.",
    }


def test_a_model_body_its_content_type_and_the_route_groups(shop):
    document = openapi_document(shop, "1.0")
    put = document["paths"]["/orders/{order_id}"]["put"]
    assert put["parameters"][0] == {
        "name": "order_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^(?:[0-9]+)$"},
    }
    assert put["requestBody"] == {
        "required": True,
        "content": {"application/vnd.shop+json": {"schema": ADDRESS}},
    }
    errors, answers = error_classes(put["responses"])
    assert answers == {
        "200": {
            "description": "The call's result.",
            "content": {"application/json": {"schema": {}}},
        },
    }
    assert sorted(errors) == [
        "400",
        "404",
        "406",
        "408",
        "409",
        "413",
        "414",
        "431",
        "500",
        "503",
    ]
    assert put["security"] == []
    # Each route of a call is a path of its own, with its own groups.
    year = document["paths"]["/receipts/{year}"]["get"]
    assert year["operationId"] == "Receipts_get_receipts_year"
    assert [
        (p.get("name"), p.get("in"), p.get("required")) for p in year["parameters"]
    ] == [
        ("year", "path", True),
        (None, None, None),  # the version header
        ("since", "query", True),
    ]
    plain = document["paths"]["/receipts"]["get"]
    assert plain["operationId"] == "Receipts_get_receipts"
    assert [p.get("name") for p in plain["parameters"]] == [None, "since"]


def test_the_error_envelope_documents_its_field_list(shop):
    schemas = openapi_document(shop, "1.0")["components"]["schemas"]
    field_errors = {
        "type": "array",
        "items": {"$ref": "#/components/schemas/FieldError"},
    }
    assert schemas["Error"]["properties"]["error"]["properties"]["fields"] == (
        field_errors
    )
    assert schemas["Error"]["properties"]["error"]["required"] == [
        "error_code",
        "exception_class",
        "exception_text",
    ]
    assert schemas["Problem"]["properties"]["errors"] == field_errors
    assert "errors" not in schemas["Problem"]["required"]
    assert schemas["FieldError"] == {
        "type": "object",
        "required": ["field", "in", "reason", "expected"],
        "properties": {
            "field": {
                "type": "string",
                "description": "The field's path: client.address.zip, tags[2].",
            },
            "in": {"type": "string", "enum": ["body", "query", "path", "header"]},
            "reason": {
                "type": "string",
                "description": "What is wrong: missing, wrong type, too long...",
            },
            "expected": {
                "type": "string",
                "description": "What would have been accepted, in words.",
            },
            "pointer": {
                "type": "string",
                "description": "A body field as an RFC 6901 JSON Pointer fragment.",
            },
        },
    }


def _section(text, start, end):
    """``text`` from ``start`` to the next ``end``."""
    begin = text.index(start)
    return text[begin : text.index(end, begin + 1)]


POST_MARKDOWN = """\
#### POST

Place an order.

*Requires a logged-in caller with the role clerk.*

| Parameter | In | Type | Required | Rules | Description |
| --- | --- | --- | --- | --- | --- |
| `order_id` | path | integer | yes |  | The order's number. |
| `Authorization` | header | string | yes |  | HTTP Basic credentials (realm 'shop') |
| `limit` | query | integer | no | 1 to 50; default 10 |  |
| `X-Shop-Tag` | header | string | no | at least 3 characters; matching ^[a-z]+$ |  |
| `page` | query | integer | no | at least 0; default 0 | The zero-based page of results. |
| `page_len` | query | integer | no | 0 to 100; default 20 | How many results a page holds. |

Request body, `application/json`: object.

| Field | Type | Required | Rules | Description |
| --- | --- | --- | --- | --- |
| `client` | object | yes |  | Who orders. |
| `client.name` | string | yes | at most 20 characters |  |
| `client.address` | Address (object) | yes |  |  |
| `client.address.street` | string | yes |  |  |
| `client.address.zip` | string | yes | exactly 5 characters; matching ^[0-9]+$ |  |
| `tags` | array of string | no | at most 3 items; default [] |  |
| `tags[]` | string | yes |  |  |
| `count` | integer | yes | 1 to 100 | How many. |
| `note` | string | no |  |  |
| `color` | string | no | one of 'red', 'blue'; default 'red' |  |

Response 201: Order (object). The order.

| Field | Type | Required | Rules | Description |
| --- | --- | --- | --- | --- |
| `id` | integer | yes |  |  |
| `tags` | array of string | yes |  |  |
| `tags[]` | string | yes |  |  |
| `address` | Address (object) or null | no | default null |  |
| `address.street` | string | yes |  |  |
| `address.zip` | string | yes | exactly 5 characters; matching ^[0-9]+$ |  |

Response 204: no body. Nothing changed.

Errors: InvalidAuthenticationError (401), AccessDeniedError (403), \
ContentTypeError (406), CharsetNotUTF8Error (409), JSONDecodeError (409), \
RequestNotHashError (409), ValueError (409), RequestTooLargeError (413), \
ServiceUnavailableError (503).

"""

PUT_MARKDOWN = """\
#### PUT

Change the order's address.

| Parameter | In | Type | Required | Rules | Description |
| --- | --- | --- | --- | --- | --- |
| `order_id` | path | string | yes | matching ^(?:[0-9]+)$ |  |

Request body, `application/vnd.shop+json`: Address (object).

| Field | Type | Required | Rules | Description |
| --- | --- | --- | --- | --- |
| `street` | string | yes |  |  |
| `zip` | string | yes | exactly 5 characters; matching ^[0-9]+$ |  |

Errors: ContentTypeError (406), CharsetNotUTF8Error (409), \
JSONDecodeError (409), RequestNotHashError (409), ValueError (409), \
RequestTooLargeError (413).

"""

RECEIPTS_MARKDOWN = """\
#### GET

| Parameter | In | Type | Required | Rules | Description |
| --- | --- | --- | --- | --- | --- |
| `year` | path | string | no | matching ^(?:[0-9]{4})$ | Only in some of the call's routes. |
| `since` | query | string | yes |  |  |

Errors: ValueError (409).

"""


def test_the_markdown_rows(shop):
    text = markdown_document(shop)
    assert _section(text, "#### POST", "#### PUT") == POST_MARKDOWN
    assert _section(text, "#### PUT", "### `receipts/<year>`") == PUT_MARKDOWN
    assert (
        _section(text, "### `receipts/<year>`, `receipts`\n\n", "### `list")
        == "### `receipts/<year>`, `receipts`\n\n"
        "Served at `/shop_api/receipts/{year}` and `/shop_api/receipts`.\n\n"
        + RECEIPTS_MARKDOWN
    )


class _Tables(HTMLParser):
    """The paragraphs and table rows of an HTML fragment, as text."""

    def __init__(self):
        super().__init__()
        self.blocks, self.cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "p":
            self.blocks.append("")
        elif tag == "tr":
            self.blocks.append([])
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.blocks[-1].append(self.cell)
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data
        elif self.blocks and isinstance(self.blocks[-1], str):
            self.blocks[-1] += data


def _markdown_blocks(markdown):
    """What the HTML should show, read from the Markdown."""
    blocks = []
    for line in markdown.splitlines()[2:]:
        if line.startswith("| ---") or not line:
            continue
        if line.startswith("|"):
            cells = [c.strip().strip("`") for c in line.strip("|").split(" | ")]
            blocks.append([c.replace("\\|", "|") for c in cells])
        else:
            blocks.append(line.strip("*").replace("`", ""))
    return blocks


def test_the_html_rows_are_the_markdown_rows(shop):
    page = html_document(shop)
    for start, end, markdown in [
        ('<span class="badge POST">', '<span class="badge PUT">', POST_MARKDOWN),
        ('<span class="badge PUT">', '<section class="call"', PUT_MARKDOWN),
    ]:
        parsed = _Tables()
        section = _section(page, start, end)
        declared, errors = section[section.index("</h4>") :].split("<h5>Errors</h5>")
        parsed.feed(declared)
        *blocks, errors_line = _markdown_blocks(markdown)
        assert parsed.blocks == blocks
        # The errors the Markdown lists in a line, the HTML in a table.
        rows = re.findall(
            r'<tr><td><a href="#v-1-0-error-(\w+)"><code>\1</code></a></td>'
            r"<td>([0-9]+)</td><td>[0-9]+</td><td>[^<]*</td><td>declared</td></tr>",
            errors,
        )
        assert (
            errors_line == "Errors: " + ", ".join(f"{c} ({s})" for c, s in rows) + "."
        )
    assert (
        "<tr><td><code>X-Shop-Tag</code></td><td>header</td><td>string</td>"
        "<td>no</td><td>at least 3 characters; matching ^[a-z]+$</td><td></td></tr>"
    ) in page


def test_html_escapes_what_the_declarations_say():
    class Odd(URLMatchJSONResource):
        routes = r"odd"

        @webapi.json_arguments(
            [Arg("a<b>", str, pattern="^<&>$", description="<i>x</i> & y")],
            content_type="application/x<y>+json",
        )
        def render_POST(self, request):
            pass

    page = html_document(describe_api(make_api("odd_api", [("1.0", r"1\.0", [Odd])])))
    assert (
        "<p>Request body, <code>application/x&lt;y&gt;+json</code>: object.</p>"
        '<div class="scroll"><table><thead><tr><th>Field</th><th>Type</th>'
        "<th>Required</th><th>Rules</th><th>Description</th></tr></thead><tbody>"
        "<tr><td><code>a&lt;b&gt;</code></td><td>string</td><td>yes</td>"
        "<td>matching ^&lt;&amp;&gt;$</td><td>&lt;i&gt;x&lt;/i&gt; &amp; y</td></tr>"
        "</tbody></table></div>"
    ) in page


def test_the_json_declarations(shop):
    version = json_document(shop)["versions"]["1.0"]
    assert list(version) == ["calls", "error_codes", "declarations"]
    assert (
        list(version["calls"])
        == list(version["declarations"])
        == [
            "orders/<order_id>",
            "receipts/<year>",
            "receipts",
            "list_versions",
        ]
    )
    post = version["declarations"]["orders/<order_id>"]["POST"]

    def row(field, type_, required, rules="", description=""):
        return {
            "field": field,
            "type": type_,
            "required": required,
            "rules": rules,
            "description": description,
        }

    zip_rules = "exactly 5 characters; matching ^[0-9]+$"
    assert post == {
        "parameters": [
            {
                "name": "order_id",
                "in": "path",
                "type": "integer",
                "required": True,
                "rules": "",
                "description": "The order's number.",
                "schema": {"type": "integer", "description": "The order's number."},
            },
            {
                "name": "Authorization",
                "in": "header",
                "type": "string",
                "required": True,
                "rules": "",
                "description": "HTTP Basic credentials (realm 'shop')",
                "schema": {"type": "string"},
            },
            {
                "name": "limit",
                "in": "query",
                "type": "integer",
                "required": False,
                "rules": "1 to 50; default 10",
                "description": "",
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 50,
                    "default": 10,
                },
            },
            {
                "name": "X-Shop-Tag",
                "in": "header",
                "type": "string",
                "required": False,
                "rules": "at least 3 characters; matching ^[a-z]+$",
                "description": "",
                "schema": {"type": "string", "minLength": 3, "pattern": "^[a-z]+$"},
            },
            {
                "name": "page",
                "in": "query",
                "type": "integer",
                "required": False,
                "rules": "at least 0; default 0",
                "description": "The zero-based page of results.",
                "schema": {"type": "integer", "minimum": 0, "default": 0},
            },
            {
                "name": "page_len",
                "in": "query",
                "type": "integer",
                "required": False,
                "rules": "0 to 100; default 20",
                "description": "How many results a page holds.",
                "schema": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 100,
                    "default": 20,
                },
            },
        ],
        "body": {
            "content_type": "application/json",
            "type": "object",
            "description": "",
            "fields": [
                row("client", "object", True, description="Who orders."),
                row("client.name", "string", True, "at most 20 characters"),
                row("client.address", "Address (object)", True),
                row("client.address.street", "string", True),
                row("client.address.zip", "string", True, zip_rules),
                row("tags", "array of string", False, "at most 3 items; default []"),
                row("tags[]", "string", True),
                row("count", "integer", True, "1 to 100", "How many."),
                row("note", "string", False),
                row("color", "string", False, "one of 'red', 'blue'; default 'red'"),
            ],
            "schema": BODY,
        },
        "responses": {
            "201": {
                "type": "Order (object)",
                "description": "The order.",
                "fields": [
                    row("id", "integer", True),
                    row("tags", "array of string", True),
                    row("tags[]", "string", True),
                    row("address", "Address (object) or null", False, "default null"),
                    row("address.street", "string", True),
                    row("address.zip", "string", True, zip_rules),
                ],
                "schema": ORDER,
            },
            "204": {
                "type": None,
                "description": "Nothing changed.",
                "fields": [],
                "schema": None,
            },
        },
        "errors": [
            {"exception_class": name, "error_code": code, "http_status": status}
            for name, code, status in [
                ("InvalidAuthenticationError", 506, 401),
                ("AccessDeniedError", 501, 403),
                ("ContentTypeError", 503, 406),
                ("CharsetNotUTF8Error", 504, 409),
                ("JSONDecodeError", 205, 409),
                ("RequestNotHashError", 206, 409),
                ("ValueError", 502, 409),
                ("RequestTooLargeError", 210, 413),
                ("ServiceUnavailableError", 217, 503),
            ]
        ],
        "security": ["basic"],
        "requires": "a logged-in caller with the role clerk",
    }
    # Each route has its own groups, every one of them required there.
    year = version["declarations"]["receipts/<year>"]["GET"]["parameters"]
    assert [(p["name"], p["required"], p["description"]) for p in year] == [
        ("year", True, ""),
        ("since", True, ""),
    ]
    assert version["declarations"]["list_versions"] == {
        "GET": {
            "parameters": [],
            "body": None,
            "responses": {},
            "errors": [],
            "security": [],
            "requires": None,
        }
    }
    # Everything is JSON, and copied from the declarations.
    assert json.loads(json.dumps(version)) == version
    post["body"]["schema"].clear()
    again = json_document(shop)["versions"]["1.0"]["declarations"]
    assert again["orders/<order_id>"]["POST"]["body"]["schema"] == BODY


def test_the_merged_view_in_source_order():
    def describing(described):
        def decorator(handler):
            @functools.wraps(handler)
            def wrapper(self, request):
                return handler(self, request)

            return declare(wrapper, handler, described=described)

        return decorator

    @describing(
        Described(
            parameters=(
                Parameter("x-trace", "header", {"type": "integer"}, True),
                Parameter("id", "path", {"type": "string"}, True, "Outer."),
            ),
            body=webapi.RequestBody("text/plain", {"type": "object"}),
            responses=(webapi.Response(200, {"type": "integer"}),),
            security=("basic",),
            requirement="an owner",
        )
    )
    @describing(
        Described(
            parameters=(
                Parameter("X-Trace", "header", {"type": "string"}, False),
                Parameter("id", "path", {"type": "integer"}, False, "The id."),
                Parameter("stray", "path", {"type": "integer"}, True),
            ),
            body=webapi.RequestBody("application/json", {"type": "object"}),
            responses=(webapi.Response(200, None), webapi.Response(201, {})),
            # Python's ValueError is no APIError: no answer of the API.
            errors=(ValueError, webapi.AccessDeniedError, webapi.ValueError),
            security=("basic",),
            requirement="an admin",
        )
    )
    def render_GET(self, request):
        pass

    method = model.MethodDoc(
        "GET", "", tuple(reversed(webapi.declarations(render_GET).described))
    )
    declared = interface([r"a/(?P<id>\d+)", r"b"], method)
    assert declared.parameters == (
        # The routes' group, described by the last declaration, required
        # as the routes say; the stray declaration is no group of these
        # routes.
        ParameterDoc(
            "id",
            "path",
            {"type": "integer"},
            False,
            "The id. Only in some of the call's routes.",
        ),
        # The inner declaration of a header replaces the outer one.
        ParameterDoc("X-Trace", "header", {"type": "string"}, False),
    )
    assert declared.body == webapi.RequestBody("application/json", {"type": "object"})
    assert declared.responses == (
        webapi.Response(200, None),
        webapi.Response(201, {}),
    )
    assert [e.exception_class for e in declared.errors] == [
        "AccessDeniedError",
        "ValueError",
    ]
    assert declared.security == ("basic",)
    assert declared.requirements == ("an owner", "an admin")
    assert declared.requires == "an owner and an admin"
    # Both requirements name their scheme: none is the auth backend's.
    assert not declared.backend_guarded
    assert not declared.handler_errors


def test_a_decorator_of_the_api_is_documented_in_every_format():
    class TraceError(webapi.APIError):
        error_code = 700
        exception_text = "Trace ids are required today."
        http_status = 402

    def traced(handler):
        @functools.wraps(handler)
        def wrapper(self, request, *args, **kwargs):
            return handler(self, request, *args, **kwargs)

        return declare(
            wrapper,
            handler,
            described=Described(
                parameters=(
                    Parameter(
                        "X-Trace", "header", {"type": "string"}, False, "trace id"
                    ),
                ),
                errors=(TraceError,),
            ),
        )

    class Traced(URLMatchJSONResource):
        routes = r"traced"

        @traced
        def render_GET(self, request):
            """Traced."""

    doc = describe_api(make_api("trace_api", [("1.0", r"1\.0", [Traced])]))

    document = openapi_document(doc, "1.0")
    validate(document)
    get = document["paths"]["/traced"]["get"]
    assert get["parameters"][1] == {
        "name": "X-Trace",
        "in": "header",
        "required": False,
        "description": "trace id",
        "schema": {"type": "string"},
    }
    assert get["responses"]["402"] == {
        "description": (
            "Payment Required.\n\n- `TraceError` (700): Trace ids are required today."
        ),
        "content": ERROR_CONTENT,
    }

    markdown = markdown_document(doc)
    assert _section(markdown, "#### GET", "### `list_versions`") == (
        "#### GET\n\nTraced.\n\n"
        "| Parameter | In | Type | Required | Rules | Description |\n"
        "| --- | --- | --- | --- | --- | --- |\n"
        "| `X-Trace` | header | string | no |  | trace id |\n\n"
        "Errors: TraceError (402).\n\n"
    )
    assert "| TraceError | 700 | 402 | Trace ids are required today. |\n" in markdown

    page = html_document(doc)
    assert (
        "<tr><td><code>X-Trace</code></td><td>header</td><td>string</td>"
        "<td>no</td><td></td><td>trace id</td></tr></tbody></table></div>"
        '<h5>Errors</h5><div class="scroll"><table><thead><tr>'
        "<th>exception_class</th><th>HTTP</th><th>error_code</th>"
        "<th>exception_text</th><th>from</th></tr></thead><tbody>"
        '<tr><td><a href="#v-1-0-error-TraceError"><code>TraceError</code></a></td>'
        "<td>402</td><td>700</td><td>Trace ids are required today.</td>"
        "<td>declared</td></tr></tbody></table></div>"
    ) in page
    assert '<tr id="v-1-0-error-TraceError">' in page

    version = json_document(doc)["versions"]["1.0"]
    assert version["declarations"]["traced"]["GET"] == {
        "parameters": [
            {
                "name": "X-Trace",
                "in": "header",
                "type": "string",
                "required": False,
                "rules": "",
                "description": "trace id",
                "schema": {"type": "string"},
            }
        ],
        "body": None,
        "responses": {},
        "errors": [
            {"exception_class": "TraceError", "error_code": 700, "http_status": 402}
        ],
        "security": [],
        "requires": None,
    }
    assert version["error_codes"]["TraceError"] == {
        "error_code": 700,
        "exception_text": "Trace ids are required today.",
    }


@pytest.mark.parametrize("module", [model, openapi, render, html, schema_words])
def test_the_documentation_reads_no_decorator_of_its_own(module):
    source = inspect.getsource(module)
    old = [
        f.name for f in dataclasses.fields(CallDeclarations) if f.name != "described"
    ]
    assert [name for name in old if f".{name}" in source] == []


@pytest.mark.parametrize(
    "schema, words",
    [
        ({"type": "integer"}, "integer"),
        ({"type": ["string", "null"]}, "string or null"),
        ({"type": "array"}, "array"),
        ({"type": "array", "items": {"type": "integer"}}, "array of integer"),
        ({"items": {"items": {"type": "string"}}}, "array of array of string"),
        (
            {"type": "object", "additionalProperties": {"type": "number"}},
            "object of number",
        ),
        ({"properties": {}}, "object"),
        ({"enum": ["a", 1, None]}, "string or integer or null"),
        ({"const": True}, "boolean"),
        ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, "integer or null"),
        ({"enum": ["r", "g"], "title": "Color"}, "Color (string)"),
        ({"$ref": "#/$defs/Node"}, "Node"),
        ({}, "any"),
    ],
)
def test_types_in_words(schema, words):
    assert type_words(schema) == words


@pytest.mark.parametrize(
    "schema, words",
    [
        ({"type": "integer", "minimum": 0, "maximum": 100}, "0 to 100"),
        ({"type": "number", "minimum": 0.5}, "at least 0.5"),
        ({"type": "number", "maximum": 9}, "at most 9"),
        (
            {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "more than 0; less than 1",
        ),
        ({"type": "string", "minLength": 5}, "at least 5 characters"),
        ({"type": "string", "minLength": 1}, "at least 1 character"),
        ({"type": "string", "maxLength": 254}, "at most 254 characters"),
        ({"type": "string", "minLength": 2, "maxLength": 8}, "2 to 8 characters"),
        ({"type": "array", "minItems": 1, "maxItems": 1}, "exactly 1 item"),
        ({"type": "array", "minItems": 2}, "at least 2 items"),
        ({"enum": ["a", "b"]}, "one of 'a', 'b'"),
        ({"enum": [1, None, True]}, "one of 1, null, true"),
        ({"const": "x"}, "only 'x'"),
        ({"type": "string", "pattern": "^x$"}, "matching ^x$"),
        ({"type": "string", "format": "email"}, "format email"),
        ({"type": "object", "additionalProperties": False}, "no other fields"),
        ({"type": "integer", "default": 3}, "default 3"),
        (
            {"type": "object", "default": {"b": 1, "a": "x"}},
            'default {"a": "x", "b": 1}',
        ),
        ({"type": "string", "deprecated": True}, "deprecated"),
        (
            {"anyOf": [{"type": "string", "minLength": 5}, {"type": "null"}]},
            "at least 5 characters",
        ),
        (
            {
                "anyOf": [
                    {"type": "string", "maxLength": 5},
                    {"type": "integer", "minimum": 0},
                ],
                "default": 0,
            },
            "string: at most 5 characters; integer: at least 0; default 0",
        ),
        ({"type": "string", "description": "Words."}, ""),
    ],
)
def test_rules_in_words(schema, words):
    assert rule_words(schema) == words


def test_fields_flattened_with_their_paths():
    schema = {
        "type": "object",
        "properties": {
            "tags": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "description": "A name."}
                    },
                    "required": ["name"],
                },
            },
            "scores": {"type": "object", "additionalProperties": {"type": "integer"}},
            "either": {
                "anyOf": [
                    {"type": "object", "properties": {"a": {"type": "integer"}}},
                    {"type": "object", "properties": {"a": {"type": "string"}}},
                ]
            },
        },
        "required": ["tags"],
    }
    assert field_rows(schema) == (
        FieldRow("tags", "array of object", True, "", ""),
        FieldRow("tags[]", "object", True, "", ""),
        FieldRow("tags[].name", "string", True, "", "A name."),
        FieldRow("scores", "object of integer", False, "", ""),
        FieldRow("scores.*", "integer", False, "", ""),
        FieldRow("either", "object", False, "", ""),
        # A field of two alternatives is listed once, as the first says.
        FieldRow("either.a", "integer", False, "", ""),
    )
    assert field_rows({"type": "array", "items": {"type": "integer"}}) == (
        FieldRow("[]", "integer", True, "", ""),
    )
    assert field_rows({"type": "string"}) == ()
    assert schema_row("q", {"type": "string", "description": "Own."}, True) == (
        FieldRow("q", "string", True, "", "Own.")
    )
    assert schema_row(
        "q", {"type": "string", "description": "Own."}, True, "Given."
    ) == (FieldRow("q", "string", True, "", "Given."))
