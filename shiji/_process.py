"""
The services of the process around the ones that serve: its log, its PID
file, its signals, a worker's watch on its parent, and the announcement of
where it serves.

``shijid`` owns all of them. Under twistd, twistd owns daemonizing, the PID
file, the log and the reactor: the tree then has no log or PID file
service, the first SIGTERM or SIGINT goes on to twistd's own handler (which
stops the reactor; the shutdown drains the tree, then twistd ends with that
signal), and the workers send their log events to the parent, which logs
them to twistd's log.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, List, Optional

from twisted.application import service
from twisted.logger import Logger

from ._log_forwarding import LogForwardingService
from ._logging import LoggingService
from ._parent_watch import ParentWatchService
from ._pidfile import PIDFileService
from ._reactor import reactor_name
from ._signals import SignalService
from .config import ShijiConfig

__all__ = ["AnnouncementService", "ProcessServices", "announce"]

log = Logger(namespace="shiji.daemon")


def announce(config: ShijiConfig, host: str, port: int, echo: bool = True) -> None:
    """
    Say where shijid serves, once it does: logged, and with ``echo`` printed
    on standard output too.
    """
    count = len(config.apis)
    scheme = "http" if config.general.tls_certificate is None else "https"
    if echo:
        print(
            f"shijid: serving {count} API(s) on {scheme}://{host}:{port}/", flush=True
        )
    log.info(
        "Serving {count} API(s) on {scheme}://{host}:{port}/",
        count=count,
        scheme=scheme,
        host=host,
        port=port,
    )


class AnnouncementService(service.Service):
    """
    Announces (see :func:`announce`) where ``serving`` serves once its
    ``ready`` fires, or logs why it failed to start (a worker that did not).

    :param serving: the HTTP service or the worker pool.
    :param echo: print the line on standard output as well.
    """

    def __init__(self, config: ShijiConfig, serving: Any, echo: bool = True) -> None:
        self.config = config
        self.serving = serving
        self.echo = echo

    def startService(self) -> None:
        super().startService()
        self.serving.ready.addCallbacks(
            self._announce,
            lambda reason: log.failure("A worker failed to start", reason),
        )

    def _announce(self, _: object) -> None:
        host, port = self.serving.address
        announce(self.config, host, port, echo=self.echo)


class ProcessServices:
    """
    Adds the process's services to the daemon's tree around the serving
    ones: :meth:`begin` before them, :meth:`end` after.

    Under ``shijid`` the tree is, in order: ``pidfile`` (not in a worker),
    ``logging`` (a worker of twistd: ``log-forwarding``), ``signals``,
    ``parent-watch`` (a worker), the serving services, and ``announcement``
    (not in a worker). Under twistd: ``signals``, the serving services,
    ``announcement``. Services stop in the reverse order, one after
    another: the log is flushed and the PID file removed once the drain is
    over.

    :param worker_fd: the inherited listening socket (the process is a
        worker), or ``None``.
    :param twistd: twistd runs the process and owns its log, PID file and
        reactor.
    :param pidfile: the PID file's path (``shijid -p``).
    :param log_fd: a worker's pipe for its log events to its parent
        (``--log-fd``), used instead of ``[logging]``.
    :param parent_pid: a worker's parent (``--parent-pid``), which it
        watches; by default, its parent now.
    """

    def __init__(
        self,
        config: ShijiConfig,
        worker_fd: Optional[int] = None,
        *,
        twistd: bool = False,
        pidfile: Optional[str] = None,
        log_fd: Optional[int] = None,
        parent_pid: Optional[int] = None,
    ) -> None:
        self.config = config
        self.parent_pid = parent_pid
        self.worker_fd = worker_fd
        self.twistd = twistd
        self.pidfile = pidfile
        self.log_fd = log_fd
        self.logging: Optional[LoggingService] = None
        self.signals: Optional[SignalService] = None

    def begin(self, top: service.MultiService) -> None:
        """Add the services that start before the serving ones."""
        if self.pidfile and self.worker_fd is None and not self.twistd:
            pidfile = PIDFileService(Path(self.pidfile))
            pidfile.setName("pidfile")
            pidfile.setServiceParent(top)
        if self.log_fd is not None:
            forwarding = LogForwardingService(self.log_fd)
            forwarding.setName("log-forwarding")
            forwarding.setServiceParent(top)
        elif not self.twistd:
            logging = self.config.logging
            self.logging = LoggingService(logging.log_file, logging.syslog_prefix)
            self.logging.setName("logging")
            self.logging.setServiceParent(top)
        self.signals = SignalService(chain=self.twistd)
        self.signals.setName("signals")
        self.signals.setServiceParent(top)
        if self.worker_fd is not None:
            parent = self.parent_pid if self.parent_pid is not None else os.getppid()
            watch = ParentWatchService(parent)
            watch.setName("parent-watch")
            watch.setServiceParent(top)

    def end(self, top: service.MultiService) -> service.MultiService:
        """
        Add the services that start after the serving ones, tie the log and
        SIGHUP to what serves, and tell the worker pool (if any) how to run
        its workers; returns ``top``.
        """
        named = top.namedServices
        pool = named.get("workers")
        http = named.get("http")
        hangup: List[Any] = []
        if self.logging is not None:
            hangup.append(self.logging.reopen)
            if http is not None:
                self.logging.access = http.site.access
        if pool is not None:
            self._configure_pool(pool)
            if not self.twistd:
                hangup.append(lambda: pool.signal_workers("HUP"))
        assert self.signals is not None
        self.signals.hangup = hangup
        if self.worker_fd is None:
            serving = pool if pool is not None else http
            announcement = AnnouncementService(
                self.config, serving, echo=not self.twistd
            )
            announcement.setName("announcement")
            announcement.setServiceParent(top)
        return top

    def _configure_pool(self, pool: Any) -> None:
        # Workers run the parent's reactor; under twistd they send their log
        # events to the parent, whose log is twistd's.
        name = reactor_name()
        if name is not None:
            pool.extra_args.extend(["--reactor", name])
        if self.twistd:
            pool.forward_logs = True
