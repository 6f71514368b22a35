"""
Worker recycling: each worker's request limit and its jitter, the decision
to replace a worker, ``WorkerPool.replace`` (in memory, with a clock and
fake processes), and, slowly, shijid replacing workers under keep-alive
load without a request refused or failed.
"""

import http.client
import json
import random
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest
from apitools import log_lines
from daemons import TESTS, merged, write_config
from twisted.internet import error
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from shiji._workers import (
    EXIT_MARGIN,
    READY_TIMEOUT,
    RETRY_SECONDS,
    STACK_SIGNAL,
    STACK_WAIT,
    WORKER_READY_FD,
    WORKER_STACK_FD,
    WorkerPool,
    request_limit,
    retirement_reason,
)
from shiji.config import GeneralConfig, load_config

# Request limits and the decision


def test_the_request_limit_is_max_requests_plus_a_jitter_drawn_per_worker():
    general = GeneralConfig(max_requests=1000, max_requests_jitter=50)
    rng = random.Random(7)
    limits = [request_limit(general, rng) for _ in range(200)]
    assert min(limits) >= 1000
    assert max(limits) <= 1050
    assert len(set(limits)) > 20
    expected = random.Random(7)
    assert limits[:3] == [1000 + expected.randint(0, 50) for _ in range(3)]


def test_without_jitter_every_worker_gets_max_requests():
    general = GeneralConfig(max_requests=10)
    assert {request_limit(general, random.Random(i)) for i in range(20)} == {10}


def test_without_max_requests_there_is_no_limit():
    assert request_limit(GeneralConfig(), random.Random(1)) == 0


def test_retirement_reason():
    assert retirement_reason(999, 1000, 5.0, 0.0) is None
    assert retirement_reason(1000, 1000, 5.0, 0.0) == "answered 1000 requests"
    assert retirement_reason(10**6, 0, 5.0, 0.0) is None
    assert retirement_reason(3, 0, 3599.0, 3600.0) is None
    assert retirement_reason(3, 0, 3600.2, 3600.0) == "has run 3600s"
    assert retirement_reason(1200, 1000, 3600.2, 3600.0) == "answered 1200 requests"


# The pool, in memory


class FakeProcess:
    """The transport spawnProcess returns: records the signals it gets."""

    def __init__(self, pid):
        self.pid = pid
        self.signals = []

    def signalProcess(self, name):
        if self.pid is None:
            raise error.ProcessExitedAlready()
        self.signals.append(name)


class FakeReactor(Clock):
    """A clock that spawns fake processes."""

    def __init__(self):
        super().__init__()
        self.spawned = []

    def spawnProcess(self, protocol, executable, args, env, childFDs):
        assert childFDs[WORKER_READY_FD] == "r"
        assert childFDs[WORKER_STACK_FD] == "r"
        process = FakeProcess(1000 + len(self.spawned))
        protocol.makeConnection(process)
        self.spawned.append(protocol)
        return process


def ready(worker, answered=None):
    worker.childDataReceived(WORKER_READY_FD, b"ready\n")
    if answered is not None:
        beat(worker, answered)


def beat(worker, answered):
    worker.childDataReceived(WORKER_READY_FD, b"beat %d\n" % answered)


def end(worker, signum=signal.SIGTERM, error_line=b""):
    if error_line:
        # What a worker that cannot start says on its pipe before it exits.
        worker.childDataReceived(WORKER_READY_FD, b"error " + error_line)
    worker.transport.pid = None
    reason = (
        error.ProcessTerminated(signal=signum)
        if signum
        else error.ProcessTerminated(exitCode=1)
    )
    worker.processEnded(Failure(reason))


@pytest.fixture
def logged():
    with log_lines("shiji.workers") as lines:
        yield lambda: list(lines)


@pytest.fixture
def make_pool(tmp_path):
    pools = []

    def make(workers=2, **general):
        options = {"workers": str(workers)}
        options.update({name: str(value) for name, value in general.items()})
        path = write_config(tmp_path / "shijid.conf", merged({"general": options}))
        reactor = FakeReactor()
        pool = WorkerPool(
            load_config(path),
            workers,
            reactor=reactor,
            rng=random.Random(3),
            now=reactor.seconds,
        )
        pool.startService()
        pools.append(pool)
        for worker in reactor.spawned:
            ready(worker)
        return pool, reactor

    yield make
    for pool in pools:
        if pool.running:
            pool.stopService()
            for worker in list(pool.reactor.spawned):
                if not worker.ended.called:
                    end(worker)


def test_replace_starts_a_new_worker_and_stops_the_old_one_once_it_serves(
    make_pool, logged
):
    pool, reactor = make_pool()
    old = pool._protocols[1]
    replaced = pool.replace(1)
    new = reactor.spawned[-1]
    assert len(reactor.spawned) == 3
    assert new.index == 1
    assert old.transport.signals == []
    assert not replaced.called
    ready(new)
    assert old.transport.signals == ["TERM"]
    assert replaced.called and replaced.result is None
    assert pool.workers[1] is new.transport
    assert logged() == ["Worker 1 (pid 1001) replaced by pid 1002; it drains and exits"]
    # The old one ending is no reason to restart anything.
    end(old)
    reactor.advance(5)
    assert len(reactor.spawned) == 3
    assert pool.restarts == 0


def test_a_replacement_that_fails_to_start_leaves_the_old_worker_serving(
    make_pool, logged
):
    pool, reactor = make_pool()
    old = pool._protocols[0]
    replaced = pool.replace(0)
    failures = []
    replaced.addErrback(failures.append)
    new = reactor.spawned[-1]
    end(
        new,
        signum=None,
        error_line=b"shijid: error: shijid.conf: [apis] probe_api: cannot import it\n",
    )
    assert failures and failures[0].check(error.ProcessTerminated)
    assert old.transport.signals == []
    assert pool.workers[0] is old.transport
    assert logged() == [
        "Could not replace worker 0: the new worker exited with status 1 "
        "(shijid: error: shijid.conf: [apis] probe_api: cannot import it); "
        "the old one keeps serving"
    ]
    reactor.advance(5)
    assert len(reactor.spawned) == 3


def test_a_worker_that_cannot_start_says_why_in_the_log(make_pool, logged):
    _, reactor = make_pool()
    end(reactor.spawned[0], signal.SIGKILL)
    reactor.advance(1)
    restarted = reactor.spawned[2]
    end(restarted, signum=None, error_line=b"shijid: error: cannot start: OSError: x\n")
    assert logged()[1:] == [
        "Worker 0 ended (A process has ended with a probable error condition: "
        "process ended with exit code 1. shijid: error: cannot start: OSError: x); "
        "restarting it"
    ]


def test_a_replacement_not_ready_in_time_is_killed(make_pool, logged):
    pool, reactor = make_pool()
    replaced = pool.replace(0)
    failures = []
    replaced.addErrback(failures.append)
    new = reactor.spawned[-1]
    reactor.advance(READY_TIMEOUT)
    assert failures and failures[0].check(TimeoutError)
    assert logged() == [
        "Could not replace worker 0: the new worker was not ready within 60s; "
        "the old one keeps serving"
    ]
    assert new.transport.signals == ["KILL"]
    end(new, signal.SIGKILL)
    assert pool.workers[0] is reactor.spawned[0].transport


def test_a_slot_is_replaced_once_at_a_time(make_pool):
    pool, reactor = make_pool()
    pool.replace(0).addErrback(lambda _: None)
    again = pool.replace(0)
    failures = []
    again.addErrback(failures.append)
    assert failures and failures[0].check(RuntimeError)
    assert len(reactor.spawned) == 3


def test_a_worker_past_its_request_limit_is_replaced_one_at_a_time(make_pool, logged):
    pool, reactor = make_pool(max_requests=100, max_requests_jitter=20)
    first, second = reactor.spawned
    limits = [first.limit, second.limit]
    expected = random.Random(3)
    assert limits == [100 + expected.randint(0, 20) for _ in range(2)]
    beat(first, first.limit - 1)
    assert len(reactor.spawned) == 2
    beat(first, first.limit + 5)
    beat(second, second.limit + 7)
    # One replacement at a time: the second waits for the first's.
    assert len(reactor.spawned) == 3
    assert logged() == [
        f"Worker 0 (pid 1000) answered {first.limit + 5} requests; replacing it"
    ]
    ready(reactor.spawned[2])
    assert first.transport.signals == ["TERM"]
    beat(second, second.limit + 9)
    assert len(reactor.spawned) == 4
    assert logged()[-1] == (
        f"Worker 1 (pid 1001) answered {second.limit + 9} requests; replacing it"
    )
    ready(reactor.spawned[3])
    assert second.transport.signals == ["TERM"]
    assert pool.replacements == 2
    # Each new worker draws a limit of its own.
    assert [worker.limit for worker in reactor.spawned[2:]] == [
        100 + expected.randint(0, 20) for _ in range(2)
    ]


def test_a_worker_past_max_worker_age_is_replaced(make_pool, logged):
    _, reactor = make_pool(max_worker_age=60)
    reactor.pump([1] * 59)
    assert len(reactor.spawned) == 2
    reactor.advance(1)
    assert len(reactor.spawned) == 3
    assert logged() == ["Worker 0 (pid 1000) has run 60s; replacing it"]
    reactor.pump([1] * 4)
    assert len(reactor.spawned) == 3
    ready(reactor.spawned[2])
    reactor.advance(1)
    assert len(reactor.spawned) == 4
    assert logged()[-2:] == [
        "Worker 0 (pid 1000) replaced by pid 1002; it drains and exits",
        "Worker 1 (pid 1001) has run 65s; replacing it",
    ]


def test_the_oldest_worker_due_is_replaced_first(make_pool, logged):
    _, reactor = make_pool(max_worker_age=2)
    reactor.pump([0.5] * 4)
    assert logged() == ["Worker 0 (pid 1000) has run 2s; replacing it"]
    # The new worker is slow to start: due itself once ready.
    reactor.pump([0.5] * 8)
    ready(reactor.spawned[2])
    reactor.advance(0.5)
    assert logged()[-1] == "Worker 1 (pid 1001) has run 6s; replacing it"
    ready(reactor.spawned[3])
    reactor.advance(0.5)
    assert logged()[-1] == "Worker 0 (pid 1002) has run 5s; replacing it"


def test_a_failed_replacement_is_retried_later(make_pool):
    _, reactor = make_pool(max_worker_age=60)
    reactor.pump([1] * 60)
    assert len(reactor.spawned) == 3
    end(reactor.spawned[2], signum=None)
    # Worker 1 is due too, and goes next; worker 0 waits RETRY_SECONDS.
    reactor.advance(1)
    assert [worker.index for worker in reactor.spawned[3:]] == [1]
    ready(reactor.spawned[3])
    reactor.pump([1] * (int(RETRY_SECONDS) - 2))
    assert len(reactor.spawned) == 4
    reactor.pump([1, 1])
    assert [worker.index for worker in reactor.spawned[3:]] == [1, 0]


def test_a_blocked_worker_has_its_stack_logged_and_is_killed(make_pool, logged):
    _, reactor = make_pool(worker_watchdog=2)
    stuck, other = reactor.spawned
    for _ in range(5):
        reactor.advance(0.5)
        beat(other, 1)
    assert stuck.transport.signals == [int(STACK_SIGNAL)]
    stuck.childDataReceived(
        WORKER_STACK_FD, b'  File "calls.py", line 10 in spin_for\n'
    )
    reactor.advance(STACK_WAIT)
    assert stuck.transport.signals == [int(STACK_SIGNAL), "KILL"]
    assert other.transport.signals == []
    assert logged() == [
        "Worker 0 (pid 1000) blocked for 3.0s (worker_watchdog 2s); killing and "
        'replacing it. Its Python stack:\n  File "calls.py", line 10 in spin_for'
    ]
    end(stuck, signal.SIGKILL)
    reactor.advance(0)
    assert [worker.index for worker in reactor.spawned[2:]] == [0]
    assert logged()[-1].startswith("Worker 0 ended (")


def test_a_replaced_worker_blocked_while_draining_is_killed(make_pool, logged):
    pool, reactor = make_pool(worker_watchdog=2)
    old, other = reactor.spawned
    pool.replace(0)
    new = reactor.spawned[2]
    ready(new)
    for _ in range(5):
        reactor.advance(0.5)
        beat(new, 1)
        beat(other, 1)
    reactor.advance(STACK_WAIT)
    assert old.transport.signals == ["TERM", int(STACK_SIGNAL), "KILL"]
    assert logged()[-1] == (
        "Worker 0 (pid 1000) blocked for 3.0s (worker_watchdog 2s); killing it. "
        "Its Python stack:\n(none written)"
    )
    end(old, signal.SIGKILL)
    reactor.advance(5)
    assert len(reactor.spawned) == 3
    assert pool.workers[0] is new.transport


def test_a_paused_parent_does_not_count_the_pause_against_its_workers(
    make_pool, logged
):
    _, reactor = make_pool(worker_watchdog=2)
    first, second = reactor.spawned
    for _ in range(4):
        reactor.advance(0.5)
        beat(first, 1)
        beat(second, 1)
    # The parent is stopped 5s (SIGSTOP, a stalled machine): on waking, its
    # check runs before the beats waiting in the pipes are read.
    reactor.advance(5)
    assert logged() == [
        "The worker watchdog's check ran 4.5s late; "
        "the workers are not judged on that time"
    ]
    beat(first, 1)
    beat(second, 1)
    for _ in range(8):
        reactor.advance(0.5)
        beat(first, 1)
        beat(second, 1)
    assert first.transport.signals == second.transport.signals == []


def test_a_worker_blocked_before_the_parent_paused_is_still_killed(make_pool, logged):
    _, reactor = make_pool(worker_watchdog=2)
    stuck, other = reactor.spawned
    for _ in range(3):
        reactor.advance(0.5)
        beat(other, 1)
    reactor.advance(5)
    beat(other, 1)
    assert stuck.transport.signals == []
    reactor.advance(0.5)
    beat(other, 1)
    # The pause is not counted; the time watched before and after it is:
    # past the limit.
    assert stuck.transport.signals == [int(STACK_SIGNAL)]
    reactor.advance(STACK_WAIT)
    assert stuck.transport.signals == [int(STACK_SIGNAL), "KILL"]
    assert other.transport.signals == []
    assert logged()[-1] == (
        "Worker 0 (pid 1000) blocked for 3.0s (worker_watchdog 2s); killing and "
        "replacing it. Its Python stack:\n(none written)"
    )


def test_a_worker_is_not_judged_before_it_is_ready(make_pool):
    pool, reactor = make_pool(worker_watchdog=2)
    pool.replace(0).addErrback(lambda _: None)
    new = reactor.spawned[2]
    # Importing the APIs takes long: no beat, and no judgement, until ready.
    for _ in range(20):
        reactor.advance(0.5)
        beat(reactor.spawned[0], 1)
        beat(reactor.spawned[1], 1)
    assert new.transport.signals == []
    ready(new)
    for _ in range(3):
        reactor.advance(0.5)
        beat(new, 1)
        beat(reactor.spawned[1], 1)
    assert new.transport.signals == []


def test_the_pool_measures_time_on_a_monotonic_clock(tmp_path):
    path = write_config(tmp_path / "shijid.conf", merged({}))
    assert WorkerPool(load_config(path), 2, reactor=FakeReactor()).now is (
        time.monotonic
    )


def test_a_replaced_worker_that_does_not_exit_is_killed(make_pool, logged):
    pool, reactor = make_pool(shutdown_grace=3)
    old = reactor.spawned[0]
    pool.replace(0)
    ready(reactor.spawned[2])
    # Its tasks, then its requests, may each take the grace.
    reactor.advance(2 * 3 + EXIT_MARGIN - 0.1)
    assert old.transport.signals == ["TERM"]
    reactor.advance(0.1)
    assert old.transport.signals == ["TERM", "KILL"]
    assert logged()[-1] == (
        "Worker 0 (pid 1000) has not exited 11s after SIGTERM; killing it"
    )
    end(old, signal.SIGKILL)
    assert pool.workers[0] is reactor.spawned[2].transport
    # One that exits in time is not killed.
    pool.replace(1)
    ready(reactor.spawned[3])
    end(reactor.spawned[1])
    reactor.advance(60)
    assert reactor.spawned[1].transport.signals == ["TERM"]


def test_stopping_waits_for_the_drain_then_kills_what_remains(make_pool, logged):
    pool, reactor = make_pool(shutdown_grace=3)
    first, second = reactor.spawned
    stopped = pool.stopService()
    end(first)
    reactor.advance(2 * 3 + EXIT_MARGIN - 0.1)
    assert not stopped.called
    assert second.transport.signals == ["TERM"]
    reactor.advance(0.1)
    assert first.transport.signals == ["TERM"]
    assert second.transport.signals == ["TERM", "KILL"]
    assert logged() == [
        "Worker 1 (pid 1001) has not exited 11s after SIGTERM; killing it"
    ]
    end(second, signal.SIGKILL)
    assert stopped.called
    assert reactor.getDelayedCalls() == []


def test_stopping_the_pool_stops_the_replacements_and_the_replaced(make_pool):
    pool, reactor = make_pool()
    old = reactor.spawned[0]
    pool.replace(0)
    ready(reactor.spawned[2])
    failures = []
    pool.replace(1).addErrback(failures.append)
    stopped = pool.stopService()
    assert old.transport.signals == ["TERM", "TERM"]
    assert [worker.transport.signals for worker in reactor.spawned[1:]] == [
        ["TERM"],
        ["TERM"],
        ["TERM"],
    ]
    for worker in reactor.spawned:
        assert not stopped.called
        end(worker)
    assert stopped.called
    assert failures and failures[0].check(error.ProcessTerminated)


# shijid under load


def keep_alive_load(port, stop, outcomes, path="/probe/probe"):
    """
    Send requests on one keep-alive connection until ``stop``, reconnecting
    only when an answer says ``Connection: close``; record each outcome.
    No retry: a request that fails is recorded as failed.
    """
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        while not stop.is_set():
            try:
                connection.request(
                    "GET", path, headers={"X-API-Version": "probe_api-1.0+prod"}
                )
                response = connection.getresponse()
                body = response.read()
                outcomes.append((response.status, json.loads(body)["pid"]))
                if response.will_close:
                    connection.close()
            except (OSError, http.client.HTTPException, ValueError) as e:
                outcomes.append(("failed", repr(e)))
                connection.close()
    finally:
        connection.close()


def run_load(daemon, until, seconds=3, clients=4, timeout=60):
    """
    Load ``daemon`` from ``clients`` keep-alive connections for at least
    ``seconds``, then until ``until(log)`` holds (at most ``timeout``).
    """
    stop = threading.Event()
    outcomes = []
    threads = [
        threading.Thread(target=keep_alive_load, args=(daemon.port, stop, outcomes))
        for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    try:
        time.sleep(seconds)
        deadline = time.monotonic() + timeout
        while not until(daemon.log_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


def replaced(count):
    """Whether a log tells of ``count`` workers replaced."""
    return lambda log: len(re.findall(r"replaced by pid \d+; it drains", log)) >= count


@pytest.mark.slow
def test_workers_past_max_requests_are_replaced_under_keep_alive_load(shijid):
    daemon = shijid(
        {
            "general": {
                "workers": "2",
                "max_requests": "300",
                "max_requests_jitter": "50",
            },
            "logging": {"access_log": "false"},
        }
    )
    outcomes = run_load(daemon, replaced(3))
    failed = [outcome for outcome in outcomes if outcome[0] != 200]
    assert failed == []
    log = daemon.log_text()
    assert replaced(3)(log), log
    reasons = re.findall(
        r"Worker \d \(pid \d+\) answered (\d+) requests; replacing it", log
    )
    assert len(reasons) >= 3
    assert all(int(answered) >= 300 for answered in reasons)
    # The two first workers and at least one replacement answered (the load
    # may end before the last replacements have taken a connection).
    served_by = {pid for _, pid in outcomes}
    assert len(served_by) >= 3
    assert "Could not replace" not in daemon.log_text()
    assert "restarting it" not in daemon.log_text()
    assert daemon.stop() == 0


@pytest.mark.slow
def test_workers_past_max_worker_age_are_replaced_under_keep_alive_load(shijid):
    daemon = shijid(
        {
            "general": {
                "workers": "2",
                "max_worker_age": "2",
            },
            "logging": {"access_log": "false"},
        }
    )
    outcomes = run_load(daemon, replaced(3))
    failed = [outcome for outcome in outcomes if outcome[0] != 200]
    assert failed == []
    assert len(outcomes) > 100
    log = daemon.log_text()
    assert replaced(3)(log), log
    assert (
        len(re.findall(r"Worker \d \(pid \d+\) has run \d+s; replacing it", log)) >= 3
    )
    assert len({pid for _, pid in outcomes}) >= 3
    assert daemon.stop() == 0


@pytest.mark.slow
def test_wrk_sees_no_error_while_workers_are_replaced(shijid):
    wrk = shutil.which("wrk")
    if wrk is None:
        pytest.skip("wrk is not installed")

    daemon = shijid(
        {
            "general": {
                "workers": "2",
                "max_requests": "500",
                "max_requests_jitter": "100",
            },
            "logging": {"access_log": "false"},
        }
    )
    result = subprocess.run(
        [
            wrk,
            "-t1",
            "-c8",
            "-d15s",
            "-H",
            "X-API-Version: probe_api-1.0+prod",
            f"http://127.0.0.1:{daemon.port}/probe/probe",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Socket errors" not in result.stdout, result.stdout
    assert "Non-2xx" not in result.stdout, result.stdout
    assert re.search(r"\d+ requests in", result.stdout)
    # wrk takes a CPU: a new worker may take seconds to start.
    assert replaced(1)(daemon.log_text()), (result.stdout, daemon.log_text())
    assert daemon.stop() == 0


@pytest.mark.slow
def test_a_replacement_whose_api_no_longer_imports_leaves_the_old_worker(
    shijid, tmp_path
):
    base = tmp_path / "apis"
    shutil.copytree(TESTS / "daemon_apis" / "probe_api", base / "probe_api")
    daemon = shijid(
        {"general": {"workers": "2", "max_worker_age": "2", "base_path": str(base)}}
    )
    (base / "probe_api" / "__init__.py").write_text("raise ImportError('gone')\n")
    daemon.wait_for_log(r"Could not replace worker \d: the new worker", timeout=20)
    log = daemon.log_text()
    assert re.search(
        r"Could not replace worker \d: the new worker exited with status 1 \(shijid: "
        r"error: .*shijid\.conf: \[apis\] probe_api: cannot import probe_api: "
        r"ImportError: gone \(.*__init__\.py, line 1\)\); the old one keeps serving",
        log,
    ), log
    for _ in range(10):
        assert daemon.request("GET", "/probe/probe")[0] == 200
    log = daemon.log_text()
    assert "replaced by pid" not in log
    assert "restarting it" not in log
    assert daemon.stop() == 0


@pytest.mark.slow
def test_an_idle_keep_alive_connection_of_a_replaced_worker_is_closed_cleanly(
    shijid,
):
    daemon = shijid({"general": {"workers": "2", "max_worker_age": "3"}})
    connection = daemon.connection(timeout=20)
    try:
        status, headers, body = daemon.request(
            "GET", "/probe/probe", connection=connection
        )
        assert (status, headers.get("Connection")) == (200, None)
        pid = json.loads(body)["pid"]
        daemon.wait_for_log(rf"Worker \d \(pid {pid}\) replaced by pid", timeout=30)
        # The client can see the close before it sends anything: an orderly
        # end of stream, no reset.
        sock = connection.sock
        sock.settimeout(10)
        assert sock.recv(100) == b""
    finally:
        connection.close()
    assert daemon.stop() == 0
