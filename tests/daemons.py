"""
Run shijid as a subprocess on 127.0.0.1 and talk HTTP to it, with every
wait bounded and no process left behind.
"""

import http.client
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
PROBE_VERSION = {"X-API-Version": "probe_api-1.0+prod"}

BASE_SECTIONS = {
    "general": {
        "listen_ip": "127.0.0.1",
        "listen_port": "0",
        "base_path": str(TESTS / "daemon_apis"),
    },
    "apis": {"probe_api": "probe"},
}


def write_config(path, sections):
    """Write an INI file from ``{section: {option: value}}``."""
    lines = []
    for section, options in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{name}: {value}" for name, value in options.items())
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def merged(overrides):
    """BASE_SECTIONS updated section by section with ``overrides``."""
    sections = {name: dict(options) for name, options in BASE_SECTIONS.items()}
    for name, options in overrides.items():
        sections.setdefault(name, {}).update(options)
    return sections


def shijid_command(*args):
    return [sys.executable, "-m", "shiji.daemon", *args]


def run_shijid(*args, env=None, timeout=30):
    """Run shijid to completion (for configurations that must fail)."""
    return subprocess.run(
        shijid_command(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def failing_run(tmp_path, overrides=None, text=None, args=()):
    """
    Run shijid with a configuration that must stop it; returns the path of
    the configuration and the one line shijid printed.
    """
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "shijid.conf"
    if text is not None:
        path.write_text(text)
    else:
        write_config(path, merged(overrides or {}))
    result = run_shijid("-c", str(path), *args)
    assert result.returncode == 1, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return path, lines[0]


class Daemon:
    """
    A running shijid. ``log`` is its log file; ``port`` where it listens.
    """

    def __init__(self, tmp_path, overrides=(), args=(), env=None, config=None):
        self.tmp_path = tmp_path
        self.log_path = tmp_path / "shijid.log"
        sections = merged(dict(overrides))
        sections.setdefault("logging", {}).setdefault("log_file", str(self.log_path))
        self.config = config or write_config(tmp_path / "shijid.conf", sections)
        self.args = list(args)
        self.env = env
        self.process = None
        self.port = None

    def start(self, timeout=30):
        self.process = subprocess.Popen(
            shijid_command("-c", str(self.config), *self.args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
            cwd=ROOT,
        )
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.1)
            if ready:
                line = self.process.stdout.readline()
                found = re.search(rb"on https?://([0-9.]+):([0-9]+)/", line)
                if found:
                    self.port = int(found.group(2))
                    return self
            if self.process.poll() is not None:
                break
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        errors = self.process.stderr.read().decode()
        self.kill()
        raise AssertionError(f"shijid did not start: {line!r} {errors}")

    def connection(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(
        self, method, path, body=None, headers=None, timeout=10, connection=None
    ):
        """Send one request; returns ``(status, headers, body)``."""
        own = connection is None
        connection = connection or self.connection(timeout)
        try:
            all_headers = dict(PROBE_VERSION)
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                all_headers["Content-Type"] = "application/json"
            all_headers.update(headers or {})
            connection.request(method, path, body=body, headers=all_headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            if own:
                connection.close()

    def send(self, signum):
        self.process.send_signal(signum)

    def stop(self, signum=signal.SIGTERM, timeout=30):
        """Signal shijid and wait for it to exit; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        finally:
            self.kill()

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if self.process is not None:
            for stream in (self.process.stdout, self.process.stderr):
                stream.close()

    def log_text(self):
        return self.log_path.read_text() if self.log_path.exists() else ""

    def wait_for_log(self, pattern, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.log_text()):
                return
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} not logged: {self.log_text()}")


def example_daemon(tmp_path, **general):
    """
    A shijid (not yet started) serving a copy of ``examples/`` with the
    shipped configuration, on any free port, logging to ``tmp_path`` and
    keeping its users there; ``general`` replaces [general] options.
    """
    shipped = (ROOT / "conf" / "shijid.conf.example").read_text()
    general.setdefault("listen_port", "0")
    for name, value in general.items():
        shipped, found = re.subn(
            rf"^;?{name}: .*$", f"{name}: {value}", shipped, count=1, flags=re.M
        )
        assert found, name
    config = tmp_path / "conf" / "shijid.conf"
    config.parent.mkdir()
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    config.write_text(
        shipped.replace("log_file: -", f"log_file: {tmp_path / 'shijid.log'}").replace(
            "db_path: mylogin_api.sqlite", f"db_path: {tmp_path / 'users.sqlite'}"
        )
    )
    return Daemon(tmp_path, config=config)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
