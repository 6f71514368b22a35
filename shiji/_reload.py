"""
``shijid --reload``: serve the changed code of the APIs as soon as it is saved.

The parent process binds the port and runs one worker
(:class:`~shiji._workers.WorkerPool`); :class:`ReloadService` watches the
``.py`` files of the API packages ``[apis]`` lists (and of the auth backend's
module) and the configuration file, with watchfiles. On a change it starts a
new worker on the same socket; once that one serves, the old one drains and
exits, so no connection is refused. A new worker that fails (a syntax error,
an import error, a configuration its APIs refuse) is logged, and the old one
keeps serving until the next change.

Every reload reads the configuration again: one that no longer loads is
logged (its one-line :class:`~shiji.config.ConfigError`) and nothing else
happens. What the workers read applies with the new worker, TLS included
(a worker wraps the socket); the socket's own options
(:data:`REBIND_OPTIONS`) are logged as needing a restart of shijid, which
keeps its socket meanwhile. ``twistd shiji`` offers no ``--reload``: it is
for a developer's shijid in the foreground, not for a daemon.

watchfiles' blocking ``watch()`` runs in a thread of its own, stopped by an
event, and hands each batch of changes to the reactor with
``callFromThread``: its asynchronous API would need an asyncio (anyio) loop
beside Twisted's reactor for no gain.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Any, Callable, FrozenSet, Iterable, List, Optional, Set, Tuple

from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger

from ._reactor import global_reactor
from ._workers import WorkerPool
from .config import ConfigError, ShijiConfig, load_config

__all__ = [
    "REBIND_OPTIONS",
    "WATCHER_MISSING",
    "ReloadService",
    "WatchedFiles",
    "check_reload",
    "watcher_available",
]

log = Logger(namespace="shiji.reload")

#: What ``shijid --reload`` says when watchfiles cannot be imported.
WATCHER_MISSING = "--reload needs watchfiles: pip install 'shiji[reload]'"

#: ``[general]`` options that only a restart of shijid applies: the parent
#: keeps its socket (and its single worker) across reloads.
REBIND_OPTIONS = ("listen_ip", "listen_port", "listen_backlog", "workers")

#: watchfiles gathers a burst of changes until none came for STEP_MS (but
#: no longer than DEBOUNCE_MS) and reports them together.
DEBOUNCE_MS = 1600
STEP_MS = 100


def watcher_available() -> bool:
    """Whether watchfiles, which ``--reload`` needs, can be imported."""
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        return False
    return True


def check_reload(config: ShijiConfig) -> None:
    """
    Refuse a configuration ``--reload`` cannot serve.

    :raises ConfigError: ``[general] workers`` is above 1.
    """
    if config.general.workers > 1:
        raise ConfigError(
            config.path,
            "--reload runs a single worker: set it to 1 or leave --reload out",
            "general",
            "workers",
        )


def _module_roots(name: str, base_path: Optional[Path]) -> List[Path]:
    """
    Where the module ``name`` is: its package's directories, or its file;
    looked for in ``base_path`` first, then wherever it would be imported
    from. Nothing for a module that is not found or is not Python source.
    """
    spec = None
    if base_path is not None and "." not in name:
        spec = PathFinder.find_spec(name, [str(base_path)])
    if spec is None:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return []
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return [Path(location) for location in spec.submodule_search_locations]
    if spec.origin is not None and spec.origin.endswith(".py"):
        return [Path(spec.origin)]
    return []


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


@dataclass(frozen=True)
class WatchedFiles:
    """
    The files a change of which reloads: every ``.py`` file under
    ``packages`` (not in ``__pycache__``, not hidden, such as an editor's
    lock files), and the single ``files`` (the configuration, modules that
    are not packages). Paths are real (symbolic links resolved).
    """

    config: Path
    packages: FrozenSet[Path]
    files: FrozenSet[Path]

    @classmethod
    def of(cls, config: ShijiConfig) -> WatchedFiles:
        """The files that ``config``'s APIs and auth backend are made of."""
        modules = [name for name, _ in config.apis]
        if config.auth.enable_auth and config.auth.auth_module is not None:
            modules.append(config.auth.auth_module)
        packages: Set[Path] = set()
        files = {_real(config.path)}
        for name in modules:
            for root in _module_roots(name, config.general.base_path):
                (files if root.suffix == ".py" else packages).add(_real(root))
        return cls(_real(config.path), frozenset(packages), frozenset(files))

    def wanted(self, path: str) -> bool:
        """Whether a change of ``path`` reloads."""
        changed = Path(path)
        if changed in self.files:
            return True
        if (
            changed.suffix != ".py"
            or changed.name.startswith(".")
            or "__pycache__" in changed.parts
        ):
            return False
        return any(root in changed.parents for root in self.packages)

    def describe(self, path: str) -> str:
        """``path`` as the log shows it: from its package, e.g.
        ``myapi/v1_0/calls.py``."""
        changed = Path(path)
        for root in self.packages:
            if root in changed.parents:
                return str(changed.relative_to(root.parent))
        return str(changed) if changed == self.config else changed.name

    def watches(self) -> List[Tuple[Tuple[Path, ...], bool]]:
        """
        What to watch, as ``(directories, recursive)``: the packages
        recursively; the directories of the single files not, as an editor
        may save a file by replacing it.
        """
        parents = {path.parent for path in self.files}
        return [
            (tuple(sorted(self.packages)), True),
            (tuple(sorted(parents)), False),
        ]


class _Watch:
    """watchfiles' ``watch()`` in a thread, until stopped."""

    def __init__(
        self,
        directories: Iterable[Path],
        recursive: bool,
        wanted: Callable[[str], bool],
        deliver: Callable[[List[str]], None],
    ) -> None:
        self.directories = [str(path) for path in directories]
        self.recursive = recursive
        self.wanted = wanted
        self.deliver = deliver
        self.stopping = threading.Event()
        #: Fires once the thread is done.
        self.ended: defer.Deferred[None] = defer.Deferred()
        self.thread = threading.Thread(
            target=self._run, name="shiji-reload", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> defer.Deferred[None]:
        self.stopping.set()
        return self.ended

    def _run(self) -> None:
        from watchfiles import watch

        reactor = global_reactor()
        try:
            for changes in watch(
                *self.directories,
                watch_filter=lambda change, path: self.wanted(path),
                debounce=DEBOUNCE_MS,
                step=STEP_MS,
                stop_event=self.stopping,
                raise_interrupt=False,
                recursive=self.recursive,
            ):
                reactor.callFromThread(
                    self.deliver, sorted({path for _, path in changes})
                )
        except Exception as e:
            reactor.callFromThread(
                log.error,
                "Reloading stopped: cannot watch {directories}: {error}",
                directories=", ".join(self.directories),
                error=f"{type(e).__name__}: {e}",
            )
        finally:
            reactor.callFromThread(self.ended.callback, None)


class ReloadService(service.Service):
    """
    Replaces the worker of ``pool`` whenever a file of
    :meth:`WatchedFiles.of` ``config`` changes. Changes that come while a
    new worker starts are gathered into one more reload after it.

    :param config: the configuration shijid started with (its socket's).
    :param pool: the pool of one worker serving the port.
    :raises ConfigError: see :func:`check_reload`.
    """

    def __init__(self, config: ShijiConfig, pool: WorkerPool) -> None:
        check_reload(config)
        self.config = config
        self.pool = pool
        self.watched = WatchedFiles.of(config)
        self.pending: Set[str] = set()
        self.reloading = False
        self._watches: List[_Watch] = []
        self._watching = False

    def startService(self) -> None:
        super().startService()
        self._watching = True
        self._watch(self.watched)

    def _watch(self, watched: WatchedFiles) -> None:
        self.watched = watched
        if not self._watching:
            return
        for directories, recursive in watched.watches():
            if directories:
                watch = _Watch(directories, recursive, watched.wanted, self.changed)
                self._watches.append(watch)
                watch.start()

    def _unwatch(self) -> defer.Deferred[Any]:
        stopping = [watch.stop() for watch in self._watches]
        self._watches = []
        return defer.gatherResults(stopping)

    def stopService(self) -> defer.Deferred[Any]:
        super().stopService()
        self._watching = False
        return self._unwatch()

    def changed(self, paths: Iterable[str]) -> None:
        """Reload for the changed ``paths`` (now, or after the running reload)."""
        self.pending.update(paths)
        if self.running and not self.reloading and self.pending:
            self._reload()

    def _reload(self) -> None:
        changed = sorted(self.pending)
        self.pending.clear()
        log.info(
            "Reloading: {files} changed",
            files=", ".join(self.watched.describe(path) for path in changed),
        )
        try:
            config = load_config(self.config.path)
        except ConfigError as e:
            log.error(
                "Reloading failed: {error}; the previous code keeps serving",
                error=str(e),
            )
            return
        if self.watched.config in (Path(path) for path in changed):
            self._warn_of_rebinding(config)
        watched = WatchedFiles.of(config)
        if watched != self.watched:
            self._unwatch()
            self._watch(watched)
        self.reloading = True
        replacing = defer.maybeDeferred(self.pool.replace, 0)
        replacing.addCallbacks(self._replaced, self._failed)
        replacing.addBoth(self._done)

    def _warn_of_rebinding(self, config: ShijiConfig) -> None:
        for option in REBIND_OPTIONS:
            old = getattr(self.config.general, option)
            new = getattr(config.general, option)
            if new != old:
                log.warn(
                    "Reloading: {path}: [general] {option} changed to {new}; "
                    "it applies when shijid is restarted",
                    path=self.config.path,
                    option=option,
                    new=new,
                )

    def _replaced(self, result: object) -> None:
        log.info("Reloaded: a new worker serves the changed code")

    def _failed(self, reason: Any) -> None:
        # A new worker that failed is logged by the pool, with its error; a
        # replacement the pool refused to start is logged here.
        if reason.check(RuntimeError):
            log.error("Reloading failed: {reason}", reason=reason.getErrorMessage())

    def _done(self, result: object) -> None:
        self.reloading = False
        self.changed(())
