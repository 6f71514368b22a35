"""
shijid's site in memory: the access log, Host checks and reason phrases,
driven through the real protocol over a memory transport.
"""

import json

import pytest
from apitools import make_api
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from shiji._site import ShijiSite
from shiji.urldispatch import APIRouter, URLMatchJSONResource
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


def serve(raw, **options):
    """Feed ``raw`` to a new connection of a site; returns what was
    written back and the access lines logged."""
    api = make_api("e_api", [("1.x", r"1\..*", [Echo])])
    site = ShijiSite(APIRouter({"e": api}), reactor=Clock(), **options)
    lines = []
    site.access_sink = lines.append
    peer = IPv4Address("TCP", "192.0.2.1", 40000)
    transport = StringTransport(peerAddress=peer)
    channel = site.buildProtocol(peer)
    channel.makeConnection(transport)
    channel.dataReceived(raw)
    return transport.value(), lines


def get(target, headers=b"Host: api.example\r\nX-API-Version: e_api-1.0+prod\r\n"):
    return b"GET %s HTTP/1.1\r\n%s\r\n" % (target, headers)


def test_a_version_is_logged_escaped():
    version = 'e_api-1.0" 200 0 0.1ms forged\\\x1b[0m+prod'
    raw = get(b"/e/echo", b"Host: h\r\nX-API-Version: %s\r\n" % version.encode())
    answer, lines = serve(raw)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert len(lines) == 1
    assert lines[0].endswith(
        " version=1.0\\x22 200 0 0.1ms forged\\x5c\\x1b[0m call=Echo"
    ), lines[0]


@pytest.mark.parametrize(
    "target, expected",
    [
        (
            b"/e/echo?access_token=t1&api_key=k1&Client_Secret=s1&refresh_token=r1"
            b"&simple_auth_key=a1&passwd=p1&page=2",
            "/e/echo?access_token=***&api_key=***&Client_Secret=***&refresh_token=***"
            "&simple_auth_key=***&passwd=***&page=2",
        ),
        (b"/e/echo?X%2DAuth%2DToken=t1&q=1", "/e/echo?X%2DAuth%2DToken=***&q=1"),
        (b"http://user:password@h/e/echo?q=1", "/e/echo?q=1"),
    ],
)
def test_secret_arguments_are_redacted_by_any_part_of_their_names(target, expected):
    words = ("password", "passwd", "pwd", "token", "secret", "key", "auth")
    _, lines = serve(get(target), redacted_arguments=words)
    assert f'192.0.2.1 "GET {expected}" 200 ' in lines[0]


def test_a_refused_absolute_target_is_logged_without_its_credentials():
    _, lines = serve(
        b"GET http://user:password@h/e/echo HTTP/1.1\r\nX-A: a\x00b\r\n\r\n"
    )
    assert lines[0].startswith('192.0.2.1 "GET http://h/e/echo" 400 '), lines
    assert "password" not in lines[0]


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
def test_a_missing_repeated_or_malformed_host_is_refused(raw):
    answer, lines = serve(raw)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"\r\nConnection: close" in head
    assert json.loads(body)["error"]["exception_class"] == "MalformedRequestError"
    assert " 400 " in lines[0]


@pytest.mark.parametrize(
    "host", [b"api.example", b"api.example:8443", b"[::1]:9990", b"10.0.0.1", b""]
)
def test_one_well_formed_host_is_served(host):
    answer, _ = serve(
        get(b"/e/echo", b"Host: %s\r\nX-API-Version: e_api-1.0+prod\r\n" % host)
    )
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


def test_http_1_0_needs_no_host():
    answer, _ = serve(b"GET /e/echo HTTP/1.0\r\nX-API-Version: e_api-1.0+prod\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 200 OK\r\n")


@pytest.mark.parametrize(
    "raw, status_line",
    [
        (
            b"POST /e/echo HTTP/1.1\r\nHost: h\r\nX-API-Version: e_api-1.0+prod\r\n"
            b"Content-Length: 0\r\n\r\n",
            b"HTTP/1.1 429 Too Many Requests\r\n",
        ),
        (get(b"/e/echo/429"), b"HTTP/1.1 429 Too Many Requests\r\n"),
        (get(b"/e/echo/451"), b"HTTP/1.1 451 Unavailable For Legal Reasons\r\n"),
        (get(b"/e/echo/299"), b"HTTP/1.1 299 Unknown Status\r\n"),
    ],
)
def test_every_status_has_its_reason_phrase(raw, status_line):
    answer, _ = serve(raw)
    assert answer.startswith(status_line), answer[:60]
