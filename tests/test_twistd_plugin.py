"""
twistd shiji: the plugin, its options and service, and a real twistd run.
"""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from daemons import PROBE_VERSION, merged, write_config
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
from twisted.python import usage

from shiji import tap
from shiji.daemon import HTTPService


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
    assert [s.name for s in top] == ["statsd", "http"]
    http = top.getServiceNamed("http")
    assert isinstance(http, HTTPService)
    assert not http.running
    assert (http.interface, http.port_number, http.backlog) == ("127.0.0.1", 0, 1024)


def test_make_service_with_workers_builds_the_pool(tmp_path):
    config = write_config(
        tmp_path / "shijid.conf", merged({"general": {"workers": "3"}})
    )
    top = tap.makeService({"config": str(config)})
    assert [s.name for s in top] == ["workers"]
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
    import http.client
    import socket

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
