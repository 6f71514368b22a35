"""
Worker processes: the parent binds the port and keeps N ``shijid``
processes serving it, restarting any that dies, replacing any that has
served long enough, and killing any whose reactor stays blocked.

Where the system has ``SO_REUSEPORT`` (Linux, the BSDs), each worker gets a
listening socket of its own on the port, and the kernel spreads new
connections evenly over them. A single shared socket would go to whichever
worker wakes first: a burst of keep-alive connections, such as a proxy's
pool, could all land on one worker and leave the others idle. Elsewhere the
workers share one socket.

A worker reports to the parent on a pipe (:data:`WORKER_READY_FD`), one
short line per message: ``ready`` once it serves, then, with a watchdog or
``max_requests``, ``beat <answered>`` a few times a second (see
:mod:`shiji._worker_channel`). The parent decides everything from there: a
worker past its request limit or its age is replaced (:meth:`WorkerPool.replace`),
one at a time; a worker whose last beat is older than ``worker_watchdog``
seconds has its Python stack written to the pipe on
:data:`WORKER_STACK_FD` (faulthandler, on :data:`STACK_SIGNAL`), logged,
and is killed and restarted. A worker that cannot start writes the reason,
``error <line>``, on the same pipe before it exits.

The pool measures time on a monotonic clock, and the watchdog counts only
the time the parent watched: a check that runs late (the parent was
stopped, or its own reactor blocked) does not count the delay against the
workers, whose beats wait unread in the pipes meanwhile.

A worker is told its parent's process id (``--parent-pid``) and stops when
its parent changes (see :mod:`shiji._parent_watch`): at once if the parent
died while it started.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from twisted.application import service
from twisted.internet import defer, error, protocol, task
from twisted.logger import Logger

from ._log_forwarding import LogEventReader
from ._reactor import global_reactor
from .config import GeneralConfig, ShijiConfig

__all__ = [
    "STACK_SIGNAL",
    "WORKER_LOG_FD",
    "WORKER_READY_FD",
    "WORKER_SOCKET_FD",
    "WORKER_STACK_FD",
    "WorkerPool",
    "request_limit",
    "retirement_reason",
]

log = Logger(namespace="shiji.workers")

_REUSE_PORT: int = getattr(socket, "SO_REUSEPORT", 0)


#: The descriptors a worker inherits: the listening socket, a pipe on which
#: it reports (``ready``, then its heartbeats), and a pipe on which it
#: writes its Python stack when the watchdog asks.
WORKER_SOCKET_FD = 3
WORKER_READY_FD = 4
WORKER_STACK_FD = 5
#: The signal on which a worker writes its stack (all threads) to
#: :data:`WORKER_STACK_FD`.
STACK_SIGNAL = signal.SIGUSR2
#: The pipe on which a worker sends its log events to the parent, when the
#: pool's :attr:`~WorkerPool.forward_logs` is set (under twistd; see
#: :mod:`shiji._log_forwarding`).
WORKER_LOG_FD = 6

#: Seconds a replacement worker has to report ready before it is given up.
READY_TIMEOUT = 60.0
#: Seconds before retrying a replacement that failed.
RETRY_SECONDS = 30.0
#: Seconds the parent waits for a stalled worker's stack before killing it.
STACK_WAIT = 0.5
#: Seconds, beyond its drains, that a worker sent SIGTERM has to exit before
#: it is killed (SIGKILL). It drains its requests, then its tasks, each for
#: up to ``shutdown_grace``.
EXIT_MARGIN = 5.0
# A pipe message is a line (an error names a file); anything longer is not
# one of ours.
_MAX_LINE = 4096


def request_limit(general: GeneralConfig, rng: random.Random) -> int:
    """
    The number of answered requests after which a new worker is replaced:
    ``max_requests`` plus a number from 0 to ``max_requests_jitter`` drawn
    for it, so that workers started together do not all retire together;
    0 (never) without ``max_requests``.
    """
    if general.max_requests <= 0:
        return 0
    return general.max_requests + rng.randint(0, max(0, general.max_requests_jitter))


def retirement_reason(
    answered: int, limit: int, age: float, max_age: float
) -> Optional[str]:
    """
    Why a worker that has answered ``answered`` requests and run ``age``
    seconds is due for replacement, or ``None`` if it is not.

    :param limit: its request limit (0: none).
    :param max_age: the ``max_worker_age`` (0: none).
    """
    if limit and answered >= limit:
        return f"answered {answered} requests"
    if max_age and age >= max_age:
        return f"has run {age:.0f}s"
    return None


class _WorkerProtocol(protocol.ProcessProtocol):
    def __init__(self, pool: WorkerPool, index: int) -> None:
        self.pool = pool
        self.index = index
        self.ready: defer.Deferred[None] = defer.Deferred()
        self.ended: defer.Deferred[None] = defer.Deferred()
        #: When it was started and last beat (the pool's monotonic time).
        self.started = 0.0
        self.last_beat = 0.0
        #: Requests answered, as last reported.
        self.answered = 0
        #: Answered requests after which it is replaced (0: never).
        self.limit = 0
        #: It was told to stop (replaced, or the pool stops).
        self.retiring = False
        #: The watchdog found it blocked.
        self.stalled = False
        #: No replacement is tried before this time (after one failed).
        self.retry_after = 0.0
        self.stack: List[bytes] = []
        #: Why it could not start, as it said on its pipe (``error <line>``).
        self.start_error = ""
        self._line = b""
        self.log_events = LogEventReader()

    @property
    def pid(self) -> Optional[int]:
        """Its process id, while it runs."""
        transport: Any = self.transport
        return transport.pid if transport is not None else None

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if childFD == WORKER_READY_FD:
            lines = (self._line + data).split(b"\n")
            self._line = lines.pop()[:_MAX_LINE]
            for line in lines:
                self.message(line)
        elif childFD == WORKER_STACK_FD:
            if self.stalled:  # a stack nobody asked for is not kept
                self.stack.append(data)
        elif childFD == WORKER_LOG_FD:
            self.log_events.dataReceived(data)

    def message(self, line: bytes) -> None:
        """Act on one line the worker sent."""
        now = self.pool.now()
        if line == b"ready":
            self.last_beat = now
            if not self.ready.called:
                self.ready.callback(None)
        elif line.startswith(b"beat "):
            self.last_beat = now
            with contextlib.suppress(ValueError):
                self.answered = int(line[5:])
            self.pool.check_recycling()
        elif line.startswith(b"error "):
            self.start_error = line[6:].decode("utf-8", "replace").strip()

    def processEnded(self, reason: Any) -> None:
        if not self.ready.called:
            self.ready.errback(reason)
        self.ended.callback(None)
        self.pool.worker_ended(self, reason)

    def failure_text(self, reason: Any) -> str:
        """Why the process ended, with the error it reported, if any."""
        value = reason.value
        if isinstance(value, error.ProcessTerminated):
            if value.signal is not None:
                why = f"was killed by signal {value.signal}"
            else:
                why = f"exited with status {value.exitCode}"
        else:
            why = str(value)
        return f"{why} ({self.start_error})" if self.start_error else why


class WorkerPool(service.Service):
    """
    Binds the port and keeps ``count`` worker processes serving it, each on
    a listening socket of its own where ``SO_REUSEPORT`` allows; a worker
    that dies is restarted. A worker past ``max_requests`` (with its
    jitter) or ``max_worker_age`` is replaced, one at a time; a worker
    blocked longer than ``worker_watchdog`` has its stack logged and is
    killed. On stop, each worker is sent SIGTERM and drains as a single
    daemon would; one still running twice ``shutdown_grace`` plus
    :data:`EXIT_MARGIN` seconds later is killed.

    :param reactor: spawns the workers and times the checks; the global
        reactor by default.
    :param rng: draws each worker's request-limit jitter.
    :param now: the time the pool measures with (monotonic seconds).
    """

    def __init__(
        self,
        config: ShijiConfig,
        count: int,
        extra_args: Sequence[str] = (),
        *,
        reactor: Any = None,
        rng: Optional[random.Random] = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.count = count
        self.extra_args = list(extra_args)
        #: Workers send their log events to this process, which logs them.
        self.forward_logs = False
        self.workers: Dict[int, Any] = {}
        self._protocols: Dict[int, _WorkerProtocol] = {}
        self.socket: Optional[socket.socket] = None
        self._listeners: Dict[int, socket.socket] = {}
        self.restarts = 0
        #: Workers replaced (for their age or requests, or on request).
        self.replacements = 0
        self.reactor: Any = reactor if reactor is not None else global_reactor()
        self.clock: Any = self.reactor
        self.now = now
        self.rng = rng if rng is not None else random.Random()
        #: The replacement being started for each slot.
        self._replacing: Dict[int, _WorkerProtocol] = {}
        #: Replaced workers still draining.
        self._retired: Set[_WorkerProtocol] = set()
        self._checks: Optional[task.LoopingCall] = None
        #: Seconds between checks, and when the last one ran.
        self._period = 1.0
        self._last_check: Optional[float] = None
        #: Fires once every worker of the first start serves.
        self.ready: defer.Deferred[None] = defer.Deferred()

    def bind(self) -> None:
        """Claim the port; errors surface here, before any worker runs."""
        general = self.config.general
        port = general.listen_port
        if _REUSE_PORT:
            # A socket without SO_REUSEPORT binds only if nobody holds the
            # port, another shijid's workers included, which SO_REUSEPORT
            # alone would let in to share it.
            probe = self._bind(port, reuse_port=False)
            port = probe.getsockname()[1]
            probe.close()
            # Bound, never listening: it holds the port, and takes no
            # connections.
            self.socket = self._bind(port, reuse_port=True)
        else:
            self.socket = self._bind(port, reuse_port=False, listen=True)

    def _bind(self, port: int, reuse_port: bool, listen: bool = False) -> socket.socket:
        host = self.config.general.listen_ip
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, _REUSE_PORT, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            sock.close()
            raise error.CannotListenError(host, port, e) from None
        if listen:
            sock.listen(self.config.general.listen_backlog)
            sock.setblocking(False)
        return sock

    def _listener(self, index: int) -> socket.socket:
        """
        The listening socket of worker ``index``. The pool keeps it open, so
        that connections waiting in its queue when the worker dies (or is
        replaced) are served by the worker's replacement, not reset.
        """
        assert self.socket is not None
        if not _REUSE_PORT:
            return self.socket
        if index not in self._listeners:
            port = self.socket.getsockname()[1]
            self._listeners[index] = self._bind(port, reuse_port=True, listen=True)
        return self._listeners[index]

    @property
    def address(self) -> Tuple[str, int]:
        """The host and port being served."""
        assert self.socket is not None
        host, port = self.socket.getsockname()[:2]
        return host, port

    def startService(self) -> None:
        if self.socket is None:
            self.bind()
        super().startService()
        for index in range(self.count):
            self._register(self._spawn(index))
        all_ready = defer.gatherResults(
            [worker.ready for worker in self._protocols.values()], consumeErrors=True
        )
        all_ready.addCallback(lambda _: None).chainDeferred(self.ready)
        general = self.config.general
        periods = [
            limit / 4
            for limit in (general.worker_watchdog, general.max_worker_age)
            if limit > 0
        ]
        if periods:
            self._period = min(1.0, *periods)
            self._last_check = self.now()
            self._checks = task.LoopingCall(self.check)
            self._checks.clock = self.clock
            self._checks.start(self._period, now=False)

    def _spawn(self, index: int) -> _WorkerProtocol:
        """Start a worker for slot ``index`` (not yet registered to it)."""
        listener = self._listener(index)
        args = [
            sys.executable,
            "-m",
            "shiji.daemon",
            "-c",
            str(self.config.path),
            "--worker-fd",
            str(WORKER_SOCKET_FD),
            "--parent-pid",
            str(os.getpid()),
            *self.extra_args,
            *(["--log-fd", str(WORKER_LOG_FD)] if self.forward_logs else []),
        ]
        worker = _WorkerProtocol(self, index)
        worker.started = self.now()
        worker.limit = request_limit(self.config.general, self.rng)
        self.reactor.spawnProcess(
            worker,
            sys.executable,
            args,
            env=dict(os.environ),
            childFDs={
                0: 0,
                1: 1,
                # Written straight to, never through this process's reactor.
                2: 2,
                WORKER_SOCKET_FD: listener.fileno(),
                WORKER_READY_FD: "r",
                WORKER_STACK_FD: "r",
                **({WORKER_LOG_FD: "r"} if self.forward_logs else {}),
            },
        )
        return worker

    def _register(self, worker: _WorkerProtocol) -> None:
        """Make ``worker`` the one serving its slot."""
        self._protocols[worker.index] = worker
        self.workers[worker.index] = worker.transport

    def worker_ended(self, worker: _WorkerProtocol, reason: Any) -> None:
        """Restart a worker that ended while the pool is running."""
        self._retired.discard(worker)
        if self._protocols.get(worker.index) is not worker:
            return
        del self.workers[worker.index]
        if self.running and worker.index not in self._replacing:
            self.restarts += 1
            # One that dies at once would otherwise be restarted in a loop.
            delay = 1.0 if self.now() - worker.started < 1.0 else 0.0
            why = reason.getErrorMessage()
            if worker.start_error:
                # Standard error may go nowhere (twistd's, daemonized).
                why = f"{why} {worker.start_error}"
            log.warn(
                "Worker {index} ended ({reason}); restarting it",
                index=worker.index,
                reason=why,
            )
            self.clock.callLater(delay, self._respawn, worker.index)

    def _respawn(self, index: int) -> None:
        if self.running and index not in self.workers and index not in self._replacing:
            worker = self._spawn(index)
            self._register(worker)
            worker.ready.addErrback(lambda reason: None)

    def replace(self, index: int) -> defer.Deferred[None]:
        """
        Replace worker ``index`` without refusing a request: start a new
        worker on the slot's listening socket and, once it reports ready,
        send the old one SIGTERM (it stops listening and drains). If the
        new worker fails to start (say its API no longer imports) or is not
        ready within :data:`READY_TIMEOUT` seconds, the old one keeps
        serving and the failure is logged.

        :returns: fires once the new worker serves; fails (with the reason
            the new worker ended, or a ``TimeoutError``) if it does not.
        """
        if not self.running:
            return defer.fail(RuntimeError("the worker pool is not running"))
        if index in self._replacing:
            return defer.fail(RuntimeError(f"worker {index} is already being replaced"))
        old = self._protocols.get(index)
        new = self._spawn(index)
        self._replacing[index] = new
        self.replacements += 1
        timeout = self.clock.callLater(READY_TIMEOUT, self._ready_timeout, new)

        def ready(_: object) -> None:
            timeout.cancel()
            del self._replacing[index]
            if not self.running:
                # The pool stopped meanwhile: the new worker stops too.
                self._terminate(new)
                raise RuntimeError("the worker pool stopped")
            self._register(new)
            if old is not None and not old.ended.called:
                old_pid = old.pid
                self._retired.add(old)
                self._terminate(old)
                self._kill_later(old)
                log.info(
                    "Worker {index} (pid {old_pid}) replaced by pid {pid}; "
                    "it drains and exits",
                    index=index,
                    old_pid=old_pid,
                    pid=new.pid,
                )

        def failed(reason: Any) -> Any:
            if timeout.active():
                timeout.cancel()
            self._replacing.pop(index, None)
            if not self.running:
                return reason
            now = self.now()
            if old is not None:
                old.retry_after = now + RETRY_SECONDS
            serving = self.workers.get(index) is not None
            log.error(
                "Could not replace worker {index}: the new worker {why}; {outcome}",
                index=index,
                why=new.failure_text(reason),
                outcome=("the old one keeps serving" if serving else "restarting it"),
            )
            if not serving:
                # The old one ended meanwhile: the slot is restarted as usual.
                self.clock.callLater(1.0, self._respawn, index)
            return reason

        return new.ready.addCallbacks(ready, failed)

    def _ready_timeout(self, worker: _WorkerProtocol) -> None:
        if not worker.ready.called:
            worker.ready.errback(
                TimeoutError(f"was not ready within {READY_TIMEOUT:g}s")
            )
            self._signal(worker, "KILL")

    def _terminate(self, worker: _WorkerProtocol) -> None:
        worker.retiring = True
        self._signal(worker, "TERM")

    def _kill_later(self, worker: _WorkerProtocol) -> None:
        """
        Kill ``worker``, sent SIGTERM, if it has not exited twice
        ``shutdown_grace`` plus :data:`EXIT_MARGIN` seconds later: its drains
        (its tasks', then its requests') are bounded by the grace, so it
        hangs.
        """
        wait = 2 * self.config.general.shutdown_grace + EXIT_MARGIN
        pid = worker.pid

        def kill() -> None:
            if not worker.ended.called:
                log.error(
                    "Worker {index} (pid {pid}) has not exited {wait:g}s after "
                    "SIGTERM; killing it",
                    index=worker.index,
                    pid=pid,
                    wait=wait,
                )
                self._signal(worker, "KILL")

        call = self.clock.callLater(wait, kill)
        worker.ended.addCallback(lambda _: call.cancel() if call.active() else None)

    @staticmethod
    def _signal(worker: _WorkerProtocol, name: Any) -> None:
        transport: Any = worker.transport
        if transport is not None:
            with contextlib.suppress(error.ProcessExitedAlready):
                transport.signalProcess(name)

    # Recycling and the watchdog

    def check(self) -> None:
        """
        The periodic check: kill the workers the watchdog finds blocked,
        and replace one worker past its age or request limit.
        """
        limit = self.config.general.worker_watchdog
        now = self.now()
        late = (
            0.0 if self._last_check is None else now - self._last_check - self._period
        )
        self._last_check = now
        if limit > 0:
            workers = [*self._protocols.values(), *self._retired]
            if late > limit / 4:
                # The parent did not watch meanwhile (stopped, or its reactor
                # blocked): the beats wait unread in the pipes, and the time
                # is not counted against the workers.
                log.warn(
                    "The worker watchdog's check ran {late:.1f}s late; "
                    "the workers are not judged on that time",
                    late=late,
                )
                for worker in workers:
                    worker.last_beat = min(now, worker.last_beat + late)
            # Draining ones too: a blocked reactor never ends its drain.
            for worker in workers:
                blocked = now - worker.last_beat
                if worker.ready.called and not worker.stalled and blocked > limit:
                    self._stalled(worker, blocked)
        self.check_recycling()

    def check_recycling(self) -> None:
        """
        Replace the oldest worker due for it (see :func:`retirement_reason`),
        unless a replacement is under way: one at a time. The oldest first,
        so that a new worker slow to start is not replaced over and over
        while the others wait.
        """
        if self._replacing or not self.running:
            return
        general = self.config.general
        now = self.now()
        oldest_first = sorted(self._protocols.values(), key=lambda w: w.started)
        for worker in oldest_first:
            index = worker.index
            if (
                worker.stalled
                or worker.retiring
                or not worker.ready.called
                or now < worker.retry_after
            ):
                continue
            reason = retirement_reason(
                worker.answered,
                worker.limit,
                now - worker.started,
                general.max_worker_age,
            )
            if reason is not None:
                log.info(
                    "Worker {index} (pid {pid}) {reason}; replacing it",
                    index=index,
                    pid=worker.pid,
                    reason=reason,
                )
                self.replace(index).addErrback(lambda _: None)
                return

    def _stalled(self, worker: _WorkerProtocol, blocked: float) -> None:
        """Ask a blocked worker for its stack, then log it and kill it."""
        worker.stalled = True
        pid = worker.pid
        self._signal(worker, int(STACK_SIGNAL))

        def kill() -> None:
            stack = b"".join(worker.stack).decode("utf-8", "replace").rstrip()
            serving = self.running and self._protocols.get(worker.index) is worker
            log.critical(
                "Worker {index} (pid {pid}) blocked for {blocked:.1f}s "
                "(worker_watchdog {limit:g}s); {outcome}. "
                "Its Python stack:\n{stack}",
                index=worker.index,
                pid=pid,
                outcome="killing and replacing it" if serving else "killing it",
                blocked=blocked + STACK_WAIT,
                limit=self.config.general.worker_watchdog,
                stack=stack or "(none written)",
            )
            self._signal(worker, "KILL")

        self.clock.callLater(STACK_WAIT, kill)

    def signal_workers(self, name: str) -> None:
        """Send the signal ``name`` (e.g. ``"HUP"``) to every worker."""
        workers = [*self._protocols.values(), *self._replacing.values(), *self._retired]
        for worker in workers:
            self._signal(worker, name)

    def stopService(self) -> defer.Deferred[Any]:
        super().stopService()
        workers = [
            worker
            for worker in [
                *self._protocols.values(),
                *self._replacing.values(),
                *self._retired,
            ]
            if not worker.ended.called
        ]
        for worker in workers:
            self._terminate(worker)
            self._kill_later(worker)
        done = defer.gatherResults([worker.ended for worker in workers])

        def close(result: object) -> object:
            # The watchdog watched the drain; now it is over.
            if self._checks is not None and self._checks.running:
                self._checks.stop()
            for listener in self._listeners.values():
                listener.close()
            self._listeners.clear()
            if self.socket is not None:
                self.socket.close()
                self.socket = None
            return result

        return done.addBoth(close)
