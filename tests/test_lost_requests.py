"""
A request whose client goes away before its answer is complete is logged,
with status 499 and the time it had run, and counted as lost: shijid's site
listening on 127.0.0.1, a client closing a real TCP connection, the metrics
received on a real UDP socket.
"""

import re
import socket
import time

import pytest
import pytest_twisted
from apitools import make_api
from test_statsd import Packets, started_statsd
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock

from shiji._settings import DEFAULT_SETTINGS
from shiji._site import Site
from shiji.urldispatch import APIRouter, URLMatchJSONResource


@pytest.fixture
def receiver():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


# What the slow call was given: the request and its answer, still to come.
STARTED = []


class Slow(URLMatchJSONResource):
    routes = r"slow"

    def render_POST(self, request):
        answer = defer.Deferred()
        STARTED.append((request, answer))
        return answer


class Leaving(Protocol):
    """Sends a request, and goes when told, its answer unread."""

    def __init__(self, data):
        self.data = data
        self.received = b""
        self.gone = defer.Deferred()

    def connectionMade(self):
        self.transport.write(self.data)

    def dataReceived(self, data):
        self.received += data

    def connectionLost(self, reason):
        self.gone.callback(None)


async def wait_for(condition, timeout=5.0):
    """Wait, at most ``timeout`` seconds, until ``condition()`` holds."""
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await deferLater(0.01)
    raise AssertionError("waited in vain")


def deferLater(seconds):
    waiting = defer.Deferred()
    reactor.callLater(seconds, waiting.callback, None)
    return waiting


async def lose_a_slow_post(statsd, names, path=b"/shop/slow"):
    """
    POST to the slow call, close the connection once the handler runs,
    1.5 seconds later on the site's clock; the site's access lines.
    """
    STARTED.clear()
    settings = DEFAULT_SETTINGS.replace(metric_names=names)
    router = APIRouter({"shop": make_api("shop_api", [("1.0", r"1\.0", [Slow])])})
    clock = Clock()
    site = Site(router, settings, metrics=statsd, clock=clock)
    logged = []
    site.access.sink = logged.append
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    try:
        body = b'{"n": 1}'
        client = Leaving(
            b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"X-API-Version: shop_api-1.0+prod\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (path, len(body), body)
        )
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)
        await connectProtocol(endpoint, client)
        await wait_for(lambda: STARTED)
        [(request, answer)] = STARTED
        clock.advance(1.5)
        client.transport.loseConnection()
        await client.gone
        await wait_for(lambda: not site.connections)
        assert request.disconnected and site.in_flight == set()
        # The handler's answer, after its client has gone, changes nothing.
        answer.callback({"late": True})
        assert client.received == b""
        return logged
    finally:
        await port.stopListening()


@pytest.mark.parametrize("names", ["v2", "v1"])
@pytest_twisted.ensureDeferred
async def test_a_request_whose_client_left_is_logged_and_counted(receiver, names):
    statsd = await started_statsd(receiver)
    try:
        logged = await lose_a_slow_post(statsd, names)
        statsd.flush()
        packets = Packets(receiver)
        if names == "v2":
            assert packets.next() == (
                "s.shop_api.prod.1_0.Slow.POST.lost:1|c\n"
                "s.shop_api.prod.1_0.Slow.POST:1500.000|ms"
            )
        # v1 never counted them.
        packets.assert_none()
    finally:
        statsd.stopService()
    assert logged == [
        '127.0.0.1 "POST /shop/slow" 499 0 1500.0ms api=shop_api version=1.0 call=Slow'
    ]


@pytest_twisted.ensureDeferred
async def test_a_request_lost_without_metrics_is_logged():
    logged = await lose_a_slow_post(None, "v2")
    assert logged == [
        '127.0.0.1 "POST /shop/slow" 499 0 1500.0ms api=shop_api version=1.0 call=Slow'
    ]


@pytest.mark.slow
def test_shijid_logs_and_counts_a_request_whose_client_left(shijid, receiver):
    from test_statsd import received

    daemon = shijid(
        {
            "statsd": {
                "host": "127.0.0.1",
                "port": str(receiver.getsockname()[1]),
                "scheme": "test",
            }
        }
    )
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
        sock.sendall(
            b"GET /probe/sleep/5 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"X-API-Version: probe_api-1.0+prod\r\n\r\n"
        )
        time.sleep(0.3)
    base = r"test\.probe_api\.prod\.1_0\.Sleep\.GET"
    packets = received(receiver, until=rf"^{base}:[0-9.]+\|ms$")
    assert re.fullmatch(
        rf"{base}\.lost:1\|c\n{base}:[0-9]+\.[0-9]{{3}}\|ms", "\n".join(packets)
    ), packets
    daemon.wait_for_log(
        r'\[shiji\.access#info\] 127\.0\.0\.1 "GET /probe/sleep/5" 499 0 '
        r"[0-9]+\.[0-9]ms api=probe_api version=1\.0 call=Sleep\n"
    )
