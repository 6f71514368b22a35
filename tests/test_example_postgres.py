"""
examples/mylogin_api served by a real shijid with its users in a real
PostgreSQL database (``[config_mylogin_api] db_driver = psycopg2``, on the
server of tests/postgres_server.py): signup, a duplicate signup, login,
``me``, and the users' table as PostgreSQL holds it.
"""

# ruff: noqa: F811 (the fixtures imported from postgres_server are parameters)

import json
import sqlite3

import pytest
from daemons import ROOT, Daemon, write_config
from mylogin_api import passwords, store
from postgres_server import fresh_postgres, postgres_server  # noqa: F401 (fixtures)

try:
    import psycopg2  # noqa: F401 (the example imports it by this name)
except ImportError:
    pytest.skip(
        "psycopg2 is not installed for this interpreter: the example's"
        " db_driver = psycopg2 needs it (pip install psycopg2-binary)",
        allow_module_level=True,
    )

# Each case starts a daemon: seconds each.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(passwords.scrypt is None, reason="no scrypt on this Python"),
]

VERSION = {"X-API-Version": "mylogin_api-1.0+prod"}
SECRET = "postgres example tests: a secret of thirty-two characters or more"
ADA = {"email": "ada@example.com", "password": "correct horse"}
ACCOUNT = {"result": {"id": 1, "email": "ada@example.com"}}


def envelope(error_class, code, text):
    return {
        "result": None,
        "error": {
            "error_code": code,
            "exception_class": error_class,
            "exception_text": text,
        },
    }


@pytest.fixture
def example(tmp_path, fresh_postgres):
    """shijid serving the example, its users in the test server's database."""
    fresh_postgres.psql("DROP TABLE IF EXISTS users")
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
            "config_mylogin_api": {
                "db_driver": "psycopg2",
                "db_dsn": fresh_postgres.dsn,
            },
        },
    )
    home = tmp_path / "daemon"
    home.mkdir()
    daemon = Daemon(home, config=config)
    try:
        yield daemon.start()
    finally:
        daemon.kill()
        fresh_postgres.psql("DROP TABLE IF EXISTS users")


def call(daemon, method, path, body=None, cookie=None, timeout=10):
    """``(status, headers, JSON body)`` of one call to the example."""
    headers = dict(VERSION)
    if cookie is not None:
        headers["Cookie"] = cookie
    status, answer_headers, raw = daemon.request(
        method, f"/myloginapi/{path}", body=body, headers=headers, timeout=timeout
    )
    return status, answer_headers, json.loads(raw)


def test_signup_login_and_me_with_users_in_postgresql(example, fresh_postgres):
    status, _, body = call(example, "POST", "users", ADA)
    assert (status, body) == (201, ACCOUNT)
    status, _, body = call(
        example,
        "POST",
        "users",
        {"email": "ADA@example.com", "password": "another one"},
    )
    assert (status, body) == (
        409,
        envelope(
            "EmailTakenError",
            110,
            "A user with the email 'ada@example.com' exists already.",
        ),
    )
    status, _, body = call(example, "POST", "users", {"email": "bob@example.com", "password": "a password"})  # fmt: skip
    assert (status, body) == (201, {"result": {"id": 2, "email": "bob@example.com"}})

    status, headers, body = call(example, "POST", "login", ADA)
    assert (status, body) == (200, ACCOUNT)
    cookie = headers["Set-Cookie"].split(";")[0]
    assert cookie.startswith("session=")
    assert call(example, "GET", "me", cookie=cookie)[::2] == (200, ACCOUNT)
    status, _, body = call(
        example, "POST", "login", {"email": ADA["email"], "password": "wrong password"}
    )
    assert (status, body) == (
        401,
        envelope("LoginFailedError", 111, "The email or the password is wrong."),
    )

    rows = fresh_postgres.psql(
        "SELECT id, email, password_hash LIKE 'scrypt$%', created > 0"
        " FROM users ORDER BY id"
    )
    assert rows == "1|ada@example.com|t|t\n2|bob@example.com|t|t\n"


def test_the_example_answers_again_after_postgresql_restarts(example, fresh_postgres):
    assert call(example, "POST", "users", ADA)[::2] == (201, ACCOUNT)
    fresh_postgres.stop()
    fresh_postgres.start()
    # Each connection of the pool (5 at most) may fail once, then is made anew.
    answers = [call(example, "POST", "login", ADA)[0] for _ in range(12)]
    assert answers.count(500) <= 5, answers
    assert answers[-6:] == [200] * 6, answers
    assert set(answers) <= {200, 500}, answers


def readme_migration():
    """The README's code that copies the example's users to PostgreSQL."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("**Moving the example's database to PostgreSQL.**", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_moves_the_example_users_to_postgresql(
    tmp_path, example, fresh_postgres
):
    sqlite_file = tmp_path / "mylogin_api.sqlite"
    store.UserStore.create_schema("sqlite3", str(sqlite_file))
    salt = bytes(range(16))
    with sqlite3.connect(sqlite_file) as db:
        db.executemany(
            "INSERT INTO users (id, email, password_hash, created) VALUES (?, ?, ?, ?)",
            [
                (
                    1,
                    ADA["email"],
                    passwords._encode(salt, passwords._hash(ADA["password"], salt)),
                    1700000000.5,
                ),
                (7, "bob@example.com", passwords.UNMATCHABLE, 1700000001.0),
            ],
        )
    code = readme_migration()
    assert '"mylogin_api.sqlite"' in code
    assert '"host=db.internal dbname=mylogin user=mylogin"' in code
    code = code.replace('"mylogin_api.sqlite"', repr(str(sqlite_file)))
    code = code.replace(
        '"host=db.internal dbname=mylogin user=mylogin"', repr(fresh_postgres.dsn)
    )
    exec(compile(code, "README.md", "exec"), {})

    assert fresh_postgres.psql("SELECT id, email, created FROM users ORDER BY id") == (
        "1|ada@example.com|1700000000.5\n7|bob@example.com|1700000001\n"
    )
    # The migrated account logs in, and the next signup comes after it.
    status, _, body = call(example, "POST", "login", ADA)
    assert (status, body) == (200, ACCOUNT)
    status, _, body = call(
        example, "POST", "users", {"email": "cy@example.com", "password": "a password"}
    )
    assert (status, body) == (201, {"result": {"id": 8, "email": "cy@example.com"}})
