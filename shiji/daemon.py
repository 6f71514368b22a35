"""
shijid: serve every API a configuration file lists, on one port.

``shijid -c shijid.conf -p shijid.pid`` runs in the foreground until SIGTERM
or SIGINT, then stops accepting connections, lets requests in flight finish
(up to ``shutdown_grace`` seconds) and exits 0. ``SHIJI_CONFIG`` in the
environment overrides ``-c``; ``--check`` validates the configuration (API
packages and their ``validate_config`` included) and exits.
``--reload`` (development) serves the APIs' changed code as soon as it is
saved, see :mod:`shiji._reload`.

The daemon is a ``twisted.application`` service tree built by
:func:`makeService` (``twistd shiji`` builds the same tree minus what twistd
owns, see :mod:`shiji.tap`): the PID file, the log, the signals, what
serves and the announcement of where, started in that order and stopped in
the reverse one, one after another (see :mod:`shiji._process`). ``main``
parses the options, installs the reactor, builds the tree and runs it. With
``workers = N`` above 1 the process binds the port and runs N worker
processes that share it, restarting any that dies.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
import sys
from types import ModuleType
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from twisted.application import service
from twisted.internet import defer, error
from twisted.logger import Logger
from twisted.python import usage

from . import auth
from ._imports import import_failure
from ._pidfile import PIDFileError
from ._process import ProcessServices
from ._reactor import global_reactor
from ._reload import WATCHER_MISSING, ReloadService, check_reload, watcher_available
from ._service_tree import ServiceTree
from ._sessions import session_filter
from ._signals import stop_reactor
from ._site import Site
from ._storage_service import StorageService, check_storage, store_for
from ._tls import tls_options
from ._watchdog import watchdogs
from ._workers import WORKER_READY_FD, WorkerPool
from .auth import AuthBackend
from .config import ConfigError, ShijiConfig, load_config
from .metrics import Metrics
from .statsd import StatsdClient
from .storage import Store
from .urldispatch import APIDefinitionError, APIRouter

__all__ = [
    "ConfigOptions",
    "HTTPService",
    "Options",
    "WorkerPool",
    "build_service",
    "load_apis",
    "main",
    "makeService",
]

log = Logger(namespace="shiji.daemon")

REACTOR_MODULES = {
    "select": "twisted.internet.selectreactor",
    "poll": "twisted.internet.pollreactor",
    "epoll": "twisted.internet.epollreactor",
    "kqueue": "twisted.internet.kqreactor",
    "default": "twisted.internet.default",
}


class ConfigOptions(usage.Options):
    """The options ``shijid`` and ``twistd shiji`` share: the configuration."""

    synopsis = "-c CONFIG"
    optParameters = [
        ["config", "c", None, "The configuration file (SHIJI_CONFIG overrides it)."],
    ]

    def postOptions(self) -> None:
        path = os.environ.get("SHIJI_CONFIG") or self["config"]
        if not path:
            raise usage.UsageError("a configuration file is required: -c CONFIG")
        self["config"] = path


class Options(ConfigOptions):
    """Command-line options of ``shijid``."""

    synopsis = "-c CONFIG [-p PIDFILE] [--check] [--reload]"
    optParameters = [
        ["pidfile", "p", None, "Write the process id to this file while running."],
        [
            "worker-fd",
            None,
            None,
            "Serve the listening socket inherited on this descriptor (internal).",
        ],
        [
            "log-fd",
            None,
            None,
            "Send log events to the parent on this descriptor (internal).",
        ],
        [
            "parent-pid",
            None,
            None,
            "Stop when the parent is no longer this process (internal).",
        ],
        [
            "reactor",
            None,
            None,
            "Run this reactor, as twistd names it: the parent's (internal).",
        ],
    ]
    optFlags = [
        ["check", None, "Validate the configuration and its APIs, then exit."],
        ["reload", None, "Serve the APIs' code anew when it changes (development)."],
    ]

    def postOptions(self) -> None:
        super().postOptions()
        for name in ("worker-fd", "log-fd", "parent-pid"):
            if self[name] is not None:
                try:
                    self[name] = int(self[name])
                except ValueError:
                    raise usage.UsageError(f"--{name} takes a number") from None


def _import_error(config: ShijiConfig, module: str, exc: BaseException) -> ConfigError:
    return ConfigError(config.path, import_failure(module, exc), "apis", module)


def _api_config(config: ShijiConfig, module_name: str) -> Dict[str, Any]:
    section = f"config_{module_name}"
    options = dict(config.api_options.get(module_name, {}))
    try:
        config_module: Optional[ModuleType] = importlib.import_module(
            f"{module_name}.config"
        )
    except ModuleNotFoundError as e:
        if e.name != f"{module_name}.config":
            raise _import_error(config, f"{module_name}.config", e) from None
        config_module = None
    except Exception as e:
        raise _import_error(config, f"{module_name}.config", e) from None
    validate = getattr(config_module, "validate_config", None)
    if validate is None:
        if module_name in config.api_options:
            raise ConfigError(
                config.path,
                f"{module_name} has no config.validate_config to accept this section",
                section,
            )
        return options
    try:
        result = validate(options)
    except Exception as e:
        raise ConfigError(
            config.path,
            f"{module_name}.config.validate_config refused it: {e}",
            section,
        ) from None
    if not isinstance(result, dict):
        raise ConfigError(
            config.path,
            f"{module_name}.config.validate_config returned {type(result).__name__}, not a dict",
            section,
        )
    return result


def load_apis(
    config: ShijiConfig,
) -> Tuple[List[Tuple[str, ModuleType]], Dict[str, Any]]:
    """
    Import each API package of ``config`` (from ``base_path``) and validate
    its configuration section with its ``config.validate_config``.

    :returns: the route map for ``APIRouter`` and every API's validated
        configuration, keyed by the module name ``[apis]`` lists.
    :raises ConfigError: an API cannot be imported, or its configuration is
        refused, or (some API having tasks) the task queue cannot be opened.
    """
    base_path = config.general.base_path
    if base_path is not None:
        if not base_path.is_dir():
            raise ConfigError(
                config.path, f"{base_path} is not a directory", "general", "base_path"
            )
        if str(base_path) not in sys.path:
            sys.path.insert(0, str(base_path))
    from ._task_service import check_task_store, load_tasks

    route_map = []
    api_config = {}
    with_tasks = False
    for module_name, regex in config.apis:
        try:
            module = importlib.import_module(module_name)
        except Exception as e:
            raise _import_error(config, module_name, e) from None
        route_map.append((regex, module))
        api_config[module_name] = _api_config(config, module_name)
        # A broken tasks.py stops the start (and --check) in one line too.
        with_tasks = bool(load_tasks(config, [module])) or with_tasks
    if with_tasks:
        # So does a queue that cannot be opened (or created).
        check_task_store(config)
    # And a shared store that cannot be opened.
    check_storage(config)
    return route_map, api_config


def make_auth_backend(config: ShijiConfig) -> Optional[AuthBackend]:
    """
    The auth backend ``[auth]`` configures (``auth_module.auth_class`` made
    with ``auth_args``), or ``None`` without ``enable_auth``.

    :raises ConfigError: the module, class or arguments do not work.
    """
    settings = config.auth
    if not settings.enable_auth:
        return None
    module_name, class_name = settings.auth_module, settings.auth_class
    assert module_name is not None and class_name is not None
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise ConfigError(
            config.path, import_failure(module_name, e), "auth", "auth_module"
        ) from None
    backend_class = getattr(module, class_name, None)
    if not callable(backend_class):
        raise ConfigError(
            config.path,
            f"{module_name} has no class {class_name}",
            "auth",
            "auth_class",
        )
    try:
        backend = backend_class(**settings.auth_args)
    except Exception as e:
        raise ConfigError(
            config.path,
            f"{module_name}.{class_name}(**auth_args) failed: {type(e).__name__}: {e}",
            "auth",
            "auth_args",
        ) from None
    if not callable(getattr(backend, "authenticate", None)):
        raise ConfigError(
            config.path,
            f"{module_name}.{class_name} has no authenticate(request) method",
            "auth",
            "auth_class",
        )
    return backend  # type: ignore[no-any-return]


def make_metrics(config: ShijiConfig) -> Optional[StatsdClient]:
    """The statsd client of ``config``, or ``None`` without a statsd host."""
    statsd = config.statsd
    if statsd.host is None:
        return None
    return StatsdClient(statsd.host, statsd.port, statsd.scheme)


def make_site(
    config: ShijiConfig,
    metrics: Optional[Metrics] = None,
    store: Optional[Store] = None,
) -> Site:
    """
    Import the APIs of ``config`` and build the site that serves them, with
    ``store`` as the shared store (one in memory if not given).

    :raises ConfigError: see :func:`load_apis`; also a malformed API package.
    """
    settings = config.settings()
    route_map, api_config = load_apis(config)
    auth_backend = make_auth_backend(config)
    try:
        router = APIRouter(
            route_map,
            config=api_config,
            settings=settings,
            metrics=metrics,
            auth_backend=auth_backend,
            store=store,
        )
    except APIDefinitionError as e:
        raise ConfigError(config.path, str(e), "apis") from None
    if (
        config.auth.secure_cookies_secrets is None
        and auth.cookie_secrets is None  # nor did an API install_secure_cookies
        and router.uses_filter(session_filter)
    ):
        raise ConfigError(
            config.path,
            "is required: sessions.session_filter keeps the session's id in a "
            "signed cookie",
            "auth",
            "secure_cookies_secrets",
        )
    docs = None
    if settings.serve_docs:
        from .docs import DocsResource

        docs = DocsResource(route_map, settings.version_header)
    return Site(router, settings, docs=docs, metrics=metrics)


class HTTPService(service.Service):
    """
    Serves a :class:`~shiji._site.Site` on a TCP port it binds, or on a listening
    socket it inherited (a worker's); on stop, stops listening and drains.
    """

    def __init__(
        self,
        site: Site,
        *,
        interface: str,
        port: int,
        backlog: int,
        shutdown_grace: float,
        inherited_fd: Optional[int] = None,
        tls: Any = None,
    ) -> None:
        self.site = site
        #: The TLS options when serving HTTPS (see :func:`shiji._tls.tls_options`).
        self.tls = tls
        self.interface = interface
        self.port_number = port
        self.backlog = backlog
        self.shutdown_grace = shutdown_grace
        self.inherited_fd = inherited_fd
        self.listening: Any = None
        #: Fires once the service listens.
        self.ready: defer.Deferred[None] = defer.Deferred()

    def startService(self) -> None:
        factory: Any = self.site
        if self.tls is not None:
            from twisted.protocols.tls import TLSMemoryBIOFactory

            factory = TLSMemoryBIOFactory(self.tls, False, factory)
        if self.inherited_fd is not None:
            family = socket.AF_INET6 if ":" in self.interface else socket.AF_INET
            self.listening = global_reactor().adoptStreamPort(
                self.inherited_fd, family, factory
            )
            os.close(self.inherited_fd)
        else:
            self.listening = global_reactor().listenTCP(
                self.port_number,
                factory,
                backlog=self.backlog,
                interface=self.interface,
            )
        super().startService()
        self.ready.callback(None)

    @property
    def address(self) -> Tuple[str, int]:
        """The host and port being served."""
        host = self.listening.getHost()
        return host.host, host.port

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()
        stopped = defer.maybeDeferred(self.listening.stopListening)
        stopped.addCallback(lambda _: self.site.drain(self.shutdown_grace))
        return stopped


def makeService(options: Mapping[str, Any]) -> service.MultiService:
    """
    Build shijid's service tree from parsed :class:`Options`: the PID file,
    the log, the signals, the statsd client (if configured), the HTTP
    service (or, with ``workers`` above 1 and no inherited socket, the
    worker pool) and the announcement of where it serves (see
    :class:`shiji._process.ProcessServices` for the order).

    :raises ConfigError: the configuration or an API is unusable.
    """
    return _shijid_service(options, load_config(options["config"]))


def _shijid_service(
    options: Mapping[str, Any], config: ShijiConfig
) -> service.MultiService:
    return build_service(
        config,
        options.get("worker-fd"),
        reload=bool(options.get("reload")),
        pidfile=options.get("pidfile"),
        log_fd=options.get("log-fd"),
        parent_pid=options.get("parent-pid"),
    )


def build_service(
    config: ShijiConfig,
    worker_fd: Optional[int] = None,
    reload: bool = False,
    *,
    twistd: bool = False,
    pidfile: Optional[str] = None,
    log_fd: Optional[int] = None,
    parent_pid: Optional[int] = None,
) -> service.MultiService:
    """
    :func:`makeService` for an already loaded configuration; ``reload``
    (``--reload``, see :func:`shiji._reload.check_reload`) runs one worker
    and replaces it whenever the APIs' code changes.

    :param worker_fd: serve this inherited listening socket (a worker).
    :param twistd: twistd runs the tree: it owns the log, the PID file and
        the reactor (see :mod:`shiji._process`).
    :param pidfile: the PID file to hold (``shijid -p``).
    :param log_fd: send log events to the parent on this pipe (a worker of
        twistd).
    :param parent_pid: the process id of the parent that started this
        worker (``--parent-pid``); the worker stops once its parent differs.
    """
    top = ServiceTree()
    process = ProcessServices(
        config,
        worker_fd,
        twistd=twistd,
        pidfile=pidfile,
        log_fd=log_fd,
        parent_pid=parent_pid,
    )
    process.begin(top)
    general = config.general
    tls = tls_options(config)
    if (general.workers > 1 or reload) and worker_fd is None:
        # The workers import the APIs; doing it here first turns a broken API
        # into one clear error instead of workers failing over and over.
        make_site(config)
        pool = WorkerPool(config, 1 if reload else general.workers)
        pool.setName("workers")
        pool.setServiceParent(top)
        if reload:
            ReloadService(config, pool).setServiceParent(top)
        return process.end(top)
    metrics = make_metrics(config)
    if metrics is not None:
        metrics.setName("statsd")
        metrics.setServiceParent(top)
    # Before the task and HTTP services, so closed after both have stopped.
    storage = StorageService(store_for(config))
    storage.setServiceParent(top)
    site = make_site(config, metrics, storage.store)
    watching = watchdogs(general, site, worker_fd)
    if worker_fd is None:
        # Started before the HTTP service, stopped after it: it watches the
        # drain too.
        for watchdog in watching:
            watchdog.setServiceParent(top)
    http = HTTPService(
        site,
        interface=general.listen_ip,
        port=general.listen_port,
        backlog=general.listen_backlog,
        shutdown_grace=general.shutdown_grace,
        inherited_fd=worker_fd,
        tls=tls,
    )
    from ._task_service import task_service

    # Before the HTTP service, so stopped after it: requests still draining
    # may queue tasks.
    tasks = task_service(config, site.router, metrics, store=storage.store)
    if tasks is not None:
        tasks.setName("tasks")
        tasks.setServiceParent(top)
    http.setName("http")
    http.setServiceParent(top)
    if worker_fd is not None:
        # A worker's channel says ``ready`` when it starts: after the HTTP
        # service. It beats on while the HTTP service drains.
        for watchdog in watching:
            watchdog.setServiceParent(top)
    global_reactor().suggestThreadPoolSize(general.thread_pool_size)
    return process.end(top)


def install_reactor(config: ShijiConfig, name: Optional[str] = None) -> None:
    """
    Install the reactor ``[general] reactor`` names or, given ``name`` (a
    worker's ``--reactor``: its parent's), the one twistd's ``--reactor``
    names so.

    :raises ConfigError: it is not available on this platform.
    """
    if name is not None:
        from twisted.application.reactors import installReactor

        try:
            installReactor(name)
        except Exception as e:
            raise ConfigError(
                config.path,
                f"the parent's {name} reactor is not available here: {e}",
                "general",
                "reactor",
            ) from None
        return
    name = config.general.reactor
    try:
        module = importlib.import_module(REACTOR_MODULES[name])
        module.install()
    except (ImportError, AttributeError, OSError) as e:
        raise ConfigError(
            config.path,
            f"the {name} reactor is not available here: {e}",
            "general",
            "reactor",
        ) from None


def _fail(message: str, worker: bool = False) -> int:
    line = f"shijid: error: {message}"
    print(line, file=sys.stderr, flush=True)
    if worker:
        # The parent says why its worker could not start (see shiji._workers).
        with contextlib.suppress(OSError):
            os.write(
                WORKER_READY_FD, b"error " + line.encode("utf-8", "replace") + b"\n"
            )
    return 1


def _start_failure(config: ShijiConfig, e: Exception) -> str:
    """The one line saying why the tree could not start."""
    if isinstance(e, error.CannotListenError):
        general = config.general
        return (
            f"{config.path}: [general] listen_port: cannot listen on "
            f"{general.listen_ip}:{general.listen_port}: {e.socketError}"
        )
    if isinstance(e, PIDFileError):
        return str(e)
    return f"cannot start: {type(e).__name__}: {e}"


def run(top: service.MultiService, config: ShijiConfig, worker: bool = False) -> int:
    """
    Run the service tree ``top``: start it once the reactor runs, stop it
    (draining) when the reactor shuts down.

    :param worker: the process is a worker, which also tells its parent
        why it could not start.
    :returns: the exit status: 0, or 1 (the reason printed on standard
        error, one line) if the tree could not start.
    """
    reactor = global_reactor()
    failures: List[str] = []

    def start() -> None:
        try:
            top.startService()
        except Exception as e:
            if not isinstance(e, (error.CannotListenError, PIDFileError)):
                log.failure("shijid could not start")
            failures.append(_start_failure(config, e))
            stop_reactor()

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", top.stopService)
    reactor.run()
    return _fail(failures[0], worker) if failures else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run shijid; returns the exit status."""
    options = Options()
    try:
        options.parseOptions(list(sys.argv[1:] if argv is None else argv))
    except usage.UsageError as e:
        print(f"shijid: {e}\n{options}", file=sys.stderr)
        return 2
    parent = options["parent-pid"]
    if parent is not None and os.getppid() != parent:
        # The parent died while this worker was being started.
        print(f"shijid: error: the parent process {parent} is gone", file=sys.stderr)
        return 1
    worker = options["worker-fd"] is not None
    if options["reload"] and not watcher_available():
        print(f"shijid: error: {WATCHER_MISSING}", file=sys.stderr)
        return 2
    try:
        config = load_config(options["config"])
        if options["reload"]:
            check_reload(config)
        if options["check"]:
            # Everything a start builds from the APIs: the routers too.
            make_site(config)
            print(f"{config.path}: OK")
            return 0
        install_reactor(config, options["reactor"])
        top = _shijid_service(options, config)
    except ConfigError as e:
        return _fail(str(e), worker)
    return run(top, config, worker)


if __name__ == "__main__":
    sys.exit(main())
