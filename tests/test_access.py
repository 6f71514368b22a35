"""
auth.access and auth.login_required: the decorator matrix.
"""

import pytest
import pytest_twisted
from apitools import envelope, make_api
from twisted.internet import defer, reactor, task
from twisted.logger import globalLogPublisher

from shiji import auth, webapi
from shiji.testing import TestClient
from shiji.urldispatch import APIDefinitionError, URLMatchJSONResource

TOKENS = {
    "alice": {"acct-alice": ["read", "write"]},
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
    routes = [r"accounts/(?P<account>[a-z-]+)", r"accounts"]

    # The namespace is a named group of the route: read from the URL.
    @auth.access("account", False, "read", "write")
    def render_GET(self, request):
        return {"namespace": request.auth_namespace, "permissions": request.permissions}

    # Declared in the route and in the body: the guard must say which.
    @auth.access("account", True, "read", "write", source="json")
    @webapi.json_arguments([("account", str), ("amount", int)])
    def render_POST(self, request):
        return {
            "namespace": request.auth_namespace,
            "amount": request.jsonArgs["amount"],
        }

    @auth.access("account", False)
    async def render_DELETE(self, request):
        await task.deferLater(reactor, 0, lambda: None)
        return {"namespace": request.auth_namespace}


class Transfer(URLMatchJSONResource):
    """The README's pattern: the namespace is declared in the body only."""

    routes = r"transfer"

    @auth.access("account", True, "read", "write")
    @webapi.json_arguments([("account", (str, int)), ("amount", int)])
    def render_POST(self, request):
        return {"namespace": request.auth_namespace, "acting_on": request.jsonArgs}

    @webapi.json_arguments([("account", str), ("amount", int)])
    @auth.access("account", True, "read", "write")
    @defer.inlineCallbacks
    def render_PUT(self, request):
        yield task.deferLater(reactor, 0, lambda: None)
        return {"namespace": request.auth_namespace, "acting_on": request.jsonArgs}


class Statements(URLMatchJSONResource):
    """The namespace is declared in the query string."""

    routes = r"statements"

    @auth.access("account")
    @webapi.url_arguments(["account"])
    def render_GET(self, request):
        return {"namespace": request.auth_namespace, "args": request.args}


class Admin(URLMatchJSONResource):
    routes = r"admin"

    @auth.login_required(role="admin")
    def render_GET(self, request):
        return {"admin": True}

    @auth.login_required()
    def render_POST(self, request):
        return {"user": sorted(request.permissions)}


@pytest.fixture
def logged():
    events = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


def client(mode="sync"):
    api = make_api("a_api", [("1.0", r"1\.0", [Accounts, Transfer, Statements, Admin])])
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
        # Read from the URL only: in the query string, it is not there.
        ("writer", "/a/accounts?account=acme", 401, INVALID),
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
    # Every 401 carries a challenge; the backend has none of its own.
    assert response.header_values("www-authenticate") == (
        ['Cookie realm="a_api"'] if status == 401 else []
    )


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
        "/a/transfer",
        json={"account": account, "amount": 5},
        headers=token(who) if who else {},
    )
    assert response.status == status
    if status == 200:
        assert response.json == {
            "namespace": account,
            "acting_on": {"account": account, "amount": 5},
        }


@pytest_twisted.ensureDeferred
async def test_arguments_are_not_checked_for_callers_without_access():
    test_client, _ = client()
    response = await test_client.post(
        "/a/transfer", json={"account": "acme", "amount": "x"}
    )
    assert response.status == 401
    response = await test_client.post(
        "/a/transfer", json={"account": "acme", "amount": "x"}, headers=token("writer")
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
    assert response.header_values("www-authenticate") == (
        ['Cookie realm="a_api"'] if status == 401 else []
    )


@pytest_twisted.ensureDeferred
async def test_without_a_backend_access_control_is_a_server_error():
    api = make_api("a_api", [("1.0", r"1\.0", [Admin])])
    response = await TestClient({"a": api}).get("/a/admin")
    assert response.status == 500


def given_twice(name, where):
    return envelope(
        "ValueError",
        502,
        f"Invalid value for argument '{name}'. Must be given once, in {where}.",
    )


@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.parametrize(
    "path, body, status, expected",
    [
        # The attack: the guard read the query string, the handler the body.
        (
            "/a/transfer?account=acct-alice",
            {"account": "acct-bob", "amount": 5},
            409,
            given_twice("account", "the JSON body"),
        ),
        (
            "/a/transfer?account=acct-bob",
            {"account": "acct-alice", "amount": 5},
            409,
            given_twice("account", "the JSON body"),
        ),
        ("/a/transfer", {"account": "acct-bob", "amount": 5}, 403, DENIED),
        (
            "/a/transfer",
            {"account": "acct-alice", "amount": 5},
            200,
            {
                "namespace": "acct-alice",
                "acting_on": {"account": "acct-alice", "amount": 5},
            },
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_the_namespace_checked_is_the_one_the_handler_gets(
    method, path, body, status, expected
):
    test_client, _ = client()
    response = await test_client.request(
        method, path, json=body, headers=token("alice")
    )
    assert (response.status, response.json) == (status, expected)


@pytest_twisted.ensureDeferred
async def test_a_namespace_where_the_call_does_not_read_it_is_missing():
    test_client, _ = client()
    response = await test_client.post(
        "/a/transfer?account=acct-alice", json={"amount": 5}, headers=token("alice")
    )
    assert (response.status, response.json) == (401, INVALID)


@pytest.mark.parametrize(
    "path, status, expected",
    [
        (
            "/a/statements?account=acme&account=globex",
            409,
            given_twice("account", "the query string"),
        ),
        (
            "/a/statements?account=globex&account=acme",
            409,
            given_twice("account", "the query string"),
        ),
        (
            "/a/statements?account=acme",
            200,
            {"namespace": "acme", "args": {"account": ["acme"]}},
        ),
        (
            "/a/accounts/acme?account=globex",
            409,
            given_twice("account", "the URL path"),
        ),
        # A backend's own namespace is never a client's to name.
        ("/a/statements?account=roles", 403, DENIED),
        ("/a/accounts/roles", 403, DENIED),
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_namespace_named_twice_or_internal_is_refused(path, status, expected):
    test_client, _ = client()
    response = await test_client.get(path, headers=token("writer"))
    assert (response.status, response.json) == (status, expected)


@pytest_twisted.ensureDeferred
async def test_a_namespace_in_the_url_and_the_body_is_refused():
    test_client, _ = client()
    response = await test_client.request(
        "DELETE",
        "/a/accounts/globex",
        json={"account": "acme"},
        headers=token("writer"),
    )
    assert (response.status, response.json) == (
        409,
        given_twice("account", "the URL path"),
    )


@pytest_twisted.ensureDeferred
async def test_namespaces_the_backend_lists_as_internal_are_refused():
    test_client, backend = client()
    backend.internal_namespaces = ("globex",)
    response = await test_client.get("/a/accounts/globex", headers=token("writer"))
    assert (response.status, response.json) == (403, DENIED)
    response = await test_client.get("/a/accounts/acme", headers=token("writer"))
    assert response.status == 200


@pytest.mark.parametrize(
    "account, status, namespace",
    [(42, 200, "42"), (True, 409, None), ([1], 409, None), (None, 409, None)],
)
@pytest_twisted.ensureDeferred
async def test_a_namespace_in_the_body_is_a_string_or_an_integer(
    account, status, namespace
):
    test_client, _ = client()
    TOKENS["numbered"] = {"42": ["read", "write"]}
    try:
        response = await test_client.post(
            "/a/transfer",
            json={"account": account, "amount": 1},
            headers=token("numbered"),
        )
    finally:
        del TOKENS["numbered"]
    assert response.status == status, response.json
    if namespace is not None:
        assert response.json["namespace"] == namespace
    else:
        assert response.json == envelope(
            "ValueError",
            502,
            "Invalid value for argument 'account'. Must be a string or an integer.",
        )


@pytest.mark.parametrize(
    "who, path, status",
    [
        ("writer", "/a/accounts/acme", 200),
        ("reader", "/a/accounts/globex", 403),
        (None, "/a/accounts/acme", 401),
        # GET declares the namespace with url_arguments: HEAD reads it there.
        ("reader", "/a/statements?account=acme", 200),
        ("reader", "/a/statements?account=globex", 403),
    ],
)
@pytest_twisted.ensureDeferred
async def test_head_is_guarded_as_get_is(who, path, status):
    test_client, _ = client()
    response = await test_client.head(path, headers=token(who) if who else {})
    assert (response.status, response.body) == (status, b"")


class OwnHead(URLMatchJSONResource):
    """HEAD has a handler of its own, which reads the namespace elsewhere."""

    routes = r"own_head"

    @auth.access("account")
    @webapi.json_arguments([("account", str)])
    def render_GET(self, request):
        return {}

    @auth.access("account")
    @webapi.url_arguments(["account"])
    def render_HEAD(self, request):
        request.setHeader("x-namespace", request.auth_namespace)
        return b""


@pytest_twisted.ensureDeferred
async def test_a_head_handler_of_its_own_is_guarded_by_its_own_declarations():
    api = make_api("h_api", [("1.0", r"1\.0", [OwnHead])])
    test_client = TestClient({"h": api}, auth_backend=TokenBackend())
    response = await test_client.head(
        "/h/own_head?account=acme", headers=token("reader")
    )
    assert (response.status, response.headers["x-namespace"]) == (200, "acme")
    response = await test_client.get(
        "/h/own_head", json={"account": "acme"}, headers=token("reader")
    )
    assert response.status == 200


@pytest.mark.parametrize(
    "body, status, expected",
    [
        ({"account": "acme", "amount": 1}, 200, {"namespace": "acme", "amount": 1}),
        ({"account": "globex", "amount": 1}, 403, DENIED),
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_source_named_by_the_guard_wins_over_the_route(body, status, expected):
    # Accounts.render_POST reads the body, though its route has the group.
    test_client, _ = client()
    response = await test_client.post("/a/accounts", json=body, headers=token("writer"))
    assert (response.status, response.json) == (status, expected)


class Reads(URLMatchJSONResource):
    routes = r"reads"

    @auth.access("account", source="json")
    def render_POST(self, request):
        # The spec's handlers read the body as they find it.
        return {"body": request.content.read().decode()}


@pytest_twisted.ensureDeferred
async def test_the_guard_leaves_the_body_to_be_read_again():
    api = make_api("r_api", [("1.0", r"1\.0", [Reads])])
    test_client = TestClient({"r": api}, auth_backend=TokenBackend())
    response = await test_client.post(
        "/r/reads", json={"account": "acme"}, headers=token("reader")
    )
    assert response.json == {"body": '{"account": "acme"}'}


def test_stacked_guards_each_declare_their_namespace():
    @auth.access("account", source="json")
    @auth.access("user")
    def guarded(self, request):
        return {}

    assert webapi.declarations(guarded).namespaces == (
        webapi.NamespaceDeclaration("user", None),
        webapi.NamespaceDeclaration("account", "json"),
    )

    class Stacked(URLMatchJSONResource):
        routes = r"stacked"
        render_GET = guarded

    # The inner guard's "user" is declared nowhere: refused.
    with pytest.raises(APIDefinitionError, match=r"Stacked\.render_GET: .* 'user'"):
        make_api("s_api", [("1.0", r"1\.0", [Stacked])])


@pytest_twisted.ensureDeferred
async def test_without_a_backend_the_log_says_what_to_configure(logged):
    api = make_api("a_api", [("1.0", r"1\.0", [Admin])])
    response = await TestClient({"a": api}).get("/a/admin")
    assert response.status == 500
    [failure] = [e for e in logged if "log_failure" in e]
    assert str(failure["log_failure"].value) == (
        "access control needs an auth backend: set [auth] enable_auth, "
        "auth_module and auth_class (or APIRouter(auth_backend=...))"
    )


@pytest.mark.parametrize("body", [["account"], "account", 5, None])
@pytest_twisted.ensureDeferred
async def test_a_body_that_is_no_object_names_no_namespace(body):
    test_client, _ = client()
    response = await test_client.get(
        "/a/statements?account=acme", json=body, headers=token("writer")
    )
    assert response.status == 200, response.json
    assert response.json["namespace"] == "acme"


@pytest_twisted.ensureDeferred
async def test_a_client_gone_while_it_is_authenticated_leaves_no_error(logged):
    arrived = defer.Deferred()
    verdict = defer.Deferred()

    class Slow(TokenBackend):
        def authenticate(self, request):
            arrived.callback(request)
            return verdict

    api = make_api("a_api", [("1.0", r"1\.0", [Transfer])])
    test_client = TestClient({"a": api}, auth_backend=Slow())
    pending = test_client.post(
        "/a/transfer", json={"account": "acme", "amount": 1}, headers=token("writer")
    )
    request = await arrived
    request.channel.transport.loseConnection()
    request.channel.connectionLost(Exception("gone"))
    verdict.callback(TOKENS["writer"])
    with pytest.raises(Exception, match="gone"):
        await pending
    assert [e for e in logged if "log_failure" in e] == []


class Nowhere(URLMatchJSONResource):
    routes = r"nowhere"

    @auth.access("account")
    def render_GET(self, request):
        return {}


class Everywhere(URLMatchJSONResource):
    routes = r"everywhere/(?P<account>[a-z]+)"

    @auth.access("account")
    @webapi.url_arguments(["account"])
    def render_GET(self, request):
        return {}


class NotAGroup(URLMatchJSONResource):
    routes = r"not_a_group/(?P<other>[a-z]+)"

    @auth.access("account", source="url")
    def render_GET(self, request):
        return {}


@pytest.mark.parametrize(
    "call, message",
    [
        (
            Nowhere,
            "test_access.Nowhere.render_GET: auth.access cannot tell where to read "
            "'account': the call declares it nowhere; name the one place with "
            "source='url', 'query', 'json' (or declare it in the routes, "
            "json_arguments or url_arguments)",
        ),
        (
            Everywhere,
            "test_access.Everywhere.render_GET: auth.access cannot tell where to "
            "read 'account': the call declares it in the URL path and the query "
            "string; name the one place with source='url', 'query', 'json' (or "
            "declare it in the routes, json_arguments or url_arguments)",
        ),
        (
            NotAGroup,
            "test_access.NotAGroup.render_GET: auth.access reads 'account' from the "
            "URL path, but no route of the call has a group of that name",
        ),
    ],
)
def test_a_guard_that_cannot_tell_where_its_namespace_is_stops_start_up(call, message):
    with pytest.raises(APIDefinitionError) as info:
        make_api("b_api", [("1.0", r"1\.0", [call])])
    assert str(info.value) == message


def test_a_source_must_be_one_of_three():
    with pytest.raises(TypeError, match="is one of url, query, json, not 'body'"):
        auth.access("account", source="body")


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


def test_guards_declare_the_errors_they_answer_with():
    def handler(self, request):
        return None

    def errors(guard):
        return [
            error.exception_class
            for described in webapi.declarations(guard(handler)).described
            for error in described.errors
        ]

    assert errors(auth.login_required()) == [
        "InvalidAuthenticationError",
        "ServiceUnavailableError",
    ]
    assert errors(auth.login_required("ops")) == [
        "InvalidAuthenticationError",
        "ServiceUnavailableError",
        "AccessDeniedError",
    ]
    # A namespace given twice is refused (see
    # test_a_namespace_named_twice_or_internal_is_refused).
    assert errors(auth.access("account", False, "read")) == [
        "InvalidAuthenticationError",
        "ServiceUnavailableError",
        "AccessDeniedError",
        "ValueError",
    ]
