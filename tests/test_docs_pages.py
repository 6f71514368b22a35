"""
The documentation pages people read: every call at the paths it is served
at, each method's own errors and a curl command, the index of APIs, the
redirect to an API's page, OpenAPI documents naming the server that was
asked, the explorer, and pages usable 360 pixels wide (in headless
Chromium).
"""

import json
import re
import shlex
import shutil
import subprocess
from html import unescape
from typing import List, Literal

import mylogin_api
import pytest
import pytest_twisted
import swagger_ui_bundle
from apitools import make_api, without_date
from browser import available, png_size, run_chromium, screenshot, scroll_width
from daemons import example_daemon

from shiji import auth, webapi
from shiji.docs import explorer, serve
from shiji.docs.explorer import EXPLORER_CSP
from shiji.docs.html import html_document, with_server
from shiji.docs.model import describe_api
from shiji.docs.openapi import openapi_document
from shiji.docs.prefix import served_prefix
from shiji.docs.render import markdown_document
from shiji.docs.style import STYLE
from shiji.docs.usage import example_value
from shiji.testing import TestClient
from shiji.urldispatch import URLMatchJSONResource
from shiji.webapi import Arg

PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
HTML = "text/html; charset=utf-8"
JSON = "application/json; charset=utf-8"

needs_chromium = pytest.mark.skipif(
    not available(), reason="Chromium is not installed (.ci/tools installs it)"
)


class NoSuchBookError(webapi.APIError):
    error_code = 801
    exception_text = "No book has the ISBN %s."
    http_status = 404


class ShelfFullError(webapi.APIError):
    error_code = 802
    exception_text = "The shelf is full."
    http_status = 409


def refuse(username, password):
    return False


class Books(URLMatchJSONResource):
    """The books of the library."""

    routes = [r"books/(?P<isbn>[0-9]{13})", r"books"]

    @webapi.raises(NoSuchBookError)
    @webapi.header_arguments([Arg("X-Branch", str, min_length=2)])
    @webapi.url_arguments([Arg("lang", Literal["en", "fr"])])
    def render_GET(self, request):
        """One book."""

    @webapi.json_arguments(
        [
            Arg("title", str, min_length=3),
            Arg("year", int, minimum=1450),
            Arg("tags", List[str], default=[]),
        ]
    )
    def render_POST(self, request):
        """Shelve a book."""


class Vault(URLMatchJSONResource):
    routes = r"vault"

    @webapi.auth_http_basic(refuse, "vault")
    def render_DELETE(self, request):
        """Empty the vault."""


class Loans(URLMatchJSONResource):
    routes = r"loans/(?P<kind>due|late)"

    @auth.login_required()
    @webapi.raises()
    def render_GET(self, request):
        """The caller's loans."""


@pytest.fixture(scope="module")
def library():
    return describe_api(library_api())


def library_api():
    api = make_api("library_api", [("1.0", r"1\.0", [Books, Vault, Loans])])
    # How callers of the login_required calls authenticate.
    api.auth_scheme = {"type": "apiKey", "in": "header", "name": "X-Token"}
    return api


def commands(page):
    """The curl commands of an HTML page, as a shell reads them."""
    return [
        unescape(found)
        for found in re.findall(r"<pre><code>(curl .*?)</code>", page, re.S)
    ]


# Where calls are shown served.


@pytest.mark.parametrize(
    "pattern, base, html_sentence, markdown_sentence",
    [
        (
            "myloginapi",
            "/myloginapi",
            "Served at <code>/myloginapi</code>.",
            "Served at `/myloginapi`.",
        ),
        (
            "(myloginapi|login)",
            "/myloginapi",
            "Served at <code>/myloginapi</code>, and also at <code>/login</code> "
            "(the [apis] expression <code>(myloginapi|login)</code>).",
            "Served at `/myloginapi`, and also at `/login` "
            "(the [apis] expression `(myloginapi|login)`).",
        ),
        (
            "(?:myloginapi|login|auth)",
            "/myloginapi",
            "Served at <code>/myloginapi</code>, and also at <code>/login</code> "
            "and <code>/auth</code> (the [apis] expression "
            "<code>(?:myloginapi|login|auth)</code>).",
            "Served at `/myloginapi`, and also at `/login` and `/auth` "
            "(the [apis] expression `(?:myloginapi|login|auth)`).",
        ),
        (
            "my.*",
            "/{api}",
            "Served at <code>/{api}</code>: {api} is any first path segment "
            "matching the [apis] expression <code>my.*</code>, such as "
            "<code>/mylogin_api</code>.",
            "Served at `/{api}`: {api} is any first path segment matching the "
            "[apis] expression `my.*`, such as `/mylogin_api`.",
        ),
        (
            None,
            "/mylogin_api",
            "Served at <code>/mylogin_api</code>.",
            "Served at `/mylogin_api`.",
        ),
    ],
)
def test_every_call_is_shown_at_the_paths_it_is_served_at(
    pattern, base, html_sentence, markdown_sentence
):
    doc = describe_api(mylogin_api)
    prefix = None if pattern is None else served_prefix(pattern, "mylogin_api")
    page = html_document(doc, "X-API-Version", prefix)
    assert f"<p>{html_sentence}</p>" in page
    assert (
        f'<h3 class="route"><span>{base}/ping/{{timestamp}}</span>'
        f"<span>{base}/ping</span></h3>"
    ) in page
    assert (
        f'<h4><span class="badge GET">GET</span>{base}/ping/{{timestamp}}</h4>' in page
    )
    assert f'<h3 class="route"><span>{base}/me/sessions</span></h3>' in page
    text = markdown_document(doc, "X-API-Version", prefix)
    assert f"\n\n{markdown_sentence}\n\n" in text
    assert (
        "### `ping/<timestamp>`, `ping`\n\n"
        f"Served at `{base}/ping/{{timestamp}}` and `{base}/ping`.\n\n"
    ) in text
    assert f"### `me/sessions`\n\nServed at `{base}/me/sessions`.\n\n" in text


def test_a_page_written_alone_links_only_within_itself(library):
    page = html_document(library)
    links = re.findall(r'href="([^"]*)"', page)
    assert links and all(link.startswith("#") for link in links)
    assert "All APIs" not in page and "OpenAPI document" not in page


# Each method: its errors, its command.


def _error_rows(page, method, path):
    """The rows of a method's table of errors: (class, HTTP, code, from)."""
    start = page.index(f'<span class="badge {method}">{method}</span>{path}</h4>')
    section = page[
        page.index("<h5>Errors</h5>", start) : page.index("<h5>Example", start)
    ]
    return [
        (name, int(status), int(code), source)
        for name, status, code, source in re.findall(
            r'<tr><td><a href="#v-1-0-error-(\w+)"><code>\1</code></a></td>'
            r"<td>([0-9]+)</td><td>([0-9]+)</td><td>[^<]*</td><td>([a-zA-Z ]+)</td></tr>",
            section,
        )
    ], section[section.index('<p class="muted">') :]


ANY_CALL = (
    '<p class="muted">{} the errors any call may answer with '
    '(see <a href="#v-1-0-errors">every error</a>).</p>'
)
JSON_BODY_ERRORS = [
    ("ContentTypeError", 406, 503, "declared"),
    ("CharsetNotUTF8Error", 409, 504, "declared"),
    ("JSONDecodeError", 409, 205, "declared"),
    ("RequestNotHashError", 409, 206, "declared"),
    ("ValueError", 409, 502, "declared"),
    ("RequestTooLargeError", 413, 210, "declared"),
]
API_ERRORS = [
    ("NoSuchBookError", 404, 801, "the API"),
    ("ShelfFullError", 409, 802, "the API"),
]


@pytest.mark.parametrize(
    "method, path, rows",
    [
        # webapi.raises: the handler's errors, and none other of the API's.
        (
            "GET",
            "/library_api/books/{isbn}",
            [
                ("NoSuchBookError", 404, 801, "declared"),
                ("ValueError", 409, 502, "declared"),
            ],
        ),
        ("POST", "/library_api/books/{isbn}", JSON_BODY_ERRORS + API_ERRORS),
        (
            "DELETE",
            "/library_api/vault",
            [("InvalidAuthenticationError", 401, 506, "declared"), *API_ERRORS],
        ),
        (
            "GET",
            "/library_api/loans/{kind}",
            [
                ("InvalidAuthenticationError", 401, 506, "declared"),
                ("ServiceUnavailableError", 503, 217, "declared"),
            ],
        ),
        ("GET", "/library_api/list_versions", API_ERRORS),
    ],
)
def test_each_method_lists_its_own_errors(library, method, path, rows):
    found, closing = _error_rows(html_document(library), method, path)
    assert found == rows
    assert closing == ANY_CALL.format("And")


def test_a_method_without_errors_of_its_own_says_so():
    class Quiet(URLMatchJSONResource):
        routes = r"quiet"

        @webapi.raises()
        def render_GET(self, request):
            pass

    doc = describe_api(make_api("quiet_api", [("1.0", r"1\.0", [Quiet])]))
    page = html_document(doc)
    assert (
        '<h4><span class="badge GET">GET</span>/quiet_api/quiet</h4><h5>Errors</h5>'
        + ANY_CALL.format("Only")
        + "<h5>Example</h5><pre><code>curl -X GET http://127.0.0.1:9990/quiet_api/quiet "
        "\\\n  -H &#x27;X-API-Version: quiet_api-1.0+prod&#x27;</code></pre>"
    ) in page
    # Every error keeps its row, and its anchor, in the version's table.
    assert '<tr id="v-1-0-error-UnknownAPICallError">' in page


def test_each_method_has_a_command_to_copy(library):
    page = html_document(
        library,
        "X-V",
        served_prefix("(library|books)", "library_api"),
        server="https://api.example:8443",
    )
    assert commands(page) == [
        # The path parameter of the first route, the required query and
        # header parameters, example values from their rules.
        "curl -X GET 'https://api.example:8443/library/books/1111111111111?lang=en' \\\n"
        "  -H 'X-V: library_api-1.0+prod' \\\n"
        "  -H 'X-Branch: string'",
        "curl -X POST https://api.example:8443/library/books/1111111111111 \\\n"
        "  -H 'X-V: library_api-1.0+prod' \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        '  --data \'{"title": "string", "year": 1450, "tags": []}\'',
        "curl -X DELETE https://api.example:8443/library/vault \\\n"
        "  -H 'X-V: library_api-1.0+prod' \\\n"
        "  -u user:password",
        # The API's auth_scheme says how the auth backend's callers
        # authenticate.
        "curl -X GET https://api.example:8443/library/loans/due \\\n"
        "  -H 'X-V: library_api-1.0+prod' \\\n"
        "  -H 'X-Token: VALUE'",
        "curl -X GET https://api.example:8443/library/list_versions \\\n"
        "  -H 'X-V: library_api-1.0+prod'",
    ]
    assert "<code>X-V: library_api-1.0+prod</code>" in page


def test_a_command_names_the_prefix_it_cannot_know_as_a_template(library):
    # The expression does not match the API's name: no example segment.
    page = html_document(library, prefix=served_prefix("[a-z]+-v1", "library_api"))
    assert commands(page)[2] == (
        "curl --globoff -X DELETE 'http://127.0.0.1:9990/{api}/vault' \\\n"
        "  -H 'X-API-Version: library_api-1.0+prod' \\\n"
        "  -u user:password"
    )


def test_a_guarded_call_sends_the_session_cookie_unless_the_api_says_otherwise():
    doc = describe_api(make_api("loans_api", [("1.0", r"1\.0", [Loans])]))
    assert commands(html_document(doc))[0] == (
        "curl -X GET http://127.0.0.1:9990/loans_api/loans/due \\\n"
        "  -H 'X-API-Version: loans_api-1.0+prod' \\\n"
        "  -b session=VALUE"
    )


@pytest.mark.parametrize(
    "schema, value",
    [
        ({"type": "string"}, "string"),
        ({"type": "string", "minLength": 8}, "stringxx"),
        ({"type": "string", "maxLength": 3}, "1"),
        ({"type": "string", "pattern": "^(?:[0-9]+)$"}, "1"),
        ({"type": "string", "pattern": "^(?:normal|advanced)$"}, "normal"),
        ({"type": "string", "pattern": "^[0-9]{4}$"}, "2026"),
        (
            {"type": "string", "minLength": 5, "maxLength": 5, "pattern": "^[0-9]+$"},
            "11111",
        ),
        ({"type": "string", "pattern": "^[A-Z]{2}$"}, None),
        ({"type": "string", "format": "email"}, "user@example.com"),
        ({"type": "string", "enum": ["b", "a"]}, "b"),
        ({"type": "integer", "default": 10, "minimum": 1}, 10),
        ({"type": "integer", "minimum": 1450}, 1450),
        ({"type": "integer", "exclusiveMinimum": 0}, 1),
        ({"type": "integer", "maximum": -5}, -5),
        ({"type": "number"}, 0),
        ({"type": "boolean"}, False),
        ({"type": ["null", "integer"]}, 0),
        ({"anyOf": [{"type": "null"}, {"type": "string"}]}, "string"),
        ({"type": "array", "items": {"type": "integer"}}, [0]),
        ({"type": "object", "additionalProperties": {"type": "integer"}}, {}),
        ({"examples": [{"a": 1}], "type": "object"}, {"a": 1}),
        (
            {
                "type": "object",
                "properties": {"at": {"$ref": "#/$defs/When"}},
                "$defs": {"When": {"type": "string", "format": "date"}},
            },
            {"at": "2026-01-01"},
        ),
    ],
)
def test_example_values_follow_the_rules(schema, value):
    assert example_value(schema) == value


# Serving: the index, the pages, the redirect, the documents.


def client(apis=None, **options):
    return TestClient(
        apis or {"(myloginapi|login)": mylogin_api}, serve_docs=True, **options
    )


async def get(test_client, path, host="localhost", method="GET"):
    return await test_client.request(method, path, version=None, headers={"Host": host})


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest_twisted.ensureDeferred
async def test_an_api_name_redirects_to_its_page(method):
    response = await get(client(), "/_docs/mylogin_api", method=method)
    assert (response.status, response.reason) == (301, "Moved Permanently")
    assert without_date(response.headers) == {
        "server": "Shiji API Server",
        "location": "/_docs/mylogin_api/",
        "content-type": HTML,
        "content-length": "54",
        "content-security-policy": PAGE_CSP,
        "x-content-type-options": "nosniff",
    }
    expected = b'<a href="/_docs/mylogin_api/">/_docs/mylogin_api/</a>\n'
    assert response.body == (expected if method == "GET" else b"")


@pytest.mark.parametrize(
    "method, path, status, error",
    [
        # Other methods on an API's name are not redirected: not allowed.
        ("POST", "/_docs/mylogin_api", 405, "MethodNotAllowedError"),
        ("DELETE", "/_docs/mylogin_api", 405, "MethodNotAllowedError"),
        ("GET", "/_docs/myloginapi", 404, "UnknownAPICallError"),
        ("GET", "/_docs/nothing", 404, "UnknownAPICallError"),
        ("GET", "/_docs/mylogin_api/nothing", 404, "UnknownAPICallError"),
        ("GET", "/_docs/mylogin_api/1.0", 404, "UnknownAPICallError"),
        ("GET", "/_docs/mylogin_api/9.9/openapi.json", 404, "UnknownAPICallError"),
        ("DELETE", "/_docs/", 405, "MethodNotAllowedError"),
        ("POST", "/_docs/mylogin_api/", 405, "MethodNotAllowedError"),
        ("PUT", "/_docs/mylogin_api/1.0/explorer", 405, "MethodNotAllowedError"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_the_docs_answer_get_and_head_on_known_paths_only(
    method, path, status, error
):
    response = await get(client(), path, method=method)
    assert response.status == status
    assert response.error["exception_class"] == error
    assert response.headers.get("allow") == ("GET, HEAD" if status == 405 else None)


@pytest_twisted.ensureDeferred
async def test_the_index_shows_every_api_in_the_style_of_their_pages():
    test_client = client()
    response = await get(test_client, "/_docs/")
    assert response.status == 200
    assert without_date(response.headers) == {
        "server": "Shiji API Server",
        "content-type": HTML,
        "content-length": str(len(response.body)),
        "content-security-policy": PAGE_CSP,
        "x-content-type-options": "nosniff",
    }
    page = response.body.decode()
    assert f"<style>{STYLE}</style>" in page
    assert '<body class="index"><main><h1>API documentation</h1>' in page
    assert (
        '<section class="card"><h2><a href="/_docs/mylogin_api/">mylogin_api</a></h2>'
        "<p>mylogin_api: the example API of the Shiji documentation.</p>"
        "<p>Served at <code>/myloginapi</code>, and also at <code>/login</code> "
        "(the [apis] expression <code>(myloginapi|login)</code>).</p>"
        '<ul class="versions"><li><a class="version" href="/_docs/mylogin_api/#v-1-0">'
        "1.0</a> <code>X-API-Version: mylogin_api-1.0+prod</code> "
        '<span class="links"><a href="/_docs/mylogin_api/1.0/openapi.json">OpenAPI</a>'
        '<a href="/_docs/mylogin_api/1.0/explorer">explorer</a></span></li></ul>'
        "</section>"
    ) in page
    api_page = (await get(test_client, "/_docs/mylogin_api/")).body.decode()
    assert f"<style>{STYLE}</style>" in api_page
    assert '<nav><a class="home" href="/_docs/">All APIs</a>' in api_page
    assert (
        '<p class="links"><a href="/_docs/mylogin_api/1.0/openapi.json">OpenAPI '
        'document</a><a href="/_docs/mylogin_api/1.0/explorer">explorer</a></p>'
    ) in api_page
    assert "<script" not in page + api_page


@pytest_twisted.ensureDeferred
async def test_head_answers_as_get_without_the_body():
    test_client = client()
    got = await get(test_client, "/_docs/mylogin_api/")
    head = await get(test_client, "/_docs/mylogin_api/", method="HEAD")
    assert (head.status, head.body) == (200, b"")
    assert without_date(head.headers) == without_date(got.headers)


@pytest.mark.parametrize(
    "host, server",
    [
        ("localhost", "http://localhost"),
        ("API.Example:8443", "http://api.example:8443"),
        ("api.example.:80", "http://api.example."),
        ("10.0.0.1:9990", "http://10.0.0.1:9990"),
        ("docs_host", "http://docs_host"),
        # Not a host name or address: the address the request came in on.
        ("", "http://127.0.0.1"),
        ("evil.example'$(id)", "http://127.0.0.1"),
        ("a%2Fb", "http://127.0.0.1"),
        ("a.example:99999", "http://127.0.0.1"),
        ("a.example:0", "http://127.0.0.1"),
        ("a.example:", "http://127.0.0.1"),
        ("-a.example", "http://127.0.0.1"),
        ("a" * 64 + ".example", "http://127.0.0.1"),
        ("[::1::2]", "http://127.0.0.1"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_the_documents_name_the_server_the_request_reached(host, server):
    test_client = client()
    response = await get(test_client, "/_docs/mylogin_api/1.0/openapi.json", host)
    assert response.status == 200
    assert json.loads(response.body)["servers"] == [
        {
            "url": f"{server}/{{api}}",
            "variables": {
                "api": {"default": "myloginapi", "enum": ["myloginapi", "login"]}
            },
        }
    ]
    page = (await get(test_client, "/_docs/mylogin_api/", host)).body.decode()
    assert commands(page)[0] == (
        f"curl -X GET {server}/myloginapi/ping/0 \\\n"
        "  -H 'X-API-Version: mylogin_api-1.0+prod'"
    )
    assert "$(id)" not in page and "%2F" not in page


@pytest_twisted.ensureDeferred
async def test_the_served_openapi_document_is_the_one_of_the_real_prefix():
    test_client = client()
    response = await get(
        test_client, "/_docs/mylogin_api/1.0/openapi.json", "api.example"
    )
    assert json.loads(response.body) == openapi_document(
        describe_api(mylogin_api),
        "1.0",
        prefix=served_prefix("(myloginapi|login)", "mylogin_api"),
        server="http://api.example",
        version_header="X-API-Version",
    )
    # Its paths, under each of its servers' prefixes, are served.
    document = json.loads(response.body)
    for segment in document["servers"][0]["variables"]["api"]["enum"]:
        for path in ("/ping", "/list_versions"):
            answer = await test_client.get(f"/{segment}{path}")
            assert (segment, path, answer.status) == (segment, path, 200)


@pytest_twisted.ensureDeferred
async def test_a_command_to_an_ipv6_server_is_quoted_for_the_shell(library):
    test_client = client({"(library|books)": library_api()})
    response = await get(
        test_client, "/_docs/library_api/1.0/openapi.json", "[::1]:9990"
    )
    assert json.loads(response.body)["servers"][0]["url"] == "http://[::1]:9990/{api}"
    page = (await get(test_client, "/_docs/library_api/", "[::1]:9990")).body.decode()
    assert [command.split(" \\\n")[0] for command in commands(page)] == [
        "curl -X GET 'http://[::1]:9990/library/books/1111111111111?lang=en'",
        "curl -X POST 'http://[::1]:9990/library/books/1111111111111'",
        "curl -X DELETE 'http://[::1]:9990/library/vault'",
        "curl -X GET 'http://[::1]:9990/library/loans/due'",
        "curl -X GET 'http://[::1]:9990/library/list_versions'",
    ]
    # One word each, for any shell.
    assert shlex.split(commands(page)[1])[3] == (
        "http://[::1]:9990/library/books/1111111111111"
    )


@pytest.mark.parametrize(
    "server",
    ["http://[::1]:9990", "https://[fe80::1]", "http://api.example:8443", "http://h"],
)
@pytest.mark.parametrize("pattern", ["(library|books)", "[a-z]+-v1"])
def test_a_page_naming_a_placeholder_names_any_server_as_if_rendered_for_it(
    library, server, pattern
):
    prefix = served_prefix(pattern, "library_api")
    placeholder = "http://server-0123456789abcdef.invalid"
    template = html_document(library, prefix=prefix, server=placeholder)
    assert with_server(template.encode(), placeholder, server) == (
        html_document(library, prefix=prefix, server=server).encode()
    )


@pytest_twisted.ensureDeferred
async def test_each_request_names_its_own_server():
    test_client = client()
    hosts = [f"h{n}.example" for n in range(20)]
    for host in hosts + hosts[::-1]:
        for path in ("/_docs/mylogin_api/", "/_docs/mylogin_api/1.0/openapi.json"):
            body = (await get(test_client, path, host)).body
            assert f"http://{host}/".encode() in body
            others = {f"http://{h}/".encode() for h in hosts} - {
                f"http://{host}/".encode()
            }
            assert not any(other in body for other in others)


@pytest.mark.parametrize(
    "options, peer, headers, server",
    [
        # A trusted proxy (loopback by default) names the scheme and host.
        (
            {"honor_x_realip": True},
            "127.0.0.1",
            [("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "api.example")],
            "https://api.example",
        ),
        # The first value of each: the one the client reached.
        (
            {"honor_x_realip": True},
            "127.0.0.1",
            [
                ("X-Forwarded-Proto", "HTTPS, http"),
                ("X-Forwarded-Host", "API.example:8443, inner.example"),
                ("X-Forwarded-Host", "other.example"),
            ],
            "https://api.example:8443",
        ),
        (
            {"honor_x_realip": True},
            "127.0.0.1",
            [("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "[::1]:443")],
            "https://[::1]",
        ),
        (
            {"honor_x_realip": True, "trusted_proxies": ["10.0.0.0/8"]},
            "10.1.2.3",
            [("X-Forwarded-Proto", "http"), ("X-Forwarded-Host", "api.example")],
            "http://api.example",
        ),
        # Only http or https; only a well-formed host (else Host).
        (
            {"honor_x_realip": True},
            "127.0.0.1",
            [("X-Forwarded-Proto", "ftp"), ("X-Forwarded-Host", "evil'$(id)")],
            "http://inner.example:9990",
        ),
        (
            {"honor_x_realip": True},
            "127.0.0.1",
            [("X-Forwarded-Proto", "javascript"), ("X-Forwarded-Host", "a.example:0")],
            "http://inner.example:9990",
        ),
        # From a peer that is not a trusted proxy, or with the option off:
        # ignored.
        (
            {"honor_x_realip": True},
            "192.0.2.7",
            [("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "api.example")],
            "http://inner.example:9990",
        ),
        (
            {},
            "127.0.0.1",
            [("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "api.example")],
            "http://inner.example:9990",
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_trusted_proxy_names_the_server_the_client_reached(
    options, peer, headers, server
):
    test_client = client(client_address=peer, **options)
    sent = [("Host", "inner.example:9990"), *headers]
    response = await test_client.get(
        "/_docs/mylogin_api/1.0/openapi.json", version=None, headers=sent
    )
    assert json.loads(response.body)["servers"][0]["url"] == f"{server}/{{api}}"
    page = await test_client.get("/_docs/mylogin_api/", version=None, headers=sent)
    assert shlex.split(commands(page.body.decode())[0])[:4] == [
        "curl",
        "-X",
        "GET",
        f"{server}/myloginapi/ping/0",
    ]


@pytest.mark.parametrize(
    "options, vary",
    [
        ({}, "Host"),
        ({"honor_x_realip": True}, "Host, X-Forwarded-Host, X-Forwarded-Proto"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_the_pages_naming_the_server_are_not_kept_for_another(options, vary):
    test_client = client(**options)
    for path, content_type in [
        ("/_docs/mylogin_api/", HTML),
        ("/_docs/mylogin_api/1.0/openapi.json", JSON),
    ]:
        response = await get(test_client, path)
        assert without_date(response.headers) == {
            "server": "Shiji API Server",
            "content-type": content_type,
            "content-length": str(len(response.body)),
            "content-security-policy": PAGE_CSP,
            "x-content-type-options": "nosniff",
            "cache-control": "no-cache",
            "vary": vary,
        }
    # The others are the same whatever the server.
    for path in (
        "/_docs/",
        "/_docs/mylogin_api/openapi.json",
        "/_docs/mylogin_api/1.0/explorer",
    ):
        response = await get(test_client, path)
        assert "cache-control" not in response.headers
        assert "vary" not in response.headers


@pytest_twisted.ensureDeferred
async def test_the_explorer_is_served_offline():
    test_client = client()
    response = await get(test_client, "/_docs/mylogin_api/1.0/explorer")
    assert response.status == 200
    assert without_date(response.headers) == {
        "server": "Shiji API Server",
        "content-type": HTML,
        "content-length": str(len(response.body)),
        "content-security-policy": EXPLORER_CSP.decode(),
        "x-content-type-options": "nosniff",
    }
    # The files are served at a path naming their content.
    digest = re.search(rb"/_docs/swagger-ui/([0-9a-f]{16})/", response.body)[1]
    assets = b"/_docs/swagger-ui/" + digest
    assert response.body == (
        b'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        b'<meta name="viewport" content="width=device-width, initial-scale=1">'
        b"<title>mylogin_api 1.0</title>"
        b'<link rel="stylesheet" href="' + assets + b'/swagger-ui.css"></head><body>'
        b'<div id="explorer" data-openapi="/_docs/mylogin_api/1.0/openapi.json"></div>'
        b'<script src="' + assets + b'/swagger-ui-bundle.js"></script>'
        b'<script src="' + assets + b'/start.js"></script></body></html>\n'
    )
    shipped = swagger_ui_bundle.swagger_ui_path
    for name, content_type, body in [
        (
            "swagger-ui-bundle.js",
            "text/javascript; charset=utf-8",
            (shipped / "swagger-ui-bundle.js").read_bytes(),
        ),
        (
            "swagger-ui.css",
            "text/css; charset=utf-8",
            (shipped / "swagger-ui.css").read_bytes(),
        ),
    ]:
        asset = await get(test_client, f"{assets.decode()}/{name}")
        assert (asset.status, asset.body) == (200, body)
        assert without_date(asset.headers) == {
            "server": "Shiji API Server",
            "content-type": content_type,
            "content-length": str(len(body)),
            "content-security-policy": PAGE_CSP,
            "x-content-type-options": "nosniff",
            "cache-control": "public, max-age=31536000, immutable",
        }
        # Not at a path that would name other files.
        assert (await get(test_client, f"/_docs/swagger-ui/{name}")).status == 404
    start = await get(test_client, f"{assets.decode()}/start.js")
    assert start.headers["content-type"] == "text/javascript; charset=utf-8"
    assert b"SwaggerUIBundle({" in start.body and b"validatorUrl: null" in start.body


@pytest_twisted.ensureDeferred
async def test_other_explorer_files_are_served_at_another_path(monkeypatch):
    shipped = explorer.explorer_assets()
    paths = []
    for change in (b"", b"// another release\n"):
        files = {
            **shipped,
            "start.js": (shipped["start.js"][0], shipped["start.js"][1] + change),
        }
        monkeypatch.setattr(serve, "explorer_assets", lambda files=files: files)
        page = (await get(client(), "/_docs/mylogin_api/1.0/explorer")).body
        paths.append(re.search(rb'src="([^"]*)/start.js"', page)[1])
    assert paths[0] != paths[1]


@pytest_twisted.ensureDeferred
async def test_without_the_bundle_there_is_no_explorer(monkeypatch):
    monkeypatch.setattr(serve, "explorer_assets", lambda: None)
    test_client = client()
    for path in ("/_docs/mylogin_api/1.0/explorer", "/_docs/swagger-ui/start.js"):
        assert (await get(test_client, path)).status == 404
    for path in ("/_docs/", "/_docs/mylogin_api/"):
        page = (await get(test_client, path)).body
        assert b"openapi.json" in page and b"explorer" not in page


# In a browser.


@needs_chromium
@pytest.mark.slow
def test_an_overflowing_page_is_measured_so(tmp_path):
    wide = (
        '<!DOCTYPE html><html><body style="margin:0"><div style="width:1000px">x</div>'
    )
    assert scroll_width(wide, tmp_path) == (1000, 360)


@needs_chromium
@pytest.mark.slow
@pytest.mark.parametrize("path", ["/_docs/", "/_docs/mylogin_api/"])
@pytest_twisted.ensureDeferred
async def test_the_pages_fit_360_pixels(tmp_path, path):
    page = (await get(client(), path)).body
    assert scroll_width(page, tmp_path) == (360, 360)
    picture = screenshot(page, tmp_path, "page.png")
    assert png_size(picture) == (360, 800)
    assert picture.stat().st_size > 10_000


@needs_chromium
@pytest.mark.slow
def test_a_page_of_long_names_fits_360_pixels(tmp_path):
    class Long(URLMatchJSONResource):
        routes = (
            r"a_route_whose_name_goes_on_and_on_without_a_break/(?P<identifier>[0-9]+)"
        )

        @webapi.header_arguments([Arg("X-A-Header-Whose-Name-Is-Long-Too", str)])
        def render_GET(self, request):
            """A_docstring_word_that_goes_on_and_on_without_a_single_break_at_all."""

    doc = describe_api(
        make_api("a_very_long_api_name_indeed", [("1.0", r"1\.0", [Long])])
    )
    assert scroll_width(html_document(doc), tmp_path) == (360, 360)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """shijid serving the example at (myloginapi|login), docs on."""
    from mylogin_api import passwords

    if passwords.scrypt is None:
        pytest.skip("the example's login service needs scrypt")
    daemon = example_daemon(tmp_path_factory.mktemp("docs"))
    text, found = re.subn(
        r"^mylogin_api: .*$",
        "mylogin_api: (myloginapi|login)",
        daemon.config.read_text(),
        flags=re.M,
    )
    assert found == 1
    daemon.config.write_text(text)
    daemon.start()
    yield daemon
    try:
        assert daemon.stop() == 0
    finally:
        daemon.kill()


@needs_chromium
@pytest.mark.slow
def test_the_explorer_shows_every_operation_under_its_policy(example, tmp_path):
    # The logging shows a page's policy violations (a control).
    refused = (
        "data:text/html,<meta http-equiv='Content-Security-Policy' "
        "content=\"img-src 'none'\"><img src='data:image/gif;base64,R0lGODlhAQABAAAAACw='>"
    )
    logging = ["--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000"]
    status, _, err = run_chromium([*logging, "--dump-dom", refused], tmp_path / "a")
    assert status == 0 and "Content Security Policy" in err
    url = f"http://127.0.0.1:{example.port}/_docs/mylogin_api/1.0/explorer"
    status, dom, err = run_chromium(
        [*logging, "--window-size=1280,900", "--dump-dom", url], tmp_path / "b"
    )
    assert status == 0
    assert "Content Security Policy" not in err
    methods = re.findall(r'<span class="opblock-summary-method">([A-Z]+)</span>', dom)
    assert sorted(methods) == ["GET"] * 6 + ["POST"] * 5
    assert f'<option value="http://127.0.0.1:{example.port}/{{api}}">' in dom


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_commands_of_the_page_call_the_daemon(example):
    status, _, body = example.request("GET", "/_docs/mylogin_api/")
    assert status == 200
    answers = []
    for command in commands(body.decode()):
        result = subprocess.run(
            ["bash", "-c", command + " --silent --write-out '\\n%{http_code}'"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        text, _, code = result.stdout.rpartition("\n")
        answer = json.loads(text)
        error = answer.get("error") if isinstance(answer, dict) else None
        answers.append((int(code), error and error["exception_class"]))
    assert answers == [
        (200, None),
        (409, "ValueError"),
        (409, "SampleNormalError"),
        (409, "ValueError"),
        (409, "ValueError"),
        # The session cookie's placeholder names no session: not logged in.
        (401, "InvalidAuthenticationError"),
        (401, "InvalidAuthenticationError"),
        (401, "InvalidAuthenticationError"),
        (200, None),
    ]
