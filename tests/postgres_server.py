"""
A real PostgreSQL server for the tests. Two fixtures:

- ``postgres_server`` (session): one cluster made by ``initdb`` in a
  temporary directory, served by ``postgres`` on a free 127.0.0.1 port
  (its unix socket in that directory too), without fsync, trusting every
  local connection. PostgreSQL refuses to run as root: as root, the
  cluster belongs to the ``postgres`` system user and the server runs as
  it. Skips the test when the server is not installed (``.ci/tools``
  installs it). Stopped at the end of the session, whatever happens.
- ``fresh_postgres`` (function): the same server, running (started again if
  an earlier test stopped it) and without Shiji's store tables before the
  test, and running again after it; use it for tests that stop the server.

Both give a :class:`PostgresServer`: ``.dsn``, ``.url``, ``.port``,
``.running``, ``.psql(sql)``, ``.drop_store_tables()``, ``.stop()``,
``.start()``, ``.pause()`` and ``.resume()``. The database is ``shiji_test``, its owner the superuser
``shiji``.
"""

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
COMMAND_TIMEOUT = 60.0

USER = "shiji"
DATABASE = "shiji_test"

#: Where Debian's packages put the server's programs; PATH comes after.
BINARY_PATTERNS = ["/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_binaries() -> Optional[Path]:
    """The directory holding ``initdb`` and ``postgres``, newest first."""
    candidates: List[Path] = []
    for pattern in BINARY_PATTERNS:
        candidates.extend(
            sorted(
                (Path(p) for p in glob.glob(pattern)),
                key=lambda p: [int(x) for x in p.parent.name.split(".") if x.isdigit()],
                reverse=True,
            )
        )
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "postgres").exists():
            return directory
    return None


class PostgresServer:
    """A ``postgres`` process on 127.0.0.1, stopped and started at will."""

    def __init__(self, binaries: Path, directory: Path) -> None:
        self.binaries = binaries
        self.directory = directory
        self.data = directory / "data"
        self.port = _free_port()
        self.dsn = f"host=127.0.0.1 port={self.port} user={USER} dbname={DATABASE}"
        self.url = f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"
        self._process: Optional[subprocess.Popen[bytes]] = None
        self._log: Any = None
        # As root, every program runs as the postgres system user.
        self._as: Dict[str, Any] = {}
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip(
                    "PostgreSQL refuses to run as root, and there is no"
                    " postgres user to run it as"
                )
            self._as = {
                "user": account.pw_uid,
                "group": account.pw_gid,
                "extra_groups": [],
            }
            os.chown(directory, account.pw_uid, account.pw_gid)

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def _run(self, program: str, *arguments: str) -> str:
        """Run one of the server's programs; its output, or RuntimeError."""
        done = subprocess.run(
            [str(self.binaries / program), *arguments],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=COMMAND_TIMEOUT,
            cwd=str(self.directory),
            **self._as,
        )
        output = done.stdout.decode(errors="replace")
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}):\n{output}")
        return output

    def initialise(self) -> None:
        """Make the cluster, start the server and create the database."""
        self._run(
            "initdb",
            "-D", str(self.data),
            "-U", USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )  # fmt: skip
        self.start()
        self._run(
            "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, DATABASE
        )

    def _command(self) -> List[str]:
        return [
            str(self.binaries / "postgres"),
            "-D", str(self.data),
            "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1",
            "-c", f"unix_socket_directories={self.directory}",
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
            "-c", "max_connections=50",
            "-c", "shared_buffers=32MB",
        ]  # fmt: skip

    def _answers(self) -> bool:
        """Whether the server accepts connections to the database."""
        where = ["-h", "127.0.0.1", "-p", str(self.port), "-U", USER]
        done = subprocess.run(
            [str(self.binaries / "pg_isready"), *where, "-t", "1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=5,
        )
        return done.returncode == 0

    def start(self) -> None:
        """
        Start the server (same port and data as before) and wait until it
        accepts connections.
        """
        if self.running:
            return
        if self._log is None:
            self._log = open(self.directory / "postgres.log", "ab")  # noqa: SIM115
        self._process = subprocess.Popen(
            self._command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=str(self.directory),
            **self._as,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while self._process.poll() is None and time.monotonic() < deadline:
            if self._answers():
                return
            time.sleep(0.05)
        self.stop()
        log = (self.directory / "postgres.log").read_text(errors="replace")
        raise RuntimeError(
            f"postgres did not start on port {self.port}:\n{log[-3000:]}"
        )

    def stop(self) -> None:
        """
        Stop the server: a fast shutdown (SIGINT: sessions are ended,
        clients see their connections closed), then SIGKILL if it lingers.
        """
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        self._process = process
        self.resume()  # if paused
        self._process = None
        process.send_signal(signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)

    def _processes(self) -> List[int]:
        """The server's process and its children (each a session leader)."""
        if self._process is None:
            return []
        parent = self._process.pid
        found = [parent]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue  # ended meanwhile
            if int(fields[1]) == parent:
                found.append(int(stat.parent.name))
        return found

    def pause(self) -> None:
        """Stop the server's processes (SIGSTOP): it answers nothing."""
        for pid in self._processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Let the server's processes go on (SIGCONT)."""
        for pid in self._processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def close(self) -> None:
        """Stop the server and close its log."""
        self.stop()
        if self._log is not None:
            self._log.close()
            self._log = None

    def psql(self, sql: str) -> str:
        """Run ``sql`` with ``psql`` in the database; its unaligned output."""
        return self._run(
            "psql",
            "-h", "127.0.0.1",
            "-p", str(self.port),
            "-U", USER,
            "-d", DATABASE,
            "-X", "-q", "-A", "-t",
            "-v", "ON_ERROR_STOP=1",
            "-c", sql,
        )  # fmt: skip

    def drop_store_tables(self) -> None:
        """Drop every table whose name starts with ``shiji_store``."""
        self.psql(
            "DO $$ DECLARE t text; BEGIN"
            " FOR t IN SELECT tablename FROM pg_tables"
            " WHERE schemaname = current_schema() AND tablename LIKE 'shiji\\_store%'"
            " LOOP EXECUTE 'DROP TABLE ' || quote_ident(t) || ' CASCADE'; END LOOP;"
            " END $$"
        )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session (see the module's documentation)."""
    binaries = find_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed: .ci/tools installs it")
    with tempfile.TemporaryDirectory(prefix="shiji-postgres-") as directory:
        server = PostgresServer(binaries, Path(directory))
        try:
            server.initialise()
            yield server
        finally:
            server.close()


@pytest.fixture
def fresh_postgres(postgres_server: PostgresServer) -> Iterator[PostgresServer]:
    """
    The session's server, running and without the store's tables at the
    start of the test, and running again after it.
    """
    postgres_server.start()
    postgres_server.drop_store_tables()
    yield postgres_server
    postgres_server.start()
