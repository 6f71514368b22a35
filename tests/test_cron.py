"""
Scheduled jobs (shiji.tasks.cron and every): once per tick across processes,
a busy job's next tick skipped, missed ticks caught up or not; in memory on
a Clock, and over real shijid processes.
"""

import re
import signal
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from apitools import HeldStoreThread, log_lines
from daemons import TESTS, Daemon, failing_run
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from shiji import tasks
from shiji._cron import CronSchedule, IntervalSchedule, missed_ticks
from shiji._task_store import SQLiteTaskStore
from shiji.metrics import NullMetrics
from shiji.testing import TestClient

sys.path.insert(0, str(TESTS / "daemon_apis"))

import bad_cron_api
import jobs_api
from jobs_api import tasks as jobs

ERROR = "[0-9a-f]{12}"
HOUR = 3600.0
DAY = 86400.0


class Recorder(NullMetrics):
    def __init__(self):
        self.counted = []

    def increment(self, name, value=1, sample_rate=1.0):
        self.counted.append((name, value))


@pytest.fixture(autouse=True)
def fresh_jobs():
    for kept in (jobs.RUNS, jobs.FAILURES, jobs.GATE, jobs.BROKEN, jobs.OVERRUN):
        kept.clear()
    yield


@pytest.fixture
def job_log():
    with log_lines("shiji.tasks") as lines:
        yield lines


def runs_of(name):
    return [run_id for job, run_id in jobs.RUNS if job == name]


def test_a_job_runs_on_each_tick_of_its_interval(job_log):
    client = TestClient({"jobs": jobs_api})
    client.clock.advance(59)
    assert runs_of("gated") == []
    client.clock.advance(1)
    assert runs_of("gated") == ["gated@1970-01-01T00:01:00+00:00"]
    client.clock.advance(60)
    assert runs_of("gated") == [
        "gated@1970-01-01T00:01:00+00:00",
        "gated@1970-01-01T00:02:00+00:00",
    ]
    assert [line for line in job_log if "gated" in line] == [
        "cron gated ok 0ms (tick 1970-01-01T00:01:00+00:00)",
        "cron gated ok 0ms (tick 1970-01-01T00:02:00+00:00)",
    ]


def test_a_cron_expression_runs_at_its_minutes_in_utc():
    client = TestClient({"jobs": jobs_api})
    client.clock.advance(2 * HOUR - 1)
    assert runs_of("nightly") == []
    client.clock.advance(1)
    assert runs_of("nightly") == ["nightly@1970-01-01T02:00:00+00:00"]
    client.clock.advance(DAY)
    assert runs_of("nightly") == [
        "nightly@1970-01-01T02:00:00+00:00",
        "nightly@1970-01-02T02:00:00+00:00",
    ]


def test_a_cron_expression_in_a_time_zone():
    # 09:30 in Paris on weekdays; 1 January 1970 was a Thursday, and Paris
    # was an hour ahead of UTC.
    client = TestClient({"jobs": jobs_api})
    client.clock.advance(8.5 * HOUR)
    assert runs_of("paris") == ["paris@1970-01-01T08:30:00+00:00"]
    client.clock.advance(DAY)  # Friday
    client.clock.advance(DAY)  # Saturday
    client.clock.advance(DAY)  # Sunday
    client.clock.advance(DAY)  # Monday
    assert runs_of("paris") == [
        "paris@1970-01-01T08:30:00+00:00",
        "paris@1970-01-02T08:30:00+00:00",
        "paris@1970-01-05T08:30:00+00:00",
    ]


def test_a_running_job_skips_its_next_tick(job_log):
    metrics = Recorder()
    client = TestClient({"jobs": jobs_api}, metrics=metrics)
    jobs.GATE.append(Deferred())
    client.clock.advance(60)
    client.clock.advance(60)
    assert runs_of("gated") == ["gated@1970-01-01T00:01:00+00:00"]
    jobs.GATE.pop().callback(None)
    client.clock.advance(60)
    assert runs_of("gated") == [
        "gated@1970-01-01T00:01:00+00:00",
        "gated@1970-01-01T00:03:00+00:00",
    ]
    assert [line for line in job_log if "gated" in line] == [
        "cron gated skipped tick 1970-01-01T00:02:00+00:00: its run before is still running",
        "cron gated ok 60000ms (tick 1970-01-01T00:01:00+00:00)",
        "cron gated ok 0ms (tick 1970-01-01T00:03:00+00:00)",
    ]
    assert [m for m in metrics.counted if ".gated." in m[0]] == [
        ("jobs_api.cron.gated.skipped", 1),
        ("jobs_api.cron.gated.ok", 1),
        ("jobs_api.cron.gated.ok", 1),
    ]


def test_a_failed_run_is_logged_counted_and_reported(job_log):
    metrics = Recorder()
    client = TestClient({"jobs": jobs_api}, metrics=metrics)
    jobs.BROKEN.append(True)
    client.clock.advance(2 * HOUR)
    (line,) = [line for line in job_log if "nightly" in line]
    assert re.fullmatch(
        re.escape(
            "cron nightly failed 0ms: OSError: disk full (tick 1970-01-01T02:00:00+00:00, error "
        )
        + ERROR
        + r"\)",
        line,
    )
    assert ("jobs_api.cron.nightly.failed", 1) in metrics.counted
    assert jobs.FAILURES == [
        (
            "nightly",
            "nightly@1970-01-01T02:00:00+00:00",
            {"args": [], "kwargs": {}},
            "disk full",
        )
    ]


def test_a_job_that_runs_too_long_is_cancelled(job_log):
    client = TestClient({"jobs": jobs_api})
    jobs.OVERRUN.append(True)
    client.clock.advance(10)
    client.clock.advance(1.9)
    assert [line for line in job_log if "overrun" in line] == []
    client.clock.advance(0.1)
    (line,) = [line for line in job_log if "overrun" in line]
    assert re.fullmatch(
        re.escape(
            "cron overrun failed 2000ms: timed out after 2s (tick 1970-01-01T00:00:10+00:00, error "
        )
        + ERROR
        + r"\)",
        line,
    )
    assert jobs.FAILURES[0][:2] == ("overrun", "overrun@1970-01-01T00:00:10+00:00")


def test_missed_ticks_are_caught_up_once_or_only_logged(tmp_path, job_log):
    path = str(tmp_path / "queue.sqlite")
    first = TestClient({"jobs": jobs_api}, tasks={"store": SQLiteTaskStore(path)})
    first.clock.advance(8.5 * HOUR - 60)
    first.clock.advance(60)
    assert runs_of("paris") == ["paris@1970-01-01T08:30:00+00:00"]
    stopped = []
    first.tasks.stopService().addBoth(stopped.append)
    assert stopped == [None]
    del jobs.RUNS[:]
    del job_log[:]

    # Down until Tuesday 6 January, 00:00:30.
    clock = Clock()
    restart = 5 * DAY + 30
    clock.advance(restart)
    TestClient({"jobs": jobs_api}, clock=clock, tasks={"store": SQLiteTaskStore(path)})
    # With catch_up, one run for the ticks of Friday and Monday.
    assert runs_of("paris") == ["paris@1970-01-05T08:30:00+00:00"]
    assert runs_of("nightly") == []
    assert runs_of("gated") == []
    # gated last ran the tick of 08:30, overrun that of 08:29:10 (each
    # timer fires once however far the clock jumps).
    assert sorted(line for line in job_log if "missed" in line) == [
        "cron gated missed 6690 tick(s) while stopped; not replayed",
        "cron nightly missed 4 tick(s) while stopped; not replayed",
        "cron overrun missed 40147 tick(s) while stopped; not replayed",
        "cron paris missed 2 tick(s) while stopped; running once to catch up",
    ]
    assert "cron paris ok 0ms (tick 1970-01-05T08:30:00+00:00)" in job_log


def test_a_tick_is_claimed_once_across_services(tmp_path):
    path = str(tmp_path / "queue.sqlite")
    clock = Clock()
    TestClient({"jobs": jobs_api}, clock=clock, tasks={"store": SQLiteTaskStore(path)})
    TestClient({"jobs": jobs_api}, clock=clock, tasks={"store": SQLiteTaskStore(path)})
    clock.advance(60)
    clock.advance(60)
    assert runs_of("gated") == [
        "gated@1970-01-01T00:01:00+00:00",
        "gated@1970-01-01T00:02:00+00:00",
    ]


@pytest.mark.parametrize(
    "expression, message",
    [
        (
            "61 * * * *",
            "tasks.cron(): '61 * * * *' is not a valid cron expression: "
            "[61 * * * *] is not acceptable, out of range",
        ),
        (
            "0 2 * * * *",
            "tasks.cron(): '0 2 * * * *' is not a cron expression of five fields "
            "(minute hour day-of-month month day-of-week)",
        ),
        (
            "@daily",
            "tasks.cron(): '@daily' is not a cron expression of five fields "
            "(minute hour day-of-month month day-of-week)",
        ),
    ],
)
def test_an_invalid_cron_expression_is_refused_when_declared(expression, message):
    with pytest.raises(ValueError) as raised:
        tasks.cron(expression)
    assert str(raised.value) == message


def test_an_unknown_time_zone_is_refused():
    with pytest.raises(
        ValueError, match=r"^tasks.cron\(\): unknown time zone 'Mars/Olympus'$"
    ):
        tasks.cron("0 2 * * *", timezone="Mars/Olympus")


def test_every_needs_seconds_above_zero():
    with pytest.raises(ValueError) as raised:
        tasks.every(seconds=0)
    assert str(raised.value) == (
        "tasks.every(seconds=...) needs a number of seconds above 0, not 0"
    )


def test_an_api_with_an_invalid_cron_expression_does_not_load():
    from shiji._task_declarations import TasksModuleError

    with pytest.raises(TasksModuleError) as raised:
        TestClient({"bad": bad_cron_api})
    tasks_file = TESTS / "daemon_apis" / "bad_cron_api" / "tasks.py"
    assert str(raised.value) == (
        "cannot import bad_cron_api.tasks: ValueError: tasks.cron(): '61 * * * *' is "
        "not a valid cron expression: [61 * * * *] is not acceptable, out of range "
        f"({tasks_file}, line 4)"
    )


@pytest.mark.slow
def test_shijid_refuses_an_invalid_cron_expression_in_one_line(tmp_path):
    path, line = failing_run(tmp_path, {"apis": {"bad_cron_api": "b"}})
    tasks_file = TESTS / "daemon_apis" / "bad_cron_api" / "tasks.py"
    assert line == (
        f"shijid: error: {path}: [apis] bad_cron_api: cannot import bad_cron_api.tasks: "
        "ValueError: tasks.cron(): '61 * * * *' is not a valid cron expression: "
        f"[61 * * * *] is not acceptable, out of range ({tasks_file}, line 4)"
    )


def test_missed_ticks_are_counted_from_the_schedule():
    assert missed_ticks(IntervalSchedule(60), 60.0, 3600.0) == (59, 3600.0, True)
    assert missed_ticks(IntervalSchedule(60), 60.0, 119.0) == (0, 60.0, True)
    nightly = CronSchedule("0 2 * * *")
    assert missed_ticks(nightly, 7200.0, 5 * DAY) == (4, 4 * DAY + 7200.0, True)
    assert missed_ticks(nightly, 7200.0, 7200.0) == (0, 7200.0, True)
    # A job every minute, down for a month: counted up to a bound.
    assert missed_ticks(CronSchedule("* * * * *"), 0.0, 30 * DAY) == (
        1000,
        30 * DAY,
        False,
    )


def paris_ticks(expression, start, end):
    """The ticks of ``expression`` in Paris after ``start`` up to ``end`` (UTC)."""
    schedule = CronSchedule(expression, "Europe/Paris")
    zone = ZoneInfo("Europe/Paris")
    tick, ticks = utc(start), []
    while True:
        tick = schedule.next_tick(tick)
        if tick > utc(end):
            return ticks
        ticks.append(datetime.fromtimestamp(tick, zone).isoformat())


def utc(text):
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def test_a_fixed_time_runs_once_on_the_night_clocks_go_back():
    # 25 October 2026: 03:00 in Paris becomes 02:00 again.
    assert paris_ticks("30 2 * * *", "2026-10-24T00:00", "2026-10-26T12:00") == [
        "2026-10-24T02:30:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]
    assert paris_ticks("0 1-3 * * *", "2026-10-24T22:00", "2026-10-25T03:00") == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T03:00:00+01:00",
    ]
    schedule = CronSchedule("30 2 * * *", "Europe/Paris")
    # Counted once when missed, and the latest tick is the one that ran.
    assert missed_ticks(schedule, utc("2026-10-24T12:00"), utc("2026-10-25T12:00")) == (
        1,
        utc("2026-10-25T00:30"),
        True,
    )
    assert schedule.latest_tick(utc("2026-10-25T01:45")) == utc("2026-10-25T00:30")


def test_a_fixed_time_that_does_not_exist_runs_once_after_the_gap():
    # 29 March 2026: 02:00 in Paris becomes 03:00.
    assert paris_ticks("30 2 * * *", "2026-03-28T00:00", "2026-03-30T12:00") == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]
    assert paris_ticks("0 1-3 * * *", "2026-03-28T22:00", "2026-03-29T03:00") == [
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T03:00:00+02:00",
    ]
    schedule = CronSchedule("30 2 * * *", "Europe/Paris")
    assert missed_ticks(schedule, utc("2026-03-28T12:00"), utc("2026-03-29T12:00")) == (
        1,
        utc("2026-03-29T01:00"),
        True,
    )


def test_any_hour_runs_on_each_real_tick_when_clocks_change():
    assert paris_ticks("*/15 * * * *", "2026-10-24T23:40", "2026-10-25T01:20") == [
        "2026-10-25T01:45:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:15:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:45:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:15:00+01:00",
    ]
    assert paris_ticks("*/15 * * * *", "2026-03-29T00:20", "2026-03-29T01:20") == [
        "2026-03-29T01:30:00+01:00",
        "2026-03-29T01:45:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:15:00+02:00",
    ]
    assert paris_ticks("0 */2 * * *", "2026-10-24T21:30", "2026-10-25T03:00") == [
        "2026-10-25T00:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T04:00:00+01:00",
    ]
    schedule = CronSchedule("0 * * * *", "Europe/Paris")
    assert missed_ticks(schedule, utc("2026-10-24T23:30"), utc("2026-10-25T01:30")) == (
        2,
        utc("2026-10-25T01:00"),
        True,
    )


# Over real processes


def cron_daemon(tmp_path, api, out, workers=1, **config):
    return Daemon(
        tmp_path,
        {
            "general": {"workers": str(workers), "shutdown_grace": "1"},
            "apis": {api: "jobs"},
            f"config_{api}": {"out": str(out), **config},
            "tasks": {"poll_interval": "0.2", "lease": "3"},
        },
    )


def out_lines(out):
    return out.read_text().splitlines() if out.exists() else []


def wait_until(predicate, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"not so after {timeout}s")


@pytest.mark.slow
def test_with_two_workers_each_tick_runs_once(tmp_path):
    out = tmp_path / "out.txt"
    daemon = cron_daemon(tmp_path, "cron_api", out, workers=2).start()
    try:
        wait_until(lambda: len({line.split()[1] for line in out_lines(out)}) >= 8)
    finally:
        assert daemon.stop() == 0
    lines = out_lines(out)
    assert str(daemon.process.pid) not in {line.split()[2] for line in lines}
    for job in ("tick", "tick_catch_up"):
        ids = Counter(line.split()[1] for line in lines if line.split()[0] == job)
        assert len(ids) >= 3
        assert set(ids.values()) == {1}, ids


@pytest.mark.slow
def test_a_slow_job_skips_the_ticks_it_overruns(tmp_path):
    out = tmp_path / "out.txt"
    daemon = cron_daemon(tmp_path, "slow_cron_api", out, seconds="2.5").start()
    try:
        daemon.wait_for_log(
            r"cron slow skipped tick [0-9T:+-]+: its run before is still running",
            timeout=15,
        )
        wait_until(lambda: len(out_lines(out)) >= 2)
    finally:
        daemon.stop()
    ticks = [line.split()[1] for line in out_lines(out)]
    skipped = re.findall(r"cron slow skipped tick ([0-9T:+-]+):", daemon.log_text())
    assert skipped
    assert not set(skipped) & {tick.split("@")[1] for tick in ticks}


@pytest.mark.slow
def test_after_downtime_missed_ticks_are_caught_up_only_when_asked(tmp_path):
    out = tmp_path / "out.txt"
    daemon = cron_daemon(tmp_path, "cron_api", out).start()
    try:
        wait_until(lambda: len(out_lines(out)) >= 2)
    finally:
        assert daemon.stop(signal.SIGTERM) == 0
    time.sleep(3.5)
    before = len(out_lines(out))
    daemon = cron_daemon(tmp_path, "cron_api", out).start()
    try:
        daemon.wait_for_log(
            r"cron tick_catch_up missed [0-9]+ tick\(s\) while stopped; running once",
            timeout=15,
        )
        daemon.wait_for_log(
            r"cron tick missed [0-9]+ tick\(s\) while stopped; not replayed"
        )
    finally:
        daemon.stop()
    log = daemon.log_text()
    caught = int(re.search(r"cron tick_catch_up missed ([0-9]+) tick", log).group(1))
    missed = int(re.search(r"cron tick missed ([0-9]+) tick", log).group(1))
    assert caught >= 2 and missed >= 2
    after = out_lines(out)[before:]
    # The catch-up ran a tick of the downtime, which the other job never ran.
    tick_ids = {
        line.split()[1].split("@")[1] for line in after if line.startswith("tick ")
    }
    catch_up_ids = {
        line.split()[1].split("@")[1]
        for line in after
        if line.startswith("tick_catch_up ")
    }
    assert catch_up_ids - tick_ids


def test_a_tick_claimed_as_the_service_stops_is_not_run(tmp_path):
    import sqlite3

    from shiji._task_declarations import load_api_tasks
    from shiji._task_service import call_at_once

    in_store_thread = HeldStoreThread()

    path = tmp_path / "q.sqlite"
    clock = Clock()
    service = tasks.TaskService(
        [load_api_tasks(jobs_api)],
        SQLiteTaskStore(str(path)),
        clock=clock,
        call_store=in_store_thread,
        in_thread=call_at_once,
        poll_interval=60,
    )
    service.startService()
    in_store_thread.run()
    clock.advance(10)
    # The tick's claim waits in the store's thread as the service stops.
    assert in_store_thread.waiting() == ["claim_tick"]
    stopped = []
    service.stopService().addBoth(stopped.append)
    in_store_thread.run()
    assert stopped == [None]
    assert jobs.RUNS == []
    stored = sqlite3.connect(path)
    try:
        assert stored.execute(
            "SELECT job, last_tick, owner, lease_until FROM shiji_cron_jobs"
        ).fetchall() == [("jobs_api.overrun", 10.0, None, None)]
    finally:
        stored.close()
