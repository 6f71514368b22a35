"""
shiji_admin: scaffolding, configuration stubs, documentation.
"""

import importlib
import json
import platform
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import pytest_twisted

from shiji.admin import cli
from shiji.config import SCHEMA, load_config
from shiji.docs.docstrings import detect_format, to_html
from shiji.docs.model import describe_api, readable_route
from shiji.testing import TestClient

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def admin(capsys, *args):
    status = cli.main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def fresh_imports():
    """Forget API packages the test imports from temporary directories."""
    before = set(sys.modules)
    path = list(sys.path)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]
    sys.path[:] = path


def test_scaffold_creates_the_spec_layout(tmp_path, capsys):
    status, out, err = admin(
        capsys, "-A", "hello_api", "-V", "1.0", "-p", str(tmp_path)
    )
    assert (status, err) == (0, "")
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.py"))
    assert files == [
        "hello_api/__init__.py",
        "hello_api/config.py",
        "hello_api/v1_0/__init__.py",
        "hello_api/v1_0/calls.py",
        "hello_api/v1_0/errors.py",
    ]
    assert out.splitlines() == [f"wrote {tmp_path / f}" for f in files]


@pytest_twisted.ensureDeferred
async def test_a_second_version_is_added_and_both_serve(
    tmp_path, capsys, fresh_imports
):
    admin(capsys, "-A", "hello_api", "-V", "1.0", "-p", str(tmp_path))
    v1_calls = (tmp_path / "hello_api" / "v1_0" / "calls.py").read_text()
    status, out, err = admin(
        capsys, "-A", "hello_api", "-V", "2.0", "-p", str(tmp_path)
    )
    assert (status, err) == (0, "")
    assert out.splitlines()[0] == f"wrote {tmp_path / 'hello_api' / '__init__.py'}"
    assert (tmp_path / "hello_api" / "v1_0" / "calls.py").read_text() == v1_calls
    init = (tmp_path / "hello_api" / "__init__.py").read_text()
    assert "from . import v1_0, v2_0\n" in init
    assert '    "1.0": (r"1\\.0", v1_0),\n    "2.0": (r"2\\.0", v2_0),\n}' in init

    sys.path.insert(0, str(tmp_path))
    hello_api = importlib.import_module("hello_api")
    client = TestClient({"hello": hello_api})
    for version in ("1.0", "2.0"):
        response = await client.get("/hello/ping/5", version=version)
        assert response.status == 200
        assert response.json == (
            "PONG! Right back at ya. I'm production baby! (Timestamp Val: 5) "
            f"(API: hello_api, Version: {version}, Mode: prod)"
        )
    response = await client.get("/hello/list_versions")
    assert response.json == {"all_versions": ["1.0", "2.0"], "curr_version": "2.0"}


def test_adding_a_version_keeps_the_users_edits(tmp_path, capsys, fresh_imports):
    package = tmp_path / "edited_api"
    admin(capsys, "-A", "edited_api", "-V", "1.0", "-p", str(tmp_path))
    (package / "__init__.py").write_text(
        '"""Mine."""\n\nimport os  # my import\n\nfrom shiji import urldispatch\n\n'
        "from . import v1_0\n\n"
        "# My own comment about versions.\n"
        'api_name = "edited_api"\n'
        'api_versions = {"1.0": (r"1\\.0", v1_0)}  # one line\n'
        "version_router = urldispatch.VersionRouter(api_versions)\n"
        "EXTRA = os.sep\n"
    )
    assert admin(capsys, "-A", "edited_api", "-V", "1.1", "-p", str(tmp_path))[0] == 0
    assert (package / "__init__.py").read_text() == (
        '"""Mine."""\n\nimport os  # my import\n\nfrom shiji import urldispatch\n\n'
        "from . import v1_0, v1_1\n\n"
        "# My own comment about versions.\n"
        'api_name = "edited_api"\n'
        'api_versions = {"1.0": (r"1\\.0", v1_0), "1.1": (r"1\\.1", v1_1)}  # one line\n'
        "version_router = urldispatch.VersionRouter(api_versions)\n"
        "EXTRA = os.sep\n"
    )
    (package / "__init__.py").write_text(
        "from shiji import urldispatch\n"
        "from . import v1_0 as first\n"
        "from . import v1_1\n"
        'api_name = "edited_api"\n'
        "api_versions = {\n"
        '    "1.0": (r"1\\.0", first),\n'
        '    "1.1": (r"1\\.1", v1_1)  # last, no comma\n'
        "}\n"
        "version_router = urldispatch.VersionRouter(api_versions)\n"
    )
    assert admin(capsys, "-A", "edited_api", "-V", "10.0", "-p", str(tmp_path))[0] == 0
    assert (package / "__init__.py").read_text() == (
        "from shiji import urldispatch\n"
        "from . import v1_0 as first\n"
        "from . import v1_1, v10_0\n"
        'api_name = "edited_api"\n'
        "api_versions = {\n"
        '    "1.0": (r"1\\.0", first),\n'
        '    "1.1": (r"1\\.1", v1_1),  # last, no comma\n'
        '    "10.0": (r"10\\.0", v10_0),\n'
        "}\n"
        "version_router = urldispatch.VersionRouter(api_versions)\n"
    )
    sys.path.insert(0, str(tmp_path))
    edited = importlib.import_module("edited_api")
    assert list(edited.api_versions) == ["1.0", "1.1", "10.0"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["-A", "hello_api", "-V", "1.0"], "version 1.0 of hello_api exists already"),
        (["-A", "2fast", "-V", "1.0"], "API name '2fast' is not a Python identifier"),
        (["-A", "class", "-V", "1.0"], "API name 'class' is not a Python identifier"),
        (["-A", "my-api", "-V", "1.0"], "API name 'my-api' is not a Python identifier"),
        (
            ["-A", "ok_api", "-V", "1.x"],
            "version '1.x' is not a dotted number such as 1.0",
        ),
        (
            ["-A", "ok_api", "-V", "v1"],
            "version 'v1' is not a dotted number such as 1.0",
        ),
        (["-A", "ok_api"], "-A needs -V VERSION, e.g. -A mylogin_api -V 1.0"),
    ],
)
def test_scaffold_refusals(tmp_path, capsys, args, message):
    admin(capsys, "-A", "hello_api", "-V", "1.0", "-p", str(tmp_path))
    before = sorted(tmp_path.rglob("*"))
    status, out, err = admin(capsys, *args, "-p", str(tmp_path))
    assert (status, out, err) == (1, "", f"shiji_admin: error: {message}\n")
    assert sorted(tmp_path.rglob("*")) == before


def test_an_init_without_api_versions_is_refused(tmp_path, capsys):
    (tmp_path / "odd_api").mkdir()
    (tmp_path / "odd_api" / "__init__.py").write_text("api_name = 'odd_api'\n")
    status, _, err = admin(capsys, "-A", "odd_api", "-V", "1.0", "-p", str(tmp_path))
    assert status == 1
    assert err == (
        f"shiji_admin: error: {tmp_path / 'odd_api' / '__init__.py'} has no "
        "api_versions = {...} to add the version to\n"
    )


@pytest.mark.skipif(
    platform.python_implementation() != "CPython", reason="ruff runs on CPython"
)
def test_generated_code_passes_ruff(tmp_path, capsys):
    admin(capsys, "-A", "lint_api", "-V", "1.0", "-p", str(tmp_path))
    admin(capsys, "-A", "lint_api", "-V", "2.0", "-p", str(tmp_path))
    for command in (
        ["check", "--isolated", "--select", "E,F,W,I,B,SIM,RUF"],
        ["format", "--isolated", "--check"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_config_stub_has_every_option_and_refuses_to_overwrite(tmp_path, capsys):
    path = tmp_path / "shijid.conf"
    assert admin(capsys, "-C", str(path)) == (0, f"wrote {path}\n", "")
    text = path.read_text()
    for section, options in SCHEMA.items():
        assert f"[{section}]" in text
        for option in options:
            assert f"\n;{option}:" in text, option
    assert ";listen_port: 9990\n" in text
    assert ";max_body_bytes: 1048576\n" in text
    assert ";trusted_proxies: 127.0.0.1/32, ::1/128\n" in text
    assert (
        ";redacted_arguments: password, passwd, pwd, token, secret, key, auth\n" in text
    )
    # Uncommenting one API makes it a working configuration.
    path.write_text(text.replace(";mylogin_api: myloginapi", "mylogin_api: myloginapi"))
    config = load_config(path)
    assert config.apis == (("mylogin_api", "myloginapi"),)
    assert admin(capsys, "-C", str(path)) == (
        1,
        "",
        f"shiji_admin: error: {path} exists already; not overwriting it\n",
    )


def test_the_shipped_example_configuration_documents_every_option():
    text = (ROOT / "conf" / "shijid.conf.example").read_text()
    for options in SCHEMA.values():
        for option in options:
            assert f"\n{option}:" in text or f"\n;{option}:" in text, option


def document(capsys, template, *extra):
    status, out, err = admin(
        capsys, "-D", "mylogin_api", "-p", str(EXAMPLES), "-T", template, *extra
    )
    assert (status, err) == (0, "")
    return out


BUILT_IN_CODES = {
    "APIVersionGoneError": 212,
    "AccessDeniedError": 501,
    "CharsetNotUTF8Error": 504,
    "ContentTypeError": 503,
    "ExpiredSecureCookieError": 508,
    "InvalidAuthenticationError": 506,
    "InvalidSecureCookieError": 507,
    "JSONDecodeError": 205,
    "JSONEncodeError": 204,
    "MalformedRequestError": 213,
    "MethodNotAllowedError": 209,
    "RequestHeadersTooLargeError": 215,
    "RequestNotHashError": 206,
    "RequestReadTimeoutError": 216,
    "RequestTimeoutError": 211,
    "RequestTooLargeError": 210,
    "RequestURITooLongError": 214,
    "ServiceUnavailableError": 217,
    "StorageUnavailableError": 218,
    "UnexpectedServerError": 505,
    "UnknownAPICallError": 203,
    "UnknownAPIError": 208,
    "UnknownAPIVersionError": 207,
    "ValueError": 502,
}


def test_json_documentation_of_the_example(capsys):
    doc = json.loads(document(capsys, "json"))
    assert list(doc) == ["api_name", "versions"]
    assert doc["api_name"] == "mylogin_api"
    assert list(doc["versions"]) == ["1.0"]
    version = doc["versions"]["1.0"]
    # The original Shiji's structure, and what each method declares beside it.
    assert list(version) == ["calls", "error_codes", "declarations"]
    routes = {
        "ping/<timestamp>": ["GET", "POST"],
        "ping": ["GET", "POST"],
        "sample_error/<kind>": ["GET"],
        "users": ["POST"],
        "login": ["POST"],
        "logout": ["POST"],
        "me": ["GET"],
        "me/sessions": ["GET"],
        "list_versions": ["GET"],
    }
    assert {route: sorted(methods) for route, methods in version["calls"].items()} == (
        routes
    )
    assert {
        route: sorted(methods) for route, methods in version["declarations"].items()
    } == routes
    assert version["calls"]["ping/<timestamp>"]["GET"] == (
        "<p>Simple PING call, that echoes back the client's supplied timestamp.</p>\n"
        "<p>Returns a string naming the API, version and mode that answered.</p>"
    )
    timestamp = {
        "name": "timestamp",
        "in": "path",
        "type": "integer",
        "required": True,
        "rules": "",
        "description": "A client-supplied UNIX timestamp.",
        "schema": {
            "type": "integer",
            "description": "A client-supplied UNIX timestamp.",
        },
    }
    answer = {
        "200": {
            "type": "string",
            "description": "Names the API, version and mode.",
            "fields": [],
            "schema": {"type": "string"},
        }
    }
    errors = [{"exception_class": "ValueError", "error_code": 502, "http_status": 409}]
    assert version["declarations"]["ping/<timestamp>"]["GET"] == {
        "parameters": [timestamp],
        "body": None,
        "responses": answer,
        "errors": errors,
        "security": [],
        "requires": None,
    }
    # The route without the group has no path parameter.
    assert version["declarations"]["ping"]["GET"] == {
        "parameters": [],
        "body": None,
        "responses": answer,
        "errors": errors,
        "security": [],
        "requires": None,
    }
    signup = version["declarations"]["users"]["POST"]["body"]
    assert (signup["content_type"], signup["type"], signup["fields"]) == (
        "application/json",
        "object",
        [
            {
                "field": "email",
                "type": "string",
                "required": True,
                "rules": "at most 320 characters",
                "description": (
                    "The account's email; case and surrounding spaces are ignored."
                ),
            },
            {
                "field": "password",
                "type": "string",
                "required": True,
                "rules": "8 to 1024 characters",
                "description": "The account's password.",
            },
        ],
    )
    assert version["declarations"]["me"]["GET"]["requires"] == "a logged-in caller"
    assert {name: e["error_code"] for name, e in version["error_codes"].items()} == {
        **BUILT_IN_CODES,
        "SampleAdvancedError": 101,
        "SampleNormalError": 100,
        "EmailTakenError": 110,
        "LoginFailedError": 111,
        "TooManyAttemptsError": 112,
    }
    assert version["error_codes"]["ValueError"] == {
        "error_code": 502,
        "exception_text": "Invalid value for argument '%s'. %s",
    }


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.links, self.text = set(), [], []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "id" in attributes:
            self.ids.add(attributes["id"])
        if tag == "a":
            self.links.append(attributes.get("href"))

    def handle_data(self, data):
        self.text.append(data)


def test_html_documentation_of_the_example(capsys):
    page = document(capsys, "html")
    assert page.startswith("<!DOCTYPE html>")
    assert page == document(capsys, "fogbugz")
    parsed = _Collector()
    parsed.feed(page)
    text = " ".join(parsed.text)
    for route in ("ping/<timestamp>", "sample_error/<kind>", "list_versions"):
        assert route in text
    for error in [*BUILT_IN_CODES, "SampleNormalError", "SampleAdvancedError"]:
        assert f"v-1-0-error-{error}" in parsed.ids
    assert {
        "v-1-0-PingCall",
        "v-1-0-SampleErrorsCall",
        "v-1-0-ListVersionsCall",
    } <= parsed.ids
    # every navigation link leads somewhere on the page
    assert all(link[1:] in parsed.ids for link in parsed.links)
    assert "client_tz" in text and "simple_auth_key" in text
    # /me, /me/sessions and /logout
    assert text.count("Requires a logged-in caller.") == 3
    assert (
        "<tr><td><code>password</code></td><td>string</td><td>yes</td>"
        "<td>8 to 1024 characters</td><td>The account&#x27;s password.</td></tr>"
    ) in page
    assert (
        "<tr><td><code>timestamp</code></td><td>path</td><td>integer</td>"
        "<td>no</td><td></td><td>A client-supplied UNIX timestamp. Only in some of "
        "the call&#x27;s routes.</td></tr>"
    ) in page
    assert "<script" not in page


PING_POST = """\
#### POST

Measure how long a round trip through the server's thread pool takes
(where blocking work such as database queries runs).

URL query arguments:

- `simple_auth_key` (str): must be `abc`.

JSON body arguments:

- `client_tz` (int): the client's timezone offset from GMT.
- `client_id` (str): the client's unique ID.
- `new_client` (bool, optional): does magic if true.

Returns `{"result": {"latency": seconds, "client_tz": ...,
"client_id": ..., "new_client": ...}}`.

| Parameter | In | Type | Required | Rules | Description |
| --- | --- | --- | --- | --- | --- |
| `timestamp` | path | string | no | matching ^(?:[0-9]+)$ | Only in some of the call's routes. |
| `simple_auth_key` | query | string | yes |  |  |

Request body, `application/json`: object.

| Field | Type | Required | Rules | Description |
| --- | --- | --- | --- | --- |
| `client_tz` | integer | yes |  |  |
| `client_id` | string | yes |  |  |
| `new_client` | boolean | no |  |  |

Response 200: PingResult (object).

| Field | Type | Required | Rules | Description |
| --- | --- | --- | --- | --- |
| `result` | Latency (object) | yes |  | A round trip's latency, and the arguments echoed. |
| `result.latency` | number | yes |  |  |
| `result.client_tz` | integer | yes |  |  |
| `result.client_id` | string | yes |  |  |
| `result.new_client` | boolean | yes |  |  |

Errors: ContentTypeError (406), CharsetNotUTF8Error (409), JSONDecodeError (409), \
RequestNotHashError (409), ValueError (409), RequestTooLargeError (413).

"""


def test_markdown_documentation_and_output_file(capsys, tmp_path):
    target = tmp_path / "API.md"
    assert document(capsys, "markdown", "-o", str(target)) == ""
    text = target.read_text()
    assert text.startswith("# mylogin_api\n")
    start = text.index("#### POST", text.index("### `ping/<timestamp>`, `ping`"))
    # ping/<timestamp> and ping: the timestamp is only in one of the routes;
    # the GET declares it an integer, the POST takes the route's pattern.
    assert text[start : text.index("### `sample_error/<kind>`")] == PING_POST
    assert (
        "| `timestamp` | path | integer | no |  | A client-supplied UNIX timestamp. "
        "Only in some of the call's routes. |\n"
    ) in text
    assert "| ValueError | 502 | 409 | Invalid value for argument '%s'. %s |" in text
    assert text.count("| ValueError |") == 1
    assert text.count("\n*Requires a logged-in caller.*\n") == 3


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["-D", "no_such_api", "-p", str(EXAMPLES)],
            f"no API package 'no_such_api' in {EXAMPLES}",
        ),
        (
            ["-D", "broken_import_api", "-p", str(ROOT / "tests" / "daemon_apis")],
            "cannot import broken_import_api: NameError: name 'this' is not defined "
            f"({ROOT / 'tests' / 'daemon_apis' / 'broken_import_api' / '__init__.py'}, line 4)",
        ),
        (
            ["-D", "no_routes_api", "-p", str(ROOT / "tests" / "daemon_apis")],
            "no_routes_api is not a Shiji API package: module 'no_routes_api' has no "
            "attribute 'api_versions'",
        ),
    ],
)
def test_documentation_refusals(capsys, args, message, fresh_imports):
    assert admin(capsys, *args) == (1, "", f"shiji_admin: error: {message}\n")


def test_openapi_options_say_where_the_api_is_served(capsys):
    def document(*options):
        status, out, err = admin(
            capsys,
            *("-D", "mylogin_api", "-p", str(EXAMPLES), "-T", "openapi", "-V", "1.0"),
            *options,
        )
        assert (status, err) == (0, "")
        return json.loads(out)

    # shijid's default address, and the API's name.
    assert document()["servers"] == [{"url": "http://127.0.0.1:9990/mylogin_api"}]
    literal = document("--prefix", "myloginapi")
    assert literal["servers"] == [{"url": "http://127.0.0.1:9990/myloginapi"}]
    assert sorted(literal["paths"])[:2] == ["/list_versions", "/login"]
    # --mount, the path the API is served under, says the same.
    assert document("--mount", "/myloginapi") == literal
    served = document(
        "--server", "https://api.example.com/", "--prefix", "(myloginapi|login)"
    )
    assert served["servers"] == [
        {
            "url": "https://api.example.com/{api}",
            "variables": {
                "api": {"default": "myloginapi", "enum": ["myloginapi", "login"]}
            },
        }
    ]
    # No server: relative to where the document is read from.
    relative = document("--server", "", "--mount", "/myloginapi")
    assert relative["servers"] == [{"url": "/myloginapi"}]
    header = document("--version-header", "X-Version")["components"]["parameters"]
    assert header["VersionHeader"]["name"] == "X-Version"


def test_a_shijid_configuration_says_where_the_api_is_served(tmp_path, capsys):
    config = tmp_path / "shijid.conf"
    config.write_text(
        "[general]\n"
        "listen_ip = 0.0.0.0\n"
        "listen_port = 8000\n"
        f"base_path = {EXAMPLES}\n"
        "version_header = X-V\n"
        "[apis]\n"
        "mylogin_api: (myloginapi|login)\n"
    )

    def document(*options):
        status, out, err = admin(
            capsys, "-D", "mylogin_api", "-T", "openapi", "-V", "1.0", *options
        )
        assert (status, err) == (0, "")
        return json.loads(out)

    served = document("-c", str(config))
    assert served["servers"] == [
        {
            "url": "http://127.0.0.1:8000/{api}",
            "variables": {
                "api": {"default": "myloginapi", "enum": ["myloginapi", "login"]}
            },
        }
    ]
    assert served["components"]["parameters"]["VersionHeader"]["name"] == "X-V"
    # The command line wins over the file.
    chosen = document(
        "--shijid-config",
        str(config),
        "--server",
        "https://api.example.com",
        "--prefix",
        "login",
        "--version-header",
        "X-Version",
    )
    assert chosen["servers"] == [{"url": "https://api.example.com/login"}]
    assert chosen["components"]["parameters"]["VersionHeader"]["name"] == "X-Version"
    # The shipped configuration: its address and its literal prefix.
    shipped = document("-c", str(ROOT / "conf" / "shijid.conf.example"))
    assert shipped["servers"] == [{"url": "http://127.0.0.1:9990/myloginapi"}]


@pytest.mark.parametrize(
    "args, error",
    [
        (
            ("-D", "other_api", "-c", "{config}"),
            "{config}: [apis] does not list other_api (it lists mylogin_api)",
        ),
        (("-D", "mylogin_api", "-c", "{missing}"), "{missing}: no such file"),
        (
            ("-D", "mylogin_api", "-c", "{bad}"),
            "{bad}: [general] listen_port: must be a whole number from 0 to "
            "65535, not 'x'",
        ),
        (
            ("-A", "new_api", "-V", "1.0", "-c", "{config}"),
            "-c/--shijid-config goes with -D",
        ),
    ],
)
def test_a_shijid_configuration_that_cannot_serve_the_api_is_refused(
    tmp_path, capsys, args, error
):
    paths = {
        "config": tmp_path / "shijid.conf",
        "missing": tmp_path / "missing.conf",
        "bad": tmp_path / "bad.conf",
    }
    paths["config"].write_text("[apis]\nmylogin_api: myloginapi\n")
    paths["bad"].write_text("[general]\nlisten_port = x\n[apis]\nmylogin_api: m\n")
    filled = [arg.format(**paths) for arg in args]
    assert admin(capsys, *filled, "-p", str(tmp_path)) == (
        1,
        "",
        f"shiji_admin: error: {error.format(**paths)}\n",
    )


def test_an_openapi_object_that_is_no_dict_is_refused(tmp_path, capsys, fresh_imports):
    (tmp_path / "odd_api").mkdir()
    (tmp_path / "odd_api" / "__init__.py").write_text(
        "from shiji import urldispatch\n"
        "api_name = 'odd_api'\n"
        "api_license = 'MIT'\n"
        "api_versions = {}\n"
        "version_router = urldispatch.VersionRouter(api_versions)\n"
    )
    assert admin(capsys, "-D", "odd_api", "-p", str(tmp_path), "-T", "openapi") == (
        1,
        "",
        "shiji_admin: error: odd_api is not a Shiji API package: odd_api.api_license "
        "is an OpenAPI object (a dict), not str\n",
    )


def test_an_unknown_template_is_refused(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["-D", "mylogin_api", "-T", "pdf"])
    assert info.value.code == 2
    assert "invalid choice: 'pdf'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "route, readable",
    [
        (r"ping/(?P<timestamp>[0-9]+)$", "ping/<timestamp>"),
        (r"^ping[^/]*$", "ping[^/]*"),
        (r"list_versions/?", "list_versions"),
        (r"items/(?P<id>\d+)/(?P<part>(a|b)[)(]?)", "items/<id>/<part>"),
        (r"files/(?P<name>[^/]+)\.json", "files/<name>.json"),
        (r"a\$", r"a\$"),
    ],
)
def test_readable_routes(route, readable):
    assert readable_route(route) == readable


def test_docstring_formats():
    assert detect_format(":param name: who") == "restructuredtext"
    assert detect_format("Example::\n\n    code") == "restructuredtext"
    assert detect_format(".. note:: careful") == "restructuredtext"
    assert detect_format("Plain *markdown* with `code`.") == "markdown"
    assert (
        to_html("**bold** <b>raw</b>", "markdown")
        == "<p><strong>bold</strong> &lt;b&gt;raw&lt;/b&gt;</p>"
    )
    assert "<strong>bold</strong>" in to_html("**bold**", "restructuredtext")
    rst = to_html(".. raw:: html\n\n   <script>x</script>", "restructuredtext")
    assert "<script>" not in rst
    assert to_html("", "markdown") == ""


def test_an_api_may_declare_its_docstring_format(capsys, fresh_imports):
    import mylogin_api

    assert describe_api(mylogin_api).docstring_format == "auto"
    status, out, _ = admin(
        capsys,
        "-D",
        "rich_api",
        "-p",
        str(ROOT / "tests" / "daemon_apis"),
        "-T",
        "json",
    )
    assert status == 0
    items = json.loads(out)["versions"]["1.0"]["calls"]["items"]
    # ":returns: a page of items." is a reST field list, not a Markdown paragraph.
    assert '<dl class="field-list simple">' in items["GET"]
    assert "<p>List items.</p>" in items["GET"]


@pytest.mark.slow
def test_a_scaffolded_api_serves_at_once_under_shijid(tmp_path, capsys):
    from daemons import Daemon, write_config

    apis = tmp_path / "apis"
    apis.mkdir()
    admin(capsys, "-A", "fresh_api", "-V", "1.0", "-p", str(apis))
    admin(capsys, "-A", "fresh_api", "-V", "2.0", "-p", str(apis))
    config = write_config(
        tmp_path / "shijid.conf",
        {
            "general": {
                "listen_ip": "127.0.0.1",
                "listen_port": "0",
                "base_path": str(apis),
            },
            "logging": {"log_file": str(tmp_path / "shijid.log")},
            "apis": {"fresh_api": "fresh"},
        },
    )
    daemon = Daemon(tmp_path, config=config).start()
    try:
        for version in ("1.0", "2.0"):
            status, _, body = daemon.request(
                "GET",
                "/fresh/ping/42",
                headers={"X-API-Version": f"fresh_api-{version}+prod"},
            )
            assert (status, json.loads(body)) == (
                200,
                "PONG! Right back at ya. I'm production baby! (Timestamp Val: 42) "
                f"(API: fresh_api, Version: {version}, Mode: prod)",
            )
        assert daemon.stop() == 0
    finally:
        daemon.kill()
