"""
Shared state: one small asynchronous interface, :class:`Store`, that
sessions, login limits, the task queue's cron leadership and an API's own
code keep their state in, so that several processes, and several machines,
see the same state.

shijid opens the store its ``[storage] url`` names:

- ``sqlite:<path>`` (the default, ``sqlite:<configuration file>.storage.sqlite``
  beside the configuration): one file, shared by the processes of one host;
- ``redis://[:password@]host[:port][/db]`` (or ``rediss://`` for TLS): one
  Redis server, shared by every host;
- ``postgresql://user[:password]@host[:port]/database[?sslmode=...]`` (or
  ``postgres://``): tables in one PostgreSQL database, shared by every
  host (needs ``psycopg2``: ``pip install 'shiji[postgresql]'``);
- ``memory:``: this process's memory only (tests, one-process serving).

A handler finds it as ``request.store``; a task as ``tasks.current().store``::

    count = await request.store.incr(f"signups:{request.client_ip}", expires_in=3600)

Every method returns a ``Deferred`` (``await`` it in a coroutine). Keys and
values are text. Every operation is atomic across every process sharing the
store. When the store cannot be reached, the ``Deferred`` fails with
:class:`StorageUnavailableError`, which is answered as HTTP 503 (error 218)
like any :class:`~shiji.webapi.APIError`; the store reconnects on its own
for the operations that follow.
"""

from pathlib import Path
from typing import List, Optional, Protocol, Union

from twisted.internet.defer import Deferred

from ._errors import StorageUnavailableError

__all__ = ["StorageUnavailableError", "Store", "open_store"]


class Store(Protocol):
    """
    What every backend provides. ``expires_in`` is in seconds (fractions
    count, to the millisecond); ``None`` keeps a value until it is deleted.
    An expired value reads as absent.
    """

    def get(self, key: str) -> "Deferred[Optional[str]]":
        """The value of ``key``, or ``None``."""

    def set(
        self, key: str, value: str, expires_in: Optional[float] = None
    ) -> "Deferred[None]":
        """Store ``value`` under ``key``, replacing any value and expiry."""

    def add(
        self, key: str, value: str, expires_in: Optional[float] = None
    ) -> "Deferred[bool]":
        """Store ``value`` only if ``key`` has none; whether it was stored."""

    def replace(
        self, key: str, value: str, expires_in: Optional[float] = None
    ) -> "Deferred[bool]":
        """
        Store ``value`` only if ``key`` has a value (not expired); whether
        it stored. Saving a session uses it so that a session deleted
        meanwhile (logout) is not written back. Like :meth:`set`, it
        replaces the expiry; a list under ``key`` is a ``ValueError``.
        """

    def delete(self, key: str) -> "Deferred[bool]":
        """Remove ``key`` (a value, counter or list); whether it existed."""

    def expire(self, key: str, expires_in: float) -> "Deferred[bool]":
        """Give ``key`` a new expiry from now; whether it existed."""

    def incr(
        self, key: str, amount: int = 1, expires_in: Optional[float] = None
    ) -> "Deferred[int]":
        """
        Add ``amount`` (which may be negative) to the counter ``key``,
        starting from 0, and return the new count. ``expires_in`` is applied
        only when this call creates the counter, so a counter counts over a
        fixed window from its first increment.
        """

    def push(
        self, key: str, value: str, cap: int, expires_in: Optional[float] = None
    ) -> "Deferred[int]":
        """
        Append ``value`` to the list ``key``, keeping only its newest
        ``cap`` items (the oldest are dropped first); returns the list's
        length. ``expires_in``, when given, is the whole list's expiry,
        renewed by each push.
        """

    def pop(self, key: str) -> "Deferred[Optional[str]]":
        """Remove and return the list's oldest item, or ``None`` if empty."""

    def items(self, key: str) -> "Deferred[List[str]]":
        """The list's items, oldest first (empty if there is no list)."""

    def acquire(self, name: str, owner: str, lease: float) -> "Deferred[bool]":
        """
        Take the lock ``name`` for ``owner`` for ``lease`` seconds, unless
        another owner holds it; an owner that holds it renews it. Whether
        ``owner`` holds it now.
        """

    def renew(self, name: str, owner: str, lease: float) -> "Deferred[bool]":
        """
        Extend ``owner``'s hold of ``name`` to ``lease`` seconds from now;
        ``False`` (and nothing changed) if ``owner`` no longer holds it.
        """

    def release(self, name: str, owner: str) -> "Deferred[bool]":
        """Give up ``owner``'s hold of ``name``; whether it held it."""

    def close(self) -> "Deferred[None]":
        """Release connections and threads; the store is unusable after."""


def open_store(url: str, base: Union[str, Path, None] = None) -> Store:
    """
    The store ``url`` names (see the module's documentation); a relative
    SQLite path is relative to ``base``.

    :raises ValueError: the URL names no backend, or is malformed.
    """
    scheme, _, rest = url.partition(":")
    scheme = scheme.lower()
    if scheme == "memory" and not rest.strip("/"):
        from ._storage_memory import MemoryStore

        return MemoryStore()
    if scheme == "sqlite":
        from ._storage_sqlite import SQLiteStore

        if not rest:
            raise ValueError("sqlite: needs a file path, such as sqlite:shared.sqlite")
        path = Path(rest)
        if base is not None and not path.is_absolute():
            path = Path(base) / path
        return SQLiteStore(str(path))
    if scheme in ("redis", "rediss"):
        try:
            from ._storage_redis import RedisStore
        except ImportError:
            raise ValueError(
                "a redis:// URL with redis-py installed (pip install 'shiji[redis]')"
            ) from None

        return RedisStore(url)
    if scheme in ("postgresql", "postgres"):
        from ._storage_postgres import PostgresStore

        if not rest.startswith("//") or len(rest) <= 2:
            raise ValueError("a URL such as postgresql://user:password@host/database")
        try:
            return PostgresStore(url)
        except ImportError:
            raise ValueError(
                "a postgresql:// URL with psycopg2 installed"
                " (pip install 'shiji[postgresql]')"
            ) from None
    raise ValueError(
        "a store URL: sqlite:<path>, redis://host:port/db, rediss://...,"
        " postgresql://user@host/database or memory:"
    )
