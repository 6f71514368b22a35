#!/usr/bin/env python3
"""
Sessions in the shared store: examples/mylogin_api served by shijid with
its sessions and login limits in the default SQLite store or in Redis.

Two measurements, on this machine, in interleaved rounds:

- **login + me**: clients that each sign up once, then log in (an scrypt
  check of the password, a new session saved in the store, the cookie
  set) and call ``me`` with that cookie (the session loaded from the
  store), over and over; reported in pairs per second. Cases: the SQLite
  store and the Redis store, each with 1 and 2 workers, and as two shijid
  instances on two ports sharing the store (and the users database), the
  clients split between them.
- **me**: ``me`` alone with one valid cookie, loaded by wrk (the session
  read from the store on every request): the store's cost per request,
  SQLite against Redis, with the in-process ``memory:`` store as the
  floor. Left out without wrk.

The script starts its own redis-server on a free 127.0.0.1 port and stops
it at the end; without redis-server (or without redis-py in the Python
that runs shijid) the Redis cases are left out. Run it with a Python that
has Shiji installed (and redis-py, for the Redis cases)::

    .venv/bin/python bench/sessions.py                 # about 7 minutes
    .venv/bin/python bench/sessions.py --duration 1 --rounds 1 --warmup 0

It writes ``sessions.json`` and ``sessions.md`` to ``--out``
(``bench/results``).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from run import (  # noqa: E402
    LUA,
    cpu_seconds,
    free_port,
    pin,
    rss_mb,
    two_cores,
)

VERSION = "mylogin_api-1.0+prod"
SECRET = "bench of sessions: a secret of thirty-two characters or more"
#: The report's en dash and multiplication sign.
DASH, TIMES = "\u2013", "\u00d7"
PASSWORD = "a bench password"


def credentials(client: int) -> Dict[str, str]:
    """The account of client number ``client``: one each, so that no
    client waits on another's login to the same account (the example
    admits only ``login_attempts`` logins to one account from one address
    at once)."""
    return {"email": f"bench{client}@example.com", "password": PASSWORD}


def account(client: int) -> Dict[str, Any]:
    """What login and ``me`` answer for client number ``client``."""
    return {"result": {"id": client + 1, "email": f"bench{client}@example.com"}}


@dataclass(frozen=True)
class Case:
    """One way of serving the example: a store, workers, instances."""

    key: str
    label: str
    store: str  # sqlite | redis | memory
    workers: int = 1
    instances: int = 1


#: The login + me cases, in the order of the table; the first is the
#: default configuration the others are compared with.
PAIR_CASES = [
    Case("sqlite", "SQLite store (default), 1 worker", "sqlite"),
    Case("sqlite:2w", "SQLite store, 2 workers", "sqlite", workers=2),
    Case("sqlite:2i", "SQLite store, 2 instances sharing the file", "sqlite", instances=2),
    Case("redis", "Redis store, 1 worker", "redis"),
    Case("redis:2w", "Redis store, 2 workers", "redis", workers=2),
    Case("redis:2i", "Redis store, 2 instances sharing Redis", "redis", instances=2),
]  # fmt: skip

#: The ``me`` alone cases: one worker each.
ME_CASES = [
    Case("memory", "memory: store (this process only), 1 worker", "memory"),
    Case("sqlite", "SQLite store (default), 1 worker", "sqlite"),
    Case("redis", "Redis store, 1 worker", "redis"),
]


# redis-server


class Redis:
    """A redis-server of the run's own, on a free port, in a temporary
    directory, persisting nothing."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.process: Optional[subprocess.Popen[bytes]] = None

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def answers(self) -> bool:
        """Whether the server answers PING with PONG."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.5) as sock:
                sock.settimeout(0.5)
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        argv = [
            self.binary, "--bind", "127.0.0.1", "--port", str(self.port),
            "--save", "", "--appendonly", "no", "--dir", str(self.directory),
            "--daemonize", "no", "--databases", "32",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            pin(argv, 1 if two_cores() else None),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"redis-server exited ({self.process.returncode})")
            if self.answers():
                return
            time.sleep(0.05)
        self.stop()
        raise SystemExit(f"redis-server did not answer on port {self.port} in 10 s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextlib.contextmanager
def redis_server(binary: Optional[str], workdir: Path) -> Iterator[Optional[Redis]]:
    if binary is None:
        yield None
        return
    server = Redis(binary, workdir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


# shijid


@dataclass
class Served:
    """A case's shijid processes (one per instance), running."""

    case: Case
    ports: List[int] = field(default_factory=list)
    processes: List[subprocess.Popen[bytes]] = field(default_factory=list)
    #: The pids whose CPU time a measurement counts: shijid's, and
    #: redis-server's for a Redis case.
    cpu_pids: List[int] = field(default_factory=list)
    cookie: str = ""

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.cpu_pids)

    def rss(self) -> float:
        return sum(rss_mb(p.pid) for p in self.processes)


def config_text(case: Case, port: int, workdir: Path, name: str, store: str) -> str:
    return (
        "[general]\n"
        "listen_ip: 127.0.0.1\n"
        f"listen_port: {port}\n"
        "reactor: epoll\n"
        f"base_path: {ROOT / 'examples'}\n"
        f"workers: {case.workers}\n"
        "listen_backlog: 4096\n"
        "[logging]\n"
        f"log_file: {workdir / (name + '.log')}\n"
        "[auth]\n"
        f"secure_cookies_secrets: {json.dumps([SECRET])}\n"
        "enable_auth: true\n"
        "auth_module: mylogin_api.backend\n"
        "auth_class: SessionBackend\n"
        "[storage]\n"
        f"url: {store}\n"
        "[apis]\n"
        "mylogin_api: myloginapi\n"
        "[config_mylogin_api]\n"
        f"db_path: {workdir / (case.key.replace(':', '-') + '.users.sqlite')}\n"
        "signup_attempts: 1000\n"
    )


def call(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    body: Any = None,
    cookie: str = "",
) -> Tuple[int, Dict[str, str], Any]:
    headers = {"X-API-Version": VERSION}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if cookie:
        headers["Cookie"] = cookie
    connection.request(method, f"/myloginapi/{path}", body=data, headers=headers)
    response = connection.getresponse()
    return response.status, dict(response.getheaders()), json.loads(response.read())


def connect(port: int, timeout: float = 30) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)


def login_and_me(port: int, client: int) -> str:
    """
    One login of client number ``client`` and one ``me`` on a fresh
    connection; the cookie. Raises ValueError on any answer but the
    expected ones.
    """
    connection = connect(port)
    expected = account(client)
    try:
        status, headers, body = call(connection, "POST", "login", credentials(client))
        if (status, body) != (200, expected) or "Set-Cookie" not in headers:
            raise ValueError(f"login: {status} {json.dumps(body)[:300]}")
        cookie = headers["Set-Cookie"].split(";")[0]
        status, _, body = call(connection, "GET", "me", cookie=cookie)
        if (status, body) != (200, expected):
            raise ValueError(f"me: {status} {json.dumps(body)[:300]}")
        return cookie
    finally:
        connection.close()


def start(
    args: argparse.Namespace,
    case: Case,
    workdir: Path,
    redis: Optional[Redis],
    redis_db: int,
    accounts: int,
) -> Served:
    served = Served(case)
    slug = case.key.replace(":", "-")
    if case.store == "redis":
        assert redis is not None and redis.process is not None
        store = redis.url(redis_db)
        served.cpu_pids.append(redis.process.pid)
    elif case.store == "sqlite":
        # Absolute, so that the instances of a case share the one file.
        store = f"sqlite:{workdir / (slug + '.store.sqlite')}"
    else:
        store = "memory:"
    # Single-process servers share the first core, redis-server and wrk the
    # second (as bench/run pins its servers); others are not pinned.
    pinned = case.workers == 1 and case.instances == 1 and two_cores()
    try:
        for n in range(case.instances):
            name = f"{slug}-{n}"
            port = free_port()
            conf = workdir / f"{name}.conf"
            conf.write_text(config_text(case, port, workdir, name, store))
            argv = pin(
                [args.python, "-m", "shiji.daemon", "-c", str(conf)],
                0 if pinned else None,
            )
            with open(workdir / f"{name}.out", "wb") as out:
                process = subprocess.Popen(
                    argv,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=workdir,
                    start_new_session=True,
                )
            served.processes.append(process)
            served.cpu_pids.append(process.pid)
            served.ports.append(port)
            wait_until_answering(process, port, argv, workdir / f"{name}.out")
        # Each client signs up once, on the first instance, and logs in and
        # calls ``me`` once on the instance it will load; the cookie of the
        # first is kept for the me alone case.
        for client in range(accounts):
            connection = connect(served.ports[0])
            try:
                status, _, body = call(connection, "POST", "users", credentials(client))
            finally:
                connection.close()
            if (status, body) != (201, account(client)):
                raise SystemExit(f"{case.label}: signup answered {status} {body}")
            try:
                cookie = login_and_me(served.ports[client % len(served.ports)], client)
            except ValueError as error:
                raise SystemExit(f"{case.label}: {error}") from None
            served.cookie = served.cookie or cookie
    except BaseException:
        stop(served)
        raise
    return served


def wait_until_answering(
    process: subprocess.Popen[bytes], port: int, argv: List[str], out: Path
) -> None:
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise SystemExit(
                f"shijid exited ({shlex.join(argv)}):\n{out.read_text()[-2000:]}"
            )
        try:
            connection = connect(port, timeout=5)
            try:
                status, _, _ = call(connection, "GET", "ping")
            finally:
                connection.close()
            if status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"shijid did not answer on port {port} within 60 s")
        time.sleep(0.1)


def stop(served: Served) -> None:
    for process in served.processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    for process in served.processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


# Measurements


@dataclass
class Measured:
    """One timed run of one case."""

    kind: str  # pairs | me
    case: str
    seconds: float
    operations: int  # login + me pairs, or me requests
    errors: int
    p50_ms: float
    p99_ms: float
    cpu_us: float  # CPU time of shijid (and redis-server) per operation
    rss_mb: float

    @property
    def rate(self) -> float:
        return self.operations / self.seconds if self.seconds else 0.0


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def pairs(served: Served, seconds: float, clients: int) -> Measured:
    """
    ``clients`` threads, split between the instances, each logging in and
    calling ``me`` over and over for ``seconds``, on a new connection per
    pair (so that pairs spread over workers).
    """
    latencies: List[float] = []
    errors: List[str] = []
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def load(port: int, client: int) -> None:
        while time.monotonic() < end:
            started = time.monotonic()
            try:
                login_and_me(port, client)
            except (OSError, http.client.HTTPException, ValueError) as error:
                with lock:
                    errors.append(repr(error))
                continue
            finished = time.monotonic()
            if finished <= end:
                with lock:
                    latencies.append(finished - started)

    threads = [
        threading.Thread(target=load, args=(served.ports[n % len(served.ports)], n))
        for n in range(clients)
    ]
    cpu_before, started = served.cpu(), time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    elapsed = min(time.monotonic(), end) - started
    cpu = served.cpu() - cpu_before
    if errors:
        print(f"  {served.case.key}: {len(errors)} errors, first: {errors[0]}")
    return Measured(
        "pairs", served.case.key, elapsed, len(latencies), len(errors),
        percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000,
        cpu / len(latencies) * 1e6 if latencies else 0.0, served.rss(),
    )  # fmt: skip


def me_alone(
    args: argparse.Namespace, served: Served, seconds: float, connections: int
) -> Measured:
    """wrk's ``connections`` keep-alive connections calling ``me``."""
    argv = [
        args.wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
        "--timeout", "10s", "-s", str(LUA), f"http://127.0.0.1:{served.ports[0]}",
        "--", "GET", "/myloginapi/me", "", f"X-API-Version: {VERSION}",
        f"Cookie: {served.cookie}",
    ]  # fmt: skip
    argv = pin(argv, 1 if two_cores() else None)
    cpu_before = served.cpu()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    cpu = served.cpu() - cpu_before
    summary = None
    for line in done.stdout.splitlines():
        if line.startswith("BENCH-JSON "):
            summary = json.loads(line.split(" ", 1)[1])
    if done.returncode != 0 or summary is None:
        raise SystemExit(f"wrk failed: {(done.stderr or done.stdout)[-2000:]}")
    requests = summary["requests"]
    errors = sum(summary[k] for k in ("connect", "read", "write", "timeout"))
    return Measured(
        "me", served.case.key, summary["duration_us"] / 1e6, requests,
        errors + summary["status"], summary["p50_us"] / 1000,
        summary["p99_us"] / 1000, cpu / requests * 1e6 if requests else 0.0,
        served.rss(),
    )  # fmt: skip


def progress(what: str, run: Measured) -> None:
    unit = "pairs/s" if run.kind == "pairs" else "req/s"
    print(
        f"  {what:<58} {run.rate:>9,.1f} {unit:<7} p99 {run.p99_ms:7.1f} ms  "
        f"cpu {run.cpu_us:8.0f} us/op  errors {run.errors}",
        flush=True,
    )


# Reports


def summary(
    runs: Sequence[Measured], kind: str, key: str
) -> Optional[Dict[str, float]]:
    mine = [r for r in runs if r.kind == kind and r.case == key]
    if not mine:
        return None
    rates = [r.rate for r in mine]
    return {
        "rate": statistics.median(rates),
        "min": min(rates),
        "max": max(rates),
        "p50_ms": statistics.median(r.p50_ms for r in mine),
        "p99_ms": statistics.median(r.p99_ms for r in mine),
        "cpu_us": statistics.median(r.cpu_us for r in mine),
        "errors": sum(r.errors for r in mine),
        "rss_mb": max(r.rss_mb for r in mine),
    }


def markdown(machine: Dict[str, Any], runs: Sequence[Measured], command: str) -> str:
    m = machine
    out = [
        "# Sessions in the shared store: benchmark results",
        "",
        f"{m['date']}; {m['cpus']} cores ({m['cpu_model']}); {m['python']}; "
        f"{m['redis'] or 'no redis-server: Redis not measured'}; "
        f"{m['wrk'] or 'no wrk: me alone not measured'}.",
        f"Load average (1 min) {m['load_start']:.1f} at the start, "
        f"{m['load_end']:.1f} at the end: on a machine shared with other work, "
        "compare the cases within the run (the ratios) rather than with "
        "another run's figures.",
        f"{m['rounds']} interleaved rounds of {m['duration']:g} s after "
        f"{m['warmup']:g} s of warm-up per case; medians, with the range in "
        "brackets. CPU per operation counts shijid's processes and, for the "
        "Redis cases, redis-server's.",
        "",
        f"    {command}",
        "",
    ]
    pair_rows = [(c, summary(runs, "pairs", c.key)) for c in PAIR_CASES]
    pair_rows = [(c, s) for c, s in pair_rows if s]
    if pair_rows:
        base = pair_rows[0][1] if pair_rows[0][0].key == "sqlite" else None
        out += [
            "## Log in + `me`",
            "",
            f"{m['clients']} concurrent clients, each on a new connection per "
            "pair: `POST login` (scrypt, a session saved, the cookie set), then "
            "`GET me` with the cookie (the session loaded). vs SQLite: the ratio "
            "to the default configuration's pairs per second.",
            "",
            f"| case | pairs/s (min{DASH}max) | p50 ms | p99 ms | CPU ms/pair | errors "
            "| RSS MB | vs SQLite, 1 worker |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for case, s in pair_rows:
            ratio = (
                f"{s['rate'] / base['rate']:.2f}{TIMES}"
                if base and base["rate"]
                else DASH
            )
            out.append(
                f"| {case.label} | **{s['rate']:,.1f}** ({s['min']:,.1f}{DASH}{s['max']:,.1f}) "
                f"| {s['p50_ms']:.0f} | {s['p99_ms']:.0f} | {s['cpu_us'] / 1000:.1f} "
                f"| {s['errors']:.0f} | {s['rss_mb']:.0f} | {ratio} |"
            )
        out.append("")
    me_rows = [(c, summary(runs, "me", c.key)) for c in ME_CASES]
    me_rows = [(c, s) for c, s in me_rows if s]
    if me_rows:
        floor = summary(runs, "me", "memory")
        sqlite = summary(runs, "me", "sqlite")
        out += [
            "## `me` alone",
            "",
            f"wrk, {m['me_connections']} keep-alive connections, one valid "
            "cookie: each request loads the session from the store (and, once "
            "a tenth of its lifetime has passed, saves it again). vs memory: "
            "the ratio to the `memory:` store's req/s; CPU over memory: the "
            "CPU time per request the store adds to it.",
            "",
            f"| case | req/s (min{DASH}max) | p50 ms | p99 ms | CPU µs/req | errors "
            "| vs memory | vs SQLite | CPU over memory, µs |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for case, s in me_rows:
            vs_floor = f"{s['rate'] / floor['rate']:.2f}{TIMES}" if floor else DASH
            vs_sqlite = f"{s['rate'] / sqlite['rate']:.2f}{TIMES}" if sqlite else DASH
            extra = f"{s['cpu_us'] - floor['cpu_us']:+.0f}" if floor else DASH
            out.append(
                f"| {case.label} | **{s['rate']:,.0f}** ({s['min']:,.0f}{DASH}{s['max']:,.0f}) "
                f"| {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['cpu_us']:.0f} "
                f"| {s['errors']:.0f} | {vs_floor} | {vs_sqlite} | {extra} |"
            )
        out.append("")
    if m["left_out"]:
        out += ["Left out: " + "; ".join(m["left_out"]) + ".", ""]
    return "\n".join(out)


# Setup


def version_of(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except OSError:
        return ""
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else ""


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return ""


def parse(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the Python that runs shijid (with shiji, and redis-py for Redis)",
    )
    parser.add_argument(
        "--wrk",
        default=shutil.which("wrk"),
        help="the wrk binary (empty, or none found: no me alone cases)",
    )
    parser.add_argument(
        "--redis-server",
        default=shutil.which("redis-server"),
        help="the redis-server binary (empty, or none found: no Redis cases)",
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds per measurement"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="seconds of warm-up per case"
    )
    parser.add_argument(
        "--clients", type=int, default=8, help="login + me clients at once"
    )
    parser.add_argument(
        "--me-connections", type=int, default=50, help="wrk's connections for me"
    )
    parser.add_argument(
        "--pairs",
        default=",".join(c.key for c in PAIR_CASES),
        help="login + me cases: "
        + ", ".join(c.key for c in PAIR_CASES)
        + " (empty: none)",
    )
    parser.add_argument(
        "--me",
        default=",".join(c.key for c in ME_CASES),
        help="me alone cases: " + ", ".join(c.key for c in ME_CASES) + " (empty: none)",
    )
    parser.add_argument(
        "--out", type=Path, default=HERE / "results", help="where results go"
    )
    parser.add_argument(
        "--name", default="sessions", help="the results' file name, less .json and .md"
    )
    args = parser.parse_args(argv)
    for option, cases in (("pairs", PAIR_CASES), ("me", ME_CASES)):
        wanted = [k for k in getattr(args, option).split(",") if k]
        unknown = set(wanted) - {c.key for c in cases}
        if unknown:
            parser.error(f"--{option}: no case {', '.join(sorted(unknown))}")
        setattr(args, option, wanted)
    args.python = os.path.abspath(args.python)
    return args


def measure(
    args: argparse.Namespace,
    workdir: Path,
    redis_binary: Optional[str],
    pair_cases: Sequence[Case],
    me_cases: Sequence[Case],
    machine: Dict[str, Any],
) -> List[Measured]:
    """
    Start redis-server (given its binary) and every case's shijid, warm
    each case up, then measure them in interleaved rounds; everything is
    stopped at the end.
    """
    runs: List[Measured] = []
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(redis_server(redis_binary, workdir))
        if redis is not None:
            machine["redis_port"] = redis.port
        served: Dict[Tuple[str, str], Served] = {}
        db = 0
        for kind, cases in (("pairs", pair_cases), ("me", me_cases)):
            for case in cases:
                # The me cases have servers of their own, so that the
                # sessions the pairs leave do not weigh on them.
                own = workdir / kind
                own.mkdir(exist_ok=True)
                db += 1
                accounts = args.clients if kind == "pairs" else 1
                running = start(args, case, own, redis, db, accounts)
                stack.callback(stop, running)
                served[kind, case.key] = running
        print(f"measuring {len(served)} cases", flush=True)
        for (kind, _), running in served.items():
            if args.warmup > 0:
                if kind == "pairs":
                    pairs(running, args.warmup, args.clients)
                else:
                    me_alone(args, running, args.warmup, args.me_connections)
        for round_no in range(args.rounds):
            for (kind, _), running in served.items():
                if kind == "pairs":
                    run = pairs(running, args.duration, args.clients)
                else:
                    run = me_alone(args, running, args.duration, args.me_connections)
                runs.append(run)
                progress(f"round {round_no + 1}: {kind} {running.case.label}", run)
    return runs


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse(argv)
    left_out: List[str] = []
    redis_binary = args.redis_server or None
    if redis_binary is None:
        left_out.append("the Redis cases (no redis-server)")
    elif subprocess.run(
        [args.python, "-c", "import redis"], capture_output=True, timeout=60
    ).returncode:
        left_out.append(f"the Redis cases ({args.python} cannot import redis)")
        redis_binary = None
    if not args.wrk and args.me:
        left_out.append("me alone (no wrk)")
        args.me = []
    if redis_binary is None:
        args.pairs = [k for k in args.pairs if not k.startswith("redis")]
        args.me = [k for k in args.me if k != "redis"]
    for what in left_out:
        print(f"leaving out {what}", file=sys.stderr)
    pair_cases = [c for c in PAIR_CASES if c.key in args.pairs]
    me_cases = [c for c in ME_CASES if c.key in args.me]
    machine = {
        "date": time.strftime("%Y-%m-%d"),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": version_of(
            [
                args.python,
                "-c",
                "import sys, platform; "
                "print(platform.python_implementation(), sys.version.split()[0])",
            ]
        ),
        "redis": version_of([redis_binary, "--version"]).split(" sha=")[0]
        if redis_binary
        else "",
        "wrk": version_of([args.wrk, "-v"]).split(" [")[0] if args.wrk else "",
        "rounds": args.rounds,
        "duration": args.duration,
        "warmup": args.warmup,
        "clients": args.clients,
        "me_connections": args.me_connections,
        "pinned": two_cores(),
        "left_out": left_out,
    }
    machine["load_start"] = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="shiji-bench-sessions-") as tmp:
        runs = measure(args, Path(tmp), redis_binary, pair_cases, me_cases, machine)
    machine["load_end"] = os.getloadavg()[0]
    python = os.path.relpath(args.python, ROOT)
    if python.startswith(".."):
        python = args.python
    command = shlex.join(
        [python, "bench/sessions.py", *(argv if argv is not None else sys.argv[1:])]
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(
        json.dumps(
            {
                "machine": machine,
                "command": command,
                "runs": [dict(r.__dict__, rate=r.rate) for r in runs],
            },
            indent=1,
        )
        + "\n"
    )
    text = markdown(machine, runs, command)
    (args.out / f"{args.name}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
