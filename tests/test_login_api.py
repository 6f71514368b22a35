"""
examples/mylogin_api as a login service, in memory.
"""

import os
import time

import mylogin_api
import pytest
import pytest_twisted
from apitools import envelope
from mylogin_api import config, passwords
from mylogin_api.backend import SessionBackend

from shiji.auth import CookieSigner
from shiji.testing import TestClient

pytestmark = pytest.mark.skipif(
    passwords.scrypt is None, reason="no scrypt on this Python"
)

SECRET = "login tests: a secret of thirty-two characters or more"


POSTGRES_DSN = os.environ.get("SHIJI_TEST_POSTGRES_DSN")


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
                not POSTGRES_DSN,
                reason="set SHIJI_TEST_POSTGRES_DSN to test PostgreSQL",
            ),
        ),
    ]
)
def settings(request, tmp_path):
    if request.param == "sqlite3":
        options = {"db_path": str(tmp_path / "users.sqlite")}
    else:
        _empty_postgres(POSTGRES_DSN)
        options = {"db_driver": "psycopg2", "db_dsn": POSTGRES_DSN}
    validated = config.validate_config(options)
    yield validated
    validated["users"].close()


@pytest.fixture
def client(settings):
    return TestClient(
        {"myloginapi": mylogin_api},
        config={"mylogin_api": settings},
        cookie_secrets=[SECRET],
        auth_backend=SessionBackend(),
    )


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
    assert header.endswith("; Path=/; Max-Age=604800; HttpOnly; SameSite=lax")
    cookie = {"Cookie": f"session={session_cookie(response)}"}

    await client.expect(
        "GET",
        "/myloginapi/me",
        None,
        200,
        {"result": {"id": 1, "email": "ada@example.com"}},
        headers=cookie,
    )
    await client.expect(
        "POST",
        "/myloginapi/logout",
        None,
        200,
        {"result": "logged out"},
        headers=cookie,
    )
    response = await client.get("/myloginapi/me", headers=cookie)
    assert response.status == 401
    assert response.error["exception_class"] == "InvalidAuthenticationError"


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


@pytest.mark.parametrize(
    "body, error",
    [
        (
            {"email": "not-an-email", "password": "long enough"},
            envelope(
                "ValueError",
                502,
                "Invalid value for argument 'email'. Must be an email address.",
            ),
        ),
        (
            {"email": "a@b", "password": "long enough"},
            envelope(
                "ValueError",
                502,
                "Invalid value for argument 'email'. Must be an email address.",
            ),
        ),
        (
            {"email": "a@example.com", "password": "short"},
            envelope(
                "ValueError",
                502,
                "Invalid value for argument 'password'. Must be 8 to 1024 characters long.",
            ),
        ),
        (
            {"email": "a@example.com"},
            envelope(
                "ValueError",
                502,
                "Invalid value for argument 'password'. Argument is missing.",
            ),
        ),
        (
            {"email": 5, "password": "long enough"},
            envelope(
                "ValueError",
                502,
                "Invalid value for argument 'email'. Must be of type str",
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
    response = await client.get(
        "/myloginapi/me", headers={"Cookie": f"session={tampered}"}
    )
    assert response.status == 409
    assert response.error["exception_class"] == "InvalidSecureCookieError"
    token = CookieSigner([SECRET]).verify("session", cookie, now=time.time())
    expired = CookieSigner([SECRET]).sign(
        "session", token, expires=int(time.time()) - 1
    )
    response = await client.get(
        "/myloginapi/me", headers={"Cookie": f"session={expired}"}
    )
    assert response.json == envelope(
        "ExpiredSecureCookieError", 508, "Secure cookie 'session' is expired."
    )
    forged = CookieSigner(["another secret, thirty-two characters long"]).sign(
        "session", token, expires=int(time.time()) + 99
    )
    response = await client.get(
        "/myloginapi/me", headers={"Cookie": f"session={forged}"}
    )
    assert response.error["exception_class"] == "InvalidSecureCookieError"


@pytest_twisted.ensureDeferred
async def test_failed_logins_are_limited_per_email(client):
    await signup_and_login(client)
    for _ in range(5):
        response = await client.post(
            "/myloginapi/login",
            json={"email": "ada@example.com", "password": "wrong horse"},
            headers={"X-Forwarded-For": "ignored"},
        )
        assert response.status == 401
    response = await client.post(
        "/myloginapi/login",
        json={"email": "ada@example.com", "password": "correct horse"},
    )
    assert response.status == 429
    assert response.error["exception_class"] == "TooManyAttemptsError"
    assert 895 <= int(response.headers["retry-after"]) <= 901


@pytest_twisted.ensureDeferred
async def test_failed_logins_are_limited_per_client_address(client):
    for n in range(5):
        response = await client.post(
            "/myloginapi/login",
            json={"email": f"guess{n}@example.com", "password": "whatever!"},
        )
        assert response.status == 401
    response = await client.post(
        "/myloginapi/login",
        json={"email": "guess9@example.com", "password": "whatever!"},
    )
    assert response.status == 429
    other = TestClient(client.router, client_address="10.9.8.7")
    response = await other.post(
        "/myloginapi/login",
        json={"email": "guess9@example.com", "password": "whatever!"},
    )
    assert response.status == 401


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {"db_driver": "oracle"},
            "db_driver must be sqlite3 or psycopg2, not 'oracle'",
        ),
        ({"db_driver": "psycopg2"}, "db_driver psycopg2 needs db_dsn"),
        ({"session_days": "-1"}, "session_days must be a positive number, not '-1'"),
        (
            {"login_attempts": "many"},
            "login_attempts must be a positive number, not 'many'",
        ),
        ({"colour": "blue"}, "unknown option(s): colour"),
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
