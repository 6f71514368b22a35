"""
twistd shiji: the plugin, its options and service, and a real twistd run.
"""

import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from daemons import PROBE_VERSION, alive, merged, write_config
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
from twisted.python import usage

from shiji import tap
from shiji.daemon import HTTPService

#: The named services these tests look at; a tree may hold others
#: (background tasks, watchdogs).
LIFECYCLE = {
    "pidfile",
    "logging",
    "signals",
    "statsd",
    "http",
    "workers",
    "announcement",
}


def test_the_plugin_is_found_and_points_at_shiji_tap():
    [plugin] = [p for p in getPlugins(IServiceMaker) if p.tapname == "shiji"]
    assert plugin.module == "shiji.tap"
    assert plugin.options is tap.Options
    assert plugin.makeService is tap.makeService


def test_options_require_a_configuration(monkeypatch):
    monkeypatch.delenv("SHIJI_CONFIG", raising=False)
    with pytest.raises(usage.UsageError, match="a configuration file is required"):
        tap.Options().parseOptions([])
    options = tap.Options()
    options.parseOptions(["-c", "shijid.conf"])
    assert options["config"] == "shijid.conf"
    monkeypatch.setenv("SHIJI_CONFIG", "/etc/shiji.conf")
    options = tap.Options()
    options.parseOptions(["-c", "shijid.conf"])
    assert options["config"] == "/etc/shiji.conf"


def test_make_service_builds_the_daemons_tree_without_starting_it(tmp_path):
    config = write_config(
        tmp_path / "shijid.conf", merged({"statsd": {"host": "127.0.0.1"}})
    )
    options = tap.Options()
    options.parseOptions(["-c", str(config)])
    top = tap.makeService(options)
    # twistd owns the log and the PID file: no service of Shiji's for them.
    assert [s.name for s in top if s.name in LIFECYCLE] == [
        "signals",
        "statsd",
        "http",
        "announcement",
    ]
    http = top.getServiceNamed("http")
    assert isinstance(http, HTTPService)
    assert not http.running
    assert (http.interface, http.port_number, http.backlog) == ("127.0.0.1", 0, 1024)


def test_make_service_with_workers_builds_the_pool(tmp_path):
    config = write_config(
        tmp_path / "shijid.conf", merged({"general": {"workers": "3"}})
    )
    top = tap.makeService({"config": str(config)})
    assert [s.name for s in top if s.name in LIFECYCLE] == [
        "signals",
        "workers",
        "announcement",
    ]
    assert top.getServiceNamed("workers").count == 3


def test_make_service_turns_configuration_errors_into_one_line(tmp_path):
    config = write_config(
        tmp_path / "shijid.conf", merged({"general": {"listen_port": "x"}})
    )
    with pytest.raises(SystemExit) as info:
        tap.makeService({"config": str(config)})
    assert str(info.value) == (
        f"twistd shiji: error: {config}: [general] listen_port: must be a whole number "
        "from 0 to 65535, not 'x'"
    )


@pytest.mark.slow
def test_twistd_serves_and_stops_on_sigterm(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = write_config(
        tmp_path / "shijid.conf", merged({"general": {"listen_port": str(port)}})
    )
    twistd = Path(sys.executable).parent / "twistd"
    process = subprocess.Popen(
        [
            str(twistd),
            "-n",
            "--pidfile",
            str(tmp_path / "twistd.pid"),
            "--logfile",
            str(tmp_path / "twistd.log"),
            "shiji",
            "-c",
            str(config),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        body = None
        while time.monotonic() < deadline and body is None:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/probe/probe", headers=PROBE_VERSION)
                response = connection.getresponse()
                body = json.loads(response.read())
                connection.close()
            except OSError:
                if process.poll() is not None:
                    break
                time.sleep(0.1)
        assert body is not None, (
            process.stderr.read() if process.poll() is not None else ""
        )
        assert body["pid"] == process.pid
        assert (tmp_path / "twistd.pid").read_text().strip() == str(process.pid)
        process.send_signal(signal.SIGTERM)
        # twistd drains, then ends itself with the signal it received, so
        # that its exit status tells what stopped it.
        assert process.wait(30) == -signal.SIGTERM
        log = (tmp_path / "twistd.log").read_text()
        assert '"GET /probe/probe" 200' in log
        assert log.rstrip().endswith("Server Shut Down.")
        assert not (tmp_path / "twistd.pid").exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        process.stdout.close()
        process.stderr.close()


class Twistd:
    """``twistd -n shiji`` on a free port of 127.0.0.1, logging to ``twistd.log``."""

    def __init__(self, tmp_path, overrides=(), twistd_args=()):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        sections = merged(dict(overrides))
        sections["general"]["listen_port"] = str(self.port)
        self.config = write_config(tmp_path / "shijid.conf", sections)
        self.log_path = tmp_path / "twistd.log"
        self.pid_path = tmp_path / "twistd.pid"
        twistd = Path(sys.executable).parent / "twistd"
        self.process = subprocess.Popen(
            [
                str(twistd),
                "-n",
                "--pidfile",
                str(self.pid_path),
                "--logfile",
                str(self.log_path),
                *twistd_args,
                "shiji",
                "-c",
                str(self.config),
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def get(self, path, timeout=10):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request("GET", path, headers=PROBE_VERSION)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def wait_serving(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return json.loads(self.get("/probe/probe")[2])
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        self.kill()
        raise AssertionError(f"twistd did not serve: {self.log_text()}")

    def worker_pids(self, want=2, timeout=20):
        seen = set()
        deadline = time.monotonic() + timeout
        while len(seen) < want and time.monotonic() < deadline:
            seen.add(json.loads(self.get("/probe/probe")[2])["pid"])
        assert len(seen) == want
        return seen

    def log_text(self):
        return self.log_path.read_text() if self.log_path.exists() else ""

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process.stdout.close()
        self.process.stderr.close()


def slow_gets(twistd, count, seconds):
    results = [None] * count

    def call(index):
        try:
            results[index] = twistd.get(f"/probe/sleep/{seconds}", timeout=30)[0]
        except Exception as e:
            results[index] = repr(e)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


def wait_in_flight(twistd, count, timeout=10):
    """
    Wait until ``count`` other requests are in flight, over the processes
    that serve (each answers for itself).
    """
    others = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = json.loads(twistd.get("/probe/in_flight")[2])
        others[answer["pid"]] = answer["others"]
        if sum(others.values()) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{count} requests were not in flight within {timeout}s")


def wait_gone(pids, timeout=15):
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(alive(pid) for pid in pids)


@pytest.mark.slow
def test_twistd_workers_run_its_reactor_log_to_its_log_and_drain(tmp_path):
    twistd = Twistd(
        tmp_path,
        {
            "general": {"workers": "2", "reactor": "select"},
            "logging": {"log_file": str(tmp_path / "ini.log")},
        },
        ["--reactor", "poll"],
    )
    try:
        # The workers run twistd's reactor, not [general] reactor.
        assert twistd.wait_serving()["reactor"] == "PollReactor"
        workers = twistd.worker_pids()
        assert twistd.process.pid not in workers
        served = 2
        for _ in range(6):
            assert twistd.get("/probe/probe")[0] == 200
            served += 1
        status, headers, _ = twistd.get("/probe/crash")
        assert status == 500
        request_id = headers["X-Request-Id"]
        threads, results = slow_gets(twistd, 4, 1.0)
        wait_in_flight(twistd, 4)
        twistd.process.send_signal(signal.SIGTERM)
        assert twistd.process.wait(30) == -signal.SIGTERM
        for thread in threads:
            thread.join(30)
        assert results == [200] * 4
        assert wait_gone(workers)
        log = twistd.log_text()
        # Every request was answered by a worker; their lines are in twistd's log.
        assert log.count('"GET /probe/probe" 200') >= served
        assert log.count('"GET /probe/sleep/1.0" 200') == 4
        assert (
            f"Unexpected error answering GET /probe/crash (request id {request_id})"
            in log
        )
        assert "RuntimeError: internal detail 42" in log
        assert f"Serving 1 API(s) on http://127.0.0.1:{twistd.port}/" in log
        # The parent and each worker drain on the signal.
        assert log.count("Received SIGTERM: draining and shutting down") == 3
        # The crash's traceback, and no other.
        assert log.count("Traceback") == 1
        assert log.rstrip().endswith("Server Shut Down.")
        assert not (tmp_path / "ini.log").exists()
        assert not twistd.pid_path.exists()
    finally:
        twistd.kill()


@pytest.mark.slow
def test_twistd_drains_on_the_first_signal_and_ignores_the_second(tmp_path):
    twistd = Twistd(tmp_path)
    try:
        twistd.wait_serving()
        threads, results = slow_gets(twistd, 3, 1.0)
        wait_in_flight(twistd, 3)
        twistd.process.send_signal(signal.SIGINT)
        time.sleep(0.1)
        twistd.process.send_signal(signal.SIGTERM)
        # twistd ends with the first signal, once the drain is over.
        assert twistd.process.wait(30) == -signal.SIGINT
        for thread in threads:
            thread.join(30)
        assert results == [200] * 3
        log = twistd.log_text()
        assert log.count("Received SIGINT: draining and shutting down") == 1
        assert "SIGTERM" not in log
        assert "Traceback" not in log
    finally:
        twistd.kill()


@pytest.mark.slow
def test_twistds_workers_stop_when_twistd_is_killed(tmp_path):
    twistd = Twistd(tmp_path, {"general": {"workers": "2"}})
    try:
        twistd.wait_serving()
        workers = twistd.worker_pids()
        twistd.process.kill()
        twistd.process.wait(10)
        assert wait_gone(workers)
    finally:
        twistd.kill()
