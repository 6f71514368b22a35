"""
A configuration stub: every option of shijid, commented out, with its
default.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List

from ..config import (
    SCHEMA,
    AuthConfig,
    GeneralConfig,
    LoggingConfig,
    SessionsConfig,
    StatsdConfig,
    StorageConfig,
    TasksConfig,
)

__all__ = ["config_stub"]

HELP: Dict[str, str] = {
    "listen_ip": "Address to listen on.",
    "listen_port": "TCP port to listen on (0: any free port).",
    "reactor": "Twisted reactor: default, select, poll, epoll or kqueue.",
    "server_ident": "The Server response header (default: Shiji API Server).",
    "base_path": "Directory the API packages are imported from (relative to this file).",
    "cross_origin_domains": '"*" or origins allowed to call from browsers.',
    "inhibit_http_caching": "Send Cache-Control: no-cache and Pragma: no-cache.",
    "thread_pool_size": "Threads for blocking work.",
    "honor_x_realip": "Believe X-Real-IP / X-Forwarded-For from trusted_proxies.",
    "version_header": "The header naming API, version and mode (myapi-1.0+prod).",
    "version_in_query": (
        "Accept the version as a query argument when the header is absent "
        "(lets other sites send cross-site requests without a preflight)."
    ),
    "strict_charset": "Refuse JSON bodies whose Content-Type names no charset.",
    "field_errors": "List failing fields in errors of the original Shiji's declarations too.",
    "validate_responses": "Check answers against webapi.returns; a mismatch is logged and answered 500.",
    "max_body_bytes": "Larger bodies get HTTP 413 unread; smaller ones are held in memory.",
    "request_timeout": "Seconds a call may run before it is cancelled with HTTP 503.",
    "idle_timeout": "Seconds an idle keep-alive connection stays open.",
    "header_timeout": "Seconds a client has to send a request's headers (else HTTP 408).",
    "body_timeout": "Seconds more a client has to send a request's body (else HTTP 408).",
    "shutdown_grace": "Seconds requests in flight may take to finish on SIGTERM.",
    "slow_request_ms": "Requests slower than this are logged as warnings.",
    "workers": "Processes serving the port.",
    "listen_backlog": "Pending connections the kernel queues.",
    "trusted_proxies": "Peers whose client-address headers are believed.",
    "serve_docs": "Serve the APIs' documentation under /_docs/.",
    "tls_certificate": "PEM file of the certificate (and its chain): with tls_private_key, serve HTTPS.",
    "tls_private_key": "PEM file of the certificate's private key.",
    "max_requests": (
        "A worker that has answered this many requests is replaced, without "
        "dropping any (0: never)."
    ),
    "max_requests_jitter": (
        "Up to this many more requests, chosen per worker, so that workers "
        "are not all replaced at once."
    ),
    "max_worker_age": "Seconds after which a worker is replaced (0: never).",
    "worker_watchdog": (
        "Seconds a process may leave requests unserved (a blocked reactor) "
        "before its Python stack is logged and the worker replaced (0: off)."
    ),
    "watchdog_exit": (
        "Without workers: exit with status 70 once the watchdog finds the "
        "process blocked, for a supervisor to restart it."
    ),
    "log_file": 'A path, "-" for standard output, or empty for syslog.',
    "syslog_prefix": "Prefix of syslog entries.",
    "access_log": "Log one line per request.",
    "log_health": "Log the load balancers' /_health checks too.",
    "redacted_arguments": (
        "Query arguments whose values never reach a log: those whose names "
        "hold any of these words."
    ),
    "secure_cookies_secrets": (
        "JSON list of cookie-signing secrets of 32 characters or more; the first signs."
    ),
    "cookie_secure": "Secure cookies get the Secure attribute (send them over HTTPS only).",
    "enable_auth": "Use an auth backend for auth.access and auth.login_required.",
    "auth_module": "The module of the auth backend class.",
    "auth_class": "The auth backend class, with an authenticate(request) method.",
    "auth_args": "JSON object of keyword arguments for the auth backend class.",
    "host": "statsd server; empty: no metrics.",
    "port": "statsd UDP port.",
    "scheme": "Prefix of every metric name (names separated by dots; empty: none).",
    "names": (
        "Metric names: v2 (mode, status and error per call, health, docs and "
        "OPTIONS apart) or v1 (close to the names before v2, for existing dashboards)."
    ),
    "database": (
        "SQLite file of the task queue, relative to this file "
        "(default: this file's name followed by .tasks.sqlite)."
    ),
    "concurrency": "Tasks each process runs at once.",
    "poll_interval": "Seconds between two looks at the task queue.",
    "lease": (
        "Seconds (1 or more) a task a process claimed stays claimed "
        "unrenewed: the tasks of a process that died run again after it."
    ),
    "keep_finished": "Seconds finished tasks and past cron ticks are kept.",
    "url": (
        "The store shared by every process: sqlite:<path> (relative to this "
        "file; empty: <this file>.storage.sqlite), redis://host:port/db, "
        "rediss://... or memory:."
    ),
    "cookie_name": (
        "The signed cookie holding request.session's id "
        "(__Host-<name> with cookie_secure)."
    ),
    "max_age": "Seconds a session lives unused; each use extends it.",
}

DEFAULTS = {
    "general": GeneralConfig(),
    "logging": LoggingConfig(),
    "auth": AuthConfig(),
    "statsd": StatsdConfig(),
    "tasks": TasksConfig(),
    "storage": StorageConfig(),
    "sessions": SessionsConfig(),
}


def _value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        if value and all(isinstance(item, str) for item in value):
            return ", ".join(value)
        return ", ".join(str(item) for item in value) if value else ""
    return str(value)


def config_stub() -> str:
    """The stub's text."""
    lines: List[str] = [
        "; shijid configuration. Every option is shown commented out with its",
        "; default; uncomment and change what you need.",
        "",
    ]
    for section, options in SCHEMA.items():
        lines.append(f"[{section}]")
        defaults = DEFAULTS[section]
        for option in options:
            default = getattr(defaults, option)
            if section == "auth" and option == "secure_cookies_secrets":
                shown = '["a random secret of at least 32 characters"]'
            elif section == "auth" and option == "auth_args":
                shown = "{}"
            else:
                shown = _value(default)
            lines.append(f"; {HELP[option]}")
            lines.append(f";{option}: {shown}".rstrip())
        lines.append("")
    lines += [
        "[apis]",
        "; module_name: regular expression the first path segment must match",
        ";mylogin_api: myloginapi",
        "",
        "; [config_<module_name>] sections go to that API's config.validate_config().",
        ";[config_mylogin_api]",
        ";option: value",
        "",
    ]
    assert all(dataclasses.is_dataclass(d) for d in DEFAULTS.values())
    return "\n".join(lines)
