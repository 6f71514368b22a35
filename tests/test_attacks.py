"""
Attacks on shijid serving the example, each once found to work and each now
refused: over real sockets, against the shipped configuration.
"""

import contextlib
import http.client
import json
import platform
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from daemons import example_daemon

pytestmark = pytest.mark.slow

VERSION = b"X-API-Version: mylogin_api-1.0+prod\r\n"
DOCS = b"/_docs/mylogin_api/1.0/openapi.json"


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    from mylogin_api import passwords

    if passwords.scrypt is None:
        pytest.skip("the example's login service needs scrypt")
    # Behind a reverse proxy on the same host, as the README advises.
    daemon = example_daemon(tmp_path_factory.mktemp("attacks"), honor_x_realip="true")
    daemon.start()
    yield daemon
    try:
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    log = daemon.log_text()
    assert "Traceback" not in log and "Unhandled" not in log, log


def call(daemon, method, path, body=None, headers=()):
    """One request on a connection of its own; returns status, reason,
    headers and the JSON body."""
    connection = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    try:
        sent = {"X-API-Version": "mylogin_api-1.0+prod", **dict(headers)}
        if body is not None:
            sent["Content-Type"] = "application/json"
            if not isinstance(body, bytes):
                body = json.dumps(body).encode()
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        answer = response.read()
        return (
            response.status,
            response.reason,
            dict(response.getheaders()),
            json.loads(answer) if answer else None,
        )
    finally:
        connection.close()


def resident_kib(pid):
    """The resident memory of process ``pid``, in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def get(path, headers=b""):
    return b"GET %s HTTP/1.1\r\nHost: example\r\n%s\r\n" % (path, headers)


def pipeline(port, count, *, read, receive_buffer=None):
    """A connection that sends ``count`` pipelined requests for the OpenAPI
    document, and reads every answer (``read``) or none."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    if read:
        sock.sendall(get(DOCS) * count)
        answered = 0
        received = b""
        while answered < count:
            data = sock.recv(1 << 20)
            assert data, "closed early"
            received += data
            answered += data.count(b"HTTP/1.1 200 OK\r\n")
        sock.close()
        return None
    sender = threading.Thread(target=_send_quietly, args=(sock, get(DOCS) * count))
    sender.daemon = True
    sender.start()
    return sock


# Resident memory may grow by this much (KiB): PyPy's collector lets garbage
# pile up until its next major collection, which comes later as the heap grows.
GROWTH_ALLOWED = 24 * 1024 if platform.python_implementation() == "PyPy" else 4 * 1024


def test_pipelined_requests_wait_for_a_client_that_does_not_read(example):
    # Warm up with the same load, every answer read: the documentation is
    # rendered and cached, and the allocator and collector settle.
    for _ in range(3):
        for _ in range(4):
            pipeline(example.port, 150, read=True)
    time.sleep(0.5)
    idle = resident_kib(example.process.pid)

    # Four clients send 2,000 requests each and read no answer. Each answer
    # is 35 kB: answered into memory, they would take 280 MB.
    attackers = [
        pipeline(example.port, 2000, read=False, receive_buffer=4096) for _ in range(4)
    ]
    try:
        time.sleep(3)
        loaded = resident_kib(example.process.pid)
        assert loaded - idle < GROWTH_ALLOWED, (idle, loaded)
        # Everyone else is still answered at once.
        with socket.create_connection(("127.0.0.1", example.port), timeout=5) as other:
            other.sendall(get(b"/myloginapi/ping", VERSION))
            assert other.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        for sock in attackers:
            sock.close()


def _send_quietly(sock, data):
    with contextlib.suppress(OSError):
        sock.sendall(data)


def test_parallel_logins_cannot_pass_the_login_limit(example):
    email = "victim@example.com"
    status, *_ = call(
        example, "POST", "/myloginapi/users", {"email": email, "password": "right one!"}
    )
    assert status == 201
    barrier = threading.Barrier(30)

    def attempt(password, client="192.0.2.66"):
        return call(
            example,
            "POST",
            "/myloginapi/login",
            {"email": email, "password": password},
            {"X-Real-IP": client},
        )

    def guess(n):
        barrier.wait(10)
        return attempt(f"wrong guess {n}")

    with ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(guess, range(30)))
    statuses = [answer[0] for answer in answers]
    # Five guesses (the limit) reach a password check; the other 25 are
    # refused before, whichever arrived first.
    assert sorted(statuses) == [401] * 5 + [429] * 25, statuses
    for status, reason, headers, body in answers:
        if status == 429:
            assert reason == "Too Many Requests"
            assert 1 <= int(headers["Retry-After"]) <= 900
            assert body["error"]["exception_class"] == "TooManyAttemptsError"
    # The right password from there is refused too; from elsewhere it works.
    assert attempt("right one!")[0] == 429
    assert attempt("right one!", "192.0.2.67")[0] == 200


def test_behind_a_trusted_proxy_each_client_has_its_own_limit(example):
    def guess(email, client):
        status, *_ = call(
            example,
            "POST",
            "/myloginapi/login",
            {"email": email, "password": "not theirs"},
            {"X-Real-IP": client},
        )
        return status

    # Five clients behind the proxy fail five times each on their own email.
    for n in range(5):
        for _ in range(5):
            assert guess(f"client{n}@example.com", f"198.51.100.{n}") == 401
    assert guess("client0@example.com", "198.51.100.0") == 429
    # Another client of the same proxy is not locked out, not even of those
    # accounts.
    assert guess("client0@example.com", "198.51.100.77") == 401


@pytest.mark.parametrize(
    "path, body",
    [
        (
            "/myloginapi/users",
            b'{"email": "a@example.com", "password": "pass\\ud800word"}',
        ),
        (
            "/myloginapi/login",
            b'{"email": "a\\udfff@example.com", "password": "password"}',
        ),
        (
            "/myloginapi/ping?simple_auth_key=abc",
            b'{"client_tz": 1, "client_id": "\\ud800"}',
        ),
    ],
)
def test_a_lone_surrogate_is_invalid_json_not_a_crash(example, path, body):
    status, _, _, answer = call(example, "POST", path, body)
    assert (status, answer["error"]["exception_class"]) == (409, "JSONDecodeError")


def test_secret_query_arguments_never_reach_the_log(example):
    secrets = {
        "simple_auth_key": "abc",
        "access_token": "tok-1",
        "api_key": "key-2",
        "client_secret": "sec-3",
        "refresh_token": "ref-4",
        "X-Auth-Hint": "auth-5",
    }
    query = "&".join(f"{name}={value}" for name, value in secrets.items())
    status, *_ = call(example, "GET", f"/myloginapi/ping/7?{query}&page=2")
    assert status == 200
    with socket.create_connection(("127.0.0.1", example.port), timeout=10) as sock:
        sock.sendall(
            b"GET http://user:hunter2@h/myloginapi/ping HTTP/1.1\r\nX: \x00\r\n\r\n"
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 400 Bad Request\r\n")
    example.wait_for_log(r'"GET http://h/myloginapi/ping" 400 ')
    log = example.log_text()
    masked = "&".join(f"{name}=***" for name in secrets)
    assert f'"GET /myloginapi/ping/7?{masked}&page=2" 200 ' in log
    for value in (*secrets.values(), "hunter2"):
        assert not re.search(rf"\b{re.escape(value)}\b", log), value
