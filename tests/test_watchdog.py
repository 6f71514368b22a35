"""
The watchdog of a blocked reactor: the single process's thread (in memory,
with a clock), the worker's beats, and, slowly, shijid with a handler that
spins or sleeps: a worker killed and replaced with its stack logged, a
single process that exits, or logs and serves on.
"""

import json
import platform
import re
import signal
import threading
import time

import pytest
from apitools import log_lines
from daemons import TESTS
from twisted.internet.task import Clock

from shiji._watchdog import (
    WATCHDOG_EXIT_STATUS,
    ReactorWatchdog,
    thread_stacks,
    watchdogs,
)
from shiji._worker_channel import COUNT_INTERVAL, WorkerChannel, beat_interval
from shiji.config import GeneralConfig

STUCK = {"X-API-Version": "stuck_api-1.0+prod"}
CALLS = TESTS / "daemon_apis" / "stuck_api" / "v1_0" / "calls.py"


@pytest.fixture
def logged():
    with log_lines("shiji.watchdog") as lines:
        yield lambda: list(lines)


class FakeTime:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_thread_stacks_names_the_calling_function():
    stack = thread_stacks()
    assert "test_thread_stacks_names_the_calling_function" in stack
    assert 'test_watchdog.py", line' in stack


def watchdog(limit=2.0, exit=False):
    clock, now, exits = Clock(), FakeTime(), []
    dog = ReactorWatchdog(
        limit, exit=exit, clock=clock, now=now, exit_process=exits.append
    )
    return dog, clock, now, exits


def test_a_running_reactor_is_not_reported(logged):
    dog, _, now, exits = watchdog()
    for _ in range(20):
        now.now += 0.5
        dog.beat()  # as the reactor does, four times per limit
        assert dog.check() is False
    assert logged() == []
    assert exits == []


def test_a_stall_is_logged_once_with_the_stack_and_watching_goes_on(logged):
    dog, _, now, exits = watchdog()
    dog.beat()
    now.now += 2.0
    assert dog.check() is False
    now.now += 0.5
    assert dog.check() is True
    now.now += 5
    assert dog.check() is False
    [message] = logged()
    head, stack = message.split("\n", 1)
    assert head == (
        "The reactor has been blocked for 2.5s (worker_watchdog 2s). Python stack:"
    )
    assert "test_a_stall_is_logged_once_with_the_stack_and_watching_goes_on" in stack
    assert exits == []
    # The reactor runs again: said once, and a new stall is reported anew.
    dog.beat()
    assert dog.check() is False
    assert logged()[-1] == "The reactor runs again after a stall of 7.5s"
    now.now += 3
    assert dog.check() is True
    assert len(logged()) == 3


def test_with_watchdog_exit_a_stall_ends_the_process(logged):
    dog, _, now, exits = watchdog(limit=1.0, exit=True)
    now.now += 1.25
    assert dog.check() is True
    assert exits == [WATCHDOG_EXIT_STATUS] == [70]
    assert logged()[0].startswith(
        "The reactor has been blocked for 1.2s (worker_watchdog 1s); "
        "exiting with status 70. Python stack:\n"
    )


def test_the_reactor_beats_four_times_per_limit():
    dog, clock, now, _ = watchdog(limit=2.0)
    dog.startService()
    try:
        now.now += 0.5
        clock.advance(0.5)
        assert dog.last_beat == 100.5
        now.now += 0.4
        clock.advance(0.4)
        assert dog.last_beat == 100.5
    finally:
        dog.stopService()
    assert not clock.getDelayedCalls()


def test_which_watchdog_a_process_gets():
    off = GeneralConfig()
    on = GeneralConfig(worker_watchdog=3.0, watchdog_exit=True)
    assert watchdogs(off, None, None) == []
    [single] = watchdogs(on, None, None)
    assert isinstance(single, ReactorWatchdog)
    assert (single.limit, single.exit) == (3.0, True)
    # A worker always reports to its parent, if only that it is ready.
    [channel] = watchdogs(off, None, 3)
    assert isinstance(channel, WorkerChannel)


def test_a_workers_beat_interval():
    assert beat_interval(GeneralConfig()) is None
    assert beat_interval(GeneralConfig(worker_watchdog=20.0)) == 5.0
    assert beat_interval(GeneralConfig(worker_watchdog=0.4)) == 0.1
    assert beat_interval(GeneralConfig(max_requests=10)) == COUNT_INTERVAL
    assert (
        beat_interval(GeneralConfig(max_requests=10, worker_watchdog=20.0))
        == COUNT_INTERVAL
    )


class FakeSite:
    answered = 0


def test_a_worker_says_it_is_ready_then_beats_with_its_count(tmp_path):
    import os

    read, write = os.pipe()
    try:
        site, clock = FakeSite(), Clock()
        channel = WorkerChannel(
            site, GeneralConfig(max_requests=5), fd=write, stack_fd=write, clock=clock
        )
        channel.startService()
        assert os.read(read, 100) == b"ready\n"
        site.answered = 42
        clock.advance(COUNT_INTERVAL)
        assert os.read(read, 100) == b"beat 42\n"
        channel.stopService()
        # It beats on while the process drains.
        clock.advance(COUNT_INTERVAL)
        assert os.read(read, 100) == b"beat 42\n"
    finally:
        os.close(read)
        os.close(write)


# shijid with a handler that blocks


def spin_lines():
    """The first and last line of stuck_api's spin_for, and its loop's line."""
    lines = CALLS.read_text().splitlines()
    first = next(i for i, line in enumerate(lines, 1) if "def spin_for" in line)
    loop = next(i for i, line in enumerate(lines, 1) if "the spinning line" in line)
    return first, loop + 1, loop


def assert_spin_stack(log):
    first, last, loop = spin_lines()
    found = re.findall(rf'File "{re.escape(str(CALLS))}", line (\d+) in spin_for', log)
    assert found, log
    if platform.python_implementation() == "CPython":
        # The loop's condition, or its body's jump back to it.
        assert int(found[0]) in (loop, loop + 1)
    else:
        # PyPy gives approximate line numbers.
        assert first <= int(found[0]) <= last


def stuck_config(**general):
    options = {"worker_watchdog": "1"}
    options.update(general)
    return {"general": options, "apis": {"stuck_api": "stuck"}}


def pid_of(daemon, timeout=10):
    status, _, body = daemon.request(
        "GET", "/stuck/pid", headers=STUCK, timeout=timeout
    )
    assert status == 200
    return json.loads(body)["pid"]


def stuck_request(daemon, path, outcomes, connection=None):
    try:
        outcomes.append(
            daemon.request(
                "GET", path, headers=STUCK, timeout=30, connection=connection
            )[0]
        )
    except OSError as e:
        outcomes.append(repr(e))


def connection_per_worker(daemon, want=2, timeout=20):
    """A keep-alive connection to each worker, by pid."""
    connections = {}
    deadline = time.monotonic() + timeout
    while len(connections) < want and time.monotonic() < deadline:
        connection = daemon.connection()
        status, _, body = daemon.request(
            "GET", "/stuck/pid", headers=STUCK, connection=connection
        )
        assert status == 200
        pid = json.loads(body)["pid"]
        if pid in connections:
            connection.close()
        else:
            connections[pid] = connection
    assert len(connections) == want
    return connections


@pytest.mark.slow
def test_a_blocked_worker_is_killed_and_replaced_while_the_other_serves(shijid):
    daemon = shijid(stuck_config(workers="2", worker_watchdog="2"))
    connections = connection_per_worker(daemon)
    try:
        stuck, other = sorted(connections)
        outcomes = []
        spinning = threading.Thread(
            target=stuck_request,
            args=(daemon, "/stuck/spin/60", outcomes, connections[stuck]),
        )
        spinning.start()
        spinning_since = time.monotonic()
        try:
            served = []
            deadline = time.monotonic() + 20
            while (
                "blocked for" not in daemon.log_text() and time.monotonic() < deadline
            ):
                status, _, body = daemon.request(
                    "GET", "/stuck/pid", headers=STUCK, connection=connections[other]
                )
                served.append((status, json.loads(body)["pid"], time.monotonic()))
                time.sleep(0.05)
            daemon.wait_for_log(r"Worker \d ended \(.*signal 9.*\); restarting it")
            spinning.join(40)
        finally:
            spinning.join(40)
        log = daemon.log_text()
        assert re.search(
            rf"Worker \d \(pid {stuck}\) blocked for [0-9.]+s "
            r"\(worker_watchdog 2s\); killing and replacing it\. "
            r"Its Python stack:\n",
            log,
        ), log
        assert_spin_stack(log)
        # The other worker served all along, the stall included: its beats
        # stopped, the stuck one was blocked 2s before it was found.
        assert {(status, pid) for status, pid, _ in served} == {(200, other)}
        assert any(at > spinning_since + 1.0 for _, _, at in served)
        assert outcomes and outcomes[0] != 200
        now_serving = set()
        deadline = time.monotonic() + 20
        while len(now_serving) < 2 and time.monotonic() < deadline:
            now_serving.add(pid_of(daemon))
        assert len(now_serving) == 2
        assert other in now_serving
        assert stuck not in now_serving
    finally:
        for connection in connections.values():
            connection.close()
    assert daemon.stop() == 0


@pytest.mark.slow
def test_a_blocked_single_process_logs_its_stack_and_exits(shijid):
    daemon = shijid(stuck_config(watchdog_exit="true"))
    outcomes = []
    spinning = threading.Thread(
        target=stuck_request, args=(daemon, "/stuck/spin/60", outcomes)
    )
    spinning.start()
    try:
        assert daemon.process.wait(20) == WATCHDOG_EXIT_STATUS
    finally:
        spinning.join(40)
    log = daemon.log_text()
    assert re.search(
        r"\[shiji.watchdog#critical\] The reactor has been blocked for [0-9.]+s "
        r"\(worker_watchdog 1s\); exiting with status 70\. Python stack:\n",
        log,
    ), log
    assert_spin_stack(log)
    assert outcomes and outcomes[0] != 200


@pytest.mark.slow
def test_a_blocked_single_process_without_watchdog_exit_serves_on(shijid):
    daemon = shijid(stuck_config())
    pid = pid_of(daemon)
    status, _, body = daemon.request("GET", "/stuck/sleep/3", headers=STUCK, timeout=20)
    assert (status, json.loads(body)) == (200, {"pid": pid})
    assert pid_of(daemon) == pid
    daemon.wait_for_log(r"The reactor runs again after a stall of [0-9.]+s")
    log = daemon.log_text()
    assert len(re.findall(r"The reactor has been blocked for", log)) == 1, log
    assert re.search(
        r"\(worker_watchdog 1s\)\. Python stack:\n(.*\n)*?"
        rf'.*File "{re.escape(str(CALLS))}", line \d+ in render_GET',
        log,
    ), log
    assert daemon.stop() == 0


@pytest.mark.slow
def test_workers_outlive_a_pause_of_their_parent(shijid):
    daemon = shijid(stuck_config(workers="2", worker_watchdog="1"))
    connections = connection_per_worker(daemon)
    try:
        workers = set(connections)
        # The parent is stopped (as a paused machine would be), the workers not.
        daemon.send(signal.SIGSTOP)
        try:
            time.sleep(3)
        finally:
            daemon.send(signal.SIGCONT)
        daemon.wait_for_log(
            r"The worker watchdog's check ran [0-9.]+s late; "
            r"the workers are not judged on that time"
        )
        # Two more limits: the checks after it find the workers beating.
        time.sleep(2)
        for pid, connection in connections.items():
            status, _, body = daemon.request(
                "GET", "/stuck/pid", headers=STUCK, connection=connection
            )
            assert (status, json.loads(body)["pid"]) == (200, pid)
        log = daemon.log_text()
        assert "blocked for" not in log, log
        assert "restarting it" not in log, log
        assert len(workers) == 2
    finally:
        for connection in connections.values():
            connection.close()
    assert daemon.stop() == 0
