"""
Server-side sessions (shiji.sessions): loaded by session_filter before a
call and saved after it, their ids in a signed cookie, their records in the
shared store; sliding expiry, regeneration, destruction, bad cookies, a
failing store, values JSON cannot hold, and concurrent requests.
"""

import gc
import json
import time
from types import ModuleType

import pytest
import pytest_twisted
from apitools import envelope
from twisted.internet import defer, task
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher

from shiji import sessions, webapi
from shiji._storage_memory import MemoryStore
from shiji.auth import CookieSigner
from shiji.storage import StorageUnavailableError
from shiji.testing import TestClient
from shiji.urldispatch import CallRouter, URLMatchJSONResource, VersionRouter

SECRET = "session tests: a secret of thirty-two characters or more"
MAX_AGE = 3600.0
PREFIX = "shiji:session:"


class RefusedError(webapi.APIError):
    error_code = 700
    exception_text = "Refused."


class Data(URLMatchJSONResource):
    """The session's data; ``POST data?name=value`` sets values."""

    routes = r"data"
    filters = [sessions.session_filter]

    def render_GET(self, request):
        session = request.session
        return {"data": dict(session), "is_new": session.is_new, "id": session.id}

    def render_POST(self, request):
        for name, values in request.args.items():
            request.session[name] = values[0]
        return {"data": dict(request.session), "id": request.session.id}


class Regenerate(URLMatchJSONResource):
    routes = r"regenerate"
    filters = [sessions.session_filter]

    def render_POST(self, request):
        old = request.session.id
        request.session.regenerate()
        return {"old": old, "id": request.session.id}


class Destroy(URLMatchJSONResource):
    routes = r"destroy"
    filters = [sessions.session_filter]

    def render_POST(self, request):
        request.session.destroy()
        return {"result": "destroyed"}


class Refuse(URLMatchJSONResource):
    """Sets a value, then fails: raised, or returned (``?returned=1``)."""

    routes = r"refuse"
    filters = [sessions.session_filter]

    def render_POST(self, request):
        request.session["refused"] = "yes"
        if "returned" in request.args:
            return str(RefusedError(request))
        raise RefusedError(request)


class Unencodable(URLMatchJSONResource):
    """Puts a set in the session: as a value, or inside one."""

    routes = r"unencodable/(?P<how>set|inside)"
    filters = [sessions.session_filter]

    def render_POST(self, request):
        if self.url_matches["how"] == "set":
            request.session["tags"] = {"a", "b"}
        else:
            request.session["tags"] = []
            request.session["tags"].append({"a"})
            request.session.mark_changed()
        return {"result": "unreachable"}


class Slow(URLMatchJSONResource):
    """Reads a counter, waits a second of the clock, writes it plus one."""

    routes = r"slow"
    filters = [sessions.session_filter]

    @defer.inlineCallbacks
    def render_POST(self, request):
        count = request.session.get("count", 0)
        yield task.deferLater(request.api_router.clock, 1, lambda: None)
        request.session["count"] = count + 1
        request.session["by"] = request.args["by"][0]
        return {"count": count + 1}


class NoFilter(URLMatchJSONResource):
    routes = r"nofilter"

    def render_GET(self, request):
        return {"data": dict(request.session)}


def session_api():
    calls = ModuleType("s_api.v1_0.calls")
    for call in (Data, Regenerate, Destroy, Refuse, Unencodable, Slow, NoFilter):
        setattr(calls, call.__name__, call)
    version = ModuleType("s_api.v1_0")
    version.call_router = CallRouter(calls)
    api = ModuleType("s_api")
    api.api_name = "s_api"
    api.api_versions = {"1.0": (r"1\.0", version)}
    api.version_router = VersionRouter(api.api_versions)
    return api


class FlakyStore(MemoryStore):
    """A store in memory whose operations named in ``failing`` fail as an
    unreachable store's do."""

    def __init__(self, clock):
        super().__init__(clock)
        self.failing = set()
        self.calls = []

    def _maybe(self, name, operation, *args, **kwargs):
        self.calls.append(name)
        if name in self.failing:
            return defer.fail(StorageUnavailableError())
        return operation(*args, **kwargs)

    def get(self, key):
        return self._maybe("get", super().get, key)

    def set(self, key, value, expires_in=None):
        return self._maybe("set", super().set, key, value, expires_in)

    def delete(self, key):
        return self._maybe("delete", super().delete, key)

    def replace(self, key, value, expires_in=None):
        return self._maybe("replace", super().replace, key, value, expires_in)


def make_client(**options):
    options.setdefault("session_max_age", MAX_AGE)
    return TestClient({"s": session_api()}, cookie_secrets=[SECRET], **options)


def flaky_client(**options):
    """A client whose store is a FlakyStore on the client's clock."""
    clock = Clock()
    return make_client(store=FlakyStore(clock), clock=clock, **options)


@pytest.fixture
def client():
    return make_client()


@pytest.fixture
def logged():
    events = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


def cookie_of(response, name="session"):
    """The value of the one Set-Cookie of ``response``, which names ``name``."""
    [header] = response.header_values("set-cookie")
    assert header.startswith(f"{name}=")
    return header.split(";")[0].split("=", 1)[1]


def sent(cookie, name="session"):
    return {"Cookie": f"{name}={cookie}"}


def record(client, session_id):
    """The session's record in the store, decoded, or None."""
    raw = client.router.store.get(PREFIX + session_id).result
    return None if raw is None else json.loads(raw)


@pytest_twisted.ensureDeferred
async def test_a_new_session_sets_no_cookie_until_something_is_stored(client):
    response = await client.get("/s/data")
    assert response.status == 200
    assert response.json["data"] == {} and response.json["is_new"] is True
    assert response.header_values("set-cookie") == []
    assert record(client, response.json["id"]) is None


@pytest_twisted.ensureDeferred
async def test_a_stored_value_comes_back_with_the_signed_cookie(client):
    client.clock.advance(1000)
    response = await client.post("/s/data?colour=blue")
    assert response.status == 200
    session_id = response.json["id"]
    [header] = response.header_values("set-cookie")
    cookie = cookie_of(response)
    assert header == (
        f"session={cookie}; Expires={header.split('Expires=')[1].split(';')[0]}; "
        "Path=/; Max-Age=3600; HttpOnly; SameSite=lax"
    )
    # Signed: the cookie is the id, its expiry and an HMAC of them.
    assert CookieSigner([SECRET]).verify("session", cookie, now=time.time()) == (
        session_id
    )
    assert record(client, session_id) == {"data": {"colour": "blue"}, "saved": 1000}
    response = await client.get("/s/data", headers=sent(cookie))
    assert response.json == {
        "data": {"colour": "blue"},
        "is_new": False,
        "id": session_id,
    }
    assert response.header_values("set-cookie") == []


@pytest_twisted.ensureDeferred
async def test_a_request_that_changes_nothing_writes_nothing():
    client = flaky_client()
    store = client.router.store
    cookie = cookie_of(await client.post("/s/data?a=1"))
    assert store.calls == ["set"]
    client.clock.advance(MAX_AGE * 0.1)  # a tenth exactly: not yet
    for _ in range(3):
        response = await client.get("/s/data", headers=sent(cookie))
        assert response.json["data"] == {"a": "1"}
        assert response.header_values("set-cookie") == []
    assert store.calls == ["set", "get", "get", "get"]


@pytest_twisted.ensureDeferred
async def test_a_used_session_slides_forward_and_an_unused_one_expires(client):
    first = await client.post("/s/data?a=1")
    cookie, session_id = cookie_of(first), first.json["id"]
    client.clock.advance(MAX_AGE * 0.1 + 1)
    response = await client.get("/s/data", headers=sent(cookie))
    # Saved again, under the same id, and the cookie sent again.
    assert record(client, session_id) == {"data": {"a": "1"}, "saved": 361}
    again = cookie_of(response)
    assert CookieSigner([SECRET]).verify("session", again, now=time.time()) == (
        session_id
    )
    # Its life counts from that use: alive just before max_age after it...
    client.clock.advance(MAX_AGE - 1)
    response = await client.get("/s/data", headers=sent(again))
    assert response.json["id"] == session_id
    assert record(client, session_id)["saved"] == 361 + MAX_AGE - 1
    # ...and gone once max_age passes unused.
    client.clock.advance(MAX_AGE)
    response = await client.get("/s/data", headers=sent(again))
    assert response.json["data"] == {} and response.json["is_new"] is True
    assert response.json["id"] != session_id
    assert response.header_values("set-cookie") == []
    assert record(client, session_id) is None


@pytest_twisted.ensureDeferred
async def test_regenerate_gives_a_new_id_and_the_old_one_stops_working(client):
    first = await client.post("/s/data?a=1")
    old_cookie, old_id = cookie_of(first), first.json["id"]
    response = await client.post("/s/regenerate", headers=sent(old_cookie))
    assert response.json["old"] == old_id
    new_id = response.json["id"]
    assert new_id != old_id
    new_cookie = cookie_of(response)
    assert CookieSigner([SECRET]).verify("session", new_cookie, now=time.time()) == (
        new_id
    )
    assert record(client, old_id) is None
    assert record(client, new_id)["data"] == {"a": "1"}
    response = await client.get("/s/data", headers=sent(old_cookie))
    assert (response.json["data"], response.json["is_new"]) == ({}, True)
    response = await client.get("/s/data", headers=sent(new_cookie))
    assert (response.json["data"], response.json["id"]) == ({"a": "1"}, new_id)


@pytest_twisted.ensureDeferred
async def test_destroy_deletes_the_record_and_clears_the_cookie(client):
    first = await client.post("/s/data?a=1")
    cookie, session_id = cookie_of(first), first.json["id"]
    response = await client.post("/s/destroy", headers=sent(cookie))
    assert response.json == {"result": "destroyed"}
    [header] = response.header_values("set-cookie")
    assert header.startswith("session=")
    assert "; Max-Age=0;" in header
    assert record(client, session_id) is None
    response = await client.get("/s/data", headers=sent(cookie))
    assert (response.json["data"], response.json["is_new"]) == ({}, True)


@pytest_twisted.ensureDeferred
async def test_bad_cookies_give_a_new_empty_session(client):
    cookie = cookie_of(await client.post("/s/data?a=1"))
    session_id = CookieSigner([SECRET]).verify("session", cookie, now=time.time())
    tampered = cookie[:-2] + ("A" if cookie[-2] != "A" else "B") + cookie[-1]
    expired = CookieSigner([SECRET]).sign(
        "session", session_id, expires=int(time.time()) - 1
    )
    foreign = CookieSigner(["another secret, thirty-two characters long"]).sign(
        "session", session_id, expires=int(time.time()) + 99
    )
    missing = CookieSigner([SECRET]).sign(
        "session", "no-such-session", expires=int(time.time()) + 99
    )
    for bad in (tampered, expired, foreign, session_id, "", "x.y.z", missing):
        response = await client.get("/s/data", headers=sent(bad))
        assert response.status == 200, bad
        assert (response.json["data"], response.json["is_new"]) == ({}, True)
        assert response.json["id"] not in (session_id, "no-such-session")
        assert response.header_values("set-cookie") == []
    # Storing then starts a session of its own, under a new id.
    response = await client.post("/s/data?b=2", headers=sent(missing))
    assert response.json["data"] == {"b": "2"}
    assert response.json["id"] != "no-such-session"
    assert record(client, "no-such-session") is None


@pytest.mark.parametrize("query", ["", "?returned=1"])
@pytest_twisted.ensureDeferred
async def test_a_call_that_fails_saves_nothing(query):
    client = flaky_client()
    store = client.router.store
    cookie = cookie_of(await client.post("/s/data?a=1"))
    response = await client.post("/s/refuse" + query, headers=sent(cookie))
    assert (response.status, response.json) == (
        409,
        envelope("RefusedError", 700, "Refused."),
    )
    assert response.header_values("set-cookie") == []
    response = await client.get("/s/data", headers=sent(cookie))
    assert response.json["data"] == {"a": "1"}
    # A new session is not stored either.
    response = await client.post("/s/refuse" + query)
    assert response.status == 409
    assert response.header_values("set-cookie") == []
    assert store.calls == ["set", "get", "get"]


def the_500(response, logged):
    """The request id of an UnexpectedServerError answer, and the error
    message of the failure logged with it."""
    assert response.status == 500
    request_id = response.headers["x-request-id"]
    assert response.json == envelope(
        "UnexpectedServerError",
        505,
        "An unexpected error has occurred processing the request. "
        f"Error: 'request id {request_id}'",
    )
    [event] = [e for e in logged if e.get("request_id") == request_id]
    return formatEvent(event), event["log_failure"].getErrorMessage()


@pytest_twisted.ensureDeferred
async def test_request_session_without_the_filter_is_a_500_naming_it(client, logged):
    response = await client.get("/s/nofilter")
    line, message = the_500(response, logged)
    assert line == (
        "Unexpected error answering GET /s/nofilter (request id "
        f"{response.headers['x-request-id']})"
    )
    assert message == (
        "request.session needs sessions.session_filter among the filters of "
        "NoFilter (see shiji.sessions)"
    )


@pytest_twisted.ensureDeferred
async def test_a_value_json_cannot_hold_is_a_500_and_nothing_is_saved(client, logged):
    cookie = cookie_of(await client.post("/s/data?a=1"))
    response = await client.post("/s/unencodable/set", headers=sent(cookie))
    _, message = the_500(response, logged)
    assert message.startswith(
        "request.session['tags']: a session holds JSON values only (str, int, "
        "float, bool, None, lists and dicts of them): "
    )
    assert response.header_values("set-cookie") == []
    response = await client.post("/s/unencodable/inside", headers=sent(cookie))
    _, message = the_500(response, logged)
    assert message.startswith(
        "the session cannot be saved, nothing was: it holds a value JSON "
        "cannot encode ("
    )
    assert response.header_values("set-cookie") == []
    response = await client.get("/s/data", headers=sent(cookie))
    assert response.json["data"] == {"a": "1"}
    gc.collect()


@pytest.mark.parametrize("failing", ["get", "set", "replace", "delete"])
@pytest_twisted.ensureDeferred
async def test_an_unreachable_store_is_a_503_without_a_cookie(failing):
    client = flaky_client()
    store = client.router.store
    first = await client.post("/s/data?a=1")
    cookie = cookie_of(first)
    store.failing.add(failing)
    # get fails at load; replace at the save of a stored session, set at
    # that of a new id; delete when the old id is dropped.
    path = "/s/data?b=2" if failing in ("get", "replace") else "/s/regenerate"
    response = await client.post(path, headers=sent(cookie))
    assert response.status == 503
    assert response.headers["retry-after"] == "1"
    assert response.json == envelope(
        "StorageUnavailableError",
        218,
        "The shared store cannot be reached; try again shortly.",
    )
    assert response.header_values("set-cookie") == []
    store.failing.clear()
    response = await client.get("/s/data", headers=sent(cookie))
    # The old session is as it was (a failed regenerate wrote the new
    # record, which no cookie names).
    assert (response.json["data"], response.json["id"]) == (
        {"a": "1"},
        first.json["id"],
    )


@pytest_twisted.ensureDeferred
async def test_a_session_call_without_a_cookie_needs_no_store_until_it_saves():
    client = flaky_client()
    store = client.router.store
    store.failing.update({"get", "set", "delete"})
    response = await client.get("/s/data")
    assert response.status == 200 and response.json["is_new"] is True
    response = await client.post("/s/data?a=1")
    assert response.status == 503
    assert response.header_values("set-cookie") == []


@pytest_twisted.ensureDeferred
async def test_over_https_the_cookie_is_a_host_cookie():
    client = make_client(cookie_secure=True, session_cookie="sid")
    response = await client.post("/s/data?a=1")
    [header] = response.header_values("set-cookie")
    cookie = cookie_of(response, "__Host-sid")
    assert header.endswith("; Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=lax")
    response = await client.get("/s/data", headers=sent(cookie, "__Host-sid"))
    assert response.json["data"] == {"a": "1"}
    # Without the prefix (a subdomain could have set it), it is not read.
    response = await client.get("/s/data", headers=sent(cookie, "sid"))
    assert response.json["is_new"] is True


@pytest_twisted.ensureDeferred
async def test_the_cookie_name_and_max_age_come_from_the_settings():
    client = make_client(session_cookie="sid", session_max_age=11.0)
    response = await client.post("/s/data?a=1")
    [header] = response.header_values("set-cookie")
    assert header.startswith("sid=")
    assert "; Max-Age=11; " in header


@pytest_twisted.ensureDeferred
async def test_concurrent_requests_on_one_session_the_last_write_wins(client):
    cookie = cookie_of(await client.post("/s/data?a=1"))
    # Both read count 0 before either writes; the second to finish wins.
    first = client.post("/s/slow?by=first", headers=sent(cookie))
    client.clock.advance(0.5)
    second = client.post("/s/slow?by=second", headers=sent(cookie))
    client.clock.advance(0.5)
    assert (await first).json == {"count": 1}
    client.clock.advance(0.5)
    assert (await second).json == {"count": 1}
    response = await client.get("/s/data", headers=sent(cookie))
    assert response.json["data"] == {"a": "1", "count": 1, "by": "second"}


@pytest_twisted.ensureDeferred
async def test_expiry_of_tells_when_a_session_expires(client):
    client.clock.advance(50)
    session_id = (await client.post("/s/data?a=1")).json["id"]
    store = client.router.store
    assert (await sessions.expiry_of(store, session_id, MAX_AGE)) == 50 + MAX_AGE
    assert (await sessions.expiry_of(store, "nothing", MAX_AGE)) is None
    await store.set(PREFIX + "garbled", "not json")
    assert (await sessions.expiry_of(store, "garbled", MAX_AGE)) is None


def test_a_session_is_a_mapping_of_json_values():
    session = sessions.Session()
    assert session.is_new and not session.changed and len(session) == 0
    session["a"] = [1, {"b": None}]
    assert session.changed and dict(session) == {"a": [1, {"b": None}]}
    with pytest.raises(TypeError, match="session keys are strings, not int"):
        session[1] = "x"
    with pytest.raises(TypeError, match=r"request.session\['n'\]"):
        session["n"] = float("nan")
    assert "n" not in session
    del session["a"]
    assert dict(session) == {}
    assert repr(session) == "<Session (new) {}>"


@pytest_twisted.ensureDeferred
async def test_a_request_under_way_at_logout_does_not_bring_the_session_back(client):
    cookie = cookie_of(await client.post("/s/data?a=1"))
    session_id = (await client.get("/s/data", headers=sent(cookie))).json["id"]
    slow = client.post("/s/slow?by=late", headers=sent(cookie))
    client.clock.advance(0.5)
    response = await client.post("/s/destroy", headers=sent(cookie))
    assert response.status == 200
    assert record(client, session_id) is None
    client.clock.advance(0.5)
    response = await slow
    assert (response.status, response.json) == (200, {"count": 1})
    # Its save found the session ended: nothing written, no cookie sent.
    assert response.header_values("set-cookie") == []
    assert record(client, session_id) is None
    response = await client.get("/s/data", headers=sent(cookie))
    assert response.json["data"] == {}


@pytest_twisted.ensureDeferred
async def test_a_request_under_way_at_login_does_not_bring_the_old_id_back(client):
    cookie = cookie_of(await client.post("/s/data?a=1"))
    old_id = (await client.get("/s/data", headers=sent(cookie))).json["id"]
    slow = client.post("/s/slow?by=late", headers=sent(cookie))
    client.clock.advance(0.5)
    new_cookie = cookie_of(await client.post("/s/regenerate", headers=sent(cookie)))
    client.clock.advance(0.5)
    response = await slow
    assert response.header_values("set-cookie") == []
    assert record(client, old_id) is None
    response = await client.get("/s/data", headers=sent(new_cookie))
    assert response.json["data"] == {"a": "1"}


@pytest_twisted.ensureDeferred
async def test_a_lowered_max_age_ends_the_sessions_saved_before_it(client):
    cookie = cookie_of(await client.post("/s/data?a=1"))
    shorter = make_client(
        store=client.router.store, clock=client.clock, session_max_age=60.0
    )
    client.clock.advance(61)
    response = await shorter.get("/s/data", headers=sent(cookie))
    assert response.json["data"] == {}
    assert response.header_values("set-cookie") == []
    # Deleted: raising max_age again does not bring it back.
    response = await client.get("/s/data", headers=sent(cookie))
    assert response.json["data"] == {}
