"""
Log destinations: a reopenable file, syslog with its prefix.
"""

import time

from twisted.internet.task import Clock
from twisted.logger import Logger, LogLevel, formatTime
from twisted.python.syslog import SyslogObserver

from shiji._logging import (
    FLUSH_LINES,
    FLUSH_SECONDS,
    ReopenableFileObserver,
    _syslog_observer,
)


def event(text, level=LogLevel.info):
    return {
        "log_format": text,
        "log_level": level,
        "log_namespace": "shiji.test",
        "log_time": 0.0,
        "log_system": "-",
    }


def test_file_observer_writes_lines_and_reopens_after_rotation(tmp_path):
    path = tmp_path / "shijid.log"
    observer = ReopenableFileObserver(str(path))
    observer(event("first line"))
    path.rename(tmp_path / "shijid.log.1")
    observer(event("still to the rotated file"))
    observer.reopen()
    observer(event("to the new file"))
    observer.close()
    assert "first line" in (tmp_path / "shijid.log.1").read_text()
    assert "still to the rotated file" in (tmp_path / "shijid.log.1").read_text()
    assert path.read_text().endswith("to the new file\n")


class FullDisk:
    def write(self, text):
        raise OSError(28, "No space left on device")

    def flush(self):
        raise OSError(28, "No space left on device")

    def close(self):
        pass


def test_a_failing_disk_drops_lines_instead_of_failing(tmp_path):
    clock = Clock()
    observer = ReopenableFileObserver(str(tmp_path / "shijid.log"), clock)
    observer.stream = FullDisk()
    observer(event("lost"))
    observer(event("lost too"))
    observer.access("three")
    observer.access("access lines")
    observer.access("lost")
    clock.advance(FLUSH_SECONDS)
    assert observer.dropped == 5


def test_access_lines_are_written_in_batches_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.5)
    clock = Clock()
    path = tmp_path / "shijid.log"
    observer = ReopenableFileObserver(str(path), clock)
    observer.access('127.0.0.1 "GET /a" 200 2 0.1ms api=a version=1.0 call=A')
    observer.access("second")
    assert path.read_text() == ""
    # An event flushes the access lines logged before it first.
    observer(event("an event"))
    observer.access("third")
    assert path.read_text().splitlines()[2:] == [f"{formatTime(0.0)} [-] an event"]
    clock.advance(FLUSH_SECONDS)
    stamp = formatTime(1_700_000_000)
    assert path.read_text().splitlines() == [
        f'{stamp} [shiji.access#info] 127.0.0.1 "GET /a" 200 2 0.1ms api=a version=1.0 call=A',
        f"{stamp} [shiji.access#info] second",
        f"{formatTime(0.0)} [-] an event",
        f"{stamp} [shiji.access#info] third",
    ]
    assert clock.getDelayedCalls() == []


def test_a_full_batch_is_written_at_once_and_close_writes_the_rest(tmp_path):
    clock = Clock()
    path = tmp_path / "shijid.log"
    observer = ReopenableFileObserver(str(path), clock)
    for n in range(FLUSH_LINES + 1):
        observer.access(f"line {n}")
    assert len(path.read_text().splitlines()) == FLUSH_LINES
    observer.close()
    assert path.read_text().splitlines()[-1].endswith(f"line {FLUSH_LINES}")
    assert clock.getDelayedCalls() == []


def test_reopening_writes_waiting_lines_to_the_rotated_file(tmp_path):
    clock = Clock()
    path = tmp_path / "shijid.log"
    observer = ReopenableFileObserver(str(path), clock)
    observer.access("before rotation")
    path.rename(tmp_path / "shijid.log.1")
    observer.reopen()
    observer.access("after rotation")
    observer.close()
    assert "before rotation" in (tmp_path / "shijid.log.1").read_text()
    assert "after rotation" in path.read_text()
    assert "before" not in path.read_text()


def test_syslog_gets_the_prefix_and_each_message(monkeypatch):
    opened, sent = [], []
    monkeypatch.setattr(
        SyslogObserver, "openlog", lambda self, *args: opened.append(args)
    )
    monkeypatch.setattr(SyslogObserver, "syslog", lambda self, *args: sent.append(args))
    observer = _syslog_observer("Shiji")
    Logger(namespace="shiji.test", observer=observer).info(
        "hello {name}", name="syslog"
    )
    assert opened[0][0] == "Shiji"
    assert [message for _, message in sent] == ["[-] hello syslog"]


def test_the_logging_service_sends_access_lines_to_the_text_log_and_flushes_at_stop(
    tmp_path, monkeypatch
):
    from shiji import _logging
    from shiji._access_log import AccessLog

    clock = Clock()
    path = tmp_path / "shijid.log"
    started = []

    def start_logging(log_file, syslog_prefix):
        started.append((log_file, syslog_prefix))
        return ReopenableFileObserver(log_file, clock)

    monkeypatch.setattr(_logging, "start_logging", start_logging)
    access = AccessLog(True, (), 0)
    service = _logging.LoggingService(str(path), "shiji", access)
    service.startService()
    assert started == [(str(path), "shiji")]
    assert access.sink == service.text_log.access
    access.sink("before rotation")
    path.rename(tmp_path / "shijid.log.1")
    service.reopen()
    access.sink("after rotation")
    assert path.read_text() == ""
    service.stopService()
    assert (tmp_path / "shijid.log.1").read_text().endswith("before rotation\n")
    assert path.read_text().endswith("[shiji.access#info] after rotation\n")
    assert clock.getDelayedCalls() == []
