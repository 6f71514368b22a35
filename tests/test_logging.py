"""
Log destinations: a reopenable file, syslog with its prefix.
"""

from twisted.logger import Logger, LogLevel
from twisted.python.syslog import SyslogObserver

from shiji._logging import ReopenableFileObserver, _syslog_observer


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


def test_a_failing_disk_drops_lines_instead_of_failing(tmp_path):
    observer = ReopenableFileObserver(str(tmp_path / "shijid.log"))

    class FullDisk:
        def write(self, text):
            raise OSError(28, "No space left on device")

        def flush(self):
            raise OSError(28, "No space left on device")

        def close(self):
            pass

    observer._file = FullDisk()
    observer._observer = lambda event: observer._file.write("x")
    observer(event("lost"))
    observer(event("lost too"))
    assert observer.dropped == 2


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
