"""
shijid's configuration: an INI file validated, in one place, into typed
objects.

:func:`load_config` reads the file and returns a :class:`ShijiConfig`, or
raises :class:`ConfigError` naming the file, section and option at fault in
one line. Every option has a default (see ``conf/shijid.conf.example``);
only ``[apis]`` must list at least one API.
"""

from __future__ import annotations

import configparser
import dataclasses
import difflib
import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

from ._answer_metrics import METRIC_NAMES
from ._client_address import Network
from ._cors import is_origin
from ._settings import DEFAULT_REQUEST_TIMEOUT, DEFAULT_SETTINGS, Settings
from .auth import CookieSigner

__all__ = [
    "REACTORS",
    "AuthConfig",
    "ConfigError",
    "GeneralConfig",
    "LoggingConfig",
    "SessionsConfig",
    "ShijiConfig",
    "StatsdConfig",
    "StorageConfig",
    "TasksConfig",
    "load_config",
]

#: The shortest ``[tasks] lease``, in seconds.
MIN_LEASE = 1.0

#: Values of ``[general] reactor``; ``default`` is the platform's best.
REACTORS = ("default", "select", "poll", "epoll", "kqueue")


class ConfigError(Exception):
    """
    The configuration is unusable; ``str()`` is one line naming the file,
    section and option.
    """

    def __init__(
        self,
        path: Union[str, Path],
        message: str,
        section: Optional[str] = None,
        option: Optional[str] = None,
    ) -> None:
        self.path = str(path)
        self.section = section
        self.option = option
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path
        if self.section is not None:
            where += f": [{self.section}]"
            if self.option is not None:
                where += f" {self.option}"
        return f"{where}: {self.message}"


_D = DEFAULT_SETTINGS


@dataclass(frozen=True)
class GeneralConfig:
    """The ``[general]`` section: the server."""

    listen_ip: str = "127.0.0.1"
    listen_port: int = 9990
    reactor: str = "default"
    server_ident: Optional[str] = _D.server_ident
    base_path: Optional[Path] = None
    cross_origin_domains: Tuple[str, ...] = _D.cross_origin_domains
    inhibit_http_caching: bool = _D.inhibit_http_caching
    thread_pool_size: int = 10
    honor_x_realip: bool = _D.honor_x_realip
    version_header: str = _D.version_header
    version_in_query: bool = _D.version_in_query
    strict_charset: bool = _D.strict_charset
    field_errors: bool = _D.field_errors
    validate_responses: bool = _D.validate_responses
    max_body_bytes: int = _D.max_body_bytes
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    idle_timeout: float = _D.idle_timeout
    header_timeout: float = _D.header_timeout
    body_timeout: float = _D.body_timeout
    shutdown_grace: float = 10.0
    slow_request_ms: int = _D.slow_request_ms
    workers: int = 1
    listen_backlog: int = 1024
    serve_docs: bool = _D.serve_docs
    #: Peers whose X-Real-IP / X-Forwarded-For are believed: loopback, where
    #: a reverse proxy on the same host connects from.
    trusted_proxies: Tuple[Network, ...] = _D.trusted_proxies
    #: PEM files of the certificate (with its chain) and its private key:
    #: with both, shijid serves HTTPS.
    tls_certificate: Optional[Path] = None
    tls_private_key: Optional[Path] = None
    #: A worker that has answered this many requests (plus up to
    #: ``max_requests_jitter`` more, chosen per worker) is replaced; 0: never.
    max_requests: int = 0
    max_requests_jitter: int = 0
    #: Seconds after which a worker is replaced; 0: never.
    max_worker_age: float = 0.0
    #: Seconds a process's reactor may stay blocked before its Python stack
    #: is logged and (a worker) it is killed and replaced; 0: no watchdog.
    worker_watchdog: float = 0.0
    #: A single-process shijid whose reactor the watchdog finds blocked
    #: exits (for a supervisor to restart it) after logging the stack.
    watchdog_exit: bool = False


@dataclass(frozen=True)
class LoggingConfig:
    """The ``[logging]`` section."""

    #: A path, ``-`` for standard output, or ``None`` for syslog.
    log_file: Optional[str] = None
    syslog_prefix: str = "shiji"
    access_log: bool = _D.access_log
    #: Log the load balancers' ``/_health`` checks too.
    log_health: bool = _D.log_health
    #: Query arguments whose names hold any of these (in any case) never
    #: have their values logged.
    redacted_arguments: Tuple[str, ...] = _D.redacted_arguments


@dataclass(frozen=True)
class AuthConfig:
    """The ``[auth]`` section."""

    #: ``None`` when not configured: secure cookies are then unavailable.
    secure_cookies_secrets: Optional[Tuple[str, ...]] = None
    cookie_secure: bool = False
    enable_auth: bool = False
    #: Where the auth backend class is: ``auth_module.auth_class``.
    auth_module: Optional[str] = None
    auth_class: Optional[str] = None
    #: Keyword arguments for the backend class.
    auth_args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StatsdConfig:
    """The ``[statsd]`` section; no ``host`` means no metrics."""

    host: Optional[str] = None
    port: int = 8125
    scheme: str = "shiji"
    #: How metrics are named: ``v2``, or ``v1``, the names before ``v2``.
    names: str = _D.metric_names


@dataclass(frozen=True)
class TasksConfig:
    """The ``[tasks]`` section: the queue of background tasks and cron jobs."""

    #: The SQLite file of the queue, relative to the configuration file;
    #: by default ``<configuration file name>.tasks.sqlite`` beside it.
    database: Optional[Path] = None
    #: Tasks each process runs at once.
    concurrency: int = 4
    #: Seconds between two looks at the queue.
    poll_interval: float = 1.0
    #: Seconds a claimed task stays claimed without being renewed: after a
    #: process dies, its tasks run again once their lease expires; 1 or more.
    lease: float = 60.0
    #: Seconds finished tasks (and past cron ticks) are kept.
    keep_finished: float = 7 * 86400.0


@dataclass(frozen=True)
class StorageConfig:
    """The ``[storage]`` section: the store shared by every process."""

    #: What :func:`shiji.storage.open_store` opens: ``sqlite:<path>``
    #: (relative to the configuration file; by default
    #: ``<configuration file name>.storage.sqlite`` beside it),
    #: ``redis://host:port/db``, ``rediss://...``,
    #: ``postgresql://user:password@host:port/database`` or ``memory:``.
    url: str = ""

    @property
    def backend(self) -> str:
        """
        ``sqlite``, ``redis`` (for ``rediss`` too), ``postgresql`` (for
        ``postgres`` too) or ``memory``.
        """
        scheme = self.url.partition(":")[0].lower()
        return {"rediss": "redis", "postgres": "postgresql"}.get(scheme, scheme)


@dataclass(frozen=True)
class SessionsConfig:
    """The ``[sessions]`` section: ``request.session``."""

    #: The signed cookie carrying the session's id; ``__Host-`` is put
    #: before it when ``[auth] cookie_secure`` is on.
    cookie_name: str = "session"
    #: Seconds a session lives unused; each use extends it (sliding).
    max_age: float = 14 * 86400.0


@dataclass(frozen=True)
class ShijiConfig:
    """A whole, validated configuration file."""

    path: Path
    general: GeneralConfig = field(default_factory=GeneralConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    statsd: StatsdConfig = field(default_factory=StatsdConfig)
    tasks: TasksConfig = field(default_factory=TasksConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    sessions: SessionsConfig = field(default_factory=SessionsConfig)
    #: ``(module_name, url_regex)`` for each API, in file order.
    apis: Tuple[Tuple[str, str], ...] = ()
    #: The raw options of each ``[config_<module_name>]`` section.
    api_options: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def settings(self) -> Settings:
        """How shijid serves, as this configuration says."""
        general, logging = self.general, self.logging
        return DEFAULT_SETTINGS.replace(
            version_header=general.version_header,
            version_in_query=general.version_in_query,
            strict_charset=general.strict_charset,
            field_errors=general.field_errors,
            validate_responses=general.validate_responses,
            server_ident=general.server_ident,
            cross_origin_domains=general.cross_origin_domains,
            inhibit_http_caching=general.inhibit_http_caching,
            request_timeout=general.request_timeout,
            cookie_secrets=self.auth.secure_cookies_secrets,
            cookie_secure=self.auth.cookie_secure,
            max_body_bytes=general.max_body_bytes,
            idle_timeout=general.idle_timeout,
            header_timeout=general.header_timeout,
            body_timeout=general.body_timeout,
            honor_x_realip=general.honor_x_realip,
            trusted_proxies=general.trusted_proxies,
            access_log=logging.access_log,
            log_health=logging.log_health,
            slow_request_ms=general.slow_request_ms,
            redacted_arguments=logging.redacted_arguments,
            serve_docs=general.serve_docs,
            metric_names=self.statsd.names,
            session_cookie=self.sessions.cookie_name,
            session_max_age=self.sessions.max_age,
        )


# Option parsers take the raw text and return the value or raise ValueError
# with a message that completes "must be ...".

Parser = Callable[[str], Any]


def _text(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1]
    return raw


def _optional_text(raw: str) -> Optional[str]:
    return _text(raw) or None


def _boolean(raw: str) -> bool:
    value = raw.lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise ValueError("true or false")


def _integer(low: int, high: Optional[int] = None) -> Parser:
    def parse(raw: str) -> int:
        if (
            not re.fullmatch(r"[0-9]+", raw)
            or int(raw) < low
            or (high is not None and int(raw) > high)
        ):
            bound = (
                f"from {low} to {high}" if high is not None else f"of at least {low}"
            )
            raise ValueError(f"a whole number {bound}")
        return int(raw)

    return parse


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (value > 0 and value < float("inf")):
        raise ValueError("a number of seconds greater than 0")
    return value


def _lease(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (MIN_LEASE <= value < float("inf")):
        raise ValueError(f"a number of seconds of {MIN_LEASE:g} or more")
    return value


def _seconds_or_never(raw: str) -> float:
    if raw.strip() == "0":
        return 0.0
    try:
        return _seconds(raw)
    except ValueError:
        raise ValueError("a number of seconds greater than 0, or 0 for never") from None


def _choice(*choices: str) -> Parser:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError("one of " + ", ".join(choices))
        return raw

    return parse


def _ip_address(raw: str) -> str:
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        raise ValueError("an IP address such as 127.0.0.1") from None


def _names(raw: str) -> Tuple[str, ...]:
    return tuple(part for part in re.split(r"[\s,]+", _text(raw)) if part)


def _networks(raw: str) -> Tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(part, strict=False) for part in _names(raw))
    except ValueError:
        raise ValueError("IP addresses or networks such as 10.0.0.0/8") from None


def _origins(raw: str) -> Tuple[str, ...]:
    names = _names(raw)
    for name in names:
        if name != "*" and not is_origin(name):
            raise ValueError(
                f"* or origins such as https://app.example.com ({name!r} is not one)"
            )
    return names


def _metric_prefix(raw: str) -> str:
    prefix = _text(raw)
    if prefix and not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", prefix):
        raise ValueError(
            "names of letters, digits, _ and - separated by dots, such as myco.apis"
        )
    return prefix


def _header_name(raw: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", raw):
        raise ValueError("an HTTP header name such as X-API-Version")
    return raw


def _json_strings(raw: str) -> Tuple[str, ...]:
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
        raise ValueError('a JSON list of strings such as ["secret one", "secret two"]')
    return tuple(value)


#: The longest a session may live: ten years.
_LONGEST_SESSION = 10 * 365 * 86400.0


def _session_age(raw: str) -> float:
    value = _seconds(raw)
    if value > _LONGEST_SESSION:
        raise ValueError("a number of seconds greater than 0, up to ten years")
    return value


def _store_url(raw: str) -> str:
    url = _text(raw)
    if not url:
        return url  # the default
    scheme, _, rest = url.partition(":")
    scheme = scheme.lower()
    if scheme in ("redis", "rediss"):
        if not rest.startswith("//") or len(rest) <= 2:
            raise ValueError("a URL such as redis://127.0.0.1:6379/0")
    elif scheme in ("postgresql", "postgres"):
        if not rest.startswith("//") or len(rest) <= 2:
            raise ValueError("a URL such as postgresql://user:password@127.0.0.1/shiji")
    elif scheme == "sqlite":
        if not rest:
            raise ValueError("a file, as in sqlite:shared.sqlite")
    elif not (scheme == "memory" and not rest.strip("/")):
        raise ValueError(
            "sqlite:<path>, redis://host:port/db, rediss://...,"
            " postgresql://user@host/database or memory:"
        )
    # PostgreSQL's libpq reads its own URLs (several hosts, h1:5432,h2:5433).
    if scheme in ("redis", "rediss"):
        try:
            _ = urlsplit(url).port  # raises for a port that is no number
        except ValueError:  # its text quotes the URL: not passed on
            raise ValueError(
                "a URL whose port is a number"
                " (percent-encode / # ? @ : in the password)"
            ) from None
    return url


_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _cookie_name(raw: str) -> str:
    name = _text(raw)
    if not _COOKIE_NAME.fullmatch(name):
        raise ValueError("a cookie name (letters, digits and !#$%&'*+-.^_`|~)")
    return name


def _json_object(raw: str) -> Dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ValueError('a JSON object such as {"path": "users.sqlite"}')
    return value


SCHEMA: Dict[str, Dict[str, Parser]] = {
    "general": {
        "listen_ip": _ip_address,
        "listen_port": _integer(0, 65535),
        "reactor": _choice(*REACTORS),
        "server_ident": _optional_text,
        "base_path": _optional_text,
        "cross_origin_domains": _origins,
        "inhibit_http_caching": _boolean,
        "thread_pool_size": _integer(1, 1024),
        "honor_x_realip": _boolean,
        "version_header": _header_name,
        "version_in_query": _boolean,
        "strict_charset": _boolean,
        "field_errors": _boolean,
        "validate_responses": _boolean,
        "max_body_bytes": _integer(0),
        "request_timeout": _seconds,
        "idle_timeout": _seconds,
        "header_timeout": _seconds,
        "body_timeout": _seconds,
        "shutdown_grace": _seconds,
        "slow_request_ms": _integer(0),
        "workers": _integer(1, 256),
        "listen_backlog": _integer(1, 65535),
        "trusted_proxies": _networks,
        "serve_docs": _boolean,
        "tls_certificate": _optional_text,
        "tls_private_key": _optional_text,
        "max_requests": _integer(0),
        "max_requests_jitter": _integer(0),
        "max_worker_age": _seconds_or_never,
        "worker_watchdog": _seconds_or_never,
        "watchdog_exit": _boolean,
    },
    "logging": {
        "log_file": _optional_text,
        "syslog_prefix": _text,
        "access_log": _boolean,
        "log_health": _boolean,
        "redacted_arguments": _names,
    },
    "auth": {
        "secure_cookies_secrets": _json_strings,
        "cookie_secure": _boolean,
        "enable_auth": _boolean,
        "auth_module": _optional_text,
        "auth_class": _optional_text,
        "auth_args": _json_object,
    },
    "statsd": {
        "host": _optional_text,
        "port": _integer(1, 65535),
        "scheme": _metric_prefix,
        "names": _choice(*METRIC_NAMES),
    },
    "tasks": {
        "database": _optional_text,
        "concurrency": _integer(1, 1024),
        "poll_interval": _seconds,
        "lease": _lease,
        "keep_finished": _seconds,
    },
    "storage": {
        "url": _store_url,
    },
    "sessions": {
        "cookie_name": _cookie_name,
        "max_age": _session_age,
    },
}

#: Options whose values never appear in an error message.
SECRET_OPTIONS = frozenset({"secure_cookies_secrets", "url"})

_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _did_you_mean(name: str, candidates: List[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _read(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, default_section="\0")
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        with path.open(encoding="utf-8") as config_file:
            parser.read_file(config_file)
    except FileNotFoundError:
        raise ConfigError(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(path, f"cannot be read: {e}") from None
    except configparser.DuplicateSectionError as e:
        raise ConfigError(
            path, f"line {e.lineno}: repeated section", e.section
        ) from None
    except configparser.DuplicateOptionError as e:
        raise ConfigError(
            path, f"line {e.lineno}: repeated option", e.section, e.option
        ) from None
    except configparser.MissingSectionHeaderError as e:
        raise ConfigError(
            path, f"line {e.lineno}: options must follow a [section] header"
        ) from None
    except configparser.ParsingError as e:
        line = e.errors[0][0] if e.errors else "?"
        raise ConfigError(path, f"line {line}: not an option or a section") from None
    return parser


def _section(
    path: Path, parser: configparser.ConfigParser, name: str, cls: Any, **extra: Any
) -> Any:
    values: Dict[str, Any] = dict(extra)
    if parser.has_section(name):
        schema = SCHEMA[name]
        for option, raw in parser.items(name):
            if option not in schema:
                raise ConfigError(
                    path,
                    "unknown option" + _did_you_mean(option, list(schema)),
                    name,
                    option,
                )
            try:
                values[option] = schema[option](raw.strip())
            except ValueError as e:
                shown = "" if option in SECRET_OPTIONS else f", not {raw.strip()!r}"
                raise ConfigError(path, f"must be {e}{shown}", name, option) from None
    return cls(**values)


def _tasks_section(path: Path, parser: configparser.ConfigParser) -> TasksConfig:
    tasks: TasksConfig = _section(path, parser, "tasks", TasksConfig)
    # Named for the configuration file, so that two in one directory never
    # share a queue.
    database = tasks.database or f"{path.name}.tasks.sqlite"
    return dataclasses.replace(tasks, database=(path.parent / database).resolve())


def _storage_section(path: Path, parser: configparser.ConfigParser) -> StorageConfig:
    storage: StorageConfig = _section(path, parser, "storage", StorageConfig)
    if not storage.url:
        storage = StorageConfig(url=f"sqlite:{path.name}.storage.sqlite")
    if storage.backend == "sqlite":
        # Relative to the configuration file, as every path of it.
        file = path.parent / storage.url.partition(":")[2]
        storage = StorageConfig(url=f"sqlite:{file.resolve()}")
    return storage


def load_config(path: Union[str, Path]) -> ShijiConfig:
    """
    Read and validate the configuration file at ``path``.

    ``base_path`` is resolved against the file's directory.

    :raises ConfigError: anything is wrong, with the file, section and option.
    """
    path = Path(path)
    parser = _read(path)

    known = [*SCHEMA, "apis"]
    for section in parser.sections():
        if section not in known and not section.startswith("config_"):
            raise ConfigError(
                path, "unknown section" + _did_you_mean(section, known), section
            )

    general = _section(path, parser, "general", GeneralConfig)
    # Paths are relative to the configuration file.
    for option in ("base_path", "tls_certificate", "tls_private_key"):
        relative = getattr(general, option)
        if relative is not None:
            general = dataclasses.replace(
                general, **{option: (path.parent / relative).resolve()}
            )
    if (general.tls_certificate is None) != (general.tls_private_key is None):
        given, missing = (
            ("tls_certificate", "tls_private_key")
            if general.tls_private_key is None
            else ("tls_private_key", "tls_certificate")
        )
        raise ConfigError(
            path,
            f"is required with {given}",
            "general",
            missing,
        )

    for option, needs in (
        ("max_requests_jitter", "max_requests"),
        ("watchdog_exit", "worker_watchdog"),
    ):
        if getattr(general, option) and not getattr(general, needs):
            raise ConfigError(path, f"needs {needs} above 0", "general", option)

    if not parser.has_section("apis") or not parser.items("apis"):
        raise ConfigError(
            path, "list at least one API as module_name: url_regex", "apis"
        )
    apis = []
    for module, regex in parser.items("apis"):
        if not _MODULE_NAME.fullmatch(module):
            raise ConfigError(path, "is not a Python module name", "apis", module)
        regex = _text(regex.strip())
        try:
            re.compile(regex)
        except re.error as e:
            raise ConfigError(
                path,
                f"{regex!r} is not a valid regular expression: {e}",
                "apis",
                module,
            ) from None
        apis.append((module, regex))

    modules = [module for module, _ in apis]
    api_options = {}
    for section in parser.sections():
        if section.startswith("config_"):
            module = section[len("config_") :]
            if module not in modules:
                raise ConfigError(
                    path,
                    "configures an API not listed in [apis]"
                    + _did_you_mean(module, modules),
                    section,
                )
            api_options[module] = {
                name: _text(value.strip()) for name, value in parser.items(section)
            }

    auth = _section(path, parser, "auth", AuthConfig)
    if auth.enable_auth:
        for option in ("auth_module", "auth_class"):
            if not getattr(auth, option):
                raise ConfigError(path, "is required with enable_auth", "auth", option)
    if auth.secure_cookies_secrets is not None:
        try:
            CookieSigner(auth.secure_cookies_secrets)
        except ValueError as e:
            raise ConfigError(path, str(e), "auth", "secure_cookies_secrets") from None

    storage = _storage_section(path, parser)
    if storage.backend == "memory" and general.workers > 1:
        raise ConfigError(
            path,
            "memory: is one process's own, and each worker would keep its own "
            "sessions and limits: use sqlite:<path> or redis://",
            "storage",
            "url",
        )
    if storage.backend == "redis" and parser.has_option("tasks", "database"):
        raise ConfigError(
            path,
            "is not used when [storage] url names a Redis server (the queue "
            "is kept there); remove it",
            "tasks",
            "database",
        )

    return ShijiConfig(
        path=path,
        general=general,
        logging=_section(path, parser, "logging", LoggingConfig),
        auth=auth,
        statsd=_section(path, parser, "statsd", StatsdConfig),
        tasks=_tasks_section(path, parser),
        storage=storage,
        sessions=_section(path, parser, "sessions", SessionsConfig),
        apis=tuple(apis),
        api_options=api_options,
    )
