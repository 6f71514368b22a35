"""
The daemon's lifecycle as services, without a reactor: the trees shijid and
twistd build (their services and their order), the ordered stop, the
signals, the parent watch, the PID file and the workers' log forwarding.
"""

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from daemons import merged, write_config
from twisted.application import service
from twisted.internet import defer, error
from twisted.internet.task import Clock
from twisted.logger import (
    Logger,
    LogLevel,
    capturedLogs,
    formatEvent,
    formatEventAsClassicLogText,
)
from twisted.python import usage
from twisted.python.failure import Failure

from shiji import daemon, tap
from shiji._log_forwarding import LogEventReader, LogEventWriter
from shiji._parent_watch import ParentWatchService
from shiji._pidfile import PIDFileError, PIDFileService
from shiji._reactor import reactor_name
from shiji._service_tree import ServiceTree
from shiji._signals import SignalService
from shiji._workers import WORKER_LOG_FD, WorkerPool
from shiji.config import load_config


def shijid_tree(tmp_path, args=(), overrides=None):
    config = write_config(tmp_path / "shijid.conf", merged(overrides or {}))
    options = daemon.Options()
    options.parseOptions(["-c", str(config), *args])
    return daemon.makeService(options)


def twistd_tree(tmp_path, overrides=None):
    config = write_config(tmp_path / "shijid.conf", merged(overrides or {}))
    options = tap.Options()
    options.parseOptions(["-c", str(config)])
    return tap.makeService(options)


#: The services of the process and those that serve; a tree may hold others
#: (background tasks, watchdogs), which these tests leave aside.
LIFECYCLE = {
    "pidfile",
    "logging",
    "log-forwarding",
    "signals",
    "parent-watch",
    "statsd",
    "tasks",
    "http",
    "workers",
    "worker-channel",
    "watchdog",
    "announcement",
}


def names(top):
    """The lifecycle services of ``top``, in the order they start."""
    return [child.name for child in top if child.name in LIFECYCLE]


# The trees


def test_shijid_holds_the_pid_file_and_logs_around_what_serves(tmp_path):
    top = shijid_tree(
        tmp_path,
        ["-p", str(tmp_path / "shijid.pid")],
        {"statsd": {"host": "127.0.0.1"}},
    )
    assert isinstance(top, ServiceTree)
    assert names(top) == [
        "pidfile",
        "logging",
        "signals",
        "statsd",
        "http",
        "announcement",
    ]
    assert not any(child.running for child in top)
    http = top.getServiceNamed("http")
    logging = top.getServiceNamed("logging")
    # Access lines go straight to the text log; SIGHUP reopens it.
    assert logging.access is http.site.access
    signals = top.getServiceNamed("signals")
    assert signals.hangup == [logging.reopen]
    assert not signals.chain
    assert top.getServiceNamed("announcement").echo


def test_without_a_pid_file_shijid_has_no_pid_file_service(tmp_path):
    assert names(shijid_tree(tmp_path)) == [
        "logging",
        "signals",
        "http",
        "announcement",
    ]


def test_shijids_workers_run_its_reactor_and_sighup_reaches_them(tmp_path):
    top = shijid_tree(
        tmp_path, ["-p", str(tmp_path / "shijid.pid")], {"general": {"workers": "2"}}
    )
    assert names(top) == ["pidfile", "logging", "signals", "workers", "announcement"]
    pool = top.getServiceNamed("workers")
    assert reactor_name() is not None
    assert pool.extra_args == ["--reactor", reactor_name()]
    assert not pool.forward_logs
    assert len(top.getServiceNamed("signals").hangup) == 2


def test_a_worker_watches_its_parent_and_has_no_pid_file(tmp_path):
    top = shijid_tree(
        tmp_path,
        [
            "--worker-fd",
            "3",
            "--parent-pid",
            "4242",
            "--reactor",
            "epoll",
            "-p",
            str(tmp_path / "x.pid"),
        ],
        {"general": {"worker_watchdog": "2"}},
    )
    assert names(top) == [
        "logging",
        "signals",
        "parent-watch",
        "http",
        "worker-channel",
    ]
    # The parent it watches is the one the parent named.
    assert top.getServiceNamed("parent-watch").parent_pid == 4242
    assert top.getServiceNamed("http").inherited_fd == 3


def test_the_parent_pid_is_a_number(tmp_path):
    options = daemon.Options()
    with pytest.raises(usage.UsageError, match="--parent-pid takes a number"):
        options.parseOptions(["-c", "x.conf", "--parent-pid", "me"])


def test_a_single_process_watchdog_watches_the_drain_too(tmp_path):
    top = shijid_tree(
        tmp_path,
        [],
        {"general": {"worker_watchdog": "2"}, "statsd": {"host": "127.0.0.1"}},
    )
    # Stopped after the HTTP service (the reverse order): a process blocked
    # while it drains is still watched.
    assert names(top) == [
        "logging",
        "signals",
        "statsd",
        "watchdog",
        "http",
        "announcement",
    ]


def test_the_task_service_stops_after_the_requests_that_may_queue_tasks(tmp_path):
    top = shijid_tree(
        tmp_path,
        ["--worker-fd", "3", "--parent-pid", "4242"],
        {"apis": {"tasks_api": "tasks"}},
    )
    # Stopped after the HTTP service (the reverse order): requests still
    # draining may queue tasks.
    assert names(top) == [
        "logging",
        "signals",
        "parent-watch",
        "tasks",
        "http",
        "worker-channel",
    ]


def test_a_worker_of_twistd_sends_its_log_to_the_parent(tmp_path):
    top = shijid_tree(tmp_path, ["--worker-fd", "3", "--log-fd", "6"])
    assert names(top) == [
        "log-forwarding",
        "signals",
        "parent-watch",
        "http",
        "worker-channel",
    ]
    assert top.getServiceNamed("log-forwarding").fd == 6
    assert top.getServiceNamed("signals").hangup == []


def test_twistd_owns_the_log_and_the_pid_file(tmp_path):
    top = twistd_tree(tmp_path, {"statsd": {"host": "127.0.0.1"}})
    assert isinstance(top, ServiceTree)
    assert names(top) == ["signals", "statsd", "http", "announcement"]
    signals = top.getServiceNamed("signals")
    # The first signal goes on to twistd's own handler; SIGHUP is twistd's.
    assert signals.chain
    assert signals.hangup == []
    assert not top.getServiceNamed("announcement").echo


def test_twistds_workers_run_its_reactor_and_log_through_it(tmp_path):
    top = twistd_tree(tmp_path, {"general": {"workers": "2"}})
    assert names(top) == ["signals", "workers", "announcement"]
    pool = top.getServiceNamed("workers")
    assert pool.extra_args == ["--reactor", reactor_name()]
    assert pool.forward_logs


@pytest.mark.parametrize("option", ["--log-fd", "--worker-fd"])
def test_internal_descriptors_are_numbers(option):
    with pytest.raises(usage.UsageError, match=f"^{option} takes a number$"):
        daemon.Options().parseOptions(["-c", "x.conf", option, "six"])


# The ordered stop


class Recording(service.Service):
    def __init__(self, name, events, stopped=None, fails=False):
        self.setName(name)
        self.events = events
        self.stopped = stopped
        self.fails = fails

    def startService(self):
        super().startService()
        self.events.append(f"start {self.name}")

    def stopService(self):
        super().stopService()
        self.events.append(f"stop {self.name}")
        if self.fails:
            raise RuntimeError(f"{self.name} broke")
        return self.stopped


def test_services_stop_one_after_another_in_reverse_order():
    events = []
    draining = defer.Deferred()
    top = ServiceTree()
    for child in (
        Recording("log", events),
        Recording("broken", events, fails=True),
        Recording("http", events, draining),
        Recording("announce", events),
    ):
        child.setServiceParent(top)
    top.startService()
    with capturedLogs() as logged:
        stopped = top.stopService()
        assert events[4:] == ["stop announce", "stop http"]
        assert not stopped.called
        draining.callback(None)
    assert events == [
        "start log",
        "start broken",
        "start http",
        "start announce",
        "stop announce",
        "stop http",
        "stop broken",
        "stop log",
    ]
    assert stopped.called
    [failure] = [event for event in logged if "log_failure" in event]
    assert formatEvent(failure) == "A service failed to stop cleanly: broken"
    assert failure["log_failure"].getErrorMessage() == "broken broke"


def test_services_that_never_started_are_not_stopped():
    events = []
    top = ServiceTree()
    Recording("pidfile", events).setServiceParent(top)
    never = Recording("http", events)
    never.setServiceParent(top)
    service.Service.startService(top)
    top.getServiceNamed("pidfile").startService()
    top.stopService()
    assert events == ["start pidfile", "stop pidfile"]


# Signals


class FakeReactor:
    def __init__(self):
        self.calls = []
        self.stopped = 0

    def callWhenRunning(self, call):
        call()

    def callFromThread(self, call):
        self.calls.append(call)

    def stop(self):
        self.stopped += 1

    def run_calls(self):
        calls, self.calls = self.calls, []
        for call in calls:
            call()


@pytest.fixture
def handlers():
    """Restore the process's signal handlers afterwards."""
    signums = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    saved = {signum: signal.getsignal(signum) for signum in signums}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_the_first_stop_signal_drains_and_later_ones_are_ignored(handlers):
    reactor = FakeReactor()
    signals = SignalService(reactor=reactor)
    with capturedLogs() as logged:
        signals.startService()
        assert signal.getsignal(signal.SIGTERM) == signals.stop_signal
        assert signal.getsignal(signal.SIGINT) == signals.stop_signal
        signals.stop_signal(signal.SIGINT, None)
        signals.stop_signal(signal.SIGTERM, None)
        reactor.run_calls()
    assert reactor.stopped == 1
    assert signals.received == signal.SIGINT
    assert [formatEvent(event) for event in logged] == [
        "Received SIGINT: draining and shutting down"
    ]


def test_under_twistd_the_first_signal_goes_on_to_twistds_handler(handlers):
    received = []
    signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    reactor = FakeReactor()
    signals = SignalService(chain=True, reactor=reactor)
    signals.startService()
    signals.stop_signal(signal.SIGTERM, None)
    signals.stop_signal(signal.SIGTERM, None)
    reactor.run_calls()
    assert received == [signal.SIGTERM]
    assert reactor.stopped == 0


def test_sighup_calls_its_callables_in_the_reactor_thread(handlers):
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    calls = []
    reactor = FakeReactor()
    signals = SignalService(
        [lambda: calls.append("log"), lambda: calls.append("workers")],
        reactor=reactor,
    )
    signals.startService()
    assert signal.getsignal(signal.SIGHUP) == signals.hangup_signal
    signals.hangup_signal(signal.SIGHUP, None)
    assert calls == []
    reactor.run_calls()
    assert calls == ["log", "workers"]
    SignalService(reactor=reactor).install()
    assert signal.getsignal(signal.SIGHUP) == signals.hangup_signal


# The parent watch


def test_a_worker_stops_once_its_parent_is_gone(monkeypatch):
    clock = Clock()
    stops = []
    watch = ParentWatchService(
        parent=4242, clock=clock, stop=lambda: stops.append(True)
    )
    monkeypatch.setattr(os, "getppid", lambda: 4242)
    watch.startService()
    clock.advance(5)
    assert stops == []
    monkeypatch.setattr(os, "getppid", lambda: 1)
    with capturedLogs() as logged:
        clock.advance(1)
    assert stops == [True]
    assert [formatEvent(event) for event in logged] == [
        "The shijid parent process is gone; stopping"
    ]
    assert clock.getDelayedCalls() == []
    watch.stopService()


def test_a_worker_whose_parent_died_while_it_started_stops_at_once(monkeypatch):
    clock = Clock()
    stops = []
    watch = ParentWatchService(
        parent=4242, clock=clock, stop=lambda: stops.append(True)
    )
    # The parent died while the APIs were imported: init adopted the worker.
    monkeypatch.setattr(os, "getppid", lambda: 1)
    with capturedLogs() as logged:
        watch.startService()
    assert stops == [True]
    assert [formatEvent(event) for event in logged] == [
        "The shijid parent process is gone; stopping"
    ]
    assert clock.getDelayedCalls() == []
    watch.stopService()


def test_a_worker_whose_parent_is_gone_before_it_starts_exits(tmp_path):
    config = write_config(tmp_path / "shijid.conf", merged({}))
    # The parent it names is not its parent: a process that has ended.
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait(30)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "shiji.daemon",
            "-c",
            str(config),
            "--worker-fd",
            "3",
            "--parent-pid",
            str(gone.pid),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        f"shijid: error: the parent process {gone.pid} is gone\n",
    )


# The PID file


def test_the_pid_file_is_held_while_the_service_runs(tmp_path):
    path = tmp_path / "shijid.pid"
    pidfile = PIDFileService(path)
    pidfile.startService()
    assert path.read_text() == f"{os.getpid()}\n"
    pidfile.stopService()
    assert not path.exists()


def test_a_held_pid_file_stops_the_start(tmp_path):
    path = tmp_path / "shijid.pid"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "shijid"]
    )
    try:
        # Once it runs the command whose line names shijid.
        cmdline = Path(f"/proc/{holder.pid}/cmdline")
        deadline = time.monotonic() + 10
        while cmdline.exists() and b"shijid" not in cmdline.read_bytes():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        path.write_text(f"{holder.pid}\n")
        pidfile = PIDFileService(path)
        with pytest.raises(
            PIDFileError,
            match=f"^{path}: shijid is already running as process {holder.pid}$",
        ):
            pidfile.startService()
        assert not pidfile.running
        assert path.read_text() == f"{holder.pid}\n"
    finally:
        holder.kill()
        holder.wait(10)


# Log forwarding


def test_worker_events_reach_the_parent_as_they_were_logged():
    pipe = io.BytesIO()
    writer = LogEventWriter(pipe)
    logger = Logger(namespace="shiji.test", observer=writer)
    logger.info("served {count} requests", count=3)
    try:
        raise RuntimeError("internal detail {42}")
    except RuntimeError:
        logger.failure("Unexpected error answering {path}", path="/x")
    logger.warn("braces {{kept}} and {value!r}", value="v")
    published = []
    reader = LogEventReader(published.append)
    data = pipe.getvalue()
    assert data.count(b"\n") == 3
    # The pipe delivers any chunks; only whole lines are events.
    for start in range(0, len(data), 7):
        reader.dataReceived(data[start : start + 7])
    assert [event["log_namespace"] for event in published] == ["shiji.test"] * 3
    assert [event["log_level"] for event in published] == [
        LogLevel.info,
        LogLevel.critical,
        LogLevel.warn,
    ]
    assert formatEvent(published[0]) == "served 3 requests"
    failure_text = formatEventAsClassicLogText(published[1])
    assert "Unexpected error answering /x\n\tTraceback (most recent call last):" in (
        failure_text
    )
    assert "RuntimeError: internal detail {42}" in failure_text
    assert formatEvent(published[2]) == "braces {kept} and 'v'"


def test_a_line_that_is_no_event_is_reported_not_raised():
    published = []
    reader = LogEventReader(published.append)
    with capturedLogs() as logged:
        reader.dataReceived(b"not json\n")
    assert published == []
    assert [formatEvent(event) for event in logged] == [
        "A worker sent a log line that is no event: b'not json'"
    ]


def test_a_parent_gone_drops_events_instead_of_failing():
    class Closed(io.BytesIO):
        def write(self, data):
            raise BrokenPipeError(32, "Broken pipe")

    writer = LogEventWriter(Closed())
    Logger(namespace="shiji.test", observer=writer).info("lost")
    assert writer.dropped == 1


class FakeProcess:
    def __init__(self, pid):
        self.pid = pid
        self.signals = []

    def signalProcess(self, name):
        self.signals.append(name)


class Spawner(Clock):
    """A clock that records the workers it is asked to start."""

    def __init__(self):
        super().__init__()
        self.spawned = []

    def spawnProcess(self, protocol, executable, args, env, childFDs):
        self.spawned.append((protocol, args, childFDs))
        protocol.makeConnection(FakeProcess(1000 + len(self.spawned)))


@pytest.mark.parametrize("forward_logs", [False, True])
def test_a_pool_that_forwards_logs_gives_each_worker_a_pipe_and_logs_its_events(
    tmp_path, forward_logs
):
    config = load_config(
        write_config(tmp_path / "shijid.conf", merged({"general": {"workers": "2"}}))
    )
    spawner = Spawner()
    pool = WorkerPool(config, 2, ["--reactor", "poll"], reactor=spawner)
    pool.forward_logs = forward_logs
    pool.startService()
    pool.ready.addErrback(lambda reason: None)  # the fakes never report ready
    try:
        assert len(spawner.spawned) == 2
        for _, args, child_fds in spawner.spawned:
            assert args[3:] == [
                "-c",
                str(config.path),
                "--worker-fd",
                "3",
                "--parent-pid",
                str(os.getpid()),
                "--reactor",
                "poll",
                *(["--log-fd", str(WORKER_LOG_FD)] if forward_logs else []),
            ]
            assert (child_fds.get(WORKER_LOG_FD) == "r") is forward_logs
            # Standard error is the parent's, not read by its reactor.
            assert child_fds[2] == 2
        pipe = io.BytesIO()
        Logger(namespace="shiji.access", observer=LogEventWriter(pipe)).info(
            "{line}", line='127.0.0.1 "GET /probe/probe" 200'
        )
        protocol = spawner.spawned[1][0]
        with capturedLogs() as logged:
            protocol.childDataReceived(WORKER_LOG_FD, pipe.getvalue())
        assert [(event["log_namespace"], formatEvent(event)) for event in logged] == [
            ("shiji.access", '127.0.0.1 "GET /probe/probe" 200')
        ]
    finally:
        pool.stopService()
        for protocol, _, _ in spawner.spawned:
            protocol.processEnded(Failure(error.ProcessDone(0)))
