"""
Background tasks (shiji.tasks): queued from handlers, run off the request
path, retried, timed out, reported; in memory through shiji.testing, and
over real shijid processes.
"""

import json
import os
import re
import signal
import sqlite3
import stat
import sys
import threading
import time

import pytest
import pytest_twisted
from apitools import HeldStoreThread, log_lines
from daemons import TESTS, Daemon, failing_run, merged, run_shijid, write_config
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import Clock

from shiji import tasks
from shiji._task_declarations import load_api_tasks
from shiji._task_runner import TaskThreads
from shiji._task_service import call_at_once, check_task_store, load_tasks
from shiji._task_store import SQLiteTaskStore
from shiji.admin.stub import config_stub
from shiji.config import ConfigError, load_config
from shiji.metrics import NullMetrics
from shiji.testing import TestClient

sys.path.insert(0, str(TESTS / "daemon_apis"))

import broken_tasks_api
import tasks_api
from tasks_api import tasks as api_tasks

TASKS_VERSION = {"X-API-Version": "tasks_api-1.0+prod"}
ID = "[0-9a-f]{32}"
ERROR = "[0-9a-f]{12}"


class Recorder(NullMetrics):
    """Metrics that remember what they are given."""

    def __init__(self):
        self.counted = []
        self.timed = []

    def increment(self, name, value=1, sample_rate=1.0):
        self.counted.append((name, value))

    def timing(self, name, milliseconds, sample_rate=1.0):
        self.timed.append((name, milliseconds))


@pytest.fixture(autouse=True)
def fresh_api_state():
    for kept in (api_tasks.RUNS, api_tasks.FAILURES):
        kept.clear()
    api_tasks.WAITING.clear()
    api_tasks.HELD.clear()
    yield


@pytest.fixture
def task_log():
    """The task service's log lines (without tracebacks), as they are logged."""
    with log_lines("shiji.tasks") as lines:
        yield lines


def fired(deferred):
    """The result of a Deferred that has fired (failing the test otherwise)."""
    results = []
    deferred.addBoth(results.append)
    assert results, "the Deferred has not fired"
    if hasattr(results[0], "raiseException"):
        results[0].raiseException()
    return results[0]


def test_queued_over_http_runs_once_off_the_request_path(task_log):
    client = TestClient({"tasks": tasks_api})
    response = fired(client.post("/tasks/record", json={"label": "a", "count": 2}))
    assert response.status == 200
    ids = response.json["ids"]
    assert len(ids) == 2 and all(re.fullmatch(ID, i) for i in ids)
    # Queued, not run by the request.
    assert api_tasks.RUNS == []
    assert [t.state for t in client.tasks.store.tasks()] == ["queued", "queued"]
    assert fired(client.run_tasks()) == 2
    assert api_tasks.RUNS == [("record", "a-0"), ("record", "a-1")]
    assert task_log == [
        f"task record ok 0ms (id {ids[0]})",
        f"task record ok 0ms (id {ids[1]})",
    ]
    assert [(t.id, t.state, t.attempts) for t in client.tasks.store.tasks()] == [
        (ids[0], "done", 1),
        (ids[1], "done", 1),
    ]
    # Nothing runs twice.
    client.clock.advance(5)
    assert fired(client.run_tasks()) == 0
    assert len(api_tasks.RUNS) == 2


def test_the_poll_runs_due_tasks_as_the_clock_advances():
    client = TestClient({"tasks": tasks_api}, tasks={"poll_interval": 5})
    fired(api_tasks.record.enqueue("later"))
    # A task queued in this process is started at the next turn of the clock.
    client.clock.advance(0)
    assert api_tasks.RUNS == [("record", "later")]


def test_retries_back_off_then_give_up_and_call_on_error(task_log):
    metrics = Recorder()
    client = TestClient(
        {"tasks": tasks_api}, metrics=metrics, tasks={"poll_interval": 60}
    )
    task_id = fired(api_tasks.flaky.enqueue("x", failures=5))
    assert fired(client.run_tasks()) == 1
    (stored,) = client.tasks.store.tasks()
    assert (stored.state, stored.attempts, stored.run_at) == ("queued", 1, 2.0)
    assert re.fullmatch(rf"ValueError: failure 1 of x \(error {ERROR}\)", stored.error)
    client.clock.advance(1.9)
    assert fired(client.run_tasks()) == 0
    client.clock.advance(0.1)
    assert fired(client.run_tasks()) == 1
    (stored,) = client.tasks.store.tasks()
    # Twice the first back-off: 4 seconds after the second run.
    assert (stored.state, stored.attempts, stored.run_at) == ("queued", 2, 6.0)
    client.clock.advance(3.9)
    assert fired(client.run_tasks()) == 0
    client.clock.advance(0.1)
    assert fired(client.run_tasks()) == 1
    (stored,) = client.tasks.store.tasks()
    assert (stored.state, stored.attempts) == ("failed", 3)
    assert api_tasks.RUNS == [("flaky", "x", 1), ("flaky", "x", 2), ("flaky", "x", 3)]
    assert len(task_log) == 3
    for line, expected in zip(
        task_log,
        [
            "task flaky failed 0ms: ValueError: failure 1 of x; retry 1 of 2 in 2s",
            "task flaky failed 0ms: ValueError: failure 2 of x; retry 2 of 2 in 4s",
            "task flaky failed 0ms: ValueError: failure 3 of x; gave up after 3 run(s)",
        ],
    ):
        assert re.fullmatch(
            re.escape(expected) + rf" \(id {task_id}, error {ERROR}\)", line
        ), line
    assert [
        ("flaky", task_id, {"args": ["x"], "kwargs": {"failures": 5}}, "failure 3 of x")
    ] == api_tasks.FAILURES
    prefix = "tasks_api.tasks.flaky"
    assert metrics.counted == [
        (f"{prefix}.failed", 1),
        (f"{prefix}.retried", 1),
        (f"{prefix}.failed", 1),
        (f"{prefix}.retried", 1),
        (f"{prefix}.failed", 1),
        (f"{prefix}.gave_up", 1),
    ]
    assert metrics.timed == [(prefix, 0.0)] * 3


def test_a_retry_that_succeeds_calls_no_hook(task_log):
    metrics = Recorder()
    client = TestClient({"tasks": tasks_api}, metrics=metrics)
    task_id = fired(api_tasks.flaky.enqueue("y", failures=1))
    fired(client.run_tasks())
    client.clock.advance(2)
    fired(client.run_tasks())
    assert api_tasks.RUNS == [("flaky", "y", 1), ("flaky", "y", 2)]
    assert task_log[-1] == f"task flaky ok 0ms (id {task_id})"
    assert api_tasks.FAILURES == []
    assert [t.state for t in client.tasks.store.tasks()] == ["done"]
    assert metrics.counted == [
        ("tasks_api.tasks.flaky.failed", 1),
        ("tasks_api.tasks.flaky.retried", 1),
        ("tasks_api.tasks.flaky.ok", 1),
    ]


def test_a_coroutine_that_runs_too_long_is_cancelled(task_log):
    client = TestClient({"tasks": tasks_api})
    task_id = fired(api_tasks.wait_for.enqueue("k"))
    client.clock.advance(0)
    assert api_tasks.RUNS == [("wait_for", "k")]
    client.clock.advance(4.9)
    assert task_log == []
    client.clock.advance(0.1)
    assert api_tasks.RUNS == [("wait_for", "k"), ("cancelled", "k")]
    assert len(task_log) == 1
    assert re.fullmatch(
        re.escape(
            "task wait_for failed 5000ms: timed out after 5s; gave up after 1 run(s)"
        )
        + rf" \(id {task_id}, error {ERROR}\)",
        task_log[0],
    )
    assert [
        ("wait_for", task_id, {"args": ["k"], "kwargs": {}}, "timed out after 5s")
    ] == api_tasks.FAILURES


def test_a_thread_that_runs_too_long_is_reported_timed_out(task_log):
    # A thread that never returns: what runs in it is not waited for.
    client = TestClient({"tasks": tasks_api}, tasks={"in_thread": lambda f: Deferred()})
    task_id = fired(api_tasks.in_thread.enqueue("t"))
    client.clock.advance(0)
    client.clock.advance(2.9)
    assert task_log == []
    client.clock.advance(0.1)
    assert re.fullmatch(
        re.escape(
            "task in_thread failed 3000ms: timed out after 3s; gave up after 1 run(s)"
        )
        + rf" \(id {task_id}, error {ERROR}\)",
        task_log[0],
    )
    assert [t.state for t in client.tasks.store.tasks()] == ["failed"]


class HeldThreads:
    """
    An ``in_thread`` that runs each function in a thread of its own, once it
    has started (the ``held`` task waits there until the test lets it go);
    what it returns is dropped.
    """

    def __init__(self):
        self.threads = []

    def __call__(self, function):
        started = len(api_tasks.RUNS)
        thread = threading.Thread(target=function, daemon=True)
        thread.start()
        self.threads.append(thread)
        deadline = time.monotonic() + 10
        while len(api_tasks.RUNS) == started and time.monotonic() < deadline:
            time.sleep(0.001)
        return Deferred()

    def finish(self, index, label):
        api_tasks.HELD.setdefault(label, threading.Event()).set()
        self.threads[index].join(10)

    def finish_all(self):
        for label in [label for name, label in api_tasks.RUNS if name == "held"]:
            api_tasks.HELD.setdefault(label, threading.Event()).set()
        for thread in self.threads:
            thread.join(10)


@pytest.fixture
def held_threads():
    threads = HeldThreads()
    yield threads
    threads.finish_all()


def test_threads_of_runs_that_timed_out_count_against_concurrency(
    task_log, held_threads
):
    client = TestClient(
        {"tasks": tasks_api}, tasks={"in_thread": held_threads, "concurrency": 2}
    )
    ids = [fired(api_tasks.held.enqueue(label)) for label in "abc"]
    client.clock.advance(0)
    assert api_tasks.RUNS == [("held", "a"), ("held", "b")]
    client.clock.advance(3)
    # Both runs timed out, their threads go on: the third task waits.
    client.clock.advance(1)
    assert api_tasks.RUNS == [("held", "a"), ("held", "b")]
    assert [(t.id, t.state) for t in client.tasks.store.tasks()] == [
        (ids[0], "failed"),
        (ids[1], "failed"),
        (ids[2], "queued"),
    ]
    assert task_log[2:] == [
        "2 of 2 task slots are held by threads of runs that timed out;"
        " no task is taken until one returns"
    ]
    # One thread returns (what it returns is dropped): the third task runs.
    held_threads.finish(0, "a")
    client.clock.advance(1)
    assert api_tasks.RUNS == [("held", "a"), ("held", "b"), ("held", "c")]
    assert [t.state for t in client.tasks.store.tasks()] == [
        "failed",
        "failed",
        "running",
    ]
    assert task_log[3:] == [
        "1 of 2 task slots are held by threads of runs that timed out;"
        " no task is taken until one returns"
    ]


def test_a_run_that_timed_out_before_it_started_holds_no_slot(task_log):
    # Its function waits for a thread, and is dropped when its run times out.
    client = TestClient(
        {"tasks": tasks_api},
        tasks={"in_thread": lambda function: Deferred(), "concurrency": 1},
    )
    fired(api_tasks.in_thread.enqueue("a"))
    fired(api_tasks.in_thread.enqueue("b"))
    client.clock.advance(0)
    client.clock.advance(3)
    client.clock.advance(1)
    assert [t.state for t in client.tasks.store.tasks()] == ["failed", "running"]
    assert len(task_log) == 1


def test_a_thread_still_running_at_exit_is_logged_not_waited_for(
    task_log, held_threads
):
    client = TestClient(
        {"tasks": tasks_api}, tasks={"in_thread": held_threads, "shutdown_grace": 1}
    )
    late = fired(api_tasks.held.enqueue("late"))
    client.clock.advance(0)
    client.clock.advance(3)
    running = fired(api_tasks.held.enqueue("running"))
    client.clock.advance(0)
    del task_log[:]
    stopped = []
    client.tasks.stopService().addBoth(stopped.append)
    client.clock.advance(1)
    assert stopped == [None]
    assert task_log == [
        f"task held still running in a thread at exit, after it timed out (id {late})",
        "task held still running in a thread at exit; it will run again"
        f" elsewhere (id {running})",
        "1 task(s) and 0 job(s) still running after 1s; their claims are released"
        " for another run",
    ]


@pytest_twisted.ensureDeferred
async def test_task_threads_are_bounded_daemon_threads_kept_by_timed_out_runs():
    from twisted.internet import reactor

    threads = TaskThreads(reactor, 2)
    gates = [threading.Event() for _ in range(4)]
    ran = []

    def work(i):
        gates[i].wait(10)
        ran.append(i)
        return threading.current_thread().daemon

    calls = [threads(lambda i=i: work(i)) for i in range(4)]
    assert threads.busy == 2
    # A run that timed out while running keeps its thread; one that timed
    # out waiting is dropped.
    calls[0].cancel()
    calls[3].cancel()
    for cancelled in (calls[0], calls[3]):
        with pytest.raises(CancelledError):
            fired(cancelled)
    assert (threads.busy, ran) == (2, [])
    gates[2].set()
    gates[3].set()
    gates[0].set()
    assert await calls[2].addTimeout(10, reactor) is True
    gates[1].set()
    assert await calls[1].addTimeout(10, reactor) is True
    assert ran == [0, 2, 1]
    assert threads.busy == 0


def test_an_async_task_that_finishes_later_is_waited_for(task_log):
    client = TestClient({"tasks": tasks_api})
    task_id = fired(api_tasks.wait_for.enqueue("w"))
    client.clock.advance(0)
    assert [t.state for t in client.tasks.store.tasks()] == ["running"]
    client.clock.advance(1)
    api_tasks.WAITING["w"].callback(None)
    assert task_log == [f"task wait_for ok 1000ms (id {task_id})"]
    assert [t.state for t in client.tasks.store.tasks()] == ["done"]


@pytest.mark.parametrize(
    "args, kwargs, error, message",
    [
        (({1, 2},), {}, TypeError, "argument 1 is not JSON: set is not a JSON type"),
        (
            (),
            {"label": (1, 2)},
            TypeError,
            "argument 'label' is not JSON: tuple is not a JSON type",
        ),
        ((b"x",), {}, TypeError, "argument 1 is not JSON: bytes is not a JSON type"),
        (
            ([{"a": object()}],),
            {},
            TypeError,
            "argument 1 is not JSON: object is not a JSON type",
        ),
        (
            ({1: "one"},),
            {},
            TypeError,
            "argument 1 is not JSON: the key 1 is not a string",
        ),
        (
            (float("nan"),),
            {},
            ValueError,
            "argument 1 is not JSON: nan is not a JSON number",
        ),
        (
            (),
            {"label": float("inf")},
            ValueError,
            "argument 'label' is not JSON: inf is not a JSON number",
        ),
        ((), {}, TypeError, "missing a required argument: 'label'"),
        (("a", "b"), {}, TypeError, "too many positional arguments"),
        ((), {"labl": "a"}, TypeError, "missing a required argument: 'label'"),
    ],
)
def test_arguments_that_are_not_json_are_refused_when_queued(
    args, kwargs, error, message
):
    client = TestClient({"tasks": tasks_api})
    with pytest.raises(error) as raised:
        api_tasks.record.enqueue(*args, **kwargs)
    assert str(raised.value) == f"record.enqueue(): {message}"
    assert client.tasks.store.tasks() == []


def test_a_handler_sees_the_refusal_at_once():
    client = TestClient({"tasks": tasks_api})
    response = fired(client.post("/tasks/refused", headers=TASKS_VERSION))
    assert response.json == {
        "refused": "record.enqueue(): argument 1 is not JSON: set is not a JSON type"
    }
    assert client.tasks.store.tasks() == []


def test_json_values_come_back_as_they_were_given():
    client = TestClient({"tasks": tasks_api})
    value = {"a": [1, 2.5, None, True, "é"], "b": {}}
    fired(api_tasks.record.enqueue(label=value))
    fired(client.run_tasks())
    assert [("record", value)] == api_tasks.RUNS


def test_a_task_learns_of_its_run_and_sends_metrics():
    metrics = Recorder()
    client = TestClient(
        {"tasks": tasks_api}, metrics=metrics, config={"tasks_api": {"k": 1}}
    )
    fired(api_tasks.measured.enqueue())
    fired(client.run_tasks())
    assert api_tasks.RUNS == [("measured", "measured", "tasks_api", 1)]
    assert metrics.counted == [
        ("tasks_api.custom", 1),
        ("tasks_api.tasks.measured.ok", 1),
    ]
    assert metrics.timed == [("tasks_api.tasks.measured", 0.0)]


def test_current_is_only_known_inside_a_task():
    with pytest.raises(
        LookupError, match=r"^tasks.current\(\) is only known inside a task$"
    ):
        tasks.current()


def test_a_task_of_no_running_service_cannot_be_queued():
    @tasks.task()
    def alone(x):
        return x * 2

    assert alone(2) == 4
    with pytest.raises(RuntimeError, match=r"^alone.enqueue\(\): no task service runs"):
        fired(alone.enqueue(1))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"retries": -1}, "tasks.task(): retries must be 0 or more, not -1"),
        ({"backoff": "1"}, "tasks.task(): backoff must be seconds, not '1'"),
        ({"timeout": 0}, "tasks.task(): timeout must be seconds above 0, not 0"),
    ],
)
def test_bad_task_options_are_refused_when_declared(options, message):
    with pytest.raises(ValueError) as raised:
        tasks.task(**options)
    assert str(raised.value) == message


def test_a_task_unknown_here_fails(task_log):
    client = TestClient({"tasks": tasks_api})
    store = client.tasks.store
    task_id = store.enqueue(
        "tasks_api", "renamed", '{"args": [], "kwargs": {}}', 0.0, 0.0
    )
    fired(client.run_tasks())
    assert task_log == [
        f"task renamed of tasks_api is unknown here; it fails (id {task_id})"
    ]
    assert [(t.state, t.error) for t in store.tasks()] == [("failed", "unknown task")]


def test_stopping_waits_for_running_tasks_then_gives_them_back(task_log):
    client = TestClient({"tasks": tasks_api}, tasks={"shutdown_grace": 3})
    fired(api_tasks.wait_for.enqueue("s"))
    client.clock.advance(0)
    stopped = []
    client.tasks.stopService().addBoth(stopped.append)
    client.clock.advance(2.9)
    assert stopped == []
    client.clock.advance(0.1)
    assert stopped == [None]
    assert task_log == [
        "1 task(s) and 0 job(s) still running after 3s; their claims are released"
        " for another run"
    ]


def test_stopping_gives_back_claims_in_the_store(tmp_path):
    store = SQLiteTaskStore(str(tmp_path / "q.sqlite"))
    client = TestClient(
        {"tasks": tasks_api}, tasks={"store": store, "shutdown_grace": 1}
    )
    task_id = fired(api_tasks.wait_for.enqueue("r"))
    client.clock.advance(0)
    client.clock.advance(0.5)
    stopped = client.tasks.stopService()
    client.clock.advance(1)
    fired(stopped)
    reopened = SQLiteTaskStore(str(tmp_path / "q.sqlite"))
    reopened.open()
    try:
        # Queued again, the interrupted run not counted.
        assert [(t.id, t.state, t.attempts) for t in reopened.tasks()] == [
            (task_id, "queued", 0)
        ]
    finally:
        reopened.close()


def test_stopping_with_nothing_running_is_immediate():
    client = TestClient({"tasks": tasks_api})
    assert fired(client.tasks.stopService()) is None


def service_on(path, clock, *, in_thread=None, metrics=None, **options):
    """A task service of tasks_api, as one process runs it, on the queue at path."""
    service = tasks.TaskService(
        [load_api_tasks(tasks_api)],
        SQLiteTaskStore(str(path)),
        clock=clock,
        metrics=metrics,
        call_store=call_at_once,
        in_thread=in_thread or call_at_once,
        **options,
    )
    service.startService()
    return service


def never_returns(function):
    """A thread that runs until its process is killed."""
    return Deferred()


def test_a_task_whose_process_ends_in_its_last_run_fails_and_calls_on_error(
    tmp_path, task_log
):
    path = tmp_path / "q.sqlite"
    first = service_on(path, Clock())
    task_id = fired(api_tasks.wait_for.enqueue("k"))
    first.clock.advance(0)
    assert api_tasks.RUNS == [("wait_for", "k")]
    # The first process is killed here: its clock stands still. Another
    # finds the lease expired: the run was the only one (retries=0).
    metrics = Recorder()
    second = service_on(path, Clock(), metrics=metrics)
    second.clock.advance(59)
    assert task_log == []
    second.clock.advance(1)
    assert task_log == [
        "task wait_for failed: its process ended during run 1; gave up after"
        f" 1 run(s) (id {task_id})"
    ]
    assert api_tasks.RUNS == [("wait_for", "k")]
    assert [(t.id, t.state, t.attempts, t.error) for t in second.store.tasks()] == [
        (task_id, "failed", 1, "its process ended during run 1")
    ]
    assert [
        (
            "wait_for",
            task_id,
            {"args": ["k"], "kwargs": {}},
            "its process ended during run 1",
        )
    ] == api_tasks.FAILURES
    assert metrics.counted == [("tasks_api.tasks.wait_for.gave_up", 1)]
    # Once: no process finds it again.
    third = service_on(path, Clock())
    third.clock.advance(200)
    second.clock.advance(200)
    assert len(task_log) == 1 and len(api_tasks.FAILURES) == 1
    for service in (first, second, third):
        service.store.close()


def test_a_task_killing_its_process_runs_again_only_while_it_has_retries(
    tmp_path, task_log
):
    path = tmp_path / "q.sqlite"
    started = []

    def dies(function):
        started.append(len(started) + 1)
        return Deferred()

    services = [service_on(path, Clock(), in_thread=dies)]
    task_id = fired(api_tasks.slow_record.enqueue("cut", 1.0))
    services[0].clock.advance(0)
    # retries=1: a second process runs it again, and dies too; a third
    # gives up.
    for t in (60, 120):
        services.append(service_on(path, Clock(), in_thread=dies))
        services[-1].clock.advance(t)
    assert started == [1, 2]
    assert task_log == [
        "task slow_record failed: its process ended during run 2; gave up after"
        f" 2 run(s) (id {task_id})"
    ]
    assert [(t.state, t.attempts) for t in services[-1].store.tasks()] == [
        ("failed", 2)
    ]
    for service in services:
        service.store.close()


OLD_SCHEMA = """
CREATE TABLE shiji_tasks (
    id TEXT PRIMARY KEY, api TEXT NOT NULL, name TEXT NOT NULL,
    arguments TEXT NOT NULL, state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, run_at REAL NOT NULL,
    created REAL NOT NULL, finished REAL, owner TEXT, lease_until REAL,
    error TEXT
);
CREATE INDEX shiji_tasks_due ON shiji_tasks (state, run_at);
CREATE TABLE shiji_cron_ticks (
    job TEXT NOT NULL, tick REAL NOT NULL, owner TEXT NOT NULL,
    outcome TEXT NOT NULL, PRIMARY KEY (job, tick)
);
CREATE TABLE shiji_cron_jobs (
    job TEXT PRIMARY KEY, last_tick REAL NOT NULL, owner TEXT, lease_until REAL
);
INSERT INTO shiji_tasks VALUES ('old', 'tasks_api', 'wait_for',
    '{"args": ["o"], "kwargs": {}}', 'running', 1, 0, 0, NULL, 'gone', 60, NULL);
"""


def test_a_queue_of_the_schema_before_is_brought_up_to_date(tmp_path, task_log):
    path = tmp_path / "q.sqlite"
    old = sqlite3.connect(path)
    old.executescript(OLD_SCHEMA)
    old.close()
    # Its task has no limit stored: the task's retries (0) limit it.
    service = service_on(path, Clock())
    service.clock.advance(60)
    assert task_log == [
        "task wait_for failed: its process ended during run 1; gave up after"
        " 1 run(s) (id old)"
    ]
    assert api_tasks.RUNS == []
    # (Its claim counted an attempt before it was found lost.)
    assert [(t.state, t.attempts, t.max_runs) for t in service.store.tasks()] == [
        ("failed", 2, None)
    ]
    service.store.close()
    migrated = sqlite3.connect(path)
    try:
        assert migrated.execute("PRAGMA user_version").fetchall() == [(1,)]
        columns = migrated.execute("PRAGMA table_info(shiji_tasks)").fetchall()
        assert [c[1] for c in columns][-2:] == ["error", "max_runs"]
    finally:
        migrated.close()


def test_a_queue_of_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "q.sqlite"
    newer = sqlite3.connect(path)
    newer.execute("PRAGMA user_version = 2")
    newer.close()
    with pytest.raises(sqlite3.DatabaseError) as raised:
        SQLiteTaskStore(str(path)).open()
    assert str(raised.value) == "its schema (version 2) is newer than this Shiji's (1)"


def test_a_task_claimed_as_the_service_stops_is_given_back_not_run(tmp_path):
    in_store_thread = HeldStoreThread()

    path = tmp_path / "q.sqlite"
    clock = Clock()
    service = tasks.TaskService(
        [load_api_tasks(tasks_api)],
        SQLiteTaskStore(str(path)),
        clock=clock,
        call_store=in_store_thread,
        in_thread=call_at_once,
    )
    service.startService()
    in_store_thread.run()
    queued = api_tasks.record.enqueue("late")
    in_store_thread.run()
    task_id = fired(queued)
    clock.advance(0)
    # The poll's claim waits in the store's thread as the service stops.
    assert in_store_thread.waiting() == ["claim"]
    stopped = []
    service.stopService().addBoth(stopped.append)
    assert in_store_thread.waiting() == ["claim"]
    in_store_thread.run()
    assert stopped == [None]
    assert api_tasks.RUNS == []
    reopened = sqlite3.connect(path)
    try:
        assert reopened.execute(
            "SELECT id, state, attempts, owner, lease_until FROM shiji_tasks"
        ).fetchall() == [(task_id, "queued", 0, None, None)]
    finally:
        reopened.close()


def test_claims_are_renewed_until_the_drain_is_over(tmp_path, task_log):
    path = tmp_path / "q.sqlite"
    service = service_on(path, Clock(), lease=3, shutdown_grace=4.9)
    task_id = fired(api_tasks.wait_for.enqueue("long"))
    service.clock.advance(1)
    stopped = []
    service.stopService().addBoth(stopped.append)
    other = SQLiteTaskStore(str(path))
    other.open()
    try:
        # A lease of 3s, a drain of up to 4.9s: another process never
        # claims the task meanwhile.
        for _ in range(4):
            service.clock.advance(1)
            assert other.claim("other", service.clock.seconds(), 3, 10) == []
        api_tasks.WAITING["long"].callback(None)
        assert stopped == [None]
        assert task_log == [f"task wait_for ok 4000ms (id {task_id})"]
        assert [(t.state, t.attempts) for t in other.tasks()] == [("done", 1)]
        # Closed: nothing renews any more.
        service.clock.advance(60)
        assert len(task_log) == 1
    finally:
        other.close()


# The store


@pytest.fixture
def store():
    opened = SQLiteTaskStore(":memory:")
    opened.open()
    yield opened
    opened.close()


def test_a_claim_is_a_lease_that_expires(store):
    task_id = store.enqueue("api", "job", "{}", 0.0, 0.0)
    (claimed,) = store.claim("one", 1.0, 10.0, 5)
    assert (claimed.id, claimed.state, claimed.attempts) == (task_id, "running", 1)
    assert store.claim("two", 10.9, 10.0, 5) == []
    # The first owner died without renewing: the second runs it again.
    (again,) = store.claim("two", 11.0, 10.0, 5)
    assert (again.id, again.attempts) == (task_id, 2)
    # The first owner can no longer settle it.
    assert store.finish(task_id, "one", 12.0) is False
    assert store.finish(task_id, "two", 12.0) is True
    assert [t.state for t in store.tasks()] == ["done"]


def test_a_renewed_lease_holds(store):
    task_id = store.enqueue("api", "job", "{}", 0.0, 0.0)
    store.claim("one", 0.0, 10.0, 5)
    store.renew("one", [task_id], [], 30.0)
    assert store.claim("two", 29.0, 10.0, 5) == []
    assert len(store.claim("two", 30.0, 10.0, 5)) == 1


def test_claims_take_due_tasks_oldest_first_up_to_the_limit(store):
    first = store.enqueue("api", "a", "{}", 0.0, 0.0)
    later = store.enqueue("api", "b", "{}", 0.0, 50.0)
    second = store.enqueue("api", "c", "{}", 1.0, 1.0)
    third = store.enqueue("api", "d", "{}", 2.0, 2.0)
    assert [t.id for t in store.claim("o", 10.0, 60.0, 2)] == [first, second]
    assert [t.id for t in store.claim("o", 10.0, 60.0, 2)] == [third]
    assert [t.id for t in store.claim("o", 50.0, 60.0, 2)] == [later]


def test_finished_tasks_are_purged_after_keep_finished(store):
    done = store.enqueue("api", "a", "{}", 0.0, 0.0)
    waiting = store.enqueue("api", "b", "{}", 0.0, 100.0)
    store.claim("o", 0.0, 60.0, 1)
    store.finish(done, "o", 5.0)
    assert store.purge(5.0) == 0
    assert store.purge(5.1) == 1
    assert [t.id for t in store.tasks()] == [waiting]


def test_two_connections_share_the_file_and_never_claim_one_task_twice(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    one, two = SQLiteTaskStore(path), SQLiteTaskStore(path)
    one.open()
    two.open()
    try:
        ids = {one.enqueue("api", "t", "{}", 0.0, 0.0) for _ in range(20)}
        claimed = []
        while True:
            got = one.claim("one", 1.0, 60.0, 3) + two.claim("two", 1.0, 60.0, 3)
            if not got:
                break
            claimed += [t.id for t in got]
        assert sorted(claimed) == sorted(ids)
    finally:
        one.close()
        two.close()


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_the_queue_and_its_journal_files_are_private(tmp_path, umask):
    before = os.umask(umask)
    store = SQLiteTaskStore(str(tmp_path / "q.sqlite"))
    try:
        store.open()
        store.enqueue("api", "t", "{}", 0.0, 0.0)
        modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in tmp_path.iterdir()}
    finally:
        store.close()
        os.umask(before)
    assert modes == {
        "q.sqlite": 0o600,
        "q.sqlite-wal": 0o600,
        "q.sqlite-shm": 0o600,
    }


def test_an_existing_queue_keeps_its_mode(tmp_path):
    path = tmp_path / "q.sqlite"
    path.touch()
    path.chmod(0o640)
    store = SQLiteTaskStore(str(path))
    try:
        store.open()
        modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in tmp_path.iterdir()}
    finally:
        store.close()
    assert modes == {"q.sqlite": 0o640, "q.sqlite-wal": 0o640, "q.sqlite-shm": 0o640}


# Configuration and loading


def test_the_queue_is_a_file_named_for_the_configuration(tmp_path):
    path = write_config(tmp_path / "site.conf", {"apis": {"tasks_api": "tasks"}})
    assert (
        load_config(path).tasks.database
        == (tmp_path / "site.conf.tasks.sqlite").resolve()
    )
    path = write_config(
        tmp_path / "other.conf",
        {
            "tasks": {
                "database": "queues/q.sqlite",
                "concurrency": "2",
                "poll_interval": "0.5",
                "lease": "30",
                "keep_finished": "3600",
            },
            "apis": {"tasks_api": "tasks"},
        },
    )
    settings = load_config(path).tasks
    assert settings.database == (tmp_path / "queues" / "q.sqlite").resolve()
    assert (
        settings.concurrency,
        settings.poll_interval,
        settings.lease,
        settings.keep_finished,
    ) == (
        2,
        0.5,
        30.0,
        3600.0,
    )


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("concurrency", "0", "must be a whole number from 1 to 1024, not '0'"),
        (
            "poll_interval",
            "never",
            "must be a number of seconds greater than 0, not 'never'",
        ),
        ("lease", "-1", "must be a number of seconds of 1 or more, not '-1'"),
        ("lease", "0.5", "must be a number of seconds of 1 or more, not '0.5'"),
        ("lease", "inf", "must be a number of seconds of 1 or more, not 'inf'"),
        ("keep_finshed", "1", "unknown option (did you mean 'keep_finished'?)"),
    ],
)
def test_bad_task_options_are_one_line(tmp_path, option, value, message):
    path = write_config(
        tmp_path / "shijid.conf",
        {"tasks": {option: value}, "apis": {"tasks_api": "tasks"}},
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value) == f"{path}: [tasks] {option}: {message}"


def test_the_stub_shows_the_tasks_section():
    stub = config_stub()
    section = stub[stub.index("[tasks]") :]
    assert section.startswith(
        "[tasks]\n"
        "; SQLite file of the task queue, relative to this file (default: this "
        "file's name followed by .tasks.sqlite).\n"
        ";database:\n"
        "; Tasks each process runs at once.\n"
        ";concurrency: 4\n"
    )
    assert ";lease: 60\n" in section and ";keep_finished: 604800\n" in section


def test_a_broken_tasks_module_is_one_configuration_error(tmp_path):
    path = write_config(tmp_path / "shijid.conf", {"apis": {"broken_tasks_api": "b"}})
    config = load_config(path)
    with pytest.raises(ConfigError) as raised:
        load_tasks(config, [broken_tasks_api])
    tasks_file = TESTS / "daemon_apis" / "broken_tasks_api" / "tasks.py"
    assert str(raised.value) == (
        f"{path}: [apis] broken_tasks_api: cannot import broken_tasks_api.tasks: "
        f"RuntimeError: tasks.py fails on import ({tasks_file}, line 3)"
    )


@pytest.mark.parametrize(
    "database, make, reason",
    [
        ("missing/q.sqlite", None, "No such file or directory"),
        ("queue", "mkdir", "Is a directory"),
        ("queue", "write_text", "file is not a database"),
    ],
)
def test_a_queue_that_cannot_be_opened_is_one_configuration_error(
    tmp_path, database, make, reason
):
    if make == "mkdir":
        (tmp_path / database).mkdir()
    elif make == "write_text":
        (tmp_path / database).write_text("not SQLite " * 20)
    path = write_config(
        tmp_path / "shijid.conf",
        {"tasks": {"database": database}, "apis": {"tasks_api": "tasks"}},
    )
    with pytest.raises(ConfigError) as raised:
        check_task_store(load_config(path))
    assert str(raised.value) == (
        f"{path}: [tasks] database: cannot open {tmp_path / database}: {reason}"
    )


def queue_config(tmp_path, database):
    return {
        "apis": {"tasks_api": "tasks"},
        "tasks": {"database": str(database)},
    }


@pytest.mark.slow
@pytest.mark.parametrize("args", [("--check",), ()])
def test_shijid_refuses_a_queue_it_cannot_open_in_one_line(tmp_path, args):
    database = tmp_path / "missing" / "q.sqlite"
    path, line = failing_run(tmp_path, queue_config(tmp_path, database), args=args)
    assert line == (
        f"shijid: error: {path}: [tasks] database: cannot open {database}:"
        " No such file or directory"
    )


@pytest.mark.slow
def test_shijid_check_creates_the_queue(tmp_path):
    database = tmp_path / "q.sqlite"
    path = write_config(
        tmp_path / "shijid.conf", merged(queue_config(tmp_path, database))
    )
    result = run_shijid("-c", str(path), "--check")
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"{path}: OK\n",
        "",
    )
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


@pytest.mark.slow
def test_shijid_refuses_a_broken_tasks_module_in_one_line(tmp_path):
    path, line = failing_run(tmp_path, {"apis": {"broken_tasks_api": "b"}})
    tasks_file = TESTS / "daemon_apis" / "broken_tasks_api" / "tasks.py"
    assert line == (
        f"shijid: error: {path}: [apis] broken_tasks_api: cannot import "
        f"broken_tasks_api.tasks: RuntimeError: tasks.py fails on import "
        f"({tasks_file}, line 3)"
    )


# Over real processes


def tasks_daemon(tmp_path, out, workers=1, **tasks_options):
    tasks_options.setdefault("poll_interval", "0.1")
    return Daemon(
        tmp_path,
        {
            "general": {"workers": str(workers), "shutdown_grace": "1"},
            "apis": {"tasks_api": "tasks"},
            "config_tasks_api": {"out": str(out)},
            "tasks": tasks_options,
        },
    )


def out_lines(out):
    return out.read_text().splitlines() if out.exists() else []


def wait_for_lines(out, predicate, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = out_lines(out)
        if predicate(lines):
            return lines
        time.sleep(0.05)
    raise AssertionError(f"not written in {timeout}s: {out_lines(out)}")


def post(daemon, path, body):
    status, _, answer = daemon.request("POST", path, body, headers=TASKS_VERSION)
    assert status == 200, answer
    return json.loads(answer)


@pytest.mark.slow
def test_a_task_queued_over_http_runs_once(tmp_path):
    out = tmp_path / "out.txt"
    daemon = tasks_daemon(tmp_path, out).start()
    try:
        answer = post(daemon, "/tasks/record", {"label": "one", "count": 1})
        (task_id,) = answer["ids"]
        lines = wait_for_lines(out, lambda lines: len(lines) == 1)
        assert lines == [f"record one-0 {daemon.process.pid}"]
        daemon.wait_for_log(rf"task record ok [0-9]+ms \(id {task_id}\)")
        time.sleep(0.5)
        assert out_lines(out) == lines
    finally:
        assert daemon.stop() == 0
    assert (tmp_path / "shijid.conf.tasks.sqlite").exists()


@pytest.mark.slow
def test_with_two_workers_each_task_runs_exactly_once(tmp_path):
    out = tmp_path / "out.txt"
    daemon = tasks_daemon(tmp_path, out, workers=2).start()
    try:
        labels = []
        for batch in range(4):
            answer = post(daemon, "/tasks/record", {"label": f"b{batch}", "count": 25})
            assert len(answer["ids"]) == 25
            labels += [f"b{batch}-{i}" for i in range(25)]
        lines = wait_for_lines(out, lambda lines: len(lines) >= 100)
        time.sleep(1)
        lines = out_lines(out)
        assert sorted(line.split()[1] for line in lines) == sorted(labels)
        # Run by the workers, never by their parent.
        assert str(daemon.process.pid) not in {line.split()[2] for line in lines}
    finally:
        assert daemon.stop() == 0


@pytest.mark.slow
def test_a_task_queued_before_a_kill_runs_after_the_restart(tmp_path):
    out = tmp_path / "out.txt"
    # One task at a time: the second waits behind the first.
    daemon = tasks_daemon(tmp_path, out, concurrency="1", lease="2").start()
    try:
        post(daemon, "/tasks/slow", {"label": "long", "seconds": 30})
        wait_for_lines(out, lambda lines: len(lines) == 1)
        post(daemon, "/tasks/record", {"label": "waiting", "count": 1})
        first = daemon.process.pid
        daemon.stop(signal.SIGKILL)
        assert out_lines(out) == [f"start long {first}"]
        daemon = tasks_daemon(tmp_path, out, concurrency="2", lease="2").start()
        second = daemon.process.pid
        # The queued task runs; the one killed mid-run runs again once its
        # lease has expired.
        lines = wait_for_lines(out, lambda lines: len(lines) == 3)
        assert sorted(lines[1:]) == sorted(
            [f"record waiting-0 {second}", f"start long {second}"]
        )
    finally:
        daemon.kill()


@pytest.mark.slow
def test_a_worker_killed_mid_run_leaves_a_lease_that_expires(tmp_path):
    out = tmp_path / "out.txt"
    daemon = tasks_daemon(tmp_path, out, workers=2, lease="2").start()
    try:
        post(daemon, "/tasks/slow", {"label": "cut", "seconds": 1.5})
        (line,) = wait_for_lines(out, lambda lines: len(lines) == 1)
        victim = int(line.split()[2])
        os.kill(victim, signal.SIGKILL)
        lines = wait_for_lines(
            out, lambda lines: any(x.startswith("end ") for x in lines)
        )
        # Run again, by a process that lives, once the lease ran out.
        assert lines[0] == f"start cut {victim}"
        (again,) = [x for x in lines[1:] if x.startswith("start ")]
        (end,) = [x for x in lines if x.startswith("end ")]
        assert again.split()[2] != str(victim)
        assert end.split()[2] == again.split()[2]
    finally:
        daemon.kill()


@pytest.mark.slow
def test_hanging_tasks_neither_starve_handlers_nor_keep_shijid_from_exiting(
    tmp_path,
):
    out = tmp_path / "out.txt"
    daemon = tasks_daemon(tmp_path, out, concurrency="4").start()
    try:
        running = post(daemon, "/tasks/slow", {"label": "long", "seconds": 3600})
        stuck = post(daemon, "/tasks/stuck", {"label": "s", "count": 12})["ids"]
        # Three run out of time, their threads sleep on: nothing more is
        # taken (were the timed-out threads not counted, the others would
        # follow, more threads than the reactor's pool has).
        full = (
            "3 of 4 task slots are held by threads of runs that timed out;"
            " no task is taken until one returns"
        )
        daemon.wait_for_log(re.escape(full) + r"|(?:task stuck failed(?:.|\n)*?){11}")
        status, _, answer = daemon.request(
            "GET", "/tasks/threaded", headers=TASKS_VERSION
        )
        assert (status, json.loads(answer)) == (200, {"pid": daemon.process.pid})
        timed_out = re.findall(
            r"task stuck failed [0-9]+ms: timed out after 0.2s; gave up after 1"
            rf" run\(s\) \(id ({ID}), error {ERROR}\)",
            daemon.log_text(),
        )
        assert len(timed_out) == 3 and set(timed_out) < set(stuck)
        assert full in daemon.log_text()
        # Past shutdown_grace, shijid exits, leaving the threads behind.
        assert daemon.stop() == 0
        log = daemon.log_text()
        assert (
            f"task slow_record still running in a thread at exit; it will run again"
            f" elsewhere (id {running['id']})" in log
        )
        assert sorted(
            re.findall(
                "task stuck still running in a thread at exit, after it timed out"
                rf" \(id ({ID})\)",
                log,
            )
        ) == sorted(timed_out)
    finally:
        daemon.kill()


def test_the_tasks_api_module_is_what_the_tests_use():
    assert isinstance(api_tasks.record, tasks.Task)
    assert api_tasks.record.name == "record"
    assert tasks_api.api_name == "tasks_api"


def test_without_tasks_no_service_runs_and_no_file_is_made(tmp_path):
    import probe_api

    from shiji._task_service import task_service
    from shiji.urldispatch import APIRouter

    path = write_config(tmp_path / "shijid.conf", {"apis": {"probe_api": "probe"}})
    config = load_config(path)
    assert task_service(config, APIRouter({"probe": probe_api})) is None
    assert not config.tasks.database.exists()
    router = APIRouter({"tasks": tasks_api})
    assert isinstance(task_service(config, router), tasks.TaskService)
