"""
The shared store of a serving process of shijid: opened once from
``[storage] url``, handed to the router and the task service, and closed
after both have stopped.
"""

import os
import sqlite3
from pathlib import Path
from typing import Any, Optional

from twisted.application import service
from twisted.internet.defer import Deferred

from .config import ConfigError, ShijiConfig
from .storage import Store, open_store

__all__ = ["StorageService", "check_storage", "store_for"]


class StorageService(service.Service):
    """Holds :attr:`store`; closes it when stopped."""

    name = "storage"

    def __init__(self, store: Store) -> None:
        #: The process's store.
        self.store = store

    def stopService(self) -> "Optional[Deferred[Any]]":
        super().stopService()
        return self.store.close()


def store_for(config: ShijiConfig) -> Store:
    """The store ``[storage] url`` of ``config`` names, not yet connected."""
    try:
        return open_store(config.storage.url, config.path.parent)
    except ValueError as e:
        raise ConfigError(config.path, f"must be {e}", "storage", "url") from None


def check_storage(config: ShijiConfig) -> None:
    """
    Refuse an SQLite store that cannot be opened or created, in one line;
    a Redis server that is down is not refused (it may come back: requests
    that need it are answered 503 meanwhile).

    :raises ConfigError: naming ``[storage] url``.
    """
    if config.storage.backend != "sqlite":
        return
    path = Path(config.storage.url.partition(":")[2])
    if path.exists():
        try:
            connection = sqlite3.connect(f"file:{path}?mode=rw", uri=True)
            try:
                connection.execute("PRAGMA schema_version").fetchone()
            finally:
                connection.close()
        except sqlite3.Error as e:
            reason = str(e)
        else:
            return
    elif not path.parent.is_dir():
        reason = f"{path.parent} is not a directory"
    elif not os.access(path.parent, os.W_OK | os.X_OK):
        reason = f"{path.parent} is not writable"
    else:
        return
    raise ConfigError(config.path, f"cannot open {path}: {reason}", "storage", "url")
