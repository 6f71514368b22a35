"""
auth_http_basic: HTTP Basic credentials checked by a function.
"""

import base64

import pytest
import pytest_twisted
from apitools import envelope, make_api
from twisted.internet import reactor, task

from shiji import webapi
from shiji.testing import TestClient
from shiji.urldispatch import URLMatchJSONResource

USERS = {"alice": "wonder land", "bob": "p:a:s:s", "zoë": "ünïcode"}


def check_sync(username, password):
    return USERS.get(username) == password


def check_deferred(username, password):
    return task.deferLater(reactor, 0, check_sync, username, password)


async def check_async(username, password):
    await task.deferLater(reactor, 0, lambda: None)
    return check_sync(username, password)


def check_broken(username, password):
    raise RuntimeError("the user store is down")


class Protected(URLMatchJSONResource):
    routes = r"protected"

    @webapi.auth_http_basic(check_sync, "Sync realm")
    def render_GET(self, request):
        return {"user": request.auth_user}

    @webapi.auth_http_basic(check_deferred, 'Deferred "quoted" realm')
    @webapi.json_arguments([("n", int)])
    def render_POST(self, request):
        return {"user": request.auth_user, "n": request.jsonArgs["n"]}

    @webapi.auth_http_basic(check_async, "Async realm")
    async def render_PUT(self, request):
        return {"user": request.auth_user}

    @webapi.auth_http_basic(check_broken, "Broken realm")
    def render_DELETE(self, request):
        return {"user": request.auth_user}


def client():
    return TestClient({"p": make_api("p", [("1.0", r"1\.0", [Protected])])})


def basic(username, password):
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


METHODS = [
    ("GET", 'Basic realm="Sync realm", charset="UTF-8"', {}),
    (
        "POST",
        'Basic realm="Deferred \\"quoted\\" realm", charset="UTF-8"',
        {"json": {"n": 1}},
    ),
    ("PUT", 'Basic realm="Async realm", charset="UTF-8"', {}),
]

INVALID = envelope(
    "InvalidAuthenticationError",
    506,
    "Authentication information is invalidly formed and/or missing required elements.",
)


@pytest.mark.parametrize("method, realm, options", METHODS)
@pytest.mark.parametrize(
    "user, password", [("alice", "wonder land"), ("bob", "p:a:s:s"), ("zoë", "ünïcode")]
)
@pytest_twisted.ensureDeferred
async def test_good_credentials_pass_and_set_auth_user(
    method, realm, options, user, password
):
    response = await client().request(
        method,
        "/p/protected",
        headers={"Authorization": basic(user, password)},
        **options,
    )
    assert response.status == 200
    assert response.json["user"] == user


@pytest.mark.parametrize("method, realm, options", METHODS)
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Basic",
        "Basic ",
        "Bearer abc",
        # Valid credentials under another scheme are not Basic credentials.
        basic("alice", "wonder land").replace("Basic", "Bearer"),
        basic("alice", "wonder land").replace("Basic", "Basically"),
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"no colon").decode(),
        "Basic " + base64.b64encode(b"alice:\xff\xfe").decode(),
        basic("alice", "wrong"),
        basic("mallory", "wonder land"),
        basic("alice", "wonder land") + "=",
    ],
)
@pytest_twisted.ensureDeferred
async def test_missing_malformed_or_refused_credentials_are_401(
    method, realm, options, authorization
):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client().request(
        method, "/p/protected", headers=headers, **options
    )
    assert response.status == 401
    # The decorator's challenge, once: the site adds none of its own.
    assert response.header_values("www-authenticate") == [realm]
    assert response.json == INVALID


@pytest_twisted.ensureDeferred
async def test_spaces_may_separate_the_scheme_and_the_credentials():
    # RFC 9110 section 11.4: one or more spaces.
    credentials = basic("alice", "wonder land").split(" ")[1]
    response = await client().get(
        "/p/protected", headers={"Authorization": f"Basic   {credentials}"}
    )
    assert response.status == 200


class Realms(URLMatchJSONResource):
    routes = r"realms"

    @webapi.auth_http_basic(check_sync, 'C:\\Share "main"')
    def render_GET(self, request):
        return {}


@pytest_twisted.ensureDeferred
async def test_a_realm_is_quoted():
    api = make_api("r", [("1.0", r"1\.0", [Realms])])
    response = await TestClient({"r": api}).get("/r/realms")
    assert response.headers["www-authenticate"] == (
        'Basic realm="C:\\\\Share \\"main\\"", charset="UTF-8"'
    )


@pytest_twisted.ensureDeferred
async def test_scheme_is_case_insensitive():
    response = await client().get(
        "/p/protected",
        headers={
            "Authorization": basic("alice", "wonder land").replace("Basic", "bAsIc")
        },
    )
    assert response.status == 200


@pytest_twisted.ensureDeferred
async def test_arguments_are_checked_only_after_authentication():
    response = await client().post("/p/protected", json={"n": "x"})
    assert response.status == 401
    response = await client().post(
        "/p/protected",
        json={"n": "x"},
        headers={"Authorization": basic("alice", "wonder land")},
    )
    assert response.status == 409


@pytest_twisted.ensureDeferred
async def test_a_failing_auth_function_is_a_500_not_a_pass():
    response = await client().delete(
        "/p/protected", headers={"Authorization": basic("alice", "wonder land")}
    )
    assert response.status == 500
    assert response.error["exception_class"] == "UnexpectedServerError"


def test_declaration_is_recorded():
    assert webapi.declarations(Protected.render_GET).http_basic_realm == "Sync realm"
    assert webapi.declarations(Protected.render_POST).json_arguments[0].name == "n"
