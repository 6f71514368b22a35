"""
:class:`SQLiteStore`: the :class:`~shiji.storage.Store` on one SQLite file,
shared by the processes of one host (``[storage] url = sqlite:<path>``).

The file is in WAL mode, so that reads never wait for a write; a write is
one ``BEGIN IMMEDIATE`` transaction, so that it holds the database's write
lock from its first read to its commit and two processes never interleave
their read-modify-writes. A process waits up to ``busy_timeout`` seconds
for another's write lock; past that, or when the file cannot be opened or
written, the operation fails with
:class:`~shiji._errors.StorageUnavailableError`, and the next one opens the
file again if need be. An operation that waited ``busy_timeout`` for the
store's thread (behind others waiting for a lock) fails so too, without
touching the file, so that the waits do not add up.

The blocking ``sqlite3`` calls run in one daemon thread of the store's own,
started by the first operation and ended by :meth:`SQLiteStore.close`; a
process that ends without closing the store is not held up by it. Each
operation is one trip to that thread and back.

Expiry is a time in seconds since the epoch (``time.time()``, the same in
every process of the host). Reads skip expired rows; a write removes every
expired row about once a minute.

Tables (the schema's version is the database's ``user_version``):

- ``shiji_store_keys``: one row per key, a value (or counter) as text or
  a list (``kind``), with its expiry: a key is one or the other;
- ``shiji_store_items``: the items of the lists, in the order of their
  row ids;
- ``shiji_store_locks``: the locks held, by name, with their owner and
  the end of their lease.

The file is created readable by its owner only (mode 0600); SQLite gives
its ``-wal`` and ``-shm`` files the mode of the database.
"""

import contextlib
import queue
import sqlite3
import threading
import time
from typing import Any, Callable, List, Optional, Tuple, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.failure import Failure

from . import _sqlite
from ._reactor import global_reactor
from ._storage_memory import (
    check_cap,
    parse_count,
    refused_expiry,
    unavailable,
)
from ._storage_outage import OutageLog

__all__ = ["SQLiteStore"]

_T = TypeVar("_T")

#: The version of the tables below, kept as the database's ``user_version``.
SCHEMA_VERSION = 1

#: Seconds between two purges of expired rows by one store.
PURGE_INTERVAL = 60.0

#: ``shiji_store_keys.kind``
VALUE, LIST = 0, 1

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS shiji_store_keys (
    key TEXT PRIMARY KEY,
    kind INTEGER NOT NULL,
    value TEXT,
    expires REAL
)""",
    "CREATE INDEX IF NOT EXISTS shiji_store_keys_expires"
    " ON shiji_store_keys (expires) WHERE expires IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS shiji_store_items (
    seq INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    value TEXT NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS shiji_store_items_key ON shiji_store_items (key, seq)",
    """CREATE TABLE IF NOT EXISTS shiji_store_locks (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires REAL NOT NULL
)""",
]

_KEY = "SELECT kind, value, expires FROM shiji_store_keys WHERE key = ?"
_SET = (
    "INSERT INTO shiji_store_keys (key, kind, value, expires) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET kind = excluded.kind,"
    " value = excluded.value, expires = excluded.expires"
)
_DELETE_KEY = "DELETE FROM shiji_store_keys WHERE key = ?"
_DELETE_ITEMS = "DELETE FROM shiji_store_items WHERE key = ?"


class _WallClock:
    """The ``seconds()`` of an ``IReactorTime``, as ``time.time()``."""

    def seconds(self) -> float:
        return time.time()


class _Closed(Exception):
    """The store was closed."""

    def __str__(self) -> str:
        return "the store is closed"


class SQLiteStore:
    """
    A :class:`~shiji.storage.Store` on the SQLite file ``path``, created if
    need be.

    :param path: the file; its directory must exist.
    :param clock: measures expiry (``seconds()``, read in the store's
        thread); the wall clock by default, which every process sharing
        the file must use.
    :param busy_timeout: seconds an operation waits for another process's
        write lock before it fails with ``StorageUnavailableError``.
    """

    def __init__(
        self, path: str, clock: Any = None, busy_timeout: float = 10.0
    ) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._clock: Any = clock if clock is not None else _WallClock()
        self._connection: Optional[sqlite3.Connection] = None
        self._next_purge = 0.0
        # Operations for the thread, each with its Deferred; None ends it.
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: Optional[threading.Thread] = None
        self._reactor: Any = None
        self._closed = False
        self._outage = OutageLog(path)

    # The thread

    def _call(self, operation: Callable[[sqlite3.Connection], _T]) -> "Deferred[_T]":
        """Run ``operation`` with the connection in the store's thread."""
        if self._closed:
            return fail(unavailable(_Closed()))
        if self._thread is None:
            self._reactor = global_reactor()
            self._thread = threading.Thread(
                target=self._serve, name=f"shiji-store {self.path}", daemon=True
            )
            self._thread.start()
        result: Deferred[_T] = Deferred()
        queued = time.monotonic()
        self._queue.put((lambda: self._perform(operation, queued), result))
        return self._outage.watch(result)

    def _serve(self) -> None:
        reactor = self._reactor
        while True:
            job = self._queue.get()
            if job is None:
                return
            run, result = job
            try:
                outcome = run()
            except BaseException:
                reactor.callFromThread(result.errback, Failure())
            else:
                reactor.callFromThread(result.callback, outcome)

    def _perform(
        self, operation: Callable[[sqlite3.Connection], _T], queued: float
    ) -> _T:
        waited = time.monotonic() - queued
        if waited > self.busy_timeout:
            # The operations before it waited for a lock: this one gives up
            # without touching the file, so that waits do not add up.
            late = TimeoutError(f"waited {waited:.1f}s for the store's thread")
            raise unavailable(late) from late
        try:
            if self._connection is None:
                self._connection = self._open()
            return operation(self._connection)
        except (OSError, sqlite3.OperationalError) as e:
            self._forget_if_broken(e)
            raise unavailable(e) from e
        except sqlite3.DatabaseError as e:
            if type(e) is not sqlite3.DatabaseError:
                raise  # IntegrityError, ProgrammingError...: a mistake here
            # "file is not a database", a schema from a newer Shiji...
            self._forget_if_broken(e)
            raise unavailable(e) from e

    def _forget_if_broken(self, error: Exception) -> None:
        """Close the connection unless the error was only a busy wait."""
        if self._connection is None or "locked" in str(error):
            return
        with contextlib.suppress(sqlite3.Error):
            self._connection.close()
        self._connection = None

    def _open(self) -> sqlite3.Connection:
        """Open the file (created with mode 0600) and its tables."""
        connection = _sqlite.connect(self.path, self.busy_timeout)
        try:
            # WAL's commits survive a crash of the process; a power cut may
            # lose the last ones, never the database.
            _sqlite.rows(connection, "PRAGMA synchronous=NORMAL")
            with _Transaction(connection):
                _migrate(connection)
        except BaseException:
            connection.close()
            raise
        return connection

    def _now(self) -> float:
        return float(self._clock.seconds())

    def _write(
        self, operation: Callable[[sqlite3.Connection, float], _T]
    ) -> "Deferred[_T]":
        """Run ``operation(db, now)`` in one ``BEGIN IMMEDIATE`` transaction."""

        def write(db: sqlite3.Connection) -> _T:
            with _Transaction(db):
                now = self._now()
                if now >= self._next_purge:
                    _purge(db, now)
                    self._next_purge = now + PURGE_INTERVAL
                return operation(db, now)

        return self._call(write)

    def _read(
        self, operation: Callable[[sqlite3.Connection, float], _T]
    ) -> "Deferred[_T]":
        """Run ``operation(db, now)``, one statement, outside a transaction."""
        return self._call(lambda db: operation(db, self._now()))

    # Values

    def get(self, key: str) -> "Deferred[Optional[str]]":
        def get(db: sqlite3.Connection, now: float) -> Optional[str]:
            row = _live(db, key, now)
            if row is None:
                return None
            _check_kind(key, row[0], VALUE)
            return str(row[1])

        return self._read(get)

    def set(
        self, key: str, value: str, expires_in: Optional[float] = None
    ) -> "Deferred[None]":
        def set_(db: sqlite3.Connection, now: float) -> None:
            row = _sqlite.first(db, _KEY, (key,))
            if row is not None and row[0] == LIST:
                _sqlite.change(db, _DELETE_ITEMS, (key,))
            _sqlite.change(db, _SET, (key, VALUE, value, _until(now, expires_in)))

        return refused_expiry(expires_in) or self._write(set_)

    def add(
        self, key: str, value: str, expires_in: Optional[float] = None
    ) -> "Deferred[bool]":
        def add(db: sqlite3.Connection, now: float) -> bool:
            if _live_or_cleared(db, key, now) is not None:
                return False
            _sqlite.change(db, _SET, (key, VALUE, value, _until(now, expires_in)))
            return True

        return refused_expiry(expires_in) or self._write(add)

    def replace(
        self, key: str, value: str, expires_in: Optional[float] = None
    ) -> "Deferred[bool]":
        def replace(db: sqlite3.Connection, now: float) -> bool:
            row = _live(db, key, now)
            if row is None:
                return False
            _check_kind(key, row[0], VALUE)
            _sqlite.change(
                db,
                "UPDATE shiji_store_keys SET value = ?, expires = ? WHERE key = ?",
                (value, _until(now, expires_in), key),
            )
            return True

        return refused_expiry(expires_in) or self._write(replace)

    def delete(self, key: str) -> "Deferred[bool]":
        def delete(db: sqlite3.Connection, now: float) -> bool:
            row = _sqlite.first(db, _KEY, (key,))
            if row is None:
                return False
            _sqlite.change(db, _DELETE_KEY, (key,))
            if row[0] == LIST:
                _sqlite.change(db, _DELETE_ITEMS, (key,))
            return not _expired(row[2], now)

        return self._write(delete)

    def expire(self, key: str, expires_in: float) -> "Deferred[bool]":
        def expire(db: sqlite3.Connection, now: float) -> bool:
            return (
                _sqlite.change(
                    db,
                    "UPDATE shiji_store_keys SET expires = ? WHERE key = ?"
                    " AND (expires IS NULL OR expires > ?)",
                    (now + expires_in, key, now),
                )
                == 1
            )

        return refused_expiry(expires_in, True) or self._write(expire)

    def incr(
        self, key: str, amount: int = 1, expires_in: Optional[float] = None
    ) -> "Deferred[int]":
        def incr(db: sqlite3.Connection, now: float) -> int:
            row = _live_or_cleared(db, key, now)
            if row is None:
                count = parse_count(key, "0", amount)
                _sqlite.change(
                    db, _SET, (key, VALUE, str(count), _until(now, expires_in))
                )
                return count
            _check_kind(key, row[0], VALUE)
            count = parse_count(key, row[1], amount)
            _sqlite.change(
                db,
                "UPDATE shiji_store_keys SET value = ? WHERE key = ?",
                (str(count), key),
            )
            return count

        if isinstance(amount, bool) or not isinstance(amount, int):
            return fail(ValueError(f"amount must be an integer, not {amount!r}"))
        return refused_expiry(expires_in) or self._write(incr)

    # Lists

    def push(
        self, key: str, value: str, cap: int, expires_in: Optional[float] = None
    ) -> "Deferred[int]":
        def push(db: sqlite3.Connection, now: float) -> int:
            row = _live_or_cleared(db, key, now)
            if row is None:
                _sqlite.change(db, _SET, (key, LIST, None, _until(now, expires_in)))
            else:
                _check_kind(key, row[0], LIST)
                if expires_in is not None:
                    _sqlite.change(
                        db,
                        "UPDATE shiji_store_keys SET expires = ? WHERE key = ?",
                        (now + expires_in, key),
                    )
            _sqlite.change(
                db,
                "INSERT INTO shiji_store_items (key, value) VALUES (?, ?)",
                (key, value),
            )
            length = int(
                _sqlite.first(
                    db, "SELECT count(*) FROM shiji_store_items WHERE key = ?", (key,)
                )[0]
            )
            if length > cap:
                _sqlite.change(
                    db,
                    "DELETE FROM shiji_store_items WHERE seq IN (SELECT seq FROM"
                    " shiji_store_items WHERE key = ? ORDER BY seq LIMIT ?)",
                    (key, length - cap),
                )
                length = cap
            return length

        try:
            check_cap(cap)
        except ValueError:
            return fail()
        return refused_expiry(expires_in) or self._write(push)

    def pop(self, key: str) -> "Deferred[Optional[str]]":
        def pop(db: sqlite3.Connection, now: float) -> Optional[str]:
            row = _live_or_cleared(db, key, now)
            if row is None:
                return None
            _check_kind(key, row[0], LIST)
            first = _sqlite.rows(
                db,
                "SELECT seq, value FROM shiji_store_items WHERE key = ?"
                " ORDER BY seq LIMIT 2",
                (key,),
            )
            if len(first) < 2:
                # The last item: the list goes with it.
                _sqlite.change(db, _DELETE_KEY, (key,))
            if not first:
                return None
            _sqlite.change(
                db, "DELETE FROM shiji_store_items WHERE seq = ?", (first[0][0],)
            )
            return str(first[0][1])

        return self._write(pop)

    def items(self, key: str) -> "Deferred[List[str]]":
        def items(db: sqlite3.Connection, now: float) -> List[str]:
            # One statement: the key and its items as of one moment.
            rows = _sqlite.rows(
                db,
                "SELECT k.kind, i.value FROM shiji_store_keys AS k"
                " LEFT JOIN shiji_store_items AS i ON i.key = k.key"
                " WHERE k.key = ? AND (k.expires IS NULL OR k.expires > ?)"
                " ORDER BY i.seq",
                (key, now),
            )
            if not rows:
                return []
            _check_kind(key, rows[0][0], LIST)
            return [str(value) for _, value in rows if value is not None]

        return self._read(items)

    # Locks

    def acquire(self, name: str, owner: str, lease: float) -> "Deferred[bool]":
        def acquire(db: sqlite3.Connection, now: float) -> bool:
            return (
                _sqlite.change(
                    db,
                    "INSERT INTO shiji_store_locks (name, owner, expires)"
                    " VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                    " owner = excluded.owner, expires = excluded.expires"
                    " WHERE shiji_store_locks.owner = excluded.owner"
                    " OR shiji_store_locks.expires <= ?",
                    (name, owner, now + lease, now),
                )
                == 1
            )

        return refused_expiry(lease, True, "lease") or self._write(acquire)

    def renew(self, name: str, owner: str, lease: float) -> "Deferred[bool]":
        def renew(db: sqlite3.Connection, now: float) -> bool:
            return (
                _sqlite.change(
                    db,
                    "UPDATE shiji_store_locks SET expires = ?"
                    " WHERE name = ? AND owner = ? AND expires > ?",
                    (now + lease, name, owner, now),
                )
                == 1
            )

        return refused_expiry(lease, True, "lease") or self._write(renew)

    def release(self, name: str, owner: str) -> "Deferred[bool]":
        def release(db: sqlite3.Connection, now: float) -> bool:
            row = _sqlite.first(
                db,
                "SELECT expires FROM shiji_store_locks WHERE name = ? AND owner = ?",
                (name, owner),
            )
            if row is None:
                return False
            _sqlite.change(db, "DELETE FROM shiji_store_locks WHERE name = ?", (name,))
            return bool(row[0] > now)

        return self._write(release)

    def close(self) -> "Deferred[None]":
        """
        Close the connection and end the thread, once the operations
        already asked for are done.
        """
        if self._closed or self._thread is None:
            self._closed = True
            return succeed(None)
        self._closed = True
        result: Deferred[None] = Deferred()
        self._queue.put((self._shut, result))
        self._queue.put(None)
        return result

    def _shut(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _until(now: float, expires_in: Optional[float]) -> Optional[float]:
    return None if expires_in is None else now + expires_in


def _expired(expires: Optional[float], now: float) -> bool:
    return expires is not None and expires <= now


def _check_kind(key: str, kind: int, wanted: int) -> None:
    if kind != wanted:
        held = "a list" if kind == LIST else "a value"
        asked = "a list" if wanted == LIST else "a value"
        raise ValueError(f"{key!r} holds {held}, not {asked}")


def _live(db: sqlite3.Connection, key: str, now: float) -> Optional[Tuple[Any, ...]]:
    """``key``'s row (kind, value, expires) unless absent or expired."""
    row = _sqlite.first(db, _KEY, (key,))
    if row is None or _expired(row[2], now):
        return None
    return tuple(row)


def _live_or_cleared(
    db: sqlite3.Connection, key: str, now: float
) -> Optional[Tuple[Any, ...]]:
    """``key``'s live row; an expired one is deleted (in a transaction)."""
    row = _sqlite.first(db, _KEY, (key,))
    if row is None:
        return None
    if _expired(row[2], now):
        _sqlite.change(db, _DELETE_KEY, (key,))
        if row[0] == LIST:
            _sqlite.change(db, _DELETE_ITEMS, (key,))
        return None
    return tuple(row)


def _purge(db: sqlite3.Connection, now: float) -> None:
    """Delete every expired key, list item and lock."""
    _sqlite.change(
        db,
        "DELETE FROM shiji_store_items WHERE key IN (SELECT key FROM"
        " shiji_store_keys WHERE expires <= ? AND kind = ?)",
        (now, LIST),
    )
    _sqlite.change(db, "DELETE FROM shiji_store_keys WHERE expires <= ?", (now,))
    _sqlite.change(db, "DELETE FROM shiji_store_locks WHERE expires <= ?", (now,))


def _migrate(db: sqlite3.Connection) -> None:
    """Create the tables, unless the file holds a newer schema."""
    version = _sqlite.first(db, "PRAGMA user_version")[0]
    if version > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"its schema (version {version}) is newer than this Shiji's"
            f" ({SCHEMA_VERSION})"
        )
    for statement in _SCHEMA:
        _sqlite.change(db, statement)
    if version != SCHEMA_VERSION:
        _sqlite.change(db, f"PRAGMA user_version = {SCHEMA_VERSION}")


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on an error."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def __enter__(self) -> sqlite3.Connection:
        _sqlite.change(self._connection, "BEGIN IMMEDIATE")
        return self._connection

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        if kind is None:
            try:
                _sqlite.change(self._connection, "COMMIT")
            except BaseException:
                self._roll_back()
                raise
            return
        self._roll_back()

    def _roll_back(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # none left to roll back
            _sqlite.change(self._connection, "ROLLBACK")
