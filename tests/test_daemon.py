"""
shijid over real sockets: serving, options, pid file, shutdown, limits.
"""

import datetime
import email.utils
import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest
from daemons import (
    ROOT,
    alive,
    example_daemon,
    failing_run,
    run_shijid,
    write_config,
)

pytestmark = pytest.mark.slow


def test_serves_the_example_with_the_shipped_configuration(tmp_path):
    from mylogin_api import passwords

    if passwords.scrypt is None:
        pytest.skip("the shipped example's login service needs scrypt")
    daemon = example_daemon(tmp_path).start()
    try:
        status, headers, body = daemon.request(
            "GET",
            "/myloginapi/ping/123",
            headers={"X-API-Version": "mylogin_api-1.0+prod"},
        )
        assert status == 200
        assert headers["Server"] == "Shiji API Server"
        # RFC 9110's IMF-fixdate, current to the second it is cached for.
        sent = email.utils.parsedate_to_datetime(headers["Date"])
        now = datetime.datetime.now(datetime.timezone.utc)
        assert abs((now - sent).total_seconds()) < 5
        assert headers["Date"].endswith(" GMT")
        assert headers["Content-Type"] == "application/json; charset=utf-8"
        assert json.loads(body) == (
            "PONG! Right back at ya. I'm production baby! (Timestamp Val: 123) "
            "(API: mylogin_api, Version: 1.0, Mode: prod)"
        )
        status, _, body = daemon.request(
            "POST",
            "/myloginapi/ping/123?simple_auth_key=abc",
            body={"client_tz": -7, "client_id": "c"},
            headers={"X-API-Version": "mylogin_api-1.0+prod"},
        )
        assert status == 200
        assert json.loads(body)["result"]["client_id"] == "c"
        assert daemon.stop() == 0
    finally:
        daemon.kill()


def test_options_reach_the_router(shijid):
    daemon = shijid(
        {
            "general": {
                "server_ident": "Probe Server",
                "cross_origin_domains": "*",
                "inhibit_http_caching": "true",
                "version_header": "X-DigiTar-API-Version",
                "strict_charset": "true",
                "thread_pool_size": "3",
            },
            "config_probe_api": {"colour": "blue"},
        }
    )
    headers = {"X-DigiTar-API-Version": "probe_api-1.0+prod"}
    status, response_headers, body = daemon.request(
        "GET", "/probe/probe", headers=headers
    )
    assert status == 200
    assert response_headers["Server"] == "Probe Server"
    assert response_headers["Access-Control-Allow-Origin"] == "*"
    assert response_headers["Cache-Control"] == "no-cache"
    assert response_headers["Pragma"] == "no-cache"
    probe = json.loads(body)
    assert probe["thread_pool_max"] == 3
    assert probe["api_config"] == {"probe_api": {"colour": "blue", "validated": True}}
    status, _, _ = daemon.request(
        "POST",
        "/probe/probe",
        body=b'{"n": 1}',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert status == 409
    status, _, body = daemon.request(
        "POST",
        "/probe/probe",
        body=b'{"n": 1}',
        headers={**headers, "Content-Type": "application/json; charset=utf-8"},
    )
    assert status == 200


@pytest.mark.parametrize(
    "reactor, name",
    [("select", "SelectReactor"), ("poll", "PollReactor"), ("epoll", "EPollReactor")],
)
def test_reactor_option(shijid, reactor, name):
    daemon = shijid({"general": {"reactor": reactor}})
    assert json.loads(daemon.request("GET", "/probe/probe")[2])["reactor"] == name


def test_shiji_config_overrides_the_command_line(tmp_path, shijid):
    real = write_config(
        tmp_path / "real.conf",
        {
            "general": {
                "listen_ip": "127.0.0.1",
                "listen_port": "0",
                "base_path": str(ROOT / "tests" / "daemon_apis"),
                "server_ident": "From SHIJI_CONFIG",
            },
            "logging": {"log_file": str(tmp_path / "real.log")},
            "apis": {"probe_api": "probe"},
        },
    )
    daemon = shijid(env=dict(os.environ, SHIJI_CONFIG=str(real)))
    assert daemon.request("GET", "/probe/probe")[1]["Server"] == "From SHIJI_CONFIG"


def test_pid_file_written_replaced_when_stale_refused_when_held_and_removed(
    tmp_path, shijid
):
    pidfile = tmp_path / "shijid.pid"
    pidfile.write_text("999999\n")
    daemon = shijid(args=["-p", str(pidfile)])
    assert pidfile.read_text() == f"{daemon.process.pid}\n"
    second = run_shijid("-c", str(daemon.config), "-p", str(pidfile))
    assert second.returncode == 1
    assert second.stderr == (
        f"shijid: error: {pidfile}: shijid is already running as process {daemon.process.pid}\n"
    )
    assert daemon.stop() == 0
    assert not pidfile.exists()


def slow_requests(daemon, count, seconds):
    results = [None] * count

    def call(index):
        try:
            results[index] = daemon.request(
                "GET", f"/probe/sleep/{seconds}", timeout=30
            )[0]
        except Exception as e:
            results[index] = repr(e)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


def wait_in_flight(daemon, count, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if json.loads(daemon.request("GET", "/probe/in_flight")[2])["others"] >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{count} requests never were in flight together")


def test_sigterm_lets_requests_in_flight_finish_and_exits_0(shijid):
    daemon = shijid()
    idle = daemon.connection()
    assert daemon.request("GET", "/probe/probe", connection=idle)[0] == 200
    threads, results = slow_requests(daemon, 8, 1.5)
    wait_in_flight(daemon, 8)
    started = time.monotonic()
    daemon.send(signal.SIGTERM)
    time.sleep(0.2)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", daemon.port), timeout=5)
    assert daemon.process.wait(30) == 0
    for thread in threads:
        thread.join(30)
    assert results == [200] * 8
    assert time.monotonic() - started < 5
    # the idle keep-alive connection was closed, not left hanging
    idle.sock.settimeout(5)
    assert idle.sock.recv(1) == b""
    assert "Received SIGTERM: draining and shutting down" in daemon.log_text()


def test_sigint_also_drains_and_a_second_signal_is_harmless(shijid):
    daemon = shijid()
    threads, results = slow_requests(daemon, 3, 1.0)
    wait_in_flight(daemon, 3)
    daemon.send(signal.SIGINT)
    time.sleep(0.1)
    daemon.send(signal.SIGTERM)
    assert daemon.process.wait(30) == 0
    for thread in threads:
        thread.join(30)
    assert results == [200] * 3
    assert "Traceback" not in daemon.log_text()


def test_requests_still_running_after_the_grace_period_are_cut(shijid):
    daemon = shijid({"general": {"shutdown_grace": "0.5"}})
    threads, results = slow_requests(daemon, 2, 20)
    wait_in_flight(daemon, 2)
    started = time.monotonic()
    assert daemon.stop() == 0
    assert time.monotonic() - started < 5
    for thread in threads:
        thread.join(10)
    assert all(result != 200 for result in results)
    assert "2 request(s) still running after 0.5s; closing them" in daemon.log_text()


def test_body_over_max_body_bytes_is_413_without_reading_it(shijid):
    daemon = shijid({"general": {"max_body_bytes": "1000"}})
    status, _headers, body = daemon.request(
        "POST", "/probe/probe", body={"n": 1, "pad": "x" * 900}
    )
    assert status == 200
    assert json.loads(body) == {"n": 1, "bytes": 919}

    # Announce 50 MB, send a little: the answer comes at once.
    sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
    sock.sendall(
        b"POST /probe/probe HTTP/1.1\r\nHost: x\r\nX-API-Version: probe_api-1.0+prod\r\n"
        b"Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n"
        + b"x"
        * 5000
    )
    answer = b""
    while b"}}" not in answer:
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"Connection: close" in head
    assert json.loads(body) == {
        "result": None,
        "error": {
            "error_code": 210,
            "exception_class": "RequestTooLargeError",
            "exception_text": "The request body is larger than the 1000 bytes this server accepts.",
        },
    }
    sock.settimeout(10)
    while sock.recv(65536):
        pass  # the server closes the connection
    sock.close()

    # A chunked body is counted as it arrives.
    sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
    chunk = b"x" * 600
    sock.sendall(
        b"POST /probe/probe HTTP/1.1\r\nHost: x\r\nX-API-Version: probe_api-1.0+prod\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + (b"%x\r\n%s\r\n" % (len(chunk), chunk))
        * 2
    )
    answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413 ")
    sock.close()
    assert daemon.request("GET", "/probe/probe")[0] == 200


def test_request_timeout_answers_503_and_the_connection_stays_usable(shijid):
    daemon = shijid({"general": {"request_timeout": "0.3"}})
    connection = daemon.connection()
    status, _, body = daemon.request("GET", "/probe/hang", connection=connection)
    assert status == 503
    assert json.loads(body)["error"] == {
        "error_code": 211,
        "exception_class": "RequestTimeoutError",
        "exception_text": "The API call did not complete within 0.3 seconds.",
    }
    assert daemon.request("GET", "/probe/probe", connection=connection)[0] == 200
    connection.close()


def test_idle_connections_are_closed_after_idle_timeout(shijid):
    daemon = shijid({"general": {"idle_timeout": "0.3"}})
    sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
    started = time.monotonic()
    assert sock.recv(1) == b""
    assert 0.2 < time.monotonic() - started < 5
    sock.close()


@pytest.mark.parametrize(
    "general, headers, client",
    [
        ({}, {"X-Real-IP": "203.0.113.9"}, "127.0.0.1"),
        ({"honor_x_realip": "true"}, {"X-Real-IP": "203.0.113.9"}, "203.0.113.9"),
        (
            {"honor_x_realip": "true"},
            {"X-Forwarded-For": "198.51.100.1, 203.0.113.9"},
            "203.0.113.9",
        ),
        (
            {"honor_x_realip": "true", "trusted_proxies": "127.0.0.1, 203.0.113.0/24"},
            {"X-Forwarded-For": "198.51.100.1, 203.0.113.9"},
            "198.51.100.1",
        ),
        (
            {"honor_x_realip": "true", "trusted_proxies": "10.0.0.0/8"},
            {"X-Real-IP": "203.0.113.9"},
            "127.0.0.1",
        ),
        ({"honor_x_realip": "true"}, {"X-Real-IP": "not-an-ip"}, "127.0.0.1"),
    ],
)
def test_client_address_headers_are_believed_only_from_trusted_proxies(
    shijid, general, headers, client
):
    daemon = shijid({"general": general})
    assert (
        json.loads(daemon.request("GET", "/probe/probe", headers=headers)[2])[
            "client_ip"
        ]
        == client
    )
    daemon.wait_for_log(rf'{client} "GET /probe/probe" 200')


def test_access_log_slow_requests_redaction_and_sighup(shijid, tmp_path):
    daemon = shijid(
        {
            "general": {"slow_request_ms": "100"},
            "logging": {"redacted_arguments": "password, api_key"},
        }
    )
    daemon.request(
        "GET", "/probe/sleep/0.2?password=hunter2&api_key=k3y&Password=x&page=2"
    )
    daemon.request("GET", "/probe/nothing")
    daemon.wait_for_log(r"call=-")
    log = daemon.log_text()
    assert (
        '127.0.0.1 "GET /probe/sleep/0.2?password=***&api_key=***&Password=***&page=2" 200 13 '
    ) in log
    assert "api=probe_api version=1.0 call=Sleep" in log
    assert '127.0.0.1 "GET /probe/nothing" 404 ' in log
    assert 'Slow request: "GET /probe/sleep/0.2?password=***' in log
    assert "hunter2" not in log and "k3y" not in log

    rotated = daemon.log_path.with_suffix(".1")
    daemon.log_path.rename(rotated)
    daemon.send(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while not daemon.log_path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    daemon.request("GET", "/probe/probe")
    daemon.wait_for_log(r'"GET /probe/probe" 200')
    assert "/probe/probe" not in rotated.read_text()


def test_unexpected_errors_are_logged_with_their_request_id(shijid):
    daemon = shijid()
    status, headers, body = daemon.request("GET", "/probe/crash")
    assert status == 500
    request_id = headers["X-Request-Id"]
    assert json.loads(body)["error"]["exception_text"] == (
        "An unexpected error has occurred processing the request. "
        f"Error: 'request id {request_id}'"
    )
    assert b"internal detail" not in body
    daemon.wait_for_log(rf'"GET /probe/crash" 500 .* id={request_id}')
    log = daemon.log_text()
    assert (
        f"Unexpected error answering GET /probe/crash (request id {request_id})" in log
    )
    assert "RuntimeError: internal detail 42" in log


def test_workers_share_the_port_and_a_worker_killed_under_load_is_replaced(shijid):
    daemon = shijid({"general": {"workers": "2"}})
    workers = worker_pids(daemon)
    assert daemon.process.pid not in workers
    victim = sorted(workers)[0]
    stop = threading.Event()
    outcomes = []

    def client():
        # A connection per request, so that accepts spread over the workers.
        while not stop.is_set():
            try:
                status, _, body = daemon.request("GET", "/probe/probe", timeout=5)
                outcomes.append((time.monotonic(), status, json.loads(body)["pid"]))
            except (OSError, http.client.HTTPException):
                outcomes.append((time.monotonic(), "failed", None))

    clients = [threading.Thread(target=client) for _ in range(4)]
    for thread in clients:
        thread.start()
    time.sleep(0.5)
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        served_by = {pid for when, _, pid in outcomes if when > killed_at + 0.5 and pid}
        if len(served_by - {victim}) == 2:
            break
        time.sleep(0.1)
    stop.set()
    for thread in clients:
        thread.join(20)
    failures = [outcome for outcome in outcomes if outcome[1] != 200]
    # Only requests the killed worker was answering may fail: at most one per
    # client.
    assert len(failures) <= 4, failures
    assert (
        sum(1 for when, status, _ in outcomes if when > killed_at and status == 200)
        > 10
    )
    replacement = {
        pid for when, _, pid in outcomes if when > killed_at + 0.5 and pid
    } - workers
    assert len(replacement) == 1
    daemon.wait_for_log(r"Worker \d ended .*; restarting it")
    survivors = (workers - {victim}) | replacement
    assert daemon.stop() == 0
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in survivors) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in survivors)


def test_a_burst_of_keep_alive_connections_is_spread_over_the_workers(shijid):
    daemon = shijid({"general": {"workers": "2"}})
    workers = worker_pids(daemon)
    # Connect all at once, as a client's pool does: the whole burst is queued
    # before a worker wakes to accept.
    sockets = [socket.socket() for _ in range(40)]
    for sock in sockets:
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", daemon.port))
    connections = []
    for sock in sockets:
        select.select([], [sock], [], 10)
        sock.setblocking(True)
        connection = daemon.connection()
        connection.sock = sock
        connections.append(connection)
    served_by = []
    for connection in connections:
        status, _, body = daemon.request("GET", "/probe/probe", connection=connection)
        assert status == 200
        served_by.append(json.loads(body)["pid"])
    for connection in connections:
        connection.close()
    assert set(served_by) == workers
    # Each connection lands on a worker by the hash of its address: an even
    # split, give or take (at least 8 of 40 each: a 1-in-10^4 miss).
    assert min(served_by.count(pid) for pid in workers) >= 8, served_by


def test_a_second_shijid_cannot_share_the_port_of_one_with_workers(shijid, tmp_path):
    first = shijid({"general": {"workers": "2"}})
    for workers in ("1", "2"):
        path, line = failing_run(
            tmp_path / f"second{workers}",
            {"general": {"listen_port": str(first.port), "workers": workers}},
        )
        assert line == (
            f"shijid: error: {path}: [general] listen_port: cannot listen on "
            f"127.0.0.1:{first.port}: [Errno 98] Address already in use"
        )
    assert first.request("GET", "/probe/probe")[0] == 200


def test_workers_drain_on_sigterm(shijid):
    daemon = shijid({"general": {"workers": "2"}})
    threads, results = slow_requests(daemon, 6, 1.0)
    time.sleep(0.4)
    assert daemon.stop() == 0
    for thread in threads:
        thread.join(30)
    assert results == [200] * 6


def test_check_validates_and_exits(tmp_path):
    config = write_config(
        tmp_path / "ok.conf",
        {
            "general": {"base_path": str(ROOT / "tests" / "daemon_apis")},
            "apis": {"probe_api": "probe"},
        },
    )
    result = run_shijid("--check", "-c", str(config))
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"{config}: OK\n",
        "",
    )


def test_usage_errors(tmp_path):
    result = run_shijid()
    assert result.returncode == 2
    assert result.stderr.startswith(
        "shijid: a configuration file is required: -c CONFIG\n"
    )
    env = dict(os.environ)
    env.pop("SHIJI_CONFIG", None)
    result = run_shijid("--bogus", env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("shijid: option --bogus not recognized\n")


def worker_pids(daemon, want=2, timeout=20):
    seen = set()
    deadline = time.monotonic() + timeout
    while len(seen) < want and time.monotonic() < deadline:
        seen.add(json.loads(daemon.request("GET", "/probe/probe")[2])["pid"])
    assert len(seen) == want
    return seen


def test_sighup_to_the_parent_reopens_every_workers_log(shijid):
    daemon = shijid({"general": {"workers": "2"}})
    worker_pids(daemon)
    rotated = daemon.log_path.with_suffix(".1")
    daemon.log_path.rename(rotated)
    daemon.send(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while not daemon.log_path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the workers reopen after the parent
    rotated_size = rotated.stat().st_size
    assert len(worker_pids(daemon)) == 2
    daemon.wait_for_log(r'(?s)"GET /probe/probe" 200.*"GET /probe/probe" 200')
    assert rotated.stat().st_size == rotated_size
    assert daemon.stop() == 0


def test_workers_stop_when_their_parent_is_killed(shijid):
    daemon = shijid({"general": {"workers": "2"}})
    workers = worker_pids(daemon)
    daemon.process.kill()
    daemon.process.wait(10)
    deadline = time.monotonic() + 15
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers)


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
@pytest.mark.parametrize("backlog", [None, "77"])
def test_listen_backlog(shijid, backlog):
    daemon = shijid({"general": {"listen_backlog": backlog}} if backlog else {})
    listing = subprocess.run(
        ["ss", "-ltn", f"sport = :{daemon.port}"],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout
    [line] = [line for line in listing.splitlines() if line.startswith("LISTEN")]
    assert line.split()[2] == (backlog or "1024")


def test_access_log_can_be_turned_off(shijid):
    daemon = shijid({"logging": {"access_log": "false"}})
    assert daemon.request("GET", "/probe/probe")[0] == 200
    assert daemon.request("GET", "/probe/crash")[0] == 500
    daemon.wait_for_log(r"Unexpected error answering GET /probe/crash")
    assert "shiji.access" not in daemon.log_text()


def test_the_daemon_serves_its_documentation(shijid):
    from openapi_spec_validator import validate

    daemon = shijid(
        {"general": {"server_ident": "Docs Server", "version_header": "X-V"}}
    )
    status, headers, body = daemon.request("GET", "/_docs/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Server"] == "Docs Server"
    assert headers["Content-Security-Policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
    )
    assert b'<a href="/_docs/probe_api/">probe_api</a>' in body
    status, headers, body = daemon.request("GET", "/_docs/probe_api/")
    assert status == 200
    assert body.startswith(b"<!DOCTYPE html>")
    assert b"in_flight" in body
    assert b"<code>X-V: probe_api-1.0+prod</code>" in body
    status, headers, body = daemon.request("GET", "/_docs/probe_api/openapi.json")
    assert json.loads(body) == {
        "api_name": "probe_api",
        "versions": [
            {"version": "1.0", "openapi": "/_docs/probe_api/1.0/openapi.json"}
        ],
    }
    status, headers, body = daemon.request("GET", "/_docs/probe_api/1.0/openapi.json")
    assert (status, headers["Content-Type"]) == (200, "application/json; charset=utf-8")
    document = json.loads(body)
    validate(document)
    assert document["servers"] == [{"url": f"http://127.0.0.1:{daemon.port}/probe"}]
    assert "/probe" in document["paths"]
    header = document["components"]["parameters"]["VersionHeader"]
    assert (header["name"], header["schema"]["default"]) == (
        "X-V",
        "probe_api-1.0+prod",
    )
    assert document["components"]["schemas"]["VersionHeader"]["enum"] == [
        "probe_api-1.0+prod",
        "probe_api-1.0+test",
    ]
    status, headers, body = daemon.request("GET", "/_docs/probe_api/9.9/openapi.json")
    assert status == 404
    assert json.loads(body)["error"]["exception_class"] == "UnknownAPICallError"
    status, headers, body = daemon.request("DELETE", "/_docs/")
    assert (status, headers["Allow"]) == (405, "GET, HEAD")


def test_documentation_can_be_turned_off(shijid):
    daemon = shijid({"general": {"serve_docs": "false"}})
    status, _, body = daemon.request("GET", "/_docs/")
    assert status == 404
    assert json.loads(body)["error"]["exception_class"] == "UnknownAPIError"


def test_a_start_that_fails_removes_its_pid_file(shijid, tmp_path):
    first = shijid()
    pidfile = tmp_path / "second.pid"
    path, line = failing_run(
        tmp_path / "second",
        {"general": {"listen_port": str(first.port)}},
        args=["-p", str(pidfile)],
    )
    assert line == (
        f"shijid: error: {path}: [general] listen_port: cannot listen on "
        f"127.0.0.1:{first.port}: [Errno 98] Address already in use"
    )
    assert not pidfile.exists()
    assert first.request("GET", "/probe/probe")[0] == 200
