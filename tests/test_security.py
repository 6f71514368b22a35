"""
What shijid serving the example keeps to itself: passwords, session cookies,
tokens and credentials never reach its log; no answer carries a traceback, a
file path or a library version; CORS never pairs credentials with "*".
"""

import base64
import http.client
import json
import re

import pytest
from daemons import ROOT, example_daemon

pytestmark = pytest.mark.slow

VERSION = {"X-API-Version": "mylogin_api-1.0+prod"}
PASSWORD = "correct horse battery staple 7f3a"
TOKEN = "tok-5b1e9c0d2f"
BASIC_SECRET = "basic-secret-91c4"
LEAKS = re.compile(
    r"Traceback|File \"|\.py\b|Twisted|twisted|Python|python|/usr/|/home/|"
    + re.escape(str(ROOT))
)


@pytest.fixture
def example(tmp_path):
    from mylogin_api import passwords

    if passwords.scrypt is None:
        pytest.skip("the example's login service needs scrypt")
    daemon = example_daemon(tmp_path, cross_origin_domains="*").start()
    yield daemon
    daemon.kill()


def call(daemon, method, path, body=None, headers=()):
    connection = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
    try:
        sent = {**VERSION, **dict(headers)}
        if body is not None:
            sent["Content-Type"] = "application/json"
            body = json.dumps(body)
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        answer = response.read()
        headers = response.getheaders()
    finally:
        connection.close()
    for name, value in headers:
        assert not LEAKS.search(f"{name}: {value}"), (name, value)
    assert not LEAKS.search(answer.decode("utf-8", "replace")), answer
    return response.status, dict(headers), answer


def test_secrets_never_reach_the_log(example):
    email = "ada@example.com"
    status, _, _ = call(
        example, "POST", "/myloginapi/users", {"email": email, "password": PASSWORD}
    )
    assert status == 201
    status, headers, _ = call(
        example, "POST", "/myloginapi/login", {"email": email, "password": PASSWORD}
    )
    assert status == 200
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    session_value = cookie.split("=", 1)[1]
    status, _, body = call(example, "GET", "/myloginapi/me", headers={"Cookie": cookie})
    assert status == 200 and json.loads(body)["result"]["email"] == email
    # A wrong password, secrets in the query string and in headers.
    assert (
        call(
            example,
            "POST",
            "/myloginapi/login",
            {"email": email, "password": PASSWORD + "x"},
        )[0]
        == 401
    )
    basic = base64.b64encode(f"ada:{BASIC_SECRET}".encode()).decode()
    for path in (
        f"/myloginapi/ping?token={TOKEN}&password={PASSWORD.replace(' ', '+')}",
        f"/myloginapi/ping?TOKEN={TOKEN}",
        f"/myloginapi/nothing?secret={TOKEN}",
    ):
        call(
            example,
            "GET",
            path,
            headers={"Authorization": f"Basic {basic}", "Cookie": cookie},
        )
    assert (
        call(example, "POST", "/myloginapi/logout", headers={"Cookie": cookie})[0]
        == 200
    )
    assert example.stop() == 0
    log = example.log_text()
    assert log.count("[shiji.access#info]") == 8, log
    assert "token=***" in log and "TOKEN=***" in log and "secret=***" in log
    for secret in (
        PASSWORD,
        PASSWORD.replace(" ", "+"),
        TOKEN,
        session_value,
        basic,
        BASIC_SECRET,
    ):
        assert secret not in log


def test_no_answer_carries_a_traceback_path_or_version(example):
    # Every call and error of the example, documentation included; `call`
    # checks each answer.
    for method, path, body in (
        ("GET", "/myloginapi/ping/1", None),
        (
            "POST",
            "/myloginapi/ping/1?simple_auth_key=abc",
            {"client_tz": 1, "client_id": "c"},
        ),
        ("POST", "/myloginapi/ping/1?simple_auth_key=abc", {"client_tz": "x"}),
        ("GET", "/myloginapi/sample_error/normal", None),
        ("GET", "/myloginapi/sample_error/advanced", None),
        ("GET", "/myloginapi/me", None),
        ("GET", "/myloginapi/list_versions", None),
        ("DELETE", "/myloginapi/users", None),
        ("GET", "/elsewhere", None),
        ("GET", "/_docs/", None),
        ("GET", "/_docs/mylogin_api/", None),
        ("GET", "/_docs/mylogin_api/1.0/openapi.json", None),
        ("GET", "/_docs/nothing/", None),
    ):
        status, headers, _ = call(example, method, path, body)
        assert headers["Server"] == "Shiji API Server"
        assert status < 500


def test_cors_with_any_origin_never_allows_credentials(example):
    origin = {"Origin": "https://evil.example"}
    for method, path in (
        ("GET", "/myloginapi/ping/1"),
        ("OPTIONS", "/myloginapi/me"),
        ("GET", "/myloginapi/me"),
        ("GET", "/elsewhere"),
    ):
        headers = dict(origin)
        if method == "OPTIONS":
            headers["Access-Control-Request-Method"] = "GET"
        _, answer_headers, _ = call(example, method, path, headers=headers)
        assert answer_headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in answer_headers
