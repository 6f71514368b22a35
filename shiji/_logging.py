"""
Where shijid's log goes: a file that SIGHUP reopens, standard output, or
syslog.

Events go through ``twisted.logger``. Access lines, one per request, are the
exception: on a busy server formatting them as events costs more than
answering the request, so a text log takes them as ready-made text and
writes them in batches (see :meth:`TextLog.access`).
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any, List, Optional

from twisted.application import service
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LegacyLogObserverWrapper,
    LogLevel,
    LogLevelFilterPredicate,
    formatEventAsClassicLogText,
    formatTime,
    globalLogBeginner,
)
from zope.interface import implementer

from ._reactor import global_reactor

__all__ = ["LoggingService", "ReopenableFileObserver", "TextLog", "start_logging"]

#: Access lines wait at most this long before they are written...
FLUSH_SECONDS = 0.05
#: ...or until this many are waiting.
FLUSH_LINES = 256


@implementer(ILogObserver)
class TextLog:
    """
    Writes events as text lines to a stream. A write that fails (a full
    disk) drops the lines rather than the request that logged them; the
    count of dropped lines is kept in :attr:`dropped`.

    :param stream: where the lines go.
    :param reactor: schedules the writing of access lines; the global
        reactor by default.
    """

    def __init__(self, stream: Optional[IO[str]], reactor: Any = None) -> None:
        self.stream = stream
        self.dropped = 0
        self._reactor = reactor
        self._pending: List[str] = []
        self._flush_call: Any = None
        self._second = -1
        self._stamp = ""

    def __call__(self, event: dict) -> None:
        # Access lines logged before this event go first, keeping the order.
        self.flush()
        text = formatEventAsClassicLogText(event)
        if text is not None:
            self._write(text)

    def access(self, line: str) -> None:
        """
        Log ``line`` from the ``shiji.access`` namespace, as an event of
        level info would be logged. It is written within
        :data:`FLUSH_SECONDS`, with the lines logged around it, or at once
        when :data:`FLUSH_LINES` are waiting.
        """
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._stamp = formatTime(now)
        pending = self._pending
        pending.append(f"{self._stamp} [shiji.access#info] {line}\n")
        if len(pending) >= FLUSH_LINES:
            self.flush()
        elif self._flush_call is None:
            reactor = self._reactor if self._reactor is not None else global_reactor()
            self._flush_call = reactor.callLater(FLUSH_SECONDS, self.flush)

    def reopen(self) -> None:
        """Write what is waiting (a stream cannot be reopened)."""
        self.flush()

    def flush(self) -> None:
        """Write the access lines waiting to be written."""
        if self._flush_call is not None:
            if self._flush_call.active():
                self._flush_call.cancel()
            self._flush_call = None
        if self._pending:
            text = "".join(self._pending)
            count = len(self._pending)
            self._pending = []
            self._write(text, count)

    def _write(self, text: str, lines: int = 1) -> None:
        try:
            assert self.stream is not None
            self.stream.write(text)
            self.stream.flush()
        except OSError:
            self.dropped += lines


class ReopenableFileObserver(TextLog):
    """
    A :class:`TextLog` to a file that can be reopened, so that log rotation
    only has to send SIGHUP.
    """

    def __init__(self, path: str, reactor: Any = None) -> None:
        super().__init__(None, reactor)
        self.path = path
        self.reopen()

    def reopen(self) -> None:
        """Close the file and open the path again (after it was rotated)."""
        self.flush()
        if self.stream is not None:
            self.stream.close()
        self.stream = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def close(self) -> None:
        """Write what is waiting and close the file."""
        self.flush()
        if self.stream is not None:
            self.stream.close()
            self.stream = None


def _syslog_observer(prefix: str) -> Any:
    from twisted.python.syslog import SyslogObserver

    emit: Any = SyslogObserver(prefix).emit
    return LegacyLogObserverWrapper(emit)


def start_logging(log_file: Optional[str], syslog_prefix: str) -> Optional[TextLog]:
    """
    Send every log event of level info and above to ``log_file``, to
    standard output if it is ``"-"``, or to syslog with ``syslog_prefix``
    if it is ``None``.

    :returns: the text log (a :class:`ReopenableFileObserver` for a file,
        whose ``reopen`` SIGHUP should call), or ``None`` for syslog.
    """
    text_log: Optional[TextLog] = None
    observer: Any
    if log_file == "-":
        observer = text_log = TextLog(sys.stdout)
    elif log_file is None:
        observer = _syslog_observer(syslog_prefix)
    else:
        observer = text_log = ReopenableFileObserver(log_file)
    level: Any = LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)
    filtered: Any = FilteringLogObserver(observer, [level])
    globalLogBeginner.beginLoggingTo([filtered], redirectStandardIO=False)
    return text_log


class LoggingService(service.Service):
    """
    shijid's log, as ``[logging]`` configures it (see :func:`start_logging`):
    started first in the daemon's tree and stopped last, writing then what
    is still waiting.

    :param log_file: a path, ``"-"`` for standard output, ``None`` for
        syslog.
    :param syslog_prefix: the syslog prefix.
    :param access: the site's access log, whose lines then go straight to
        a text log in batches (see :meth:`TextLog.access`).
    """

    def __init__(
        self, log_file: Optional[str], syslog_prefix: str, access: Any = None
    ) -> None:
        self.log_file = log_file
        self.syslog_prefix = syslog_prefix
        self.access = access
        #: The text log once started (``None`` for syslog).
        self.text_log: Optional[TextLog] = None

    def startService(self) -> None:
        super().startService()
        self.text_log = start_logging(self.log_file, self.syslog_prefix)
        if self.text_log is not None and self.access is not None:
            self.access.sink = self.text_log.access

    def reopen(self) -> None:
        """Reopen the log file (after rotation; SIGHUP calls it)."""
        if self.text_log is not None:
            self.text_log.reopen()

    def stopService(self) -> None:
        super().stopService()
        if self.text_log is not None:
            self.text_log.flush()
