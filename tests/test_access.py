"""
auth.access and auth.login_required: the decorator matrix.
"""

import pytest
import pytest_twisted
from apitools import envelope, make_api
from twisted.internet import defer, reactor, task

from shiji import auth, webapi
from shiji.testing import TestClient
from shiji.urldispatch import URLMatchJSONResource

TOKENS = {
    "reader": {"acme": ["read"], "roles": ["user"]},
    "writer": {
        "acme": ["read", "write"],
        "globex": ["read"],
        "roles": ["user", "admin"],
    },
    "nobody": {},
}


class TokenBackend:
    """Permissions by the Authorization: Token <name> header."""

    def __init__(self, mode="sync"):
        self.mode = mode
        self.calls = 0

    def lookup(self, request):
        self.calls += 1
        header = request.getHeader(b"authorization") or b""
        if self.mode == "broken":
            raise RuntimeError("the permission store is down")
        if header == b"Token refuse":
            raise webapi.InvalidAuthenticationError(request)
        if not header.startswith(b"Token "):
            return None
        return TOKENS.get(header[6:].decode())

    def authenticate(self, request):
        if self.mode == "deferred":
            return task.deferLater(reactor, 0, self.lookup, request)
        if self.mode == "async":
            return self._async(request)
        return self.lookup(request)

    async def _async(self, request):
        await task.deferLater(reactor, 0, lambda: None)
        return self.lookup(request)


class Accounts(URLMatchJSONResource):
    routes = [r"accounts/(?P<account>[a-z]+)", r"accounts"]

    @auth.access("account", False, "read", "write")
    def render_GET(self, request):
        return {"namespace": request.auth_namespace, "permissions": request.permissions}

    @auth.access("account", True, "read", "write")
    @webapi.json_arguments([("account", str), ("amount", int)])
    def render_POST(self, request):
        return {
            "namespace": request.auth_namespace,
            "amount": request.jsonArgs["amount"],
        }

    @webapi.json_arguments([("account", str), ("amount", int)])
    @auth.access("account", True, "read", "write")
    @defer.inlineCallbacks
    def render_PUT(self, request):
        yield task.deferLater(reactor, 0, lambda: None)
        return {
            "namespace": request.auth_namespace,
            "amount": request.jsonArgs["amount"],
        }

    @auth.access("account", False)
    async def render_DELETE(self, request):
        await task.deferLater(reactor, 0, lambda: None)
        return {"namespace": request.auth_namespace}


class Admin(URLMatchJSONResource):
    routes = r"admin"

    @auth.login_required(role="admin")
    def render_GET(self, request):
        return {"admin": True}

    @auth.login_required()
    def render_POST(self, request):
        return {"user": sorted(request.permissions)}


def client(mode="sync"):
    api = make_api("a_api", [("1.0", r"1\.0", [Accounts, Admin])])
    backend = TokenBackend(mode)
    return TestClient({"a": api}, auth_backend=backend), backend


def token(name):
    return {"Authorization": f"Token {name}"}


INVALID = envelope(
    "InvalidAuthenticationError",
    506,
    "Authentication information is invalidly formed and/or missing required elements.",
)
DENIED = envelope(
    "AccessDeniedError", 501, "Insufficient permission to perform the requested action."
)


@pytest.mark.parametrize("mode", ["sync", "deferred", "async"])
@pytest.mark.parametrize(
    "who, path, status, body",
    [
        (
            "reader",
            "/a/accounts/acme",
            200,
            {"namespace": "acme", "permissions": TOKENS["reader"]},
        ),
        (
            "writer",
            "/a/accounts/globex",
            200,
            {"namespace": "globex", "permissions": TOKENS["writer"]},
        ),
        (
            "writer",
            "/a/accounts?account=acme",
            200,
            {"namespace": "acme", "permissions": TOKENS["writer"]},
        ),
        ("reader", "/a/accounts/globex", 403, DENIED),
        ("nobody", "/a/accounts/acme", 403, DENIED),
        (None, "/a/accounts/acme", 401, INVALID),
        ("refuse", "/a/accounts/acme", 401, INVALID),
        ("unknown", "/a/accounts/acme", 401, INVALID),
        ("reader", "/a/accounts", 401, INVALID),
    ],
)
@pytest_twisted.ensureDeferred
async def test_any_permission(mode, who, path, status, body):
    test_client, _ = client(mode)
    response = await test_client.get(path, headers=token(who) if who else {})
    assert response.status == status
    assert response.json == body


@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.parametrize(
    "who, account, status",
    [
        ("writer", "acme", 200),
        ("writer", "globex", 403),
        ("reader", "acme", 403),
        (None, "acme", 401),
    ],
)
@pytest_twisted.ensureDeferred
async def test_all_permissions_with_the_namespace_in_the_body_in_either_order(
    method, who, account, status
):
    test_client, _ = client()
    response = await test_client.request(
        method,
        "/a/accounts",
        json={"account": account, "amount": 5},
        headers=token(who) if who else {},
    )
    assert response.status == status
    if status == 200:
        assert response.json == {"namespace": account, "amount": 5}


@pytest_twisted.ensureDeferred
async def test_arguments_are_not_checked_for_callers_without_access():
    test_client, _ = client()
    response = await test_client.post(
        "/a/accounts", json={"account": "acme", "amount": "x"}
    )
    assert response.status == 401
    response = await test_client.post(
        "/a/accounts", json={"account": "acme", "amount": "x"}, headers=token("writer")
    )
    assert response.status == 409


@pytest_twisted.ensureDeferred
async def test_no_permissions_listed_means_any_grant_in_the_namespace():
    test_client, _ = client("async")
    assert (
        await test_client.delete("/a/accounts/globex", headers=token("writer"))
    ).status == 200
    assert (
        await test_client.delete("/a/accounts/globex", headers=token("reader"))
    ).status == 403


@pytest.mark.parametrize("mode", ["sync", "deferred", "async"])
@pytest_twisted.ensureDeferred
async def test_a_failing_backend_is_a_server_error_not_a_pass(mode):
    test_client, _ = client(mode)
    test_client.router.auth_backend.mode = "broken"
    response = await test_client.get("/a/accounts/acme", headers=token("writer"))
    assert response.status == 500
    assert response.error["exception_class"] == "UnexpectedServerError"
    assert b"permission store" not in response.body


@pytest.mark.parametrize(
    "who, method, status",
    [
        ("writer", "GET", 200),
        ("reader", "GET", 403),
        ("nobody", "GET", 403),
        (None, "GET", 401),
        ("reader", "POST", 200),
        ("nobody", "POST", 200),
        (None, "POST", 401),
    ],
)
@pytest_twisted.ensureDeferred
async def test_login_required(who, method, status):
    test_client, _ = client()
    response = await test_client.request(
        method, "/a/admin", headers=token(who) if who else {}
    )
    assert response.status == status


@pytest_twisted.ensureDeferred
async def test_without_a_backend_access_control_is_a_server_error():
    api = make_api("a_api", [("1.0", r"1\.0", [Admin])])
    response = await TestClient({"a": api}).get("/a/admin")
    assert response.status == 500


def test_all_required_must_be_a_bool():
    with pytest.raises(TypeError, match="all_required is True or False, not 'read'"):
        auth.access("account", "read", "write")


def test_decorators_keep_names_and_docstrings():
    assert Accounts.render_GET.__name__ == "render_GET"
    assert Accounts.render_POST.__name__ == "render_POST"
    assert webapi.declarations(Accounts.render_POST).json_arguments[0].name == "account"


def test_guards_declare_what_they_require_for_the_documentation():
    def handler(self, request):
        return None

    cases = [
        (auth.login_required(), "a logged-in caller", False),
        (auth.login_required("ops"), "a logged-in caller with the role ops", True),
        (
            auth.access("account", False, "read", "admin"),
            "a caller granted read or admin in the namespace named by account",
            True,
        ),
        (
            auth.access("account", True, "read", "write"),
            "a caller granted read and write in the namespace named by account",
            True,
        ),
        (
            auth.access("account"),
            "a caller granted any permission in the namespace named by account",
            True,
        ),
    ]
    for guard, rule, may_deny in cases:
        declared = webapi.declarations(guard(webapi.url_arguments(["x"])(handler)))
        assert (declared.access_rule, declared.may_deny) == (rule, may_deny)
        assert declared.url_arguments == ("x",)
    assert webapi.declarations(handler).access_rule is None
