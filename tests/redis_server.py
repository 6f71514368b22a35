"""
A real redis-server for the tests, its fixtures imported by
conftest.py. Two fixtures:

- ``redis_server`` (session): one ``redis-server`` on a free 127.0.0.1 port,
  persisting with an append-only file (``appendfsync always``) in a
  temporary directory, so that a restart keeps the data as a production
  server would. Skips the test when ``redis-server`` is not installed
  (``.ci/tools`` installs it). Stopped at the end of the session.
- ``fresh_redis`` (function): the same server, running (started again if an
  earlier test stopped it) and emptied before the test, and started again
  after it if the test stopped it; use it for tests that stop the server.

Both give a :class:`RedisServer`: ``.url``, ``.port``, ``.running``,
``.flush()``, ``.stop()`` and ``.start()``.
"""

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A ``redis-server`` process on 127.0.0.1, stopped and started at will."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: Optional[subprocess.Popen[bytes]] = None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def _command(self) -> List[str]:
        return [
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--dir", str(self.directory),
            "--daemonize", "no",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip

    def _answers(self) -> bool:
        """Whether the server answers PING with PONG."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.5) as sock:
                sock.settimeout(0.5)
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        """
        Start the server (on the same port and directory as before) and
        wait until it answers; started again if the port was briefly taken.
        """
        if self.running:
            return
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            self._process = subprocess.Popen(
                self._command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            while self._process.poll() is None and time.monotonic() < deadline:
                if self._answers():
                    return
                time.sleep(0.02)
            if self._process.poll() is None:
                self.stop()
                raise RuntimeError(f"redis-server did not answer on port {self.port}")
            # Exited: most likely the port is not free yet.
            if time.monotonic() >= deadline:
                log = (self.directory / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server did not start:\n{log[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)

    def flush(self) -> None:
        """Remove every key of every database."""
        import redis

        client = redis.Redis.from_url(
            self.url, socket_timeout=5, socket_connect_timeout=5
        )
        try:
            client.flushall()
        finally:
            client.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session (see the module's documentation)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed: .ci/tools installs it")
    with tempfile.TemporaryDirectory(prefix="shiji-redis-") as directory:
        server = RedisServer(binary, Path(directory))
        try:
            server.start()
            yield server
        finally:
            server.stop()


@pytest.fixture
def fresh_redis(redis_server: RedisServer) -> Iterator[RedisServer]:
    """
    The session's redis-server, running and empty at the start of the test,
    and running again after it (should the test have stopped it).
    """
    redis_server.start()
    redis_server.flush()
    yield redis_server
    redis_server.start()
