"""
Where shijid's log goes: a file that SIGHUP reopens, standard output, or
syslog, all through ``twisted.logger``.
"""

from __future__ import annotations

import sys
from typing import IO, Any, Optional

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LegacyLogObserverWrapper,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)
from zope.interface import implementer

__all__ = ["ReopenableFileObserver", "start_logging"]


@implementer(ILogObserver)
class ReopenableFileObserver:
    """
    Writes events as text lines to a file that can be reopened, so that log
    rotation only has to send SIGHUP. A write that fails (a full disk) drops
    the line rather than the request that logged it.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.dropped = 0
        self._file: Optional[IO[str]] = None
        self._observer: Any = None
        self.reopen()

    def reopen(self) -> None:
        """Close the file and open the path again (after it was rotated)."""
        if self._file is not None:
            self._file.close()
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self._observer = textFileLogObserver(self._file)

    def __call__(self, event: dict) -> None:
        try:
            self._observer(event)
            assert self._file is not None
            self._file.flush()
        except OSError:
            self.dropped += 1

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None


def _syslog_observer(prefix: str) -> Any:
    from twisted.python.syslog import SyslogObserver

    emit: Any = SyslogObserver(prefix).emit
    return LegacyLogObserverWrapper(emit)


def start_logging(
    log_file: Optional[str], syslog_prefix: str
) -> Optional[ReopenableFileObserver]:
    """
    Send every log event of level info and above to ``log_file``, to
    standard output if it is ``"-"``, or to syslog with ``syslog_prefix``
    if it is ``None``.

    :returns: the file observer, whose ``reopen`` SIGHUP should call, or
        ``None``.
    """
    file_observer = None
    observer: Any
    if log_file == "-":
        observer = textFileLogObserver(sys.stdout)
    elif log_file is None:
        observer = _syslog_observer(syslog_prefix)
    else:
        observer = file_observer = ReopenableFileObserver(log_file)
    level: Any = LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)
    filtered: Any = FilteringLogObserver(observer, [level])
    globalLogBeginner.beginLoggingTo([filtered], redirectStandardIO=False)
    return file_observer
