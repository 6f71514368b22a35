"""
The statsd client and the daemon's per-request metrics, received on a real
UDP socket.
"""

import json
import re
import select
import socket
import time
from types import SimpleNamespace

import pytest
import pytest_twisted
from apitools import make_api
from twisted.internet import reactor, task
from twisted.logger import globalLogPublisher

from shiji._answer_metrics import AnswerMetrics
from shiji.statsd import StatsdClient
from shiji.testing import TestClient
from shiji.urldispatch import URLMatchJSONResource
from shiji.webapi import APIError


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


def daemon_lines(names):
    """
    What the daemon test's requests send; ``@`` stands for a timer's value,
    which is whatever the request took.
    """
    if names == "v1":
        probe = [
            "test.probe_api.custom:1|c",
            "test.probe_api.1_0.Probe.GET:1|c",
            "test.probe_api.1_0.Probe.GET:@|ms",
            "test.probe_api.1_0.Probe.GET.2xx:1|c",
        ]
        return [
            *probe,
            "test.probe_api.error.AccessDeniedError:1|c",
            "test.probe_api.1_0.Fail.GET:1|c",
            "test.probe_api.1_0.Fail.GET:@|ms",
            "test.probe_api.1_0.Fail.GET.4xx:1|c",
            "test.unrouted:1|c",
            "test.unrouted:@|ms",
            "test.unrouted.4xx:1|c",
            # /_health: not counted unless logged
            *probe,
        ]
    probe = [
        "test.probe_api.custom:1|c",
        "test.probe_api.prod.1_0.Probe.GET:1|c",
        "test.probe_api.prod.1_0.Probe.GET:@|ms",
        "test.probe_api.prod.1_0.Probe.GET.2xx:1|c",
        "test.probe_api.prod.1_0.Probe.GET.status.200:1|c",
    ]
    return [
        *probe,
        "test.probe_api.prod.1_0.Fail.GET:1|c",
        "test.probe_api.prod.1_0.Fail.GET:@|ms",
        "test.probe_api.prod.1_0.Fail.GET.4xx:1|c",
        "test.probe_api.prod.1_0.Fail.GET.status.403:1|c",
        "test.probe_api.prod.1_0.Fail.GET.errors.AccessDeniedError:1|c",
        "test.unrouted:1|c",
        "test.unrouted:@|ms",
        "test.unrouted.4xx:1|c",
        "test.unrouted.status.404:1|c",
        "test.unrouted.errors.UnknownAPIError:1|c",
        "test.health:1|c",
        "test.health:@|ms",
        "test.health.2xx:1|c",
        "test.health.status.200:1|c",
        *probe,
    ]


@pytest.mark.slow
@pytest.mark.parametrize("names", ["v2", "v1"])
def test_the_daemon_sends_per_request_metrics(shijid, receiver, names):
    daemon = shijid(
        {
            "statsd": {
                "host": "127.0.0.1",
                "port": str(receiver.getsockname()[1]),
                "scheme": "test",
                "names": names,
            }
        }
    )
    assert daemon.request("GET", "/probe/probe")[0] == 200
    assert daemon.request("GET", "/probe/fail")[0] == 403
    assert daemon.request("GET", "/elsewhere")[0] == 404
    assert daemon.request("GET", "/_health")[0] == 200
    assert daemon.request("GET", "/probe/probe")[0] == 200
    expected = daemon_lines(names)
    last = re.escape(expected[-1])
    packets = received(receiver, until=f"(?s)unrouted.*^{last}$")
    found = "\n".join(packets).split("\n")
    assert len(found) == len(expected), found
    for line, pattern in zip(found, expected):
        timer = re.escape(pattern).replace("@", "[0-9]+\\.[0-9]{3}")
        assert re.fullmatch(timer, line), (line, pattern)


@pytest.mark.slow
def test_the_daemon_serves_normally_with_an_unresolvable_statsd_host(shijid):
    daemon = shijid({"statsd": {"host": "statsd.invalid"}})
    started = time.monotonic()
    for _ in range(20):
        status, _, body = daemon.request("GET", "/probe/probe")
        assert status == 200
        assert json.loads(body)["pid"] == daemon.process.pid
    assert time.monotonic() - started < 10


# The site's metrics, in memory through the real protocol, sent by a real
# statsd client to a real UDP socket. The site's clock does not move, so
# every timer reads 0.000 ms.


class SlowDown(APIError):
    error_code = 900
    exception_text = "Slow down."
    http_status = 429


class Ping(URLMatchJSONResource):
    routes = r"ping"

    def render_GET(self, request):
        return {"pong": True}

    def render_POST(self, request):
        raise SlowDown(request)


class Crash(URLMatchJSONResource):
    routes = r"crash"

    def render_GET(self, request):
        raise RuntimeError("a bug")


class Later(URLMatchJSONResource):
    routes = r"later"

    def render_GET(self, request):
        return task.deferLater(reactor, 0.01, lambda: {"pong": True})


def shop_api():
    return make_api("shop_api", [("1.0", r"1\.[0-9]+", [Ping, Crash, Later])])


class Packets:
    """The datagrams arriving at ``sock``, one at a time, each wait bounded."""

    def __init__(self, sock):
        self.sock = sock

    def next(self, timeout=5.0):
        ready, _, _ = select.select([self.sock], [], [], timeout)
        assert ready, "no packet arrived"
        return self.sock.recv(65536).decode()

    def assert_none(self, wait=0.2):
        ready, _, _ = select.select([self.sock], [], [], wait)
        assert not ready, self.sock.recv(65536)


async def started_statsd(receiver, scheme="s"):
    statsd = StatsdClient("127.0.0.1", receiver.getsockname()[1], scheme)
    statsd.startService()
    for _ in range(50):
        if statsd.address is not None:
            return statsd
        await settle(0.02)
    statsd.stopService()
    raise AssertionError("127.0.0.1 never resolved")


def lines(*names):
    """The packet of ``names``: a trailing ``@ms`` marks the timer."""
    return "\n".join(
        f"{name[:-3]}:0.000|ms" if name.endswith("@ms") else f"{name}:1|c"
        for name in names
    )


def counted(base, status, error=None, *, v1=False):
    """What an answer under ``base`` sends: counter, timer, status, error."""
    if v1:
        return ([error] if error else []) + [
            base,
            base + "@ms",
            f"{base}.{status[0]}xx",
        ]
    return [base, base + "@ms", f"{base}.{status[0]}xx", f"{base}.status.{status}"] + (
        [error] if error else []
    )


PREFLIGHT = {
    "Origin": "https://app.example.com",
    "Access-Control-Request-Method": "GET",
}

# name: (method, path, request options, status, v2 names, v1 names)
SCENARIOS = {
    "prod call": (
        "GET",
        "/shop/ping",
        {"version": "1.0"},
        200,
        counted("s.shop_api.prod.1_0.Ping.GET", "200"),
        counted("s.shop_api.1_0.Ping.GET", "200", v1=True),
    ),
    "test-mode call": (
        "GET",
        "/shop/ping",
        {"version": "1.0", "mode": "test"},
        200,
        counted("s.shop_api.test.1_0.Ping.GET", "200"),
        counted("s.shop_api.1_0.Ping.GET", "200", v1=True),
    ),
    "unknown call": (
        "GET",
        "/shop/nowhere",
        {"version": "1.0"},
        404,
        counted(
            "s.shop_api.prod.1_0.unrouted",
            "404",
            "s.shop_api.prod.1_0.unrouted.errors.UnknownAPICallError",
        ),
        counted(
            "s.shop_api.unrouted",
            "404",
            "s.shop_api.error.UnknownAPICallError",
            v1=True,
        ),
    ),
    "unknown API": (
        "GET",
        "/no.such:api|x@y/ping",
        {"version": None},
        404,
        counted("s.unrouted", "404", "s.unrouted.errors.UnknownAPIError"),
        counted("s.unrouted", "404", v1=True),
    ),
    "unknown version": (
        "GET",
        "/shop/ping",
        {"version": "9.0"},
        406,
        counted(
            "s.shop_api.unrouted",
            "406",
            "s.shop_api.unrouted.errors.UnknownAPIVersionError",
        ),
        counted(
            "s.shop_api.unrouted",
            "406",
            "s.shop_api.error.UnknownAPIVersionError",
            v1=True,
        ),
    ),
    "429": (
        "POST",
        "/shop/ping",
        {"version": "1.0"},
        429,
        counted(
            "s.shop_api.prod.1_0.Ping.POST",
            "429",
            "s.shop_api.prod.1_0.Ping.POST.errors.SlowDown",
        ),
        counted(
            "s.shop_api.1_0.Ping.POST", "429", "s.shop_api.error.SlowDown", v1=True
        ),
    ),
    "docs page": (
        "GET",
        "/_docs/",
        {"version": None},
        200,
        counted("s.docs", "200"),
        counted("s.unrouted", "200", v1=True),
    ),
    "health check": (
        "GET",
        "/_health",
        {"version": None},
        200,
        counted("s.health", "200"),
        [],  # v1 counts the health checks only when they are logged
    ),
    "OPTIONS preflight": (
        "OPTIONS",
        "/shop/ping",
        {"version": None, "headers": PREFLIGHT},
        204,
        counted("s.shop_api.options", "204"),
        counted("s.shop_api.unrouted", "204", v1=True),
    ),
    "OPTIONS *": (
        "OPTIONS",
        "*",
        {"version": None},
        200,
        counted("s.options", "200"),
        counted("s.unrouted", "200", v1=True),
    ),
    "handler crash": (
        "GET",
        "/shop/crash",
        {"version": "1.0"},
        500,
        counted(
            "s.shop_api.prod.1_0.Crash.GET",
            "500",
            "s.shop_api.prod.1_0.Crash.GET.errors.UnexpectedServerError",
        ),
        counted(
            "s.shop_api.1_0.Crash.GET",
            "500",
            "s.shop_api.error.UnexpectedServerError",
            v1=True,
        ),
    ),
}


@pytest.mark.parametrize("names", ["v2", "v1"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest_twisted.ensureDeferred
async def test_the_site_sends_these_packets(receiver, names, scenario):
    method, path, options, status, v2_names, v1_names = SCENARIOS[scenario]
    statsd = await started_statsd(receiver)
    try:
        client = TestClient(
            {"shop": shop_api()},
            metrics=statsd,
            metric_names=names,
            serve_docs=True,
            cross_origin_domains=["https://app.example.com"],
        )
        response = await client.request(method, path, **options)
        assert response.status == status
        statsd.flush()
        expected = v2_names if names == "v2" else v1_names
        packets = Packets(receiver)
        if expected:
            assert packets.next() == lines(*expected)
        packets.assert_none()
    finally:
        statsd.stopService()


@pytest.mark.parametrize("names", ["v2", "v1"])
@pytest_twisted.ensureDeferred
async def test_an_answer_given_later_is_counted_like_one_given_at_once(receiver, names):
    # The in-memory client closes its connection as soon as the answer is
    # complete: the answer is counted all the same, as shijid counts it.
    statsd = await started_statsd(receiver)
    try:
        client = TestClient({"shop": shop_api()}, metrics=statsd, metric_names=names)
        for path in ("/shop/ping", "/shop/later"):
            response = await client.get(path, version="1.0")
            assert (response.status, response.json) == (200, {"pong": True})
        statsd.flush()
        v1 = names == "v1"
        api = "s.shop_api.1_0" if v1 else "s.shop_api.prod.1_0"
        packets = Packets(receiver)
        assert packets.next() == lines(
            *counted(f"{api}.Ping.GET", "200", v1=v1),
            *counted(f"{api}.Later.GET", "200", v1=v1),
        )
        packets.assert_none()
        assert len(client.access_lines) == 2
    finally:
        statsd.stopService()


@pytest.mark.parametrize(
    "names, expected",
    [
        (
            "v2",
            counted("s.unrouted", "400", "s.unrouted.errors.MalformedRequestError"),
        ),
        ("v1", counted("s.unrouted", "400", v1=True)),
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_refused_request_is_counted_unrouted(receiver, names, expected):
    statsd = await started_statsd(receiver)
    try:
        client = TestClient({"shop": shop_api()}, metrics=statsd, metric_names=names)
        response = await client.send_raw(b"GET /shop/ping HTTP/1.1\n\n")
        assert response.status == 400
        statsd.flush()
        packets = Packets(receiver)
        assert packets.next() == lines(*expected)
        packets.assert_none()
    finally:
        statsd.stopService()


@pytest_twisted.ensureDeferred
async def test_v1_counts_health_checks_when_they_are_logged(receiver):
    statsd = await started_statsd(receiver)
    try:
        client = TestClient(
            {"shop": shop_api()}, metrics=statsd, metric_names="v1", log_health=True
        )
        assert (await client.get("/_health", version=None)).status == 200
        statsd.flush()
        assert Packets(receiver).next() == lines(*counted("s.unrouted", "200", v1=True))
    finally:
        statsd.stopService()


class Recorder:
    """Metrics kept as ``(kind, name)`` pairs, timers included."""

    def __init__(self):
        self.seen = []

    def increment(self, name, value=1, sample_rate=1.0):
        self.seen.append(("c", name))

    def timing(self, name, milliseconds, sample_rate=1.0):
        self.seen.append(("ms", name))


@pytest.mark.parametrize(
    "names, base",
    [("v2", "shop_api.prod.1_0.Ping.other"), ("v1", "shop_api.1_0.Ping.other")],
)
@pytest_twisted.ensureDeferred
async def test_nothing_a_client_sends_becomes_a_name(names, base):
    # The version asked for (1.77, served by the version 1.0), a method of
    # the client's invention and the first segment of a path no API serves
    # never appear in a name: the version's key does, and "other" for the
    # method.
    recorder = Recorder()
    client = TestClient({"shop": shop_api()}, metrics=recorder, metric_names=names)
    response = await client.request("BREW.X|Y", "/shop/ping", version="1.77")
    assert response.status == 405
    response = await client.get("/a.b:c%7Cd@e%20f/ping", version=None)
    assert response.status == 404
    v2 = names == "v2"
    assert recorder.seen == [
        *([] if v2 else [("c", "shop_api.error.MethodNotAllowedError")]),
        ("c", base),
        ("ms", base),
        ("c", f"{base}.4xx"),
        *(
            [("c", f"{base}.status.405"), ("c", f"{base}.errors.MethodNotAllowedError")]
            if v2
            else []
        ),
        ("c", "unrouted"),
        ("ms", "unrouted"),
        ("c", "unrouted.4xx"),
        *(
            [("c", "unrouted.status.404"), ("c", "unrouted.errors.UnknownAPIError")]
            if v2
            else []
        ),
    ]


@pytest_twisted.ensureDeferred
async def test_names_are_made_once():
    recorder = Recorder()
    client = TestClient({"shop": shop_api()}, metrics=recorder)
    for _ in range(3):
        assert (await client.get("/shop/ping", version="1.0")).status == 200
    first = recorder.seen[:4]
    assert [name for _, name in first] == [
        "shop_api.prod.1_0.Ping.GET",
        "shop_api.prod.1_0.Ping.GET",
        "shop_api.prod.1_0.Ping.GET.2xx",
        "shop_api.prod.1_0.Ping.GET.status.200",
    ]
    # The same string objects every time: looked up, not formatted again.
    for start in (4, 8):
        again = recorder.seen[start : start + 4]
        assert all(a[1] is b[1] for a, b in zip(first, again)), again


def test_an_error_class_that_is_not_text_is_named_as_text():
    # An error's exception_class is text; one that is not must not stop
    # the answer from being counted.
    recorder = Recorder()
    counter = AnswerMetrics(
        recorder, "v2", health_path=b"/_health", docs_prefix=None, count_health_v1=False
    )
    request = SimpleNamespace(
        api_call="Call",
        api_name="n_api",
        api_mode="prod",
        version_key="1.0",
        method=b"GET",
        path=b"/n/call",
        code=409,
        error_class=42,
    )
    counter.answered(request, 1.0)
    assert recorder.seen[-1] == ("c", "n_api.prod.1_0.Call.GET.errors.42")
