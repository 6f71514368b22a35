"""
Code written for the original Shiji (2015): its public API, accepted as it
was.
"""

import builtins
import importlib
import json
import sys

import pytest
import pytest_twisted
from apitools import envelope, make_api
from twisted.internet import defer

import shiji
from shiji import auth, webapi
from shiji.auth import base_backend, errors
from shiji.testing import TestClient
from shiji.urldispatch import APIRouter, URLMatchJSONResource

SECRET = "s" * 32

# APIError, built on the spot


def test_an_error_is_built_from_code_class_and_text_positionally():
    error = webapi.APIError("request", 301, "ThingError", "The thing broke.")
    assert (error.error_code, error.exception_class, error.exception_text) == (
        301,
        "ThingError",
        "The thing broke.",
    )
    assert error.request == "request"
    assert error.http_status == 409
    assert error.obj_err() == envelope("ThingError", 301, "The thing broke.")
    assert error.json_err() == (
        '{"result":null,"error":{"error_code":301,'
        '"exception_class":"ThingError","exception_text":"The thing broke."}}'
    )
    assert str(error) == error.json_err()
    # The class keeps its defaults; only the instance has the values.
    assert webapi.APIError.error_code is None


def test_an_error_is_built_from_keywords_or_both():
    error = webapi.APIError(
        None, error_code="302", exception_class="A", exception_text="b"
    )
    assert error.obj_err() == envelope("A", 302, "b")
    error = webapi.APIError(None, 303, exception_text="c", exception_class="C")
    assert error.obj_err() == envelope("C", 303, "c")


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        ((), {}, "Error code must be initialized."),
        ((None,), {}, "Error code must be initialized."),
        ((), {"exception_class": "A", "exception_text": "b"}, "Error code must be"),
        ((1,), {}, "Exception class must be initialized."),
        ((1, "A"), {}, "Exception text must be initialized."),
        ((1, None, "b"), {}, "Exception class must be initialized."),
        (("one", "A", "b"), {}, "Error code must be an integer."),
        ((1.5j, "A", "b"), {}, "Error code must be an integer."),
        ((True, "A", "b"), {}, "Error code must be an integer."),
        ((), {"error_code": [], "exception_class": "A"}, "Error code must be an"),
    ],
)
def test_an_error_left_incomplete_is_a_value_error(args, kwargs, message):
    with pytest.raises(builtins.ValueError) as info:
        webapi.APIError(None, *args, **kwargs)
    assert str(info.value).startswith(message)


def test_values_given_twice_or_too_many_are_a_type_error():
    with pytest.raises(TypeError, match="two values for error_code"):
        webapi.APIError(None, 1, "A", "b", error_code=2)
    with pytest.raises(TypeError, match="two values for exception_text"):
        webapi.APIError(None, 1, "A", "b", exception_text="c")
    with pytest.raises(TypeError, match="at most 3 values after the request, not 4"):
        webapi.APIError(None, 1, "A", "b", "extra")


class Abstract(webapi.APIError):
    """A base of an API's errors, with no code of its own."""


class WithTemplate(webapi.APIError):
    error_code = 120
    exception_text = "Bad %s: %d%%."


class Spec(webapi.APIError):
    error_code = 101
    exception_class = "SampleAdvancedError"
    exception_text = "Extra Arg Value: %s"

    def __init__(self, request_object, extra_arg):
        self.exception_text = self.exception_text % extra_arg
        webapi.APIError.__init__(self, request_object)


class Today(webapi.APIError):
    """An error written for today's Shiji, its __init__ calling super."""

    error_code = 121
    exception_text = "Thing %s is gone."

    def __init__(self, request, thing):
        super().__init__(request, thing)
        self.thing = thing


class Prose(webapi.APIError):
    exception_text = "Only 50% done, 100%% sure."


def test_a_text_with_a_percent_sign_is_no_template():
    error = Prose(None, 303, "Half", "Half done.")
    assert error.obj_err() == envelope("Half", 303, "Half done.")
    assert Prose(None, 304, "Prose").exception_text == "Only 50% done, 100%% sure."


def test_the_auth_package_holds_the_originals_modules():
    import subprocess

    code = (
        "from shiji import auth\n"
        "assert auth.base_backend.AuthBackend is not None\n"
        "assert auth.errors.NotAuthorized is not None\n"
        "import shiji.auth.base_backend, shiji.auth.errors\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok\n", "")


def test_subclasses_fill_their_templates_or_take_the_originals_fields():
    assert WithTemplate(None, "thing", 50).exception_text == "Bad thing: 50%."
    assert Spec(None, "100%s").exception_text == "Extra Arg Value: 100%s"
    assert Spec(None, "x").exception_class == "SampleAdvancedError"
    today = Today(None, "x")
    assert (today.exception_text, today.thing) == ("Thing x is gone.", "x")
    # A class without a template takes the original's fields.
    assert Abstract(None, 7, "Mine", "Text.").obj_err() == envelope("Mine", 7, "Text.")
    with pytest.raises(builtins.ValueError, match=r"Error code must be initialized\."):
        Abstract(None)
    assert Abstract.exception_class == "Abstract"


class MyObjErr(webapi.APIError):
    error_code = 122
    exception_text = "Custom."

    def obj_err(self):
        return {**super().obj_err(), "hint": "read the docs"}


class Errors(URLMatchJSONResource):
    routes = r"errors/(?P<which>[a-z]+)"

    def render_GET(self, request):
        which = self.url_matches["which"]
        if which == "raised":
            raise webapi.APIError(request, 301, "ThingError", "The thing broke.")
        if which == "returned":
            return webapi.APIError(request, 302, "ThingError", "Returned.")
        if which == "text":
            return defer.succeed(str(webapi.APIError(request, 303, "T", "Text.")))
        if which == "objerr":
            raise MyObjErr(request)
        if which == "spec":
            return str(Spec(request, "extra argument"))
        raise AssertionError(which)


def errors_client():
    return TestClient({"e": make_api("e_api", [("1.0", r"1\.0", [Errors])])})


@pytest.mark.parametrize(
    "which, body",
    [
        ("raised", envelope("ThingError", 301, "The thing broke.")),
        ("returned", envelope("ThingError", 302, "Returned.")),
        ("text", envelope("T", 303, "Text.")),
        (
            "objerr",
            {**envelope("MyObjErr", 122, "Custom."), "hint": "read the docs"},
        ),
        (
            "spec",
            envelope("SampleAdvancedError", 101, "Extra Arg Value: extra argument"),
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_errors_built_on_the_spot_answer_409(which, body):
    response = await errors_client().get(f"/e/errors/{which}")
    assert response.status == 409
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json == body


def test_documentation_lists_only_errors_with_a_code():
    from shiji.docs.model import describe_api

    api = make_api("e_api", [("1.0", r"1\.0", [Errors])])
    (version,) = describe_api(api).versions
    documented = {e.exception_class: e.error_code for e in version.errors}
    # This module's errors, but not Abstract, which has no code.
    assert {
        name: code for name, code in documented.items() if code in range(100, 200)
    } == {
        "WithTemplate": 120,
        "SampleAdvancedError": 101,
        "Today": 121,
        "MyObjErr": 122,
    }
    assert "Abstract" not in documented
    assert "APIError" not in documented


# Decorators


def test_the_argument_flags_are_the_originals_booleans():
    assert webapi.ARG_OPTIONAL is True
    assert webapi.ARG_REQUIRED is False


class Flags(URLMatchJSONResource):
    routes = r"flags"

    @webapi.json_arguments([("must", int, False), ("may", str, True), ("also", int)])
    def render_POST(self, request):
        return request.jsonArgs


@pytest.mark.parametrize(
    "body, status, answer",
    [
        ({"must": 1, "also": 2}, 200, {"must": 1, "also": 2}),
        ({"must": 1, "also": 2, "may": "x"}, 200, {"must": 1, "also": 2, "may": "x"}),
        (
            {"may": "x", "also": 2},
            409,
            envelope(
                "ValueError",
                502,
                "Invalid value for argument 'must'. Argument is missing.",
            ),
        ),
        (
            {"must": 1},
            409,
            envelope(
                "ValueError",
                502,
                "Invalid value for argument 'also'. Argument is missing.",
            ),
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_literal_booleans_mark_arguments_optional_or_required(
    body, status, answer
):
    client = TestClient({"f": make_api("f_api", [("1.0", r"1\.0", [Flags])])})
    response = await client.post("/f/flags", json=body)
    assert (response.status, response.json) == (status, answer)


class Typed(URLMatchJSONResource):
    routes = r"typed"

    @webapi.url_arguments(["key"], content_type="application/json")
    def render_GET(self, request):
        return {"key": request.args["key"][0]}

    @webapi.url_arguments(["key"], content_type="Application/Vnd.Shiji+JSON")
    def render_POST(self, request):
        return {"key": request.args["key"][0]}


CONTENT_TYPE_ERROR = envelope(
    "ContentTypeError",
    503,
    "The Content-Type of the API request was not of the expected "
    "format...or the API/version requested does not exist.",
)
CHARSET_ERROR = envelope(
    "CharsetNotUTF8Error",
    504,
    "The Content-Type of the API request did not specify a charset, or the "
    "charset specified was not UTF-8.",
)
MISSING_KEY = envelope(
    "ValueError", 502, "Invalid value for argument 'key'. Argument is missing."
)


@pytest.mark.parametrize(
    "method, content_type, query, status, body",
    [
        ("GET", "application/json; charset=utf-8", "?key=1", 200, {"key": "1"}),
        ("GET", "Application/JSON;charset=UTF8", "?key=1", 200, {"key": "1"}),
        ("GET", "application/json", "?key=1", 200, {"key": "1"}),
        ("GET", None, "?key=1", 406, CONTENT_TYPE_ERROR),
        ("GET", "text/plain; charset=utf-8", "?key=1", 406, CONTENT_TYPE_ERROR),
        ("GET", "application/json; charset=latin-1", "?key=1", 409, CHARSET_ERROR),
        ("GET", "application/json; charset=", "?key=1", 409, CHARSET_ERROR),
        # The content type is checked before the arguments, as in the original.
        ("GET", None, "", 406, CONTENT_TYPE_ERROR),
        ("GET", "application/json; charset=utf-8", "", 409, MISSING_KEY),
        (
            "POST",
            "application/vnd.shiji+json; charset=utf-8",
            "?key=2",
            200,
            {"key": "2"},
        ),
        ("POST", "application/json; charset=utf-8", "?key=2", 406, CONTENT_TYPE_ERROR),
    ],
)
@pytest_twisted.ensureDeferred
async def test_url_arguments_check_the_content_type_when_given_one(
    method, content_type, query, status, body
):
    client = TestClient({"t": make_api("t_api", [("1.0", r"1\.0", [Typed])])})
    response = await client.request(
        method, f"/t/typed{query}", content_type=content_type
    )
    assert (response.status, response.json) == (status, body)


@pytest_twisted.ensureDeferred
async def test_url_arguments_charset_is_required_under_strict_charset():
    client = TestClient(
        {"t": make_api("t_api", [("1.0", r"1\.0", [Typed])])}, strict_charset=True
    )
    response = await client.get("/t/typed?key=1", content_type="application/json")
    assert (response.status, response.json) == (409, CHARSET_ERROR)


@pytest.mark.parametrize("names", [[1], ["a", None], [b"a"], [("a",)]])
def test_url_argument_names_are_strings(names):
    with pytest.raises(TypeError, match="url_arguments: argument names are strings"):
        webapi.url_arguments(names)


class Basic(URLMatchJSONResource):
    routes = r"basic"

    @webapi.auth_http_basic(lambda username, password: password == "open")
    def render_GET(self, request):
        return {"user": request.auth_user}


@pytest_twisted.ensureDeferred
async def test_http_basic_realm_defaults_to_shiji():
    client = TestClient({"b": make_api("b_api", [("1.0", r"1\.0", [Basic])])})
    response = await client.get(
        "/b/basic", headers={"Authorization": "Basic dXNlcjp3cm9uZw=="}
    )
    assert response.status == 401
    assert (
        response.headers["www-authenticate"] == 'Basic realm="Shiji", charset="UTF-8"'
    )
    assert response.error["exception_class"] == "InvalidAuthenticationError"
    response = await client.get(
        "/b/basic", headers={"Authorization": "Basic dXNlcjpvcGVu"}
    )
    assert (response.status, response.json) == (200, {"user": "user"})


# getClientIP(honor_xrealip=...)


class ClientIP(URLMatchJSONResource):
    routes = r"ip"

    def render_GET(self, request):
        return {
            "default": request.getClientIP(),
            "honor": request.getClientIP(honor_xrealip=True),
            "dishonor": request.getClientIP(honor_xrealip=False),
            "client_ip": request.client_ip,
        }


@pytest.mark.parametrize(
    "peer, honor_x_realip, headers, answer",
    [
        # A trusted proxy (loopback, by default), honor_x_realip on.
        (
            "127.0.0.1",
            True,
            {"X-Real-IP": "5.6.7.8"},
            ("5.6.7.8",) * 2 + ("127.0.0.1",),
        ),
        # ... off: the switch still lets the call believe the proxy.
        (
            "127.0.0.1",
            False,
            {"X-Real-IP": "5.6.7.8"},
            ("127.0.0.1", "5.6.7.8", "127.0.0.1"),
        ),
        # No header: the peer, whatever the switches.
        ("127.0.0.1", True, {}, ("127.0.0.1",) * 3),
        ("127.0.0.1", False, {}, ("127.0.0.1",) * 3),
        # A client that is no trusted proxy cannot name another address.
        ("1.2.3.4", True, {"X-Real-IP": "5.6.7.8"}, ("1.2.3.4",) * 3),
        ("1.2.3.4", False, {"X-Real-IP": "5.6.7.8"}, ("1.2.3.4",) * 3),
        # Nor can a trusted one name something that is no address.
        ("127.0.0.1", False, {"X-Real-IP": "evil"}, ("127.0.0.1",) * 3),
        # X-Forwarded-For counts as X-Real-IP does.
        (
            "127.0.0.1",
            False,
            {"X-Forwarded-For": "9.9.9.9, 5.6.7.8"},
            ("127.0.0.1", "5.6.7.8", "127.0.0.1"),
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_get_client_ip_honours_x_real_ip_per_call(
    peer, honor_x_realip, headers, answer
):
    client = TestClient(
        {"i": make_api("i_api", [("1.0", r"1\.0", [ClientIP])])},
        client_address=peer,
        honor_x_realip=honor_x_realip,
    )
    response = await client.get("/i/ip", headers=headers)
    default, honour, dishonour = answer
    assert response.json == {
        "default": default,
        "honor": honour,
        "dishonor": dishonour,
        "client_ip": default,
    }


# Routing maps


class Ping(URLMatchJSONResource):
    routes = [r"ping", r"ping/(?P<n>[0-9]+)"]

    def render_GET(self, request):
        return {}


class Pong(URLMatchJSONResource):
    routes = r"pong"

    def render_GET(self, request):
        return {}


def test_routers_show_their_maps():
    api = make_api("m_api", [("1.0", r"1\.0", [Ping, Pong]), ("2.0", r"2\..*", [Pong])])
    version_map = api.version_router.get_version_map()
    assert version_map == api.version_router.version_map
    assert list(version_map) == ["1.0", "2.0"]
    assert [(p.pattern, module) for p, module in version_map.values()] == [
        (r"1\.0", api.api_versions["1.0"][1]),
        (r"2\..*", api.api_versions["2.0"][1]),
    ]
    assert version_map["2.0"][0].fullmatch("2.7")
    # Copies: changing them changes no routing.
    version_map.clear()
    assert list(api.version_router.version_map) == ["1.0", "2.0"]

    call_router = api.api_versions["1.0"][1].call_router
    assert [(p.pattern, call) for p, call in call_router.route_map] == [
        ("ping", Ping),
        ("ping/(?P<n>[0-9]+)", Ping),
        ("pong", Pong),
        ("list_versions/?", call_router.route_map[3][1]),
    ]

    router = APIRouter([(r"m", api), (r"other|m2", api)])
    route_map = router.get_route_map()
    assert route_map == router.route_map
    assert [(p.pattern, module) for p, module in route_map] == [
        ("m", api),
        ("other|m2", api),
    ]
    route_map.clear()
    assert len(router.route_map) == 2


# The server ident


@pytest.fixture
def default_ident():
    """Put the process's ident, and every live site's, back as they were."""
    from shiji import _server_ident

    sites = {site: site.server_ident for site in list(_server_ident._sites)}
    current, shown = _server_ident._current, dict(shiji.server_ident)
    yield
    _server_ident._current = current
    shiji.server_ident.update(shown)
    for site, ident in sites.items():
        site.server_ident = ident


class Nothing(URLMatchJSONResource):
    routes = r"nothing"

    def render_GET(self, request):
        return {}


def nothing_client(**options):
    return TestClient(
        {"n": make_api("n_api", [("1.0", r"1\.0", [Nothing])])}, **options
    )


@pytest_twisted.ensureDeferred
async def test_change_server_ident_changes_every_answer(default_ident):
    assert shiji.server_ident == {
        "server_name": "Shiji API Server",
        "server_version": "",
    }
    live = nothing_client()
    pinned = nothing_client(server_ident="Pinned")
    assert (await live.get("/n/nothing")).headers["server"] == "Shiji API Server"
    assert (await pinned.get("/n/nothing")).headers["server"] == "Pinned"

    shiji.change_server_ident("Bongo", "1.91")
    assert shiji.server_ident == {"server_name": "Bongo", "server_version": "1.91"}
    # Every site, the pinned one too: the last word wins...
    for client in (live, pinned, nothing_client()):
        for path in ("/n/nothing", "/n/unknown", "/nowhere"):
            assert (await client.get(path)).headers["server"] == "Bongo/1.91"
    # ...so a site built later with its own ident keeps it.
    assert (await nothing_client(server_ident="Later").get("/n/nothing")).headers[
        "server"
    ] == "Later"

    shiji.change_server_ident("Plain")
    assert shiji.server_ident == {"server_name": "Plain", "server_version": ""}
    assert (await live.get("/n/nothing")).headers["server"] == "Plain"
    shiji.change_server_ident("Plain", "")
    assert (await live.get("/n/nothing")).headers["server"] == "Plain"


@pytest.mark.parametrize(
    "name, version",
    [("", None), ("Evil\r\nSet-Cookie: a=b", None), ("Ok", "1\n"), ("Café", None)],
)
def test_a_server_ident_that_no_header_can_carry_is_refused(
    name, version, default_ident
):
    with pytest.raises(builtins.ValueError, match="printable ASCII"):
        shiji.change_server_ident(name, version)
    assert shiji.server_ident["server_name"] == "Shiji API Server"


# shiji.auth: the original's errors, backend base class and installers


def test_the_auth_errors_keep_their_value():
    for cls in (
        errors.AuthBadBackend,
        errors.AuthNoBackend,
        errors.InvalidAuthentication,
        errors.NotAuthorized,
        errors.BackendWarmingUp,
    ):
        error = cls("test")
        assert isinstance(error, errors.AuthBaseException)
        assert error.value == "test"
    assert str(errors.AuthBaseException(123)) == "123"
    assert importlib.import_module("shiji.auth.errors") is errors
    assert auth.errors is errors


class OriginalBackend(base_backend.AuthBackend):
    """A backend as the original's users wrote them."""

    def __init__(self, failure=None, synchronous=False):
        self.failure = failure
        self.synchronous = synchronous

    def perm_list(self):
        return ["read"]

    def authenticate(self, request):
        if self.failure is not None:
            if self.synchronous:
                raise self.failure
            return defer.fail(self.failure)
        return defer.succeed({"acme": ["read"]})


def test_the_backend_base_class_is_no_backend():
    with pytest.raises(errors.AuthNoBackend, match="No authentication backend"):
        base_backend.AuthBackend()

    class Bare(base_backend.AuthBackend):
        def __init__(self):
            pass

    bare = Bare()
    with pytest.raises(errors.AuthNoBackend):
        bare.perm_list()
    failure = []
    bare.authenticate(None).addErrback(failure.append)
    assert failure[0].check(errors.AuthNoBackend)
    assert str(failure[0].value) == "No authentication backend configured."


class Guarded(URLMatchJSONResource):
    routes = r"guarded/(?P<account>[a-z]+)"

    @auth.access("account", False, "read")
    def render_GET(self, request):
        return {"namespace": request.auth_namespace}


def guarded_client(backend=None):
    api = make_api("g_api", [("1.0", r"1\.0", [Guarded])])
    if backend is None:
        return TestClient({"g": api})
    return TestClient({"g": api}, auth_backend=backend)


@pytest.mark.parametrize("synchronous", [False, True])
@pytest.mark.parametrize(
    "failure, status, error_class",
    [
        (errors.InvalidAuthentication("bad token"), 401, "InvalidAuthenticationError"),
        (errors.NotAuthorized("no"), 403, "AccessDeniedError"),
        (errors.BackendWarmingUp("soon"), 503, "ServiceUnavailableError"),
        (errors.AuthNoBackend("none"), 500, "UnexpectedServerError"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_backends_auth_errors_become_answers(
    failure, status, error_class, synchronous
):
    client = guarded_client(OriginalBackend(failure, synchronous))
    response = await client.get("/g/guarded/acme")
    assert response.status == status
    assert response.error["exception_class"] == error_class
    if status == 503:
        assert response.headers["retry-after"] == "1"
        assert response.error == {
            "error_code": 217,
            "exception_class": "ServiceUnavailableError",
            "exception_text": (
                "The service is not ready to answer this call; try again shortly."
            ),
        }
    # What the backend said never reaches the client.
    assert str(failure) not in response.body.decode()


@pytest.fixture
def installed(monkeypatch):
    """Forget, after the test, what it installed for the process."""
    from shiji.auth import _access, _cookies

    monkeypatch.setattr(_access, "installed_backend", None)
    monkeypatch.setattr(_cookies, "installed_secrets", None)
    monkeypatch.setattr(_cookies, "_installed_signer", None)


@pytest_twisted.ensureDeferred
async def test_install_auth_serves_routers_without_a_backend(installed):
    class BadBackend:
        pass

    with pytest.raises(errors.AuthBadBackend) as info:
        auth.install_auth(BadBackend())
    assert str(info.value) == (
        "Supplied backend must have an authenticate(request) method."
    )
    assert auth.auth_backend is None
    response = await guarded_client().get("/g/guarded/acme")
    assert response.status == 500

    backend = OriginalBackend()
    auth.install_auth(backend)
    assert auth.auth_backend is backend
    with pytest.raises(AttributeError, match="no attribute 'auth_backends'"):
        auth.auth_backends  # noqa: B018
    response = await guarded_client().get("/g/guarded/acme")
    assert (response.status, response.json) == (200, {"namespace": "acme"})
    # A router's own backend comes first.
    own = OriginalBackend(errors.NotAuthorized("no"))
    assert (await guarded_client(own).get("/g/guarded/acme")).status == 403


class Cookies(URLMatchJSONResource):
    routes = r"cookie"

    def render_POST(self, request):
        auth.set_secure_cookie(request, "session", "alice")
        return {}

    def render_GET(self, request):
        value = auth.get_secure_cookie(request, "session")
        if isinstance(value, webapi.APIError):
            raise value
        return {"session": value}


@pytest_twisted.ensureDeferred
async def test_install_secure_cookies_serves_routers_without_secrets(installed):
    with pytest.raises(builtins.ValueError):
        auth.install_secure_cookies(["supersecret"])
    for secrets in (SECRET, SECRET.encode()):
        with pytest.raises(builtins.ValueError) as info:
            auth.install_secure_cookies(secrets)
        assert str(info.value) == "secure cookie secrets are a list of strings"
    assert auth.cookie_secrets is None

    auth.install_secure_cookies([SECRET, "o" * 32])
    assert auth.cookie_secrets == [SECRET, "o" * 32]
    client = TestClient({"c": make_api("c_api", [("1.0", r"1\.0", [Cookies])])})
    set_cookie = (await client.post("/c/cookie", json={})).headers["set-cookie"]
    cookie = set_cookie.split(";")[0]
    response = await client.get("/c/cookie", headers={"Cookie": cookie})
    assert (response.status, response.json) == (200, {"session": "alice"})
    # A router's own secrets come first: the installed ones' cookie fails.
    own = TestClient(
        {"c": make_api("c_api", [("1.0", r"1\.0", [Cookies])])},
        cookie_secrets=["x" * 32],
    )
    response = await own.get("/c/cookie", headers={"Cookie": cookie})
    assert response.status == 409
    assert response.error["exception_class"] == "InvalidSecureCookieError"


# The scaffolded PingCall is the specification's stub


@pytest.fixture
def fresh_imports():
    """Import packages of the same names as the example's, then forget them."""
    before = dict(sys.modules)
    path = list(sys.path)
    for name in [n for n in sys.modules if n.partition(".")[0] == "mylogin_api"]:
        del sys.modules[name]
    yield
    for name in set(sys.modules) - set(before):
        del sys.modules[name]
    sys.modules.update(before)
    sys.path[:] = path


@pytest.mark.parametrize(
    "path, mode, answer",
    [
        (
            "/myloginapi/ping",
            "prod",
            "PONG! Right back at ya. I'm production baby! "
            "(API: mylogin_api, Version: 1.0, Mode: prod)",
        ),
        (
            "/myloginapi/ping/123",
            "prod",
            "PONG! Right back at ya. I'm production baby! (Timestamp Val: 123) "
            "(API: mylogin_api, Version: 1.0, Mode: prod)",
        ),
        (
            "/myloginapi/ping/" + "0" * 4500,
            "prod",
            "PONG! Right back at ya. I'm production baby! "
            f"(Timestamp Val: {'0' * 4500}) "
            "(API: mylogin_api, Version: 1.0, Mode: prod)",
        ),
        (
            "/myloginapi/ping",
            "test",
            "PONG! Right back at ya. I'm in testing mode. :( "
            "(API: mylogin_api, Version: 1.0, Mode: test)",
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_the_scaffolded_ping_answers_as_the_specification(
    tmp_path, capsys, fresh_imports, path, mode, answer
):
    from shiji.admin import cli

    assert cli.main(["-A", "mylogin_api", "-V", "1.0", "-p", str(tmp_path)]) == 0
    capsys.readouterr()
    sys.path.insert(0, str(tmp_path))
    api = importlib.import_module("mylogin_api")
    assert api.__file__.startswith(str(tmp_path))
    client = TestClient({"myloginapi": api})
    response = await client.get(path, mode=mode)
    assert response.status == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert json.loads(response.body) == answer
    assert (await client.get("/myloginapi/ping/x")).status == 404


class Versions(URLMatchJSONResource):
    routes = r"versions"

    def render_GET(self, request):
        return {"api_version": request.api_version, "key": request.version_key}


@pytest.mark.parametrize(
    "asked, key", [("1.0", "1.0"), ("1.5", "1.0"), ("2.0", "2.x"), ("2.9", "2.x")]
)
@pytest_twisted.ensureDeferred
async def test_the_key_of_the_version_answering_is_known(asked, key):
    api = make_api(
        "v_api",
        [("1.0", r"1\..*", [Versions]), ("2.x", r"2\.[0-9]", [Versions])],
    )
    response = await TestClient({"v": api}).get("/v/versions", version=asked)
    assert response.json == {"api_version": asked, "key": key}
