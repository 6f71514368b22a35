#!/usr/bin/env python3
"""
CPython instructions per request, counted by valgrind's callgrind: a figure
that, unlike req/s, barely moves with what else the machine is doing, for
comparing one change of shijid's hot path with the next.

Each site is fed the benchmark's PingCall POST (or, with ``--scenario
nested``, the nested scenario's order, or with ``--scenario error`` the
POST with an argument of the wrong type, which shijid's sites alone answer)
in process, through the site's HTTP parser and a ``StringTransport`` (no
sockets); a short run is subtracted from a longer one, so start-up cancels
out.

Usage: bench/instructions.py [--python PY] [--requests N] [--sites a,b]
                             [--scenario post|nested|error]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Tuple

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
sys.path.insert(0, str(APPS))
from benchdata import ORDER  # noqa: E402


def post(target: bytes, body: bytes) -> bytes:
    """The bytes of a POST of the JSON ``body`` to ``target``."""
    return (
        b"POST %s HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\nX-API-Version: benchapi-1.0+prod\r\n"
        b"Content-Type: application/json; charset=utf-8\r\n"
        b"Content-Length: %d\r\n\r\n" % (target, len(body))
    ) + body


#: The request of each scenario, as bench/run.py sends it.
REQUESTS = {
    "post": post(
        b"/benchapi/ping/123?simple_auth_key=abc",
        b'{"client_tz":-7,"client_id":"myclient012","new_client":true}',
    ),
    "nested": post(
        b"/benchapi/orders", json.dumps(ORDER, separators=(",", ":")).encode()
    ),
    "error": post(
        b"/benchapi/ping/123?simple_auth_key=abc",
        b'{"client_tz":"notaninteger","client_id":"myclient012","new_client":true}',
    ),
}

#: The status line each scenario is answered with.
ANSWERS = {
    "post": b"HTTP/1.1 200 ",
    "nested": b"HTTP/1.1 200 ",
    "error": b"HTTP/1.1 409 ",
}

SITES = {
    "bare": "bare twisted.web Resource",
    "shijid": "shijid's site, access log to a file",
    "shijid-nolog": "shijid's site, no access log",
}

#: The sites that answer each scenario.
ANSWERING = {
    "post": tuple(SITES),
    "nested": ("shijid", "shijid-nolog"),
    "error": ("shijid", "shijid-nolog"),
}


def make(site: str, log_path: str) -> Tuple[Any, Any]:
    """A connected HTTP channel of ``site`` and its transport."""
    from twisted.internet.address import IPv4Address
    from twisted.internet.task import Clock
    from twisted.internet.testing import StringTransport

    if site == "bare":
        import bare_twisted
        from twisted.web import server

        http_site: Any = server.Site(
            bare_twisted.Bench(), parsePOSTFormSubmission=False
        )
    else:
        import benchapi

        from shiji._logging import ReopenableFileObserver
        from shiji._settings import DEFAULT_SETTINGS
        from shiji._site import Site
        from shiji.urldispatch import APIRouter

        settings = DEFAULT_SETTINGS.replace(access_log=site == "shijid")
        http_site = Site(
            APIRouter({"benchapi": benchapi}, settings=settings),
            settings,
            clock=Clock(),
        )
        http_site.access.sink = ReopenableFileObserver(log_path, Clock()).access
    address = IPv4Address("TCP", "127.0.0.1", 40000)
    channel = http_site.buildProtocol(address)
    transport = StringTransport(peerAddress=address)
    channel.makeConnection(transport)
    return channel, transport


def feed(site: str, scenario: str, requests: int, log_path: str) -> None:
    channel, transport = make(site, log_path)
    # The collector's counters start from zero, whatever start-up allocated:
    # otherwise a full collection of the whole heap lands in the counted
    # requests or not as start-up shifts them, moving the figure by ~10,000.
    gc.collect()
    request = REQUESTS[scenario]
    for _ in range(requests):
        channel.dataReceived(request)
        if not transport.value().startswith(ANSWERS[scenario]):
            raise SystemExit(f"{site} answered {transport.value()[:200]!r}")
        transport.clear()


def count(python: str, site: str, scenario: str, requests: int, log_path: str) -> int:
    """
    Instructions callgrind counts for feeding ``requests`` of ``scenario``
    to ``site``.
    """
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            python,
            __file__,
            "--feed",
            site,
            scenario,
            str(requests),
            log_path,
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONHASHSEED="0"),
        timeout=1800,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"callgrind failed for {site}:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> int:
    if len(sys.argv) == 6 and sys.argv[1] == "--feed":
        feed(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument(
        "--scenario",
        choices=list(REQUESTS),
        default="post",
        help="the request fed: the PingCall POST (the default) or the nested "
        "scenario's order",
    )
    parser.add_argument(
        "--sites", help="comma-separated; default: every site answering the scenario"
    )
    args = parser.parse_args()
    sites = args.sites.split(",") if args.sites else ANSWERING[args.scenario]
    for site in sites:
        if site not in ANSWERING[args.scenario]:
            parser.error(
                f"{site} does not answer {args.scenario}; "
                f"sites: {', '.join(ANSWERING[args.scenario])}"
            )
    if shutil.which("valgrind") is None:
        parser.error("valgrind not found: apt-get install valgrind")
    log_path = os.devnull
    print("| site | instructions per request |\n|---|---|")
    for site in sites:
        short = count(args.python, site, args.scenario, args.requests // 4, log_path)
        long = count(
            args.python,
            site,
            args.scenario,
            args.requests // 4 + args.requests,
            log_path,
        )
        print(f"| {SITES[site]} | {(long - short) / args.requests:,.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
