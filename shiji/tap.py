"""
``twistd shiji``: shijid as a twistd plugin.

``twistd -n shiji -c shijid.conf`` serves what ``shijid -c shijid.conf``
serves, from the same service tree minus what twistd owns: daemonizing, the
PID file, the log and the reactor (``[logging] log_file`` and
``syslog_prefix`` and ``[general] reactor`` are left to twistd), and the
user and group to run as. The workers (``workers`` above 1) run twistd's
reactor and send their log events to twistd's log. SIGTERM or SIGINT
drains as under shijid; twistd then ends with that signal.
"""

from __future__ import annotations

from typing import Any, Mapping

from twisted.application import service

from .config import ConfigError, load_config
from .daemon import ConfigOptions, build_service

__all__ = ["Options", "makeService"]


class Options(ConfigOptions):
    """Options of ``twistd shiji``: ``-c CONFIG``."""


def makeService(options: Mapping[str, Any]) -> service.MultiService:
    """
    The daemon's service tree for parsed :class:`Options`, without the log
    and PID file services (twistd's); a configuration error ends twistd
    with that one line and exit status 1.
    """
    try:
        return build_service(load_config(options["config"]), twistd=True)
    except ConfigError as e:
        raise SystemExit(f"twistd shiji: error: {e}") from None
