"""
The statsd client and the daemon's per-request metrics, received on a real
UDP socket.
"""

import json
import re
import select
import socket
import time

import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.logger import globalLogPublisher

from shiji.statsd import StatsdClient


@pytest.fixture
def receiver():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def received(sock, until, timeout=5.0):
    """The packets received until a line matches the regex ``until``."""
    packets = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], 0.05)
        if ready:
            packets.append(sock.recv(65536).decode())
            if re.search(until, "\n".join(packets), re.M):
                return packets
    raise AssertionError(f"{until!r} never arrived: {packets}")


async def settle(seconds=0.1):
    await task.deferLater(reactor, seconds, lambda: None)


@pytest_twisted.ensureDeferred
async def test_metric_lines(receiver):
    client = StatsdClient("127.0.0.1", receiver.getsockname()[1], "myco.apis")
    client.startService()
    try:
        await settle()
        client.increment("logins")
        client.increment("logins", 5)
        client.decrement("sessions", 2)
        client.gauge("queue", 7.5)
        client.gauge("balance", -3)
        client.timing("db", 12.3456)
        with client.timer("block"):
            pass
        client.increment("sampled", sample_rate=0.99999999)
        await settle()
        lines = "\n".join(received(receiver, until=r"sampled")).split("\n")
    finally:
        client.stopService()
    assert lines[:7] == [
        "myco.apis.logins:1|c",
        "myco.apis.logins:5|c",
        "myco.apis.sessions:-2|c",
        "myco.apis.queue:7.5|g",
        "myco.apis.balance:0|g",
        "myco.apis.balance:-3|g",
        "myco.apis.db:12.346|ms",
    ]
    assert re.fullmatch(r"myco\.apis\.block:[0-9.]+\|ms", lines[7])
    assert lines[8] == "myco.apis.sampled:1|c|@0.99999999"


@pytest_twisted.ensureDeferred
async def test_metrics_are_batched_into_packets_that_fit_a_datagram(receiver):
    client = StatsdClient("127.0.0.1", receiver.getsockname()[1], "s")
    client.startService()
    try:
        await settle()
        for n in range(300):
            client.increment(f"counter.number{n}")
        await settle()
        packets = received(receiver, until=r"^s\.counter\.number299:1\|c$")
    finally:
        client.stopService()
    sizes = [len(packet.encode()) for packet in packets]
    assert all(size <= 1432 for size in sizes)
    assert all(size > 1432 - 30 for size in sizes[:-1]), sizes  # full, but for the last
    lines = "\n".join(packets).split("\n")
    assert lines == [f"s.counter.number{n}:1|c" for n in range(300)]


@pytest_twisted.ensureDeferred
async def test_an_unresolvable_host_never_slows_or_fails_callers():
    events = []
    globalLogPublisher.addObserver(events.append)
    client = StatsdClient("statsd.invalid", 8125, "s", retry_interval=60)
    client.startService()
    try:
        for _ in range(3):
            await settle(0.2)
        started = time.perf_counter()
        for _ in range(1000):
            client.increment("x")
        client.flush()
        assert time.perf_counter() - started < 1.0
        assert client.address is None
    finally:
        client.stopService()
        globalLogPublisher.removeObserver(events.append)
    assert any("cannot be resolved" in e.get("log_format", "") for e in events)


@pytest_twisted.ensureDeferred
async def test_a_server_that_is_down_is_no_error():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    client = StatsdClient("127.0.0.1", port, "s")
    client.startService()
    try:
        await settle()
        for _ in range(5):
            client.increment("x")
            client.flush()
        await settle()
        client.increment("x")
        client.flush()
    finally:
        client.stopService()


@pytest.mark.slow
def test_the_daemon_sends_per_request_metrics(shijid, receiver):
    daemon = shijid(
        {
            "statsd": {
                "host": "127.0.0.1",
                "port": str(receiver.getsockname()[1]),
                "scheme": "test",
            }
        }
    )
    assert daemon.request("GET", "/probe/probe")[0] == 200
    assert daemon.request("GET", "/probe/fail")[0] == 403
    assert daemon.request("GET", "/elsewhere")[0] == 404
    lines = "\n".join(received(receiver, until=r"^test\.unrouted\.4xx:1\|c$")).split(
        "\n"
    )
    assert "test.probe_api.custom:1|c" in lines
    assert "test.probe_api.1_0.Probe.GET:1|c" in lines
    assert "test.probe_api.1_0.Probe.GET.2xx:1|c" in lines
    assert any(
        re.fullmatch(r"test\.probe_api\.1_0\.Probe\.GET:[0-9.]+\|ms", line)
        for line in lines
    )
    assert "test.probe_api.error.AccessDeniedError:1|c" in lines
    assert "test.probe_api.1_0.Fail.GET.4xx:1|c" in lines
    assert "test.unrouted:1|c" in lines


@pytest.mark.slow
def test_the_daemon_serves_normally_with_an_unresolvable_statsd_host(shijid):
    daemon = shijid({"statsd": {"host": "statsd.invalid"}})
    started = time.monotonic()
    for _ in range(20):
        status, _, body = daemon.request("GET", "/probe/probe")
        assert status == 200
        assert json.loads(body)["pid"] == daemon.process.pid
    assert time.monotonic() - started < 10
