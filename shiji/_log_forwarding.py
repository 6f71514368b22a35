"""
Log events from a worker to its parent, which logs them as its own.

Under twistd the parent's log is twistd's (``--logfile``, ``--syslog``...),
which a worker cannot open. A worker therefore writes each event of level
info and above as one line of ``twisted.logger`` JSON on a pipe; the parent
reads the lines and publishes the events to its own observers, so that
they land where twistd sends everything else, with their own time, level
and namespace.
"""

from __future__ import annotations

import contextlib
import os
from typing import IO, Any, Callable, Optional

from twisted.application import service
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    eventAsJSON,
    eventFromJSON,
    globalLogBeginner,
    globalLogPublisher,
)
from zope.interface import implementer

__all__ = ["LogEventReader", "LogEventWriter", "LogForwardingService"]

log = Logger(namespace="shiji.workers")

#: A line longer than this is no event a worker wrote; it is dropped.
MAX_LINE_BYTES = 4 * 1024 * 1024


@implementer(ILogObserver)
class LogEventWriter:
    """
    Writes each event it observes as one line of JSON to ``stream``. A
    failure's traceback is written as text into the event's message (the
    JSON form of a failure loses its exception's text). A write that fails
    (the parent is gone) drops the event; :attr:`dropped` counts them.

    :param stream: a binary stream, the pipe to the parent.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.dropped = 0

    def __call__(self, event: dict) -> None:
        failure = event.get("log_failure")
        if failure is not None:
            traceback = failure.getTraceback().replace("{", "{{").replace("}", "}}")
            event = dict(event)
            del event["log_failure"]
            event["log_format"] = f"{event.get('log_format') or ''}\n{traceback}"
        try:
            self.stream.write(eventAsJSON(event).encode("utf-8") + b"\n")
            self.stream.flush()
        except (OSError, ValueError):
            self.dropped += 1


class LogEventReader:
    """
    Reads the lines a :class:`LogEventWriter` wrote, as they arrive in
    chunks, and publishes each event.

    :param publish: where the events go; the global log publisher (every
        observer of this process) by default.
    """

    def __init__(self, publish: Optional[Callable[[dict], None]] = None) -> None:
        self.publish: Callable[[dict], None] = (
            globalLogPublisher if publish is None else publish
        )
        self._partial = b""

    def dataReceived(self, data: bytes) -> None:
        """Publish the events whose lines ``data`` completes."""
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > MAX_LINE_BYTES:
            log.warn(
                "A worker's log line exceeded {limit} bytes; dropped it",
                limit=MAX_LINE_BYTES,
            )
            self._partial = b""
        for line in lines:
            if line:
                self._publish(line)

    def _publish(self, line: bytes) -> None:
        try:
            event = eventFromJSON(line.decode("utf-8"))
        except ValueError:
            log.warn(
                "A worker sent a log line that is no event: {line!r}", line=line[:200]
            )
            return
        if isinstance(event, dict):
            self.publish(event)


class LogForwardingService(service.Service):
    """
    A worker's log: every event of level info and above goes, as JSON, to
    the parent on the pipe ``fd`` (see :class:`LogEventReader`).

    :param fd: the pipe's descriptor.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.writer: Optional[LogEventWriter] = None

    def startService(self) -> None:
        super().startService()
        self.writer = LogEventWriter(os.fdopen(self.fd, "wb"))
        level: Any = LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)
        writer: Any = self.writer
        filtered: Any = FilteringLogObserver(writer, [level])
        globalLogBeginner.beginLoggingTo([filtered], redirectStandardIO=False)

    def stopService(self) -> None:
        super().stopService()
        if self.writer is not None:
            with contextlib.suppress(OSError, ValueError):
                self.writer.stream.flush()
