"""
Faults around a live shijid: shutdown under load, a full log disk, a statsd
server that is down. (Handlers that raise, return what JSON cannot encode,
never fire or write after finishing are in test_handlers; a worker killed
under load is in test_daemon.)
"""

import http.client
import json
import signal
import socket
import threading
import time

import pytest

pytestmark = pytest.mark.slow


class Load:
    """
    Clients sending requests in a loop over keep-alive connections, each
    reconnecting when the server answers ``Connection: close``, until the
    server stops accepting connections.

    A request counts as failed if it was sent and got no whole answer, or
    an answer other than 200: what a client of a server shutting down
    gracefully must never see.
    """

    def __init__(self, daemon, clients, paths):
        self.daemon = daemon
        self.paths = paths
        self.answered = 0
        self.failed = []
        self.refused = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self.run, args=(i,)) for i in range(clients)
        ]

    def start(self):
        for thread in self.threads:
            thread.start()
        return self

    def run(self, index):
        connection = None
        sent = 0
        while not self.stop.is_set():
            if connection is None:
                connection = http.client.HTTPConnection(
                    "127.0.0.1", self.daemon.port, timeout=10
                )
                try:
                    connection.connect()
                except ConnectionRefusedError:
                    with self.lock:
                        self.refused += 1
                    return
            path = self.paths[(index + sent) % len(self.paths)]
            sent += 1
            try:
                connection.request(
                    "GET", path, headers={"X-API-Version": "probe_api-1.0+prod"}
                )
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.failed.append((path, repr(e)))
                connection.close()
                connection = None
                continue
            with self.lock:
                if response.status == 200:
                    self.answered += 1
                else:
                    self.failed.append((path, response.status))
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
                connection = None
        if connection is not None:
            connection.close()

    def join(self, timeout=30):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout)
        assert not any(thread.is_alive() for thread in self.threads)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_under_load_fails_no_request(shijid, signum):
    daemon = shijid({"general": {"shutdown_grace": "10"}})
    load = Load(
        daemon, 8, ["/probe/probe", "/probe/sleep/0.05", "/probe/sleep/0.2"]
    ).start()
    deadline = time.monotonic() + 10
    while load.answered < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    before = load.answered
    daemon.send(signum)
    assert daemon.process.wait(30) == 0
    load.join()
    assert load.failed == []
    assert before >= 200
    # Every client went on being answered until the port closed.
    assert load.refused == 8
    assert "Traceback" not in daemon.log_text()


def test_a_full_log_disk_loses_no_request(shijid, tmp_path):
    # /dev/full fails every write with ENOSPC.
    daemon = shijid({"logging": {"log_file": "/dev/full"}})
    for path, status in (
        ("/probe/probe", 200),
        ("/probe/fail", 403),
        ("/probe/crash", 500),
    ):
        got, _, body = daemon.request("GET", path)
        assert got == status, body
        assert json.loads(body)
    load = Load(daemon, 4, ["/probe/probe"]).start()
    time.sleep(1.0)
    load.stop.set()
    load.join()
    assert load.failed == []
    assert load.answered > 50
    assert daemon.stop() == 0


def test_a_statsd_server_that_is_down_loses_no_request(shijid):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there: every datagram is refused
    daemon = shijid({"statsd": {"host": "127.0.0.1", "port": str(port)}})
    load = Load(daemon, 4, ["/probe/probe", "/probe/fail"]).start()
    time.sleep(1.0)
    load.stop.set()
    load.join()
    assert [failure for failure in load.failed if failure[1] != 403] == []
    assert load.answered > 50
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.log_text()
