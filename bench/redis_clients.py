#!/usr/bin/env python3
"""
Which Redis client suits shijid: four ways of talking to Redis from a
Twisted process, measured against a real redis-server on this machine, on
the interpreter that runs this script.

- (a) txredisapi, Twisted-native, on the epoll reactor (skipped where it
  cannot be imported);
- (b) redis-py's asyncio client on Twisted's asyncio reactor;
- (c) redis-py's blocking client in a small thread pool of its own, on the
  epoll reactor (``deferToThreadPool``);
- (d) redis-py's asyncio client on an asyncio event loop in one thread of
  its own, bridged to the epoll reactor (``run_coroutine_threadsafe``, then
  ``callFromThread``).

The workload cycles through GET, SET with a 60 s expiry (PX) and INCR, over
100 keys, from 1 or 50 concurrent callers, each awaiting its operation's
Deferred before the next. Every variant runs in a process of its own, one
after the other, in interleaved rounds; the script starts redis-server on a
free 127.0.0.1 port and stops it at the end::

    .venv/bin/python bench/redis_clients.py
    .venv-pypy/bin/python bench/redis_clients.py --duration 5 --warmup 5

``--reactor-cost`` also measures what the asyncio reactor costs against
epoll for a loopback TCP request-response (b's price for everything else).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, Iterator, List, Optional

VARIANTS = {
    "a": "txredisapi, epoll reactor",
    "b": "redis-py asyncio, Twisted's asyncio reactor",
    "c": "redis-py blocking, thread pool, epoll reactor",
    "d": "redis-py asyncio, own loop thread, epoll reactor",
}
KEYS = 100
CONNECTIONS = 8  # the pool size (connections or threads) of every variant


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Iterator[int]:
    """A redis-server on a free 127.0.0.1 port, stopped afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (.ci/tools installs it)")
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                directory,
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), 0.5) as s:
                        s.sendall(b"PING\r\n")
                        if s.recv(16).startswith(b"+PONG"):
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not answer")
                time.sleep(0.05)
            yield port
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


# --- inside a worker process -------------------------------------------------


def make_operation(variant: str, port: int, concurrency: int) -> Any:
    """
    ``(operation, close)``: ``operation(i)`` returns a Deferred of the i-th
    operation of the workload; ``close()`` a Deferred (or None).
    """
    from twisted.internet import defer, reactor

    url = f"redis://127.0.0.1:{port}/0"
    if variant == "a":
        import txredisapi

        pool = txredisapi.lazyConnectionPool(
            "127.0.0.1", port, poolsize=CONNECTIONS, connectTimeout=1, replyTimeout=2
        )

        def operation(i: int) -> Any:
            kind, key = i % 3, f"k{i % KEYS}"
            if kind == 0:
                return pool.get(key)
            if kind == 1:
                return pool.set(key, "value", pexpire=60000)
            return pool.incr(f"n{i % KEYS}")

        return operation, pool.disconnect

    if variant in ("b", "d"):
        import asyncio

        import redis.asyncio

        def new_client() -> Any:
            client = redis.asyncio.Redis.from_url(
                url,
                decode_responses=True,
                max_connections=CONNECTIONS,
                socket_timeout=2,
                socket_connect_timeout=1,
            )
            if concurrency > CONNECTIONS:
                # Callers beyond the pool's size wait for a connection.
                client.connection_pool = redis.asyncio.BlockingConnectionPool.from_url(
                    url,
                    decode_responses=True,
                    max_connections=CONNECTIONS,
                    socket_timeout=2,
                    socket_connect_timeout=1,
                    timeout=2,
                )
            return client

        if variant == "b":
            client = new_client()
        else:
            # Made on its own loop: asyncio's locks bind to the loop they
            # are made on before Python 3.10.
            import threading

            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, daemon=True)
            thread.start()

            async def made() -> Any:
                return new_client()

            client = asyncio.run_coroutine_threadsafe(made(), loop).result(10)

        def coroutine(i: int) -> Any:
            kind, key = i % 3, f"k{i % KEYS}"
            if kind == 0:
                return client.get(key)
            if kind == 1:
                return client.set(key, "value", px=60000)
            return client.incr(f"n{i % KEYS}")

        if variant == "b":

            def operation(i: int) -> Any:
                return defer.Deferred.fromFuture(asyncio.ensure_future(coroutine(i)))

            def close() -> Any:
                return defer.Deferred.fromFuture(asyncio.ensure_future(client.aclose()))

            return operation, close

        def bridged(future: Any) -> Any:
            result: Any = defer.Deferred()

            def done(future: Any) -> None:
                error = future.exception()
                if error is None:
                    reactor.callFromThread(result.callback, future.result())
                else:
                    reactor.callFromThread(result.errback, error)

            future.add_done_callback(done)
            return result

        def operation(i: int) -> Any:
            return bridged(asyncio.run_coroutine_threadsafe(coroutine(i), loop))

        def close() -> Any:
            closed = bridged(asyncio.run_coroutine_threadsafe(client.aclose(), loop))
            closed.addBoth(lambda _: loop.call_soon_threadsafe(loop.stop))
            return closed

        return operation, close

    if variant == "c":
        import redis
        from twisted.internet.threads import deferToThreadPool
        from twisted.python.threadpool import ThreadPool

        blocking = redis.Redis(
            connection_pool=redis.BlockingConnectionPool.from_url(
                url,
                decode_responses=True,
                max_connections=CONNECTIONS,
                socket_timeout=2,
                socket_connect_timeout=1,
                timeout=2,
            )
        )
        threads = ThreadPool(CONNECTIONS, CONNECTIONS, "redis")
        threads.start()

        def call(i: int) -> Any:
            kind, key = i % 3, f"k{i % KEYS}"
            if kind == 0:
                return blocking.get(key)
            if kind == 1:
                return blocking.set(key, "value", px=60000)
            return blocking.incr(f"n{i % KEYS}")

        def operation(i: int) -> Any:
            return deferToThreadPool(reactor, threads, call, i)

        def close() -> None:
            threads.stop()
            blocking.close()

        return operation, close
    raise ValueError(variant)


def worker(
    variant: str, port: int, concurrency: int, warmup: float, duration: float
) -> None:
    """Run one variant and print its figures as one JSON line."""
    if variant == "b":
        from twisted.internet import asyncioreactor

        asyncioreactor.install()
    else:
        from twisted.internet import epollreactor

        epollreactor.install()
    from twisted.internet import defer, reactor

    operation, close = make_operation(variant, port, concurrency)
    latencies: List[float] = []
    counter = [0]
    state = {"measuring": False, "stop": False}

    async def caller() -> None:
        while not state["stop"]:
            counter[0] += 1
            started = time.perf_counter()
            await operation(counter[0])
            if state["measuring"]:
                latencies.append(time.perf_counter() - started)

    async def main() -> Dict[str, Any]:
        callers = [defer.ensureDeferred(caller()) for _ in range(concurrency)]
        await deferred_sleep(warmup)
        state["measuring"] = True
        cpu0, started = time.process_time(), time.perf_counter()
        await deferred_sleep(duration)
        state["measuring"] = False
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
        count = len(latencies)
        state["stop"] = True
        await defer.gatherResults(callers)
        closed = close()
        if closed is not None:
            await closed
        latencies.sort()
        return {
            "ops": count / elapsed,
            "p50_ms": latencies[count // 2] * 1000,
            "p99_ms": latencies[int(count * 0.99)] * 1000,
            "cpu_us": cpu / count * 1e6,
        }

    def deferred_sleep(seconds: float) -> Any:
        return (
            defer.Deferred(lambda d: None)
            .addTimeout(seconds, reactor)
            .addErrback(lambda f: f.trap(defer.TimeoutError, defer.CancelledError))
        )

    outcome: Dict[str, Any] = {}

    def finish(result: Any) -> None:
        if isinstance(result, dict):
            outcome.update(result)
        else:
            outcome["error"] = result.getErrorMessage()
        reactor.stop()

    reactor.callWhenRunning(lambda: defer.ensureDeferred(main()).addBoth(finish))
    reactor.run()
    print(json.dumps(outcome))


def reactor_cost(reactor_name: str, duration: float) -> None:
    """Loopback TCP request-response round trips per second on a reactor."""
    if reactor_name == "asyncio":
        from twisted.internet import asyncioreactor

        asyncioreactor.install()
    else:
        from twisted.internet import epollreactor

        epollreactor.install()
    from twisted.internet import protocol, reactor

    class Echo(protocol.Protocol):
        def dataReceived(self, data: bytes) -> None:
            self.transport.write(data)

    class Pinger(protocol.Protocol):
        count = 0

        def connectionMade(self) -> None:
            self.transport.write(b"x" * 64)

        def dataReceived(self, data: bytes) -> None:
            Pinger.count += 1
            self.transport.write(data)

    server = protocol.Factory.forProtocol(Echo)
    listening = reactor.listenTCP(0, server, interface="127.0.0.1")
    port = listening.getHost().port
    clients = protocol.ClientFactory.forProtocol(Pinger)
    for _ in range(50):
        reactor.connectTCP("127.0.0.1", port, clients)
    marks: Dict[str, float] = {}

    def start() -> None:
        marks["count"], marks["time"] = Pinger.count, time.perf_counter()

    def stop() -> None:
        elapsed = time.perf_counter() - marks["time"]
        print(json.dumps({"ops": (Pinger.count - marks["count"]) / elapsed}))
        reactor.stop()

    reactor.callLater(1.0, start)
    reactor.callLater(1.0 + duration, stop)
    reactor.run()


# --- the driver --------------------------------------------------------------


def run_worker(arguments: List[str]) -> Dict[str, Any]:
    done = subprocess.run(
        [sys.executable, os.path.abspath(__file__), *arguments],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def importable(module: str) -> bool:
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, timeout=60
    )
    return done.returncode == 0


def interpreter() -> str:
    if platform.python_implementation() == "PyPy":
        pypy = ".".join(map(str, sys.pypy_version_info[:3]))  # type: ignore[attr-defined]
        return f"PyPy {pypy} (Python {platform.python_version()})"
    return f"CPython {platform.python_version()}"


def versions() -> str:
    found = []
    for name in ("twisted", "redis", "txredisapi", "hiredis"):
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import importlib.metadata as m; print(m.version({name!r}))",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode == 0:
            found.append(f"{name} {done.stdout.strip()}")
    return ", ".join(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", default="1,50")
    parser.add_argument("--only", default="a,b,c,d")
    parser.add_argument("--reactor-cost", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--reactor", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.reactor:
        reactor_cost(options.reactor, options.duration)
        return
    if options.worker:
        worker(
            options.worker,
            options.port,
            int(options.concurrency),
            options.warmup,
            options.duration,
        )
        return

    variants = options.only.split(",")
    notes = []
    if "a" in variants and not importable("txredisapi"):
        variants.remove("a")
        notes.append("(a) skipped: txredisapi cannot be imported here.")
    levels = [int(c) for c in options.concurrency.split(",")]
    results: Dict[str, List[Dict[str, Any]]] = {}
    with redis_server() as port:
        for round_ in range(options.rounds):
            for level in levels:
                for variant in variants:
                    figures = run_worker(
                        [
                            "--worker",
                            variant,
                            "--port",
                            str(port),
                            "--concurrency",
                            str(level),
                            "--warmup",
                            str(options.warmup),
                            "--duration",
                            str(options.duration),
                        ]
                    )
                    results.setdefault(f"{variant}@{level}", []).append(figures)
                    print(
                        f"round {round_ + 1} {variant} c={level}: {figures}",
                        file=sys.stderr,
                    )
    costs: Dict[str, List[float]] = {}
    if options.reactor_cost:
        for _ in range(options.rounds):
            for name in ("epoll", "asyncio"):
                figures = run_worker(
                    ["--reactor", name, "--duration", str(options.duration)]
                )
                costs.setdefault(name, []).append(figures.get("ops", 0.0))

    print(f"### {interpreter()}\n")
    print(
        f"{versions()}; {os.cpu_count()} cores; {options.rounds} interleaved "
        f"rounds of {options.duration:g} s after {options.warmup:g} s of "
        f"warm-up; pool of {CONNECTIONS} connections (threads for (c)); "
        "medians, with the range of ops/s in brackets.\n"
    )
    for note in notes:
        print(note + "\n")
    print(
        "| | client | concurrency | ops/s (min\u2013max) | p50 ms | p99 ms "
        "| CPU µs/op | vs (c) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for level in levels:
        base: Optional[float] = None
        rows = []
        for variant in variants:
            runs = results[f"{variant}@{level}"]
            good = [r for r in runs if "ops" in r]
            if not good:
                rows.append((variant, None, runs[0].get("error", "")))
                continue
            ops = [r["ops"] for r in good]
            median = statistics.median(ops)
            if variant == "c":
                base = median
            rows.append((variant, median, (ops, good)))
        for variant, median, extra in rows:
            if median is None:
                print(
                    f"| ({variant}) | {VARIANTS[variant]} | {level} | failed: "
                    f"{extra} | | | | |"
                )
                continue
            ops, good = extra
            ratio = f"{median / base:.2f}\u00d7" if base else "\u2013"
            print(
                f"| ({variant}) | {VARIANTS[variant]} | {level} | **{median:,.0f}** "
                f"({min(ops):,.0f}\u2013{max(ops):,.0f}) "
                f"| {statistics.median(r['p50_ms'] for r in good):.2f} "
                f"| {statistics.median(r['p99_ms'] for r in good):.2f} "
                f"| {statistics.median(r['cpu_us'] for r in good):.0f} | {ratio} |"
            )
    if costs:
        epoll, asyncio_ = (
            statistics.median(costs["epoll"]),
            statistics.median(costs["asyncio"]),
        )
        print(
            f"\nLoopback TCP echo, 50 connections: epoll reactor {epoll:,.0f} "
            f"round trips/s, asyncio reactor {asyncio_:,.0f} "
            f"({asyncio_ / epoll:.2f}\u00d7)."
        )


if __name__ == "__main__":
    main()
