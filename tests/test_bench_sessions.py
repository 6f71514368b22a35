"""
A smoke run of bench/sessions.py: a second per case, its cases start and
answer exactly as it expects, the report is written; and without
redis-server its Redis cases are left out cleanly. Speed is never asserted
here.
"""

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from mylogin_api import passwords

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    passwords.scrypt is None, reason="no scrypt on this Python"
)


def bench(tmp_path, *args, timeout=240):
    result = subprocess.run(
        [sys.executable, "bench/sessions.py", "--out", str(tmp_path), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result, json.loads((tmp_path / "sessions.json").read_text())


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("redis-server") is None or shutil.which("wrk") is None,
    reason="redis-server and wrk are needed (.ci/tools installs them)",
)
def test_a_second_of_each_store(tmp_path):
    _, results = bench(
        tmp_path,
        *("--duration", "1", "--rounds", "1", "--warmup", "0", "--clients", "2"),
        *("--pairs", "redis:2i", "--me", "sqlite"),
    )
    assert results["machine"]["left_out"] == []
    runs = {(run["kind"], run["case"]): run for run in results["runs"]}
    assert sorted(runs) == [("me", "sqlite"), ("pairs", "redis:2i")]
    for run in runs.values():
        assert run["operations"] > 0, run
        assert run["errors"] == 0, run
        assert run["cpu_us"] > 0, run
    report = (tmp_path / "sessions.md").read_text()
    assert report.startswith("# Sessions in the shared store: benchmark results\n")
    assert "| Redis store, 2 instances sharing Redis | **" in report
    assert "| SQLite store (default), 1 worker | **" in report
    assert " --duration 1 --rounds 1 --warmup 0 --clients 2 " in report
    # The run's redis-server is stopped: its port no longer answers.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", results["machine"]["redis_port"]), 2)


def test_without_redis_server_the_redis_cases_are_left_out(tmp_path):
    result, results = bench(
        tmp_path, "--redis-server", "", "--pairs", "redis,redis:2w", "--me", "redis"
    )
    assert "leaving out the Redis cases (no redis-server)" in result.stderr
    assert results["runs"] == []
    assert results["machine"]["left_out"] == ["the Redis cases (no redis-server)"]
    report = (tmp_path / "sessions.md").read_text()
    assert "Left out: the Redis cases (no redis-server)." in report
    assert "| case |" not in report
