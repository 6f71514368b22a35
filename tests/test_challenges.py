"""
Every 401 answer carries a WWW-Authenticate challenge (RFC 9110 section
11.6.1): Basic for ``auth_http_basic`` (RFC 7617), the Cookie scheme
otherwise, or what the auth backend's ``challenge(request)`` says, and a
handler's own header wins.
"""

import ast
import re
from pathlib import Path

import mylogin_api
import pytest
import pytest_twisted
from apitools import make_api
from mylogin_api import config, passwords
from mylogin_api.backend import SessionBackend
from twisted.logger import globalLogPublisher

from shiji import _site, auth, webapi
from shiji.auth import _access, _challenge
from shiji.testing import TestClient
from shiji.urldispatch import APIRouter, URLMatchJSONResource

SECRET = "challenge tests: a secret of thirty-two characters or more"
PROBLEM = {"Accept": "application/problem+json"}

# RFC 9110 section 11.3: challenge = auth-scheme [ 1*SP ( token68 /
# #auth-param ) ], auth-param = token BWS "=" BWS ( token / quoted-string ).
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_PARAM = rf"{_TOKEN}[ \t]*=[ \t]*(?:{_TOKEN}|{_QUOTED})"
CHALLENGE = re.compile(rf"{_TOKEN}(?: +{_PARAM}(?:[ \t]*,[ \t]*{_PARAM})*)?")


def parses(value):
    """Whether ``value`` is one RFC 9110 challenge with auth-params."""
    return CHALLENGE.fullmatch(value) is not None


class NoMore(webapi.APIError):
    """An API's own 401."""

    error_code = 300
    exception_text = "Sign in again."
    http_status = 401


class Calls(URLMatchJSONResource):
    routes = r"calls/(?P<how>[a-z_]+)"

    def render_GET(self, request):
        how = self.url_matches["how"]
        if how == "raise":
            raise webapi.InvalidAuthenticationError(request)
        if how == "return":
            return webapi.InvalidAuthenticationError(request)
        if how == "return_str":
            return str(webapi.InvalidAuthenticationError(request))
        if how == "own_error":
            raise NoMore(request)
        if how == "own_header":
            request.setHeader("WWW-Authenticate", 'Bearer realm="shop", scope="read"')
            raise NoMore(request)
        if how == "status_only":
            request.setResponseCode(401)
            return {"signed_in": False}
        if how == "forbidden":
            raise webapi.AccessDeniedError(request)
        return {"fine": True}


class Guarded(URLMatchJSONResource):
    routes = r"guarded/(?P<account>[a-z]+)"

    @auth.access("account", False, "read")
    def render_GET(self, request):
        return {"account": request.auth_namespace}

    @auth.login_required()
    def render_POST(self, request):
        return {"user": True}


class Basic(URLMatchJSONResource):
    routes = r"basic"

    @webapi.auth_http_basic(lambda user, password: False, 'Back "office" \\ 2')
    def render_GET(self, request):
        return {}


class Backend:
    """Nobody has credentials; ``how`` says what ``challenge`` does."""

    def __init__(self, how=None):
        self.how = how
        if how is not None:
            self.challenge = self._challenge

    def authenticate(self, request):
        if request.getHeader(b"authorization") == b"refuse":
            raise auth.errors.InvalidAuthentication("refused")
        return None

    def _challenge(self, request):
        if self.how == "fails":
            raise RuntimeError("no challenge today")
        if self.how == "empty":
            return ""
        return f'Bearer realm="{request.api_name}", error="invalid_token"'


def client(backend=None, api_name="c_api"):
    api = make_api(api_name, [("1.0", r"1\.0", [Calls, Guarded, Basic])])
    return TestClient({"c": api}, auth_backend=backend)


COOKIE = 'Cookie realm="c_api"'


@pytest.mark.parametrize("accept", [{}, PROBLEM], ids=["envelope", "problem"])
@pytest.mark.parametrize(
    "method, path, options, expected",
    [
        # The built-in 401, raised, returned and returned as text.
        ("GET", "/c/calls/raise", {}, COOKIE),
        ("GET", "/c/calls/return", {}, COOKIE),
        ("GET", "/c/calls/return_str", {}, COOKIE),
        # An API's own 401.
        ("GET", "/c/calls/own_error", {}, COOKIE),
        # A handler that sets the status itself.
        ("GET", "/c/calls/status_only", {}, COOKIE),
        # The guards: no credentials, refused ones.
        ("GET", "/c/guarded/acme", {}, COOKIE),
        ("GET", "/c/guarded/acme", {"Authorization": "refuse"}, COOKIE),
        ("POST", "/c/guarded/acme", {}, COOKIE),
        # HTTP Basic, its realm quoted and escaped.
        (
            "GET",
            "/c/basic",
            {},
            'Basic realm="Back \\"office\\" \\\\ 2", charset="UTF-8"',
        ),
        # The handler's own header wins.
        ("GET", "/c/calls/own_header", {}, 'Bearer realm="shop", scope="read"'),
    ],
)
@pytest_twisted.ensureDeferred
async def test_every_401_carries_one_challenge(method, path, options, expected, accept):
    response = await client(Backend()).request(
        method, path, headers={**options, **accept}
    )
    assert response.status == 401
    assert response.header_values("www-authenticate") == [expected]
    assert parses(expected)
    if accept and path != "/c/calls/status_only":  # the others are errors
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json["status"] == 401
        assert response.json["title"] == "Unauthorized"


@pytest.mark.parametrize(
    "path", ["/c/calls/raise", "/c/calls/own_error", "/c/guarded/acme"]
)
@pytest_twisted.ensureDeferred
async def test_the_backends_challenge_is_sent(path):
    response = await client(Backend("bearer")).get(path)
    assert response.status == 401
    assert response.header_values("www-authenticate") == [
        'Bearer realm="c_api", error="invalid_token"'
    ]


@pytest.mark.parametrize("how", ["fails", "empty"])
@pytest_twisted.ensureDeferred
async def test_a_backend_whose_challenge_fails_gets_the_default(how):
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        response = await client(Backend(how)).get("/c/calls/raise")
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert response.status == 401
    assert response.header_values("www-authenticate") == [COOKIE]
    assert [e["log_format"] for e in events if e.get("log_failure")] == [
        "The auth backend's challenge failed; answering with the default challenge"
    ]


@pytest_twisted.ensureDeferred
async def test_without_any_backend_the_cookie_challenge_is_sent():
    response = await client().get("/c/calls/own_error")
    assert response.status == 401
    assert response.header_values("www-authenticate") == [COOKIE]


@pytest_twisted.ensureDeferred
async def test_the_installed_backend_is_asked_when_the_router_has_none(monkeypatch):
    monkeypatch.setattr(_access, "installed_backend", None)
    auth.install_auth(Backend("bearer"))
    response = await client().get("/c/calls/raise")
    assert response.header_values("www-authenticate") == [
        'Bearer realm="c_api", error="invalid_token"'
    ]


@pytest_twisted.ensureDeferred
async def test_the_realm_is_a_quoted_string():
    response = await client(api_name='odd "api" \\ name').get("/c/calls/raise")
    [value] = response.header_values("www-authenticate")
    assert value == 'Cookie realm="odd \\"api\\" \\\\ name"'
    assert parses(value)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("plain", '"plain"'),
        ('a "b" \\ c', '"a \\"b\\" \\\\ c"'),
        ("bell\x07 and\ttab\r\n", '"bell  and tab  "'),
        ("caf\u00e9", '"caf\u00e9"'),
    ],
)
def test_quoted_strings(text, expected):
    # No control character can be sent in a quoted-string, even escaped.
    assert _challenge.quoted_string(text) == expected
    assert parses(f"Cookie realm={expected}")


@pytest.mark.parametrize("path", ["/c/calls/fine", "/c/calls/forbidden"])
@pytest_twisted.ensureDeferred
async def test_other_answers_carry_no_challenge(path):
    response = await client(Backend()).get(path)
    assert response.status in (200, 403)
    assert response.header_values("www-authenticate") == []


@pytest.mark.skipif(passwords.scrypt is None, reason="no scrypt on this Python")
@pytest.mark.parametrize(
    "cookie_secure, name", [(False, "session"), (True, "__Host-session")]
)
@pytest_twisted.ensureDeferred
async def test_the_example_names_its_session_cookie(tmp_path, cookie_secure, name):
    settings = config.validate_config({"db_path": str(tmp_path / "users.sqlite")})
    try:
        example = TestClient(
            {"myloginapi": mylogin_api},
            config={"mylogin_api": settings},
            cookie_secrets=[SECRET],
            cookie_secure=cookie_secure,
            auth_backend=SessionBackend(),
        )
        expected = [f'Cookie realm="mylogin_api", cookie-name="{name}"']
        # login_required, without a session.
        me = await example.get("/myloginapi/me")
        assert (me.status, me.header_values("www-authenticate")) == (401, expected)
        # The API's own LoginFailedError, as problem details too.
        for headers in ({}, PROBLEM):
            failed = await example.post(
                "/myloginapi/login",
                json={"email": "nobody@example.com", "password": "wrong horse"},
                headers=headers,
            )
            assert failed.status == 401
            assert failed.header_values("www-authenticate") == expected
        assert parses(expected[0])
    finally:
        settings["users"].close()


@pytest.mark.parametrize(
    "value, expected",
    [
        ('Cookie realm="x"', True),
        ('Cookie realm="x", cookie-name="session"', True),
        ('Basic realm="a \\"b\\"", charset="UTF-8"', True),
        ("Cookie", True),
        ('Cookie realm="x', False),
        ('Cookie realm="x" cookie-name="y"', False),
        ('realm="x"', False),
    ],
)
def test_the_challenge_grammar_of_these_tests(value, expected):
    assert parses(value) is expected


class Returns:
    """A backend whose ``challenge`` returns ``value``."""

    def __init__(self, value):
        self.value = value

    def authenticate(self, request):
        return None

    def challenge(self, request):
        return self.value


@pytest.mark.parametrize(
    "value",
    [
        'Bearer realm="shop"\x00',
        'Bearer realm="shop"\r\nSet-Cookie: session=forged',
        'Bearer realm="shop"\n',
        'Bearer\trealm="shop"',
        'Bearer realm="shop\x1b[31m"',
        'Bearer realm="shop\x7f"',
        'Bearer realm="shop\x85"',
        'Bearer realm="\u20ac"',
        'Bearer realm="\U0001f600"',
        b'Bearer realm="shop"\x00',
        b'Bearer realm="shop"\r\nSet-Cookie: session=forged',
        b'Bearer realm="shop\x07"',
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_challenge_that_is_no_header_value_is_refused(value):
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        response = await client(Returns(value)).get("/c/calls/raise")
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert response.status == 401
    assert response.header_values("www-authenticate") == [COOKIE]
    assert "set-cookie" not in response.headers
    [failure] = [e for e in events if e.get("log_failure")]
    assert failure["log_format"] == (
        "The auth backend's challenge failed; answering with the default challenge"
    )
    assert isinstance(failure["log_failure"].value, ValueError)


@pytest.mark.parametrize(
    "value, sent",
    [
        ('Bearer realm="caf\u00e9"', b'Bearer realm="caf\xe9"'),
        (b'Bearer realm="caf\xc3\xa9"', b'Bearer realm="caf\xc3\xa9"'),
        (b'Bearer realm="\x80\xff"', b'Bearer realm="\x80\xff"'),
    ],
)
@pytest_twisted.ensureDeferred
async def test_latin_1_text_and_any_byte_but_a_control_are_sent(value, sent):
    response = await client(Returns(value)).get("/c/calls/raise")
    assert response.status == 401
    assert response.header_values("www-authenticate") == [sent.decode("latin-1")]


@pytest_twisted.ensureDeferred
async def test_the_router_decides_the_challenge():
    class Router(APIRouter):
        def challenge(self, request):
            return b'Bearer realm="' + request.api_name.encode() + b'"'

    api = make_api("c_api", [("1.0", r"1\.0", [Calls])])
    response = await TestClient(Router({"c": api})).get("/c/calls/raise")
    assert response.status == 401
    assert response.header_values("www-authenticate") == ['Bearer realm="c_api"']


def test_the_http_layer_does_not_import_auth():
    source = Path(_site.__file__).read_text(encoding="utf-8")
    imported = [
        node.module or ""
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom)
    ] + [
        alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    ]
    assert not [name for name in imported if "auth" in name], imported
