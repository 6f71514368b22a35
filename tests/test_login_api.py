"""
examples/mylogin_api as a login service, in memory.
"""

import json
import time

import mylogin_api
import pytest
import pytest_twisted
from apitools import envelope
from mylogin_api import config, passwords
from mylogin_api.backend import SessionBackend
from twisted.internet import defer

from shiji.auth import CookieSigner
from shiji.testing import TestClient

pytestmark = pytest.mark.skipif(
    passwords.scrypt is None, reason="no scrypt on this Python"
)

SECRET = "login tests: a secret of thirty-two characters or more"


def _psycopg2_missing():
    try:
        import psycopg2  # noqa: F401 (what the example's db_driver names)
    except ImportError:
        return True
    return False


def _empty_postgres(dsn):
    import psycopg2

    connection = psycopg2.connect(dsn)
    with connection, connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS sessions, users")
    connection.close()


@pytest.fixture(
    params=[
        "sqlite3",
        pytest.param(
            "psycopg2",
            marks=pytest.mark.skipif(
                _psycopg2_missing(),
                reason="psycopg2 is not installed for this interpreter",
            ),
        ),
    ]
)
def settings(request, tmp_path):
    if request.param == "sqlite3":
        options = {"db_path": str(tmp_path / "users.sqlite")}
    else:
        dsn = request.getfixturevalue("postgres_server").dsn
        _empty_postgres(dsn)
        options = {"db_driver": "psycopg2", "db_dsn": dsn}
    validated = config.validate_config(options)
    yield validated
    validated["users"].close()


def login_service(settings, **options):
    """A client of the example, configured with ``settings``."""
    return TestClient(
        {"myloginapi": mylogin_api},
        config={"mylogin_api": settings},
        cookie_secrets=[SECRET],
        auth_backend=SessionBackend(),
        **options,
    )


@pytest.fixture
def client(settings):
    return login_service(settings)


def session_cookie(response):
    [header] = response.header_values("set-cookie")
    return header.split(";")[0].split("=", 1)[1]


async def signup_and_login(client, email="ada@example.com", password="correct horse"):
    await client.expect(
        "POST", "/myloginapi/users", {"email": email, "password": password}, 201
    )
    response = await client.post(
        "/myloginapi/login", json={"email": email, "password": password}
    )
    assert response.status == 200
    return session_cookie(response)


@pytest_twisted.ensureDeferred
async def test_signup_login_me_logout(client, settings):
    response = await client.post(
        "/myloginapi/users",
        json={"email": " Ada@Example.COM ", "password": "correct horse"},
    )
    assert response.status == 201
    assert response.json == {"result": {"id": 1, "email": "ada@example.com"}}

    response = await client.post(
        "/myloginapi/login",
        json={"email": "ada@example.com", "password": "correct horse"},
    )
    assert response.status == 200
    assert response.json == {"result": {"id": 1, "email": "ada@example.com"}}
    [header] = response.header_values("set-cookie")
    assert header.startswith("session=")
    assert header.endswith("; Path=/; Max-Age=1209600; HttpOnly; SameSite=lax")
    cookie = {"Cookie": f"session={session_cookie(response)}"}

    await client.expect(
        "GET",
        "/myloginapi/me",
        None,
        200,
        {"result": {"id": 1, "email": "ada@example.com"}},
        headers=cookie,
    )
    response = await client.expect(
        "POST",
        "/myloginapi/logout",
        None,
        200,
        {"result": "logged out"},
        headers=cookie,
    )
    [header] = response.header_values("set-cookie")
    assert header.startswith("session=") and "; Max-Age=0;" in header
    response = await client.get("/myloginapi/me", headers=cookie)
    assert response.status == 401
    assert response.error["exception_class"] == "InvalidAuthenticationError"
    assert response.headers["www-authenticate"] == (
        'Cookie realm="mylogin_api", cookie-name="session"'
    )


MAX_AGE = 14 * 86400


@pytest_twisted.ensureDeferred
async def test_sessions_are_listed_a_page_at_a_time(client, settings):
    client.clock.advance(1000)
    tokens = [await signup_and_login(client)]
    for _ in range(3):
        client.clock.advance(10)
        response = await client.post(
            "/myloginapi/login",
            json={"email": "ada@example.com", "password": "correct horse"},
        )
        tokens.append(session_cookie(response))
    # One logs out: its session is no more.
    await client.expect(
        "POST",
        "/myloginapi/logout",
        None,
        200,
        {"result": "logged out"},
        headers={"Cookie": f"session={tokens[2]}"},
    )
    expires = [1000.0 + MAX_AGE, 1010.0 + MAX_AGE, 1030.0 + MAX_AGE]
    cookie = {"Cookie": f"session={tokens[0]}"}
    for query, listed, page, page_len in [
        ("", expires, 0, 20),
        ("?page_len=2", expires[:2], 0, 2),
        ("?page_len=2&page=1", expires[2:], 1, 2),
        ("?page_len=0", [], 0, 0),
        ("?page_len=2&page=2", [], 2, 2),
        ("?page=999999999999999999&page_len=100", [], 999999999999999999, 100),
    ]:
        await client.expect(
            "GET",
            "/myloginapi/me/sessions" + query,
            None,
            200,
            {"result": {"expires": listed, "page": page, "page_len": page_len}},
            headers=cookie,
        )
    response = await client.get("/myloginapi/me/sessions?page_len=101", headers=cookie)
    assert response.status == 409
    assert response.error["exception_text"] == (
        "Invalid value for argument 'page_len'. Argument must be 100 or less."
    )
    response = await client.get("/myloginapi/me/sessions")
    assert response.status == 401
    # Past max_age, the sessions not used since are gone; the one in use
    # slides forward, and so does the list of them.
    client.clock.advance(MAX_AGE - 5)
    newest = {"Cookie": f"session={tokens[3]}"}
    response = await client.get("/myloginapi/me/sessions", headers=newest)
    assert response.json["result"]["expires"] == [1030.0 + MAX_AGE]
    client.clock.advance(MAX_AGE - 1)
    response = await client.get("/myloginapi/me/sessions", headers=newest)
    assert response.json["result"]["expires"] == [1025.0 + 2 * MAX_AGE]


@pytest_twisted.ensureDeferred
async def test_a_login_gives_a_new_session_id_even_to_a_client_that_had_one(client):
    first = await signup_and_login(client)
    first_id = CookieSigner([SECRET]).verify("session", first, now=time.time())
    # A second login sending the first session's cookie (one planted in the
    # browser, say) gets a session of its own: the first id is dropped.
    response = await login(client, headers={"Cookie": f"session={first}"})
    assert response.status == 200
    second = session_cookie(response)
    second_id = CookieSigner([SECRET]).verify("session", second, now=time.time())
    assert second_id != first_id
    response = await client.get(
        "/myloginapi/me", headers={"Cookie": f"session={first}"}
    )
    assert response.status == 401
    response = await client.get(
        "/myloginapi/me", headers={"Cookie": f"session={second}"}
    )
    assert response.json == {"result": {"id": 1, "email": "ada@example.com"}}
    # A failed login leaves the session it came with as it was.
    response = await login(
        client, password="wrong horse", headers={"Cookie": f"session={second}"}
    )
    assert (response.status, response.header_values("set-cookie")) == (401, [])
    response = await client.get(
        "/myloginapi/me", headers={"Cookie": f"session={second}"}
    )
    assert response.status == 200


@pytest_twisted.ensureDeferred
async def test_with_the_store_unreachable_sessions_and_limits_answer_503(settings):
    client = login_service(settings)
    cookie = {"Cookie": f"session={await signup_and_login(client)}"}
    # Closed, the store fails every operation as an unreachable one does.
    await client.router.store.close()
    unavailable = envelope(
        "StorageUnavailableError",
        218,
        "The shared store cannot be reached; try again shortly.",
    )
    credentials = {"email": "ada@example.com", "password": "correct horse"}
    for method, path, body, headers in [
        ("POST", "/myloginapi/login", credentials, {}),
        ("POST", "/myloginapi/login", credentials, cookie),
        ("GET", "/myloginapi/me", None, cookie),
        ("GET", "/myloginapi/me/sessions", None, cookie),
        ("POST", "/myloginapi/logout", None, cookie),
        ("POST", "/myloginapi/users", dict(credentials, email="b@example.com"), {}),
    ]:
        response = await client.request(method, path, json=body, headers=headers)
        assert (response.status, response.json) == (503, unavailable), path
        assert response.headers["retry-after"] == "1"
        assert response.header_values("set-cookie") == []
    # What keeps nothing in the store answers as ever.
    response = await client.get("/myloginapi/ping/5")
    assert response.status == 200
    response = await client.get("/myloginapi/sample_error/normal")
    assert response.error["exception_class"] == "SampleNormalError"


@pytest_twisted.ensureDeferred
async def test_passwords_are_stored_hashed_with_a_salt(client, settings):
    await signup_and_login(client, "a@example.com", "same password")
    await signup_and_login(client, "b@example.com", "same password")
    rows = await settings["users"].pool.runQuery(
        "SELECT password_hash FROM users ORDER BY id"
    )
    first, second = rows[0][0], rows[1][0]
    assert first.startswith("scrypt$16384$8$1$")
    assert first != second
    assert "same password" not in first


def field_error(field, sentence, reason, expected):
    """The ValueError envelope of one failing body field."""
    error = envelope(
        "ValueError", 502, f"Invalid value for argument '{field}'. {sentence}"
    )
    error["error"]["fields"] = [
        {
            "field": field,
            "in": "body",
            "reason": reason,
            "expected": expected,
            "pointer": f"#/{field}",
        }
    ]
    return error


@pytest.mark.parametrize(
    "body, error",
    [
        (
            {"email": "not-an-email", "password": "long enough"},
            field_error(
                "email",
                "Must be an email address.",
                "invalid",
                "an email address",
            ),
        ),
        (
            {"email": "a@b", "password": "long enough"},
            field_error(
                "email",
                "Must be an email address.",
                "invalid",
                "an email address",
            ),
        ),
        (
            {"email": "a@example.com", "password": "short"},
            field_error(
                "password",
                "Must be at least 8 characters long.",
                "too short",
                "at least 8 characters",
            ),
        ),
        (
            {"email": "a@example.com"},
            field_error(
                "password",
                "Argument is missing.",
                "missing",
                "a str",
            ),
        ),
        (
            {"email": 5, "password": "long enough"},
            field_error(
                "email",
                "Must be of type str",
                "wrong type",
                "str",
            ),
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_malformed_signups(client, body, error):
    response = await client.post("/myloginapi/users", json=body)
    assert (response.status, response.json) == (409, error)


@pytest_twisted.ensureDeferred
async def test_a_duplicate_signup(client):
    await signup_and_login(client)
    response = await client.post(
        "/myloginapi/users",
        json={"email": "ADA@example.com", "password": "another one"},
    )
    assert (response.status, response.json) == (
        409,
        envelope(
            "EmailTakenError",
            110,
            "A user with the email 'ada@example.com' exists already.",
        ),
    )


@pytest_twisted.ensureDeferred
async def test_wrong_password_and_unknown_user_get_the_same_answer(client):
    await signup_and_login(client)
    failed = envelope("LoginFailedError", 111, "The email or the password is wrong.")
    for body in (
        {"email": "ada@example.com", "password": "wrong horse"},
        {"email": "nobody@example.com", "password": "correct horse"},
    ):
        response = await client.post("/myloginapi/login", json=body)
        assert (response.status, response.json) == (401, failed)
        assert response.header_values("set-cookie") == []


@pytest_twisted.ensureDeferred
async def test_cookies_that_are_missing_tampered_or_expired(client):
    cookie = await signup_and_login(client)
    response = await client.get("/myloginapi/me")
    assert response.status == 401
    tampered = cookie[:-2] + ("A" if cookie[-2] != "A" else "B") + cookie[-1]
    token = CookieSigner([SECRET]).verify("session", cookie, now=time.time())
    expired = CookieSigner([SECRET]).sign(
        "session", token, expires=int(time.time()) - 1
    )
    forged = CookieSigner(["another secret, thirty-two characters long"]).sign(
        "session", token, expires=int(time.time()) + 99
    )
    # Each is no session at all: the caller is not logged in.
    for bad in (tampered, expired, forged, token):
        response = await client.get(
            "/myloginapi/me", headers={"Cookie": f"session={bad}"}
        )
        assert response.status == 401, bad
        assert response.error["exception_class"] == "InvalidAuthenticationError"
        assert response.header_values("set-cookie") == []


def login(client, email="ada@example.com", password="correct horse", **options):
    return client.post(
        "/myloginapi/login", json={"email": email, "password": password}, **options
    )


def from_address(client, address):
    return TestClient(client.router, client_address=address)


def too_many(response, wait):
    """A 429 telling to retry in ``wait`` seconds: when the window ends."""
    assert response.status == 429
    assert response.error["exception_class"] == "TooManyAttemptsError"
    assert response.headers["retry-after"] == str(wait)
    assert response.error["exception_text"] == (
        f"Too many attempts; try again in {wait} seconds."
    )


@pytest_twisted.ensureDeferred
async def test_failed_logins_lock_out_an_account_from_one_address_only(client):
    await signup_and_login(client)
    for _ in range(5):
        response = await login(
            client, password="wrong horse", headers={"X-Forwarded-For": "ignored"}
        )
        assert response.status == 401
    client.clock.advance(300.5)
    too_many(await login(client), 600)
    # Whoever guessed from there locks no one else out.
    assert (await login(from_address(client, "10.9.8.7"))).status == 200
    # The window over (they are aligned to the epoch), the address may try
    # again.
    client.clock.advance(599.5)
    assert (await login(client)).status == 200


@pytest_twisted.ensureDeferred
async def test_a_login_resets_its_address_count_for_the_account(client):
    await signup_and_login(client)
    for _ in range(3):
        assert (await login(client, password="wrong horse")).status == 401
    assert (await login(client)).status == 200
    for _ in range(5):
        assert (await login(client, password="wrong horse")).status == 401
    assert (await login(client)).status == 429


@pytest_twisted.ensureDeferred
async def test_failed_logins_are_limited_per_client_address(client):
    for n in range(20):
        response = await login(client, f"guess{n}@example.com", "whatever!")
        assert response.status == 401
    too_many(await login(client, "guess99@example.com", "whatever!"), 900)
    other = from_address(client, "10.9.8.7")
    assert (await login(other, "guess99@example.com", "whatever!")).status == 401


@pytest_twisted.ensureDeferred
async def test_parallel_logins_cannot_pass_the_limit(client):
    await signup_and_login(client)
    # All 30 arrive before the first password check ends: the right password
    # first, then 29 guesses.
    sent = [login(client)] + [
        login(client, password=f"guess number {n}") for n in range(29)
    ]
    statuses = [response.status for response in await defer.gatherResults(sent)]
    assert statuses == [200] + [401] * 4 + [429] * 25


@pytest_twisted.ensureDeferred
async def test_limits_key_on_the_client_behind_a_trusted_proxy(settings):
    proxied = login_service(settings, honor_x_realip=True)
    # Five clients behind one proxy each fail once on their own account...
    for n in range(5):
        response = await login(
            proxied,
            f"user{n}@example.com",
            "wrong horse",
            headers={"X-Real-IP": f"192.0.2.{n}"},
        )
        assert response.status == 401
    # ...and nobody is locked out, the proxy's other clients included.
    for n in range(5):
        response = await login(
            proxied,
            f"user{n}@example.com",
            "wrong horse",
            headers={"X-Real-IP": f"192.0.2.{n + 100}"},
        )
        assert response.status == 401
    for _ in range(4):
        await login(
            proxied, "user0@example.com", "x" * 8, headers={"X-Real-IP": "192.0.2.0"}
        )
    too_many(
        await login(
            proxied, "user0@example.com", "x" * 8, headers={"X-Real-IP": "192.0.2.0"}
        ),
        900,
    )
    response = await login(
        proxied, "user0@example.com", "x" * 8, headers={"X-Real-IP": "192.0.2.1"}
    )
    assert response.status == 401


@pytest.fixture
def strict_settings(tmp_path):
    validated = config.validate_config(
        {
            "db_path": str(tmp_path / "strict.sqlite"),
            "account_login_ceiling": "3",
            "login_slowdown": "0.3",
            "signup_attempts": "2",
        }
    )
    yield validated
    validated["users"].close()


@pytest.fixture
def strict_client(strict_settings):
    return login_service(strict_settings)


@pytest_twisted.ensureDeferred
async def test_an_account_many_addresses_fail_on_is_slowed_not_locked(
    strict_client, monkeypatch
):
    await signup_and_login(strict_client)
    clock = strict_client.clock
    checked = []
    original = passwords.check_password
    monkeypatch.setattr(
        passwords,
        "check_password",
        lambda *args: checked.append(clock.seconds()) or original(*args),
    )
    for n in range(3):
        attacker = from_address(strict_client, f"10.0.0.{n}")
        # Below the ceiling, nobody waits.
        assert (await login(attacker, password="wrong horse")).status == 401
    assert checked == [0, 0, 0]
    owner = from_address(strict_client, "10.1.1.1")
    answer = login(owner)
    clock.advance(0.29)
    assert checked == [0, 0, 0]
    clock.advance(0.01)
    assert (await answer).status == 200
    assert checked == [0, 0, 0, 0.3]


@pytest_twisted.ensureDeferred
async def test_signups_are_limited_per_client_address(strict_client):
    for n in range(2):
        response = await strict_client.post(
            "/myloginapi/users",
            json={"email": f"user{n}@example.com", "password": "long enough"},
        )
        assert response.status == 201
    response = await strict_client.post(
        "/myloginapi/users",
        json={"email": "user9@example.com", "password": "long enough"},
    )
    too_many(response, 3600)
    # Malformed signups do no password work, and are not counted.
    other = from_address(strict_client, "10.9.8.7")
    for _ in range(3):
        response = await other.post(
            "/myloginapi/users", json={"email": "x", "password": "long enough"}
        )
        assert response.status == 409
    response = await other.post(
        "/myloginapi/users",
        json={"email": "user9@example.com", "password": "long enough"},
    )
    assert response.status == 201


@pytest_twisted.ensureDeferred
async def test_an_unknown_email_costs_a_password_check_too(client, monkeypatch):
    await signup_and_login(client)
    checked = []
    original = passwords.scrypt
    monkeypatch.setattr(
        passwords, "scrypt", lambda *args: checked.append(1) or original(*args)
    )
    assert (await login(client, password="wrong horse")).status == 401
    assert (await login(client, "nobody@example.com")).status == 401
    assert len(checked) == 2


@pytest.mark.parametrize(
    "body",
    [
        {"email": "ada@example.com", "password": "correct \ud800 horse"},
        {"email": "ada\udc00@example.com", "password": "correct horse"},
    ],
)
@pytest.mark.parametrize("path", ["/myloginapi/users", "/myloginapi/login"])
@pytest_twisted.ensureDeferred
async def test_a_lone_surrogate_is_invalid_json(client, path, body):
    raw = json.dumps(body).encode()
    assert b"\\ud" in raw
    response = await client.post(path, body=raw)
    assert (response.status, response.error["exception_class"]) == (
        409,
        "JSONDecodeError",
    )


@pytest.mark.parametrize(
    "email",
    [
        "ada\x00@example.com",
        "ada@exa\x1bmple.com",
        "\x7fada@example.com",
        "ada@exam\x9bple.com",
    ],
)
@pytest.mark.parametrize("path", ["/myloginapi/users", "/myloginapi/login"])
@pytest_twisted.ensureDeferred
async def test_emails_with_control_characters_are_refused(client, path, email):
    response = await client.post(path, json={"email": email, "password": "long enough"})
    assert (response.status, response.json) == (
        409,
        field_error(
            "email", "Must be an email address.", "invalid", "an email address"
        ),
    )


@pytest_twisted.ensureDeferred
async def test_over_https_the_session_cookie_is_a_host_cookie(settings):
    secure = login_service(settings, cookie_secure=True)
    await secure.expect(
        "POST",
        "/myloginapi/users",
        {"email": "ada@example.com", "password": "correct horse"},
        201,
    )
    response = await login(secure)
    [header] = response.header_values("set-cookie")
    assert header.startswith("__Host-session=")
    assert header.endswith("; Path=/; Max-Age=1209600; Secure; HttpOnly; SameSite=lax")
    value = session_cookie(response)
    me = await secure.get(
        "/myloginapi/me", headers={"Cookie": f"__Host-session={value}"}
    )
    assert me.status == 200
    # A cookie without the prefix, which a subdomain could set, is not read.
    me = await secure.get("/myloginapi/me", headers={"Cookie": f"session={value}"})
    assert me.status == 401


@pytest_twisted.ensureDeferred
async def test_two_session_cookies_that_disagree_are_no_session(client):
    mine = await signup_and_login(client)
    theirs = await signup_and_login(client, "eve@example.com", "eve's password")
    for cookies, status in [
        (f"session={mine}; session=garbage", 200),
        (f"session=garbage; session={mine}", 200),
        (f"session={mine}; session={mine}", 200),
        (f"session={theirs}; session={mine}", 401),
        (f"session={mine}; session={theirs}", 401),
    ]:
        response = await client.get("/myloginapi/me", headers={"Cookie": cookies})
        assert response.status == status, cookies
        if status == 200:
            assert response.json["result"]["email"] == "ada@example.com"
        else:
            assert response.error["exception_class"] == "InvalidAuthenticationError"


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {"db_driver": "oracle"},
            "db_driver must be sqlite3 or psycopg2, not 'oracle'",
        ),
        ({"db_driver": "psycopg2"}, "db_driver psycopg2 needs db_dsn"),
        ({"session_days": "7"}, "session_days moved to [sessions] max_age, in seconds"),
        ({"cookie_name": "sid"}, "cookie_name moved to [sessions] cookie_name"),
        ({"login_window": "-1"}, "login_window must be a positive number, not '-1'"),
        ({"login_window": "inf"}, "login_window must be a positive number, not 'inf'"),
        (
            {"login_attempts": "many"},
            "login_attempts must be a positive number, not 'many'",
        ),
        ({"colour": "blue"}, "unknown option(s): colour"),
        ({"login_slowdown": "0"}, "login_slowdown must be a positive number, not '0'"),
        (
            {"signup_window": "soon"},
            "signup_window must be a positive number, not 'soon'",
        ),
    ],
)
def test_configuration_errors(tmp_path, options, message):
    with pytest.raises(ValueError) as info:
        config.validate_config(dict(options, db_path=str(tmp_path / "x.sqlite")))
    assert str(info.value) == message


@pytest.mark.slow
def test_the_login_flow_over_a_socket_survives_a_restart(tmp_path):
    import json

    from daemons import ROOT, Daemon, write_config

    database = tmp_path / "users.sqlite"
    config = write_config(
        tmp_path / "shijid.conf",
        {
            "general": {
                "listen_ip": "127.0.0.1",
                "listen_port": "0",
                "base_path": str(ROOT / "examples"),
            },
            "logging": {"log_file": str(tmp_path / "shijid.log")},
            "auth": {
                "secure_cookies_secrets": json.dumps([SECRET]),
                "enable_auth": "true",
                "auth_module": "mylogin_api.backend",
                "auth_class": "SessionBackend",
            },
            "apis": {"mylogin_api": "myloginapi"},
            "config_mylogin_api": {"db_path": str(database)},
        },
    )
    version = {"X-API-Version": "mylogin_api-1.0+prod"}
    credentials = {"email": "grace@example.com", "password": "cobol forever"}

    first = Daemon(tmp_path, config=config).start()
    try:
        status, _, body = first.request(
            "POST", "/myloginapi/users", body=credentials, headers=version
        )
        assert (status, json.loads(body)) == (
            201,
            {"result": {"id": 1, "email": "grace@example.com"}},
        )
        status, headers, _ = first.request(
            "POST", "/myloginapi/login", body=credentials, headers=version
        )
        assert status == 200
        cookie = headers["Set-Cookie"].split(";")[0]
        status, _, body = first.request(
            "GET", "/myloginapi/me", headers={**version, "Cookie": cookie}
        )
        assert (status, json.loads(body)) == (
            200,
            {"result": {"id": 1, "email": "grace@example.com"}},
        )
        assert first.stop() == 0
    finally:
        first.kill()
    assert "cobol forever" not in (tmp_path / "shijid.log").read_text()

    second = Daemon(tmp_path, config=config).start()
    try:
        status, _, body = second.request(
            "GET", "/myloginapi/me", headers={**version, "Cookie": cookie}
        )
        assert (status, json.loads(body)) == (
            200,
            {"result": {"id": 1, "email": "grace@example.com"}},
        )
        status, _, body = second.request(
            "POST", "/myloginapi/users", body=credentials, headers=version
        )
        assert (status, json.loads(body)["error"]["exception_class"]) == (
            409,
            "EmailTakenError",
        )
        status, _, _ = second.request(
            "POST", "/myloginapi/login", body=credentials, headers=version
        )
        assert status == 200
        status, _, _ = second.request(
            "POST", "/myloginapi/logout", headers={**version, "Cookie": cookie}
        )
        assert status == 200
        status, _, _ = second.request(
            "GET", "/myloginapi/me", headers={**version, "Cookie": cookie}
        )
        assert status == 401
        assert second.stop() == 0
    finally:
        second.kill()


def test_a_signup_racing_another_for_the_same_email_is_email_taken(settings):
    """Between the existence check and the insert, another signup took it."""
    import sqlite3

    from mylogin_api.store import EmailTaken

    users = settings["users"]
    if users.driver != "sqlite3":
        pytest.skip("the race is simulated with an SQLite connection")
    connection = sqlite3.connect(":memory:")
    connection.execute(
        "CREATE TABLE users (email TEXT UNIQUE, password_hash TEXT, created REAL)"
    )
    connection.execute("INSERT INTO users VALUES ('ada@example.com', 'x', 0)")

    class RacingCursor:
        def __init__(self):
            self.cursor = connection.cursor()
            self.statements = 0

        def execute(self, query, arguments=()):
            self.statements += 1
            if self.statements > 1:  # the existence check sees nothing
                self.cursor.execute(query, arguments)

        def fetchone(self):
            return None if self.statements == 1 else self.cursor.fetchone()

    interactions = []
    original, users.pool.runInteraction = users.pool.runInteraction, interactions.append
    try:
        users.create_user("ada@example.com", "y")
    finally:
        users.pool.runInteraction = original
    with pytest.raises(EmailTaken):
        interactions[0](RacingCursor())
