"""
The site in memory, through the real protocol: the access log, Host checks
and reason phrases.
"""

import pytest
import pytest_twisted
from apitools import make_api

from shiji.testing import TestClient
from shiji.urldispatch import URLMatchJSONResource
from shiji.webapi import APIError


class Limited(APIError):
    error_code = 900
    exception_text = "Slow down."
    http_status = 429


class Echo(URLMatchJSONResource):
    routes = [r"echo", r"echo/(?P<code>[0-9]{3})"]

    def render_GET(self, request):
        if "code" in self.url_matches:
            request.setResponseCode(int(self.url_matches["code"]))
        return {"version": request.api_version, "host": request.getHeader("host")}

    def render_POST(self, request):
        raise Limited(request)


def client(**options):
    api = make_api("e_api", [("1.x", r"1\..*", [Echo])])
    return TestClient({"e": api}, client_address="192.0.2.1", **options)


def get(target, headers=b"Host: api.example\r\nX-API-Version: e_api-1.0+prod\r\n"):
    return b"GET %s HTTP/1.1\r\n%s\r\n" % (target, headers)


@pytest_twisted.ensureDeferred
async def test_a_version_is_logged_escaped():
    # Quotes, backslashes and bytes beyond ASCII (a right-to-left override,
    # here) may come in a header value: the log escapes them.
    test_client = client()
    version = b'e_api-1.0" 200 0 0.1ms forged\\ \xe2\x80\xae+prod'
    response = await test_client.send_raw(
        get(b"/e/echo", b"Host: h\r\nX-API-Version: " + version + b"\r\n")
    )
    assert response.status == 200
    [line] = test_client.access_lines
    assert line.endswith(
        " version=1.0\\x22 200 0 0.1ms forged\\x5c \\xe2\\x80\\xae call=Echo"
    ), line


@pytest.mark.parametrize(
    "target, expected",
    [
        (
            "/e/echo?access_token=t1&api_key=k1&Client_Secret=s1&refresh_token=r1"
            "&simple_auth_key=a1&passwd=p1&page=2",
            "/e/echo?access_token=***&api_key=***&Client_Secret=***&refresh_token=***"
            "&simple_auth_key=***&passwd=***&page=2",
        ),
        ("/e/echo?X%2DAuth%2DToken=t1&q=1", "/e/echo?X%2DAuth%2DToken=***&q=1"),
        ("http://user:password@h/e/echo?q=1", "/e/echo?q=1"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_secret_arguments_are_redacted_by_any_part_of_their_names(
    target, expected
):
    test_client = client()
    response = await test_client.get(
        target.encode(), headers={"X-API-Version": "e_api-1.0+prod"}
    )
    assert response.status == 200
    [line] = test_client.access_lines
    assert f'192.0.2.1 "GET {expected}" 200 ' in line


@pytest.mark.parametrize(
    "target, logged",
    [
        (b"http://user:password@h/e/echo", "http://h/e/echo"),
        # A raw "@" inside the password, and a target after two spaces.
        (b"http://user:pass@word@h/e/echo", "http://h/e/echo"),
        (b" http://user:password@h/e/echo", " http://h/e/echo"),
    ],
    ids=["plain", "@ in the password", "after two spaces"],
)
@pytest_twisted.ensureDeferred
async def test_a_refused_absolute_target_is_logged_without_its_credentials(
    target, logged
):
    test_client = client()
    response = await test_client.send_raw(
        b"GET %s HTTP/1.1\r\nX-A: a\x00b\r\n\r\n" % target
    )
    assert response.status == 400
    [line] = test_client.access_lines
    assert line.startswith(f'192.0.2.1 "GET {logged}" 400 '), line
    assert "pass" not in line and "word" not in line


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /e/echo HTTP/1.1\r\nX-API-Version: e_api-1.0+prod\r\n\r\n",
        b"GET /e/echo HTTP/1.1\r\nHost: a\r\nHost: b\r\nX-API-Version: e_api-1.0+prod\r\n\r\n",
        b"GET /e/echo HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n",
        b"GET /e/echo HTTP/1.1\r\nHost: a b\r\n\r\n",
        b"GET /e/echo HTTP/1.1\r\nHost: a/b\r\n\r\n",
        b"GET /e/echo HTTP/1.1\r\nHost: a@b\r\n\r\n",
    ],
    ids=["none", "two", "two on HTTP/1.0", "space", "slash", "userinfo"],
)
@pytest_twisted.ensureDeferred
async def test_a_missing_repeated_or_malformed_host_is_refused(raw):
    test_client = client()
    response = await test_client.send_raw(raw)
    assert response.status == 400
    assert response.headers["connection"] == "close"
    assert response.error["exception_class"] == "MalformedRequestError"
    assert " 400 " in test_client.access_lines[0]


@pytest.mark.parametrize(
    "host", [b"api.example", b"api.example:8443", b"[::1]:9990", b"10.0.0.1", b""]
)
@pytest_twisted.ensureDeferred
async def test_one_well_formed_host_is_served(host):
    response = await client().send_raw(
        get(b"/e/echo", b"Host: %s\r\nX-API-Version: e_api-1.0+prod\r\n" % host)
    )
    assert response.status == 200


@pytest_twisted.ensureDeferred
async def test_http_1_0_needs_no_host():
    response = await client().send_raw(
        b"GET /e/echo HTTP/1.0\r\nX-API-Version: e_api-1.0+prod\r\n\r\n"
    )
    assert response.status == 200


@pytest.mark.parametrize(
    "raw, status, reason",
    [
        (
            b"POST /e/echo HTTP/1.1\r\nHost: h\r\nX-API-Version: e_api-1.0+prod\r\n"
            b"Content-Length: 0\r\n\r\n",
            429,
            "Too Many Requests",
        ),
        (get(b"/e/echo/429"), 429, "Too Many Requests"),
        (get(b"/e/echo/451"), 451, "Unavailable For Legal Reasons"),
        (get(b"/e/echo/413"), 413, "Content Too Large"),
        (get(b"/e/echo/299"), 299, ""),
    ],
)
@pytest_twisted.ensureDeferred
async def test_every_status_has_its_reason_phrase(raw, status, reason):
    response = await client().send_raw(raw)
    assert (response.status, response.reason) == (status, reason)
