"""
``twistd shiji``: shijid as a twistd plugin.

``twistd -n shiji -c shijid.conf`` serves what ``shijid -c shijid.conf``
serves, from the same service tree; twistd's own options then decide
daemonizing, the PID file, the log file, the reactor and the user and group
to run as (``[logging]`` and ``[general] reactor`` are left to twistd).
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
    The daemon's service tree for parsed :class:`Options`; a configuration
    error ends twistd with that one line and exit status 1.
    """
    try:
        return build_service(load_config(options["config"]))
    except ConfigError as e:
        raise SystemExit(f"twistd shiji: error: {e}") from None
