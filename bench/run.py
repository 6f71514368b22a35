#!/usr/bin/env python3
"""
Shiji's benchmarks: shijid and its peers, measured with wrk, in one run.

shijid side by side with the shijid of twisted.web's days, bare Twisted
servers and the fastest Python peers, interleaved on this machine.

Run it through ``bench/run``, which builds the virtualenvs it needs; see
``bench/README.md`` for what is measured and how. This script uses the
standard library only (and matplotlib, when present, for the chart).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
LUA = HERE / "lua" / "bench.lua"
sys.path.insert(0, str(APPS))
from benchdata import ITEMS, ORDER, ORDER_REFUSED, order_result  # noqa: E402

#: The last commit of Shiji on twisted.web's HTTP server, before its own
#: engine; bench/run installs it into bench/.venv-shiji-twistedweb.
TWISTED_WEB_COMMIT = "9059ea3"

#: Every server's key, for --only and --help, in the order of the tables.
KEYS = {
    "a": "shijid, 1 worker",
    "g": f"shijid {TWISTED_WEB_COMMIT} on twisted.web",
    "b": "bare twisted.web Resource",
    "h": "lean Twisted Protocol with httptools",
    "c": "FastAPI on uvicorn",
    "d": "Falcon on uvicorn",
    "i": "Sanic",
    "j": "Starlette on uvicorn",
    "f": "shijid on PyPy, 1 worker",
    "f:bare": "bare twisted.web on PyPy",
    "e": "shijid, 2 workers",
    "e:falcon": "Falcon on uvicorn, 2 workers",
    "e:fastapi": "FastAPI on uvicorn, 2 workers",
}

VERSION_HEADER = ("X-API-Version", "benchapi-1.0+prod")
JSON_TYPE = ("Content-Type", "application/json; charset=utf-8")


@dataclass(frozen=True)
class Scenario:
    """
    One request, sent over and over, and the answer it must get: ``status``
    and ``expected`` from shijid, the same from every server kind but those
    in ``others``.
    """

    name: str
    title: str
    method: str
    path: str
    body: str
    status: int
    expected: Any
    #: The answers of the server kinds that answer otherwise, by kind:
    #: (status, JSON body).
    others: Mapping[str, Tuple[int, Any]] = field(default_factory=dict)
    #: Requests whose answers are checked with this one's before timing,
    #: and never timed.
    checks: Tuple[Scenario, ...] = ()

    @property
    def headers(self) -> List[Tuple[str, str]]:
        return [VERSION_HEADER, JSON_TYPE] if self.body else [VERSION_HEADER]

    def answer(self, kind: str) -> Tuple[int, Any]:
        """The status and JSON body a server of ``kind`` must answer with."""
        return self.others.get(kind, (self.status, self.expected))


def compact(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"))


#: The nested order with three rules broken, and how each server refuses
#: it: Shiji lists every failing field in its envelope, msgspec names the
#: first, pydantic lists them all in FastAPI's 422.
NESTED_REFUSED = Scenario(
    "nested-refused",
    "the nested order with three rules broken",
    "POST",
    "/benchapi/orders",
    compact(ORDER_REFUSED),
    409,
    {
        "result": None,
        "error": {
            "error_code": 502,
            "exception_class": "ValueError",
            "exception_text": "Invalid value for argument 'currency'. "
            "Must be one of 'EUR', 'USD', 'GBP'.",
            "fields": [
                {
                    "field": "currency",
                    "in": "body",
                    "reason": "not allowed",
                    "expected": "one of 'EUR', 'USD', 'GBP'",
                    "pointer": "#/currency",
                },
                {
                    "field": "customer.address.country",
                    "in": "body",
                    "reason": "no match",
                    "expected": "matching [A-Z]{2}",
                    "pointer": "#/customer/address/country",
                },
                {
                    "field": "lines[2].quantity",
                    "in": "body",
                    "reason": "too small",
                    "expected": "at least 1",
                    "pointer": "#/lines/2/quantity",
                },
            ],
        },
    },
    others={
        "falcon": (
            422,
            {
                "title": "422 Unprocessable Entity",
                "description": "Invalid enum value 'JPY' - at `$.currency`",
            },
        ),
        "fastapi": (
            422,
            {
                "detail": [
                    {
                        "type": "literal_error",
                        "loc": ["body", "currency"],
                        "msg": "Input should be 'EUR', 'USD' or 'GBP'",
                        "input": "JPY",
                        "ctx": {"expected": "'EUR', 'USD' or 'GBP'"},
                    },
                    {
                        "type": "string_pattern_mismatch",
                        "loc": ["body", "customer", "address", "country"],
                        "msg": "String should match pattern '^[A-Z]{2}$'",
                        "input": "gb",
                        "ctx": {"pattern": "^[A-Z]{2}$"},
                    },
                    {
                        "type": "greater_than_equal",
                        "loc": ["body", "lines", 2, "quantity"],
                        "msg": "Input should be greater than or equal to 1",
                        "input": 0,
                        "ctx": {"ge": 1},
                    },
                ]
            },
        ),
    },
)


SCENARIOS = {
    s.name: s
    for s in [
        Scenario(
            "post",
            "PingCall POST (JSON and URL arguments, JSON result)",
            "POST",
            "/benchapi/ping/123?simple_auth_key=abc",
            '{"client_tz":-7,"client_id":"myclient012","new_client":true}',
            200,
            {
                "result": {
                    "timestamp": 123,
                    "client_tz": -7,
                    "client_id": "myclient012",
                    "new_client": True,
                }
            },
        ),
        Scenario(
            "get",
            "GET of a page of 100 small objects",
            "GET",
            "/benchapi/items?page=0&page_len=100",
            "",
            200,
            {"result": ITEMS[:100]},
        ),
        Scenario(
            "error",
            "error path: 409 for an argument of the wrong type",
            "POST",
            "/benchapi/ping/123?simple_auth_key=abc",
            '{"client_tz":"notaninteger","client_id":"myclient012","new_client":true}',
            409,
            {
                "result": None,
                "error": {
                    "error_code": 502,
                    "exception_class": "ValueError",
                    "exception_text": "Invalid value for argument 'client_tz'. "
                    "Must be of type int",
                },
            },
        ),
        Scenario(
            "nested",
            "POST of an order of 30 fields in nested objects, checked against rules",
            "POST",
            "/benchapi/orders",
            compact(ORDER),
            200,
            order_result(
                ORDER["order_id"],
                [(line["quantity"], line["price"]) for line in ORDER["lines"]],
            ),
            checks=(NESTED_REFUSED,),
        ),
    ]
}

#: The scenarios of a full run, and of the goals; the others are measured
#: when asked for (--scenarios).
FULL_RUN = ("post", "get", "error")


#: What each kind of server needs to import, besides the standard library.
REQUIRES = {
    "shijid": "shiji",
    "bare": "twisted",
    "lean": "twisted, httptools, orjson",
    "fastapi": "fastapi, uvicorn, uvloop, httptools",
    "falcon": "falcon, msgspec, uvicorn, uvloop, httptools",
    "starlette": "starlette, uvicorn, uvloop, httptools, orjson",
    "sanic": "sanic, uvloop, orjson",
}

#: What reads the request head in each kind of server but shijid, whose
#: parser is asked of Shiji itself (shiji_parser).
PARSERS = {
    "bare": "twisted.web",
    "lean": "httptools",
    "fastapi": "httptools",
    "falcon": "httptools",
    "starlette": "httptools",
    "sanic": "sanic",
}


@dataclass
class Server:
    """A server under test: how to start it, and what it is."""

    key: str
    label: str
    python: str
    kind: str  # shijid | bare | lean | fastapi | falcon | starlette | sanic
    workers: int = 1
    #: The scenarios it answers.
    answers: Tuple[str, ...] = FULL_RUN
    #: Servers of one process share the first core; wrk gets the second.
    #: Servers of two workers and their wrk are not pinned.
    pinned: bool = True
    #: wrk's keep-alive connections: 100 for one process, 200 for two.
    connections: int = 100
    #: Seconds of load before measuring (PyPy's JIT needs more).
    warmup: float = 3.0
    process: Optional[subprocess.Popen[bytes]] = None
    port: int = 0
    log: Optional[Path] = None

    def __post_init__(self) -> None:
        if self.workers > 1:
            self.pinned, self.connections = False, 100 * self.workers

    def command(self, port: int, workdir: Path) -> List[str]:
        if self.kind == "shijid":
            conf = workdir / f"{self.key}.conf"
            self.log = workdir / f"{self.key}.log"
            conf.write_text(
                "[general]\n"
                "listen_ip: 127.0.0.1\n"
                f"listen_port: {port}\n"
                "reactor: epoll\n"
                f"base_path: {APPS}\n"
                f"workers: {self.workers}\n"
                "listen_backlog: 4096\n"
                "[logging]\n"
                f"log_file: {self.log}\n"
                "[apis]\n"
                "benchapi: benchapi\n"
            )
            return [self.python, "-m", "shiji.daemon", "-c", str(conf)]
        scripts = {
            "bare": "bare_twisted.py",
            "lean": "lean_protocol.py",
            "sanic": "sanic_app.py",
        }
        if self.kind in scripts:
            return [self.python, str(APPS / scripts[self.kind]), str(port)]
        app = f"{self.kind}_app:app"
        return [
            self.python, "-m", "uvicorn", app,
            "--app-dir", str(APPS), "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(self.workers), "--loop", "uvloop", "--http", "httptools",
            "--backlog", "4096", "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip

    def interpreter(self) -> str:
        return "PyPy" if "pypy" in Path(self.python).resolve().name else "CPython"


@dataclass
class Run:
    """One wrk run against one server."""

    server: str
    scenario: str
    connections: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    non_2xx: int
    rss_mb: float
    #: The server's CPU time per request, in microseconds: steadier than
    #: req/s where the machine's other tenants steal time.
    cpu_us: float = 0.0

    @classmethod
    def parse(
        cls, server: str, scenario: str, connections: int, output: str, rss_mb: float
    ) -> Run:
        found = re.search(r"^BENCH-JSON (\{.*\})$", output, re.M)
        if found is None:
            raise SystemExit(f"wrk printed no summary:\n{output}")
        s = json.loads(found.group(1))
        seconds = s["duration_us"] / 1e6
        return cls(
            server, scenario, connections, s["requests"], seconds,
            s["requests"] / seconds, s["p50_us"] / 1000, s["p99_us"] / 1000,
            s["connect"] + s["read"] + s["write"] + s["timeout"], s["status"], rss_mb,
        )  # fmt: skip


@dataclass
class Results:
    machine: Dict[str, Any]
    runs: List[Run] = field(default_factory=list)
    extras: Dict[str, Any] = field(default_factory=dict)
    #: What read the request head, by server key: "shiji llhttp" or "shiji
    #: python" for Shiji's engine, else the parser of the server's stack.
    parsers: Dict[str, str] = field(default_factory=dict)


# Processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pin(argv: List[str], core: Optional[int]) -> List[str]:
    if core is None or shutil.which("taskset") is None:
        return argv
    return ["taskset", "-c", str(core), *argv]


def two_cores() -> bool:
    affinity = getattr(os, "sched_getaffinity", None)  # PyPy lacks it
    cores = len(affinity(0)) if affinity else os.cpu_count() or 1
    return cores >= 2 and shutil.which("taskset") is not None


def tree_pids(pid: int) -> List[int]:
    """``pid`` and its descendants."""
    pids = [pid]
    for child in Path("/proc").glob("[0-9]*"):
        try:
            stat = (child / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == pid:
            pids.extend(tree_pids(int(child.name)))
    return pids


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) spent so far by ``pid`` and its descendants."""
    total = 0
    for each in tree_pids(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{each}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, in MB."""
    total = 0
    for each in tree_pids(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def request(port: int, scenario: Scenario) -> Tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(
            scenario.method,
            scenario.path,
            body=scenario.body.encode() or None,
            headers=dict(scenario.headers),
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def verify(server: Server, scenarios: Sequence[Scenario]) -> None:
    """
    Every scenario, and every request checked with it, gets exactly its
    expected answer, or the run stops.
    """
    for scenario in scenarios:
        for each in (scenario, *scenario.checks):
            status, body = request(server.port, each)
            expected = each.answer(server.kind)
            if (status, body) != expected:
                raise SystemExit(
                    f"{server.label} answered {each.name} with {status} "
                    f"{json.dumps(body)[:300]}; expected {expected[0]} "
                    f"{json.dumps(expected[1])[:300]}"
                )


def start(server: Server, workdir: Path, scenarios: Sequence[Scenario]) -> None:
    server.port = free_port()
    argv = pin(server.command(server.port, workdir), 0 if server.pinned else None)
    with open(workdir / f"{server.key}.out", "wb") as out:
        server.process = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while True:
        if server.process.poll() is not None:
            raise SystemExit(
                f"{server.label} exited ({shlex.join(argv)}):\n"
                + (workdir / f"{server.key}.out").read_text()[-2000:]
            )
        try:
            verify(server, scenarios)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"{server.label} did not answer within 60 s") from None
            time.sleep(0.1)


def stop(server: Server) -> None:
    process = server.process
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


#: Servers, each with the scenarios it is measured on.
Plan = Sequence[Tuple[Server, Sequence[Scenario]]]


@contextlib.contextmanager
def serving(plan: Plan, workdir: Path) -> Iterator[None]:
    try:
        for server, scenarios in plan:
            start(server, workdir, scenarios)
        yield
    finally:
        for server, _ in plan:
            stop(server)


def wrk_command(
    args: argparse.Namespace,
    server: Server,
    scenario: Scenario,
    seconds: float,
    connections: int,
    threads: int = 1,
) -> List[str]:
    """
    wrk's command line, pinned to the second core for pinned servers; wrk
    counts whole seconds.
    """
    lua_args = [scenario.method, scenario.path, scenario.body]
    lua_args += [f"{name}: {value}" for name, value in scenario.headers]
    argv = [
        args.wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
        "--timeout", "10s", "-s", str(LUA), f"http://127.0.0.1:{server.port}",
        "--", *lua_args,
    ]  # fmt: skip
    return pin(argv, 1 if server.pinned and two_cores() else None)


def wrk(
    args: argparse.Namespace,
    server: Server,
    scenario: Scenario,
    seconds: float,
    connections: int,
    threads: int = 1,
) -> Run:
    argv = wrk_command(args, server, scenario, seconds, connections, threads)
    assert server.process is not None
    cpu_before = cpu_seconds(server.process.pid)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise SystemExit(
            f"wrk failed against {server.label} ({scenario.name}, exit "
            f"{done.returncode}): {(done.stderr or done.stdout)[-2000:]}"
        )
    run = Run.parse(
        server.key, scenario.name, connections, done.stdout, rss_mb(server.process.pid)
    )
    cpu = cpu_seconds(server.process.pid) - cpu_before
    run.cpu_us = cpu / run.requests * 1e6 if run.requests else 0.0
    return run


def measure(
    args: argparse.Namespace, results: Results, plan: Plan, workdir: Path
) -> None:
    """
    Start every server, warm each up, then measure them in interleaved
    rounds: every server and scenario once, then again.
    """
    with serving(plan, workdir):
        for server, scenarios in plan:
            for scenario in scenarios:
                warmup = server.warmup * args.warmup_scale
                if warmup > 0:
                    wrk(args, server, scenario, warmup, server.connections)
        for round_no in range(args.rounds):
            for server, scenarios in plan:
                for scenario in scenarios:
                    run = wrk(args, server, scenario, args.duration, server.connections)
                    results.runs.append(run)
                    progress(f"round {round_no + 1}: {server.label}", run)


def progress(what: str, run: Run) -> None:
    print(
        f"  {what:<44} {run.scenario:<6} {run.rps:>9,.0f} req/s  "
        f"p99 {run.p99_ms:6.1f} ms  cpu {run.cpu_us:5.0f} us/req  errors {run.errors}  "
        f"rss {run.rss_mb:.0f} MB",
        flush=True,
    )


def many_connections(
    args: argparse.Namespace, results: Results, server: Server, workdir: Path
) -> None:
    """Thousands of concurrent keep-alive connections against one shijid."""
    post = SCENARIOS["post"]
    with serving([(server, [post])], workdir):
        run = wrk(args, server, post, args.duration * 2, args.connections)
        progress(f"{args.connections:,} connections: {server.label}", run)
        results.extras["connections"] = {
            "server": server.key,
            "connections": args.connections,
            "rps": run.rps,
            "p99_ms": run.p99_ms,
            "errors": run.errors,
            "non_2xx": run.non_2xx,
            "rss_mb": run.rss_mb,
        }


def soak(
    args: argparse.Namespace, results: Results, server: Server, workdir: Path
) -> None:
    """Full load for ``--soak`` seconds, sampling the daemon's memory."""
    post = SCENARIOS["post"]
    step = max(1.0, args.soak / 12)
    with serving([(server, [post])], workdir):
        wrk(args, server, post, server.warmup * args.warmup_scale or 1, 100)
        assert server.process is not None
        samples: List[Tuple[float, float]] = []
        started = time.monotonic()
        load = subprocess.Popen(
            wrk_command(args, server, post, args.soak, 100),
            stdout=subprocess.PIPE,
            text=True,
        )
        while load.poll() is None:
            samples.append((time.monotonic() - started, rss_mb(server.process.pid)))
            time.sleep(step)
        output = load.communicate()[0]
        run = Run.parse(server.key, "post", 100, output, rss_mb(server.process.pid))
        progress(f"{args.soak:g} s soak: {server.label}", run)
        after_warmup = [rss for at, rss in samples if at >= step]
        results.extras["soak"] = {
            "server": server.key,
            "seconds": args.soak,
            "rps": run.rps,
            "errors": run.errors,
            "rss_samples_mb": [round(rss, 1) for _, rss in samples],
            "rss_first_mb": after_warmup[0] if after_warmup else None,
            "rss_last_mb": after_warmup[-1] if after_warmup else None,
        }


# Reports


def summary(
    runs: Sequence[Run], server: str, scenario: str
) -> Optional[Dict[str, float]]:
    mine = [r for r in runs if r.server == server and r.scenario == scenario]
    if not mine:
        return None
    rps = [r.rps for r in mine]
    return {
        "rps": statistics.median(rps),
        "rps_min": min(rps),
        "rps_max": max(rps),
        "p50_ms": statistics.median(r.p50_ms for r in mine),
        "p99_ms": statistics.median(r.p99_ms for r in mine),
        "cpu_us": statistics.median(r.cpu_us for r in mine),
        "errors": sum(r.errors for r in mine),
        "rss_mb": max(r.rss_mb for r in mine),
        "rounds": len(mine),
    }


def targets(results: Results) -> List[str]:
    """The project's goals, checked against this run."""
    lines = []
    runs = results.runs

    def check(ok: bool, text: str) -> None:
        lines.append(f"- {'met' if ok else '**not met**'}: {text}")

    for name in FULL_RUN:
        a, d = summary(runs, "a", name), summary(runs, "d", name)
        if a and d:
            check(
                a["rps"] >= 1.5 * d["rps"] and a["p99_ms"] <= d["p99_ms"],
                f"{name}: shijid serves {a['rps'] / d['rps']:.2f}× Falcon on "
                f"uvicorn's req/s (goal ≥ 1.5×) with {a['p99_ms'] / d['p99_ms']:.2f}× "
                "its p99 (goal ≤ 1×)",
            )
    a, e = summary(runs, "a", "post"), summary(runs, "e", "post")
    if a and e:
        check(
            e["rps"] >= 1.85 * a["rps"],
            f"shijid with 2 workers serves {e['rps'] / a['rps']:.2f}× one worker "
            "(goal ≥ 1.85×)",
        )
    for name in FULL_RUN:
        f, d = summary(runs, "f", name), summary(runs, "d", name)
        if f and d:
            check(
                f["rps"] >= 3 * d["rps"],
                f"{name}: shijid on PyPy serves {f['rps'] / d['rps']:.2f}× Falcon "
                "on uvicorn under CPython (goal ≥ 3×)",
            )
    many = results.extras.get("connections")
    if many:
        check(
            many["errors"] == 0 and many["non_2xx"] == 0 and many["rss_mb"] <= 60,
            f"{many['connections']:,} connections: {many['errors']} errors, "
            f"{many['rss_mb']:.0f} MB resident (goal: 0 errors, ≤ 60 MB)",
        )
    soaked = results.extras.get("soak")
    if soaked and soaked["rss_first_mb"] is not None:
        growth = soaked["rss_last_mb"] - soaked["rss_first_mb"]
        check(
            growth <= max(2.0, 0.05 * soaked["rss_first_mb"]),
            f"{soaked['seconds']:g} s soak: resident memory "
            f"{soaked['rss_first_mb']:.1f} MB after warm-up, "
            f"{soaked['rss_last_mb']:.1f} MB at the end (goal: no growth)",
        )
    return lines


def engine_lines(results: Results, labels: Dict[str, str]) -> List[str]:
    """(a) against shijid on twisted.web, the bare Resource and the ceiling."""
    lines = []
    for key in ("g", "b", "h"):
        for name in SCENARIOS:
            a, other = (
                summary(results.runs, "a", name),
                summary(results.runs, key, name),
            )
            if a and other and key in labels:
                lines.append(
                    f"- {name}: (a) serves {a['rps'] / other['rps']:.2f}× the req/s "
                    f"of ({key}) {labels[key]}, with {a['p99_ms'] / other['p99_ms']:.2f}× "
                    "its p99"
                )
    return lines


def parser_note(results: Results) -> str:
    m = results.machine
    override = m.get("shiji_http_parser_env")
    return (
        "HTTP parser: what reads the request head. For shijid, the one Shiji "
        "picks (`shiji._parsing.head_parser()` in that server's interpreter): "
        "`shiji llhttp` is llhttp through httptools, its default on CPython, "
        "`shiji python` its own reader, its default on PyPy; "
        + (
            f"SHIJI_HTTP_PARSER={override} in this run."
            if override
            else "SHIJI_HTTP_PARSER unset in this run."
        )
        + " `twisted.web` is twisted.web's HTTP/1.1 reader, `httptools` llhttp "
        "(under uvicorn or the lean Protocol), `sanic` Sanic's own."
    )


def markdown(results: Results, labels: Dict[str, str]) -> str:
    m = results.machine
    out = [
        "# Shiji benchmark results",
        "",
        f"{m['date']}; {m['cpus']} cores ({m['cpu_model']}); {m['os']}; "
        f"{m['cpython']}; {m['pypy'] or 'PyPy not measured'}; {m['wrk']}.",
        f"{m['rounds']} interleaved rounds of {m['duration']:g} s after warm-up; "
        "medians, with the range of req/s in brackets. "
        + (
            "Single-process servers pinned to core 0 and wrk to core 1; "
            if m["pinned"]
            else "No pinning (fewer than 2 cores); "
        )
        + "two-worker servers and wrk unpinned. "
        "vs (d): the ratio to Falcon on uvicorn's req/s; vs (b): to bare "
        "twisted.web's; CPU vs (d): the ratio to Falcon's CPU time per request.",
        "",
    ]
    if results.parsers:
        out += [parser_note(results), ""]
    for scenario in SCENARIOS.values():
        rows = [(key, summary(results.runs, key, scenario.name)) for key in labels]
        rows = [(key, s) for key, s in rows if s]
        if not rows:
            continue
        out += [
            f"## {scenario.title}",
            "",
            "| | server | req/s (min–max) | p50 ms | p99 ms | CPU µs/req | errors "
            "| RSS MB | vs (d) | vs (b) | CPU vs (d) | HTTP parser |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        falcon = summary(results.runs, "d", scenario.name)
        bare = summary(results.runs, "b", scenario.name)
        for key, s in rows:
            vs_d = f"{s['rps'] / falcon['rps']:.2f}×" if falcon else "–"
            vs_b = f"{s['rps'] / bare['rps']:.2f}×" if bare else "–"
            cpu_d = (
                f"{s['cpu_us'] / falcon['cpu_us']:.2f}×"
                if falcon and falcon["cpu_us"]
                else "–"
            )
            out.append(
                f"| ({key}) | {labels[key]} | **{s['rps']:,.0f}** "
                f"({s['rps_min']:,.0f}–{s['rps_max']:,.0f}) | {s['p50_ms']:.2f} | "
                f"{s['p99_ms']:.2f} | {s['cpu_us']:.0f} | {s['errors']:.0f} | "
                f"{s['rss_mb']:.0f} | {vs_d} | {vs_b} | {cpu_d} | "
                f"{results.parsers.get(key, '–')} |"
            )
        out.append("")
    engine = engine_lines(results, labels)
    if engine:
        out += [
            "## Shiji's engine against twisted.web and the ceiling",
            "",
            *engine,
            "",
        ]
    many = results.extras.get("connections")
    if many:
        out += [
            "## Many connections",
            "",
            f"{many['connections']:,} concurrent keep-alive connections against "
            f"({many['server']}) {labels[many['server']]}: "
            f"{many['rps']:,.0f} req/s, p99 {many['p99_ms']:.0f} ms, "
            f"{many['errors']} socket errors, {many['non_2xx']} non-2xx answers, "
            f"{many['rss_mb']:.0f} MB resident.",
            "",
        ]
    soaked = results.extras.get("soak")
    if soaked:
        out += [
            "## Soak",
            "",
            f"{soaked['seconds']:g} s of full load against ({soaked['server']}) "
            f"{labels[soaked['server']]}: {soaked['rps']:,.0f} req/s, "
            f"{soaked['errors']} errors; resident MB sampled through the run: "
            f"{', '.join(f'{x:.1f}' for x in soaked['rss_samples_mb'])}.",
            "",
        ]
    # The goals are set for a full run: a run of fewer scenarios checks none.
    measured = {run.scenario for run in results.runs}
    goals = targets(results) if set(FULL_RUN) <= measured else []
    if goals:
        out += ["## Goals", "", *goals, ""]
    return "\n".join(out)


def chart(results: Results, labels: Dict[str, str], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    scenarios = [
        s for s in SCENARIOS if any(summary(results.runs, k, s) for k in labels)
    ]
    if not scenarios:
        return False
    from matplotlib.ticker import FuncFormatter

    rows = max(sum(1 for k in labels if summary(results.runs, k, s)) for s in scenarios)
    fig, axes = plt.subplots(
        len(scenarios),
        1,
        figsize=(9, 1.2 + 0.42 * rows * len(scenarios)),
        squeeze=False,
    )
    for ax, name in zip(axes[:, 0], scenarios):
        keys = [k for k in labels if summary(results.runs, k, name)]
        stats = [s for s in (summary(results.runs, k, name) for k in keys) if s]
        values = [s["rps"] for s in stats]
        low = [s["rps"] - s["rps_min"] for s in stats]
        high = [s["rps_max"] - s["rps"] for s in stats]
        colours = [
            ("#e6b0aa" if "twisted.web" in labels[k] else "#c0392b")
            if labels[k].startswith("shijid")
            else "#7f8c8d"
            for k in keys
        ]
        ax.barh(
            [f"({k}) {labels[k]}" for k in keys], values, xerr=[low, high],
            color=colours, capsize=3,
        )  # fmt: skip
        ax.invert_yaxis()
        ax.set_title(SCENARIOS[name].title, fontsize=10, loc="left")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k"))
        ax.set_xlim(0, max(s["rps_max"] for s in stats) * 1.18)
        for y, s in enumerate(stats):
            ax.text(s["rps_max"], y, f"  {s['rps']:,.0f}", va="center", fontsize=8)
    axes[-1, 0].set_xlabel("requests per second: median, and min–max of the rounds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# Setup


def version_of(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except OSError:
        return ""
    return (done.stdout or done.stderr).strip().splitlines()[0]


def machine(args: argparse.Namespace) -> Dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    pypy = ""
    if args.pypy:
        pypy = version_of(
            [args.pypy, "-c", "import sys, platform; print('PyPy', "
             "'.'.join(map(str, sys.pypy_version_info[:3])), '(Python', "
             "platform.python_version() + ')')"]
        )  # fmt: skip
    return {
        "date": time.strftime("%Y-%m-%d"),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "os": f"{platform.system()} {platform.release()}",
        "cpython": version_of([args.python, "-c", "import sys; print('CPython', sys.version.split()[0])"]),
        "pypy": pypy,
        "wrk": version_of([args.wrk, "-v"]).split(" [")[0],
        "rounds": args.rounds,
        "duration": args.duration,
        "pinned": two_cores(),
        "shiji_http_parser_env": os.environ.get("SHIJI_HTTP_PARSER", ""),
    }  # fmt: skip


#: Run by a shijid server's interpreter: the HTTP parser its Shiji picks,
#: or twisted.web for a Shiji from before its own engine.
PARSER_PROBE = """
import importlib.util
if importlib.util.find_spec("shiji._parsing") is None:
    print("twisted.web")
else:
    from shiji._parsing import head_parser
    print("shiji", head_parser()[0])
"""


def shiji_parser(python: str, workdir: Path) -> str:
    """
    The HTTP parser of the shiji that ``python`` imports, asked in the
    environment shijid inherits (``SHIJI_HTTP_PARSER`` included), from the
    directory it runs in (never the checkout, whose shiji would shadow an
    installed one).
    """
    try:
        done = subprocess.run(
            [python, "-c", PARSER_PROBE],
            capture_output=True,
            text=True,
            cwd=workdir,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    answer = done.stdout.strip()
    return answer if done.returncode == 0 and answer else "unknown"


def importable(python: str, modules: str) -> bool:
    done = subprocess.run(
        [python, "-c", f"import {modules}"], capture_output=True, timeout=120
    )
    return done.returncode == 0


def raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def parse(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument(
        "--python", default=sys.executable, help="CPython with shiji and the peers"
    )
    parser.add_argument(
        "--pypy", default=None, help="PyPy with shiji (omit to skip PyPy)"
    )
    parser.add_argument(
        "--shiji-twistedweb",
        default=None,
        metavar="PYTHON",
        help=f"CPython with shiji at {TWISTED_WEB_COMMIT}, on twisted.web "
        "(omit to skip (g))",
    )
    parser.add_argument("--wrk", default=shutil.which("wrk"), help="the wrk binary")
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds per measurement"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument(
        "--warmup-scale", type=float, default=1.0, help="multiplies warm-up times"
    )
    parser.add_argument(
        "--connections", type=int, default=10000, help="for the many-connections run"
    )
    parser.add_argument(
        "--soak", type=float, default=60.0, help="seconds of soak (0: none)"
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        help="write the reports again from a results.json, measuring nothing",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(FULL_RUN),
        help=f"some of {', '.join(SCENARIOS)} (default: {','.join(FULL_RUN)})",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: (a) and (b), 1 s, 1 round"
    )
    parser.add_argument(
        "--out", type=Path, default=HERE / "results", help="where results go"
    )
    parser.add_argument(
        "--name",
        default=None,
        help="the results' file name, less .json, .md and .png (default: "
        "results for a run of post, get and error, else the scenarios "
        "measured, such as nested; with --from-json, that file's name)",
    )
    parser.add_argument(
        "--only",
        default="",
        help="servers to run, by comma-separated key: "
        + "; ".join(f"{key}: {what}" for key, what in KEYS.items()),
    )
    args = parser.parse_args(argv)  # fmt: skip
    if not args.wrk and not args.from_json:
        parser.error("wrk not found: install it (apt-get install wrk) or pass --wrk")
    unknown = set(filter(None, args.only.split(","))) - set(KEYS)
    if unknown:
        parser.error(f"no server {', '.join(sorted(unknown))}; keys: {', '.join(KEYS)}")
    unknown = set(args.scenarios.split(",")) - set(SCENARIOS)
    if unknown:
        parser.error(f"no scenario {', '.join(sorted(unknown))}")
    args.python = os.path.abspath(args.python)
    if args.pypy:
        args.pypy = os.path.abspath(args.pypy)
    if args.shiji_twistedweb:
        args.shiji_twistedweb = os.path.abspath(args.shiji_twistedweb)
    if args.name is None:
        if args.from_json:
            args.name = args.from_json.stem
        elif set(FULL_RUN) <= set(args.scenarios.split(",")):
            args.name = "results"
        else:
            args.name = "-".join(args.scenarios.split(","))
    if not re.fullmatch(r"[\w.-]+", args.name):
        parser.error(f"--name {args.name!r}: a file name, without a folder")
    if args.quick:
        args.duration, args.rounds, args.warmup_scale = 1.0, 1, 0.0
        args.soak, args.connections = 0.0, 0
        args.only = args.only or "a,b"
    return args


def servers(args: argparse.Namespace) -> List[Server]:
    """Every server of this run, in the order of the tables."""
    py, pypy, old = args.python, args.pypy, args.shiji_twistedweb
    post = ("post",)
    # The nested scenario's order is checked by the servers with a schema
    # language: Shiji's declarations, msgspec, pydantic.
    nested = (*FULL_RUN, "nested")
    every = [
        Server("a", KEYS["a"], py, "shijid", answers=nested),
        Server("g", KEYS["g"], old or "", "shijid"),
        Server("b", KEYS["b"], py, "bare"),
        Server("h", KEYS["h"], py, "lean"),
        Server("c", KEYS["c"], py, "fastapi", answers=("post", "nested")),
        Server("d", KEYS["d"], py, "falcon", answers=nested),
        Server("i", KEYS["i"], py, "sanic"),
        Server("j", KEYS["j"], py, "starlette"),
        Server("f", KEYS["f"], pypy or "", "shijid", warmup=15, answers=nested),
        Server("f:bare", KEYS["f:bare"], pypy or "", "bare", warmup=15),
        Server("e", KEYS["e"], py, "shijid", workers=2, answers=post),
        Server("e:falcon", KEYS["e:falcon"], py, "falcon", workers=2, answers=post),
        Server("e:fastapi", KEYS["e:fastapi"], py, "fastapi", workers=2, answers=post),
    ]  # fmt: skip
    if args.only:
        wanted = set(args.only.split(","))
        every = [s for s in every if s.key in wanted]
    found = []
    checked: Dict[Tuple[str, str], bool] = {}
    for server in every:
        if not server.python:
            why = "no --pypy" if server.key.startswith("f") else "no --shiji-twistedweb"
            print(f"leaving out ({server.key}) {server.label}: {why}", file=sys.stderr)
            continue
        modules = REQUIRES[server.kind]
        if (server.python, modules) not in checked:
            checked[server.python, modules] = importable(server.python, modules)
        if not checked[server.python, modules]:
            print(
                f"leaving out ({server.key}) {server.label}: {server.python} "
                f"cannot import {modules}",
                file=sys.stderr,
            )
            continue
        found.append(server)
    return found


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse(argv)
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        results = Results(
            saved["machine"],
            [Run(**run) for run in saved["runs"]],
            saved["extras"],
            saved.get("parsers", {}),
        )
        return report(args, results, saved["servers"])
    raise_fd_limit(args.connections + 1024)
    every = servers(args)
    labels = {s.key: s.label for s in every}
    results = Results(machine(args))
    wanted = [SCENARIOS[name] for name in args.scenarios.split(",")]
    plan = [(s, [sc for sc in wanted if sc.name in s.answers]) for s in every]
    plan = [(server, scenarios) for server, scenarios in plan if scenarios]

    with tempfile.TemporaryDirectory(prefix="shiji-bench-") as tmp:
        workdir = Path(tmp)
        for server in every:
            if server.kind == "shijid":
                results.parsers[server.key] = shiji_parser(server.python, workdir)
            else:
                results.parsers[server.key] = PARSERS[server.kind]
        if plan:
            print(f"measuring {', '.join(s.label for s, _ in plan)}", flush=True)
            measure(args, results, plan, workdir)
        # Both load the post scenario: they come with it.
        with_post = "post" in args.scenarios.split(",")
        if args.connections and "a" in labels and with_post:
            many_connections(
                args, results, Server("a", labels["a"], args.python, "shijid"), workdir
            )
        if args.soak and "a" in labels and with_post:
            soak(
                args, results, Server("a", labels["a"], args.python, "shijid"), workdir
            )

    return report(args, results, labels)


def report(args: argparse.Namespace, results: Results, labels: Dict[str, str]) -> int:
    """
    Write NAME.json, NAME.md and NAME.png to ``args.out``, NAME being
    ``args.name``: ``results`` for a full run.
    """
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(
        json.dumps(
            {
                "machine": results.machine,
                "servers": labels,
                "parsers": results.parsers,
                "runs": [r.__dict__ for r in results.runs],
                "extras": results.extras,
            },
            indent=1,
        )
        + "\n"
    )
    text = markdown(results, labels)
    if chart(results, labels, args.out / f"{args.name}.png"):
        text += f"\n![requests per second]({args.name}.png)\n"
    (args.out / f"{args.name}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
