"""
:class:`PostgresStore`: the :class:`~shiji.storage.Store` on a PostgreSQL
database, shared by every host that reaches it
(``[storage] url = postgresql://user[:password]@host[:port]/database``).

The blocking calls of the driver (``psycopg2``, or ``psycopg2cffi`` where
``psycopg2`` is not installed, as on PyPy) run in the threads of a
:class:`twisted.enterprise.adbapi.ConnectionPool`, each thread with its own
connection, in autocommit mode. An operation that reads or writes one row
(``get``, ``set``, ``add``, ``delete``, ``expire``, ``items`` and the
locks) is one statement: one trip to the server. One that reads, then
writes (``incr``, ``push``, ``pop``) is one transaction in two trips: it
makes the key's row if need be and locks it (``SELECT ... FOR UPDATE``),
then writes and commits; two of them on one key, from any process or host,
take turns.

Time is the database server's clock (``statement_timestamp()``), so that
every host agrees on when a value expires or a lease ends, whatever its own
clock says. Expiry is a ``DOUBLE PRECISION`` count of seconds since the
epoch. Reads skip expired rows; a write removes rows that expired over a
minute ago, about once a minute per store.

When the server cannot be reached (the driver's ``OperationalError`` or
``InterfaceError``, a read-only server), the operation fails with
:class:`~shiji._errors.StorageUnavailableError`, its cause chained, and
what it had begun is rolled back; the connection is dropped, and the next
operation connects again. A connection that the server closed since its
last use (the socket has something to read), or left unused for a second,
is checked (``SELECT 1``) before its next operation, and an operation that
fails before it could have changed anything (that check, a read, a
transaction not yet committed) is tried again on another connection, or a
new one, so that a server restarted in between is used at once.

Tables (created on first use, ``<prefix>`` is ``shiji_store`` unless told):

- ``<prefix>_keys``: one row per key, its ``kind`` a value (or counter) in
  ``value``, or a list in ``items`` (oldest first), with its expiry;
- ``<prefix>_locks``: the locks held, by name, with their owner and the
  end of their lease.

Keys, values, items, lock names and owners are stored as UTF-8 in
``BYTEA`` columns, since PostgreSQL's text cannot hold NUL characters.
"""

import contextlib
import importlib
import math
import re
import select
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple, Type, TypeVar
from urllib.parse import unquote

from twisted.enterprise import adbapi
from twisted.internet import defer
from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.failure import Failure

from ._reactor import global_reactor
from ._storage_memory import (
    check_cap,
    check_expiry,
    parse_count,
    refused_expiry,
    unavailable,
)
from ._storage_outage import OutageLog, shown_url

__all__ = ["PostgresStore"]

_T = TypeVar("_T")

#: Seconds between two purges of expired rows by one store.
PURGE_INTERVAL = 60.0

#: Rows are purged only this many seconds after they expired, so that a
#: purge never removes a row that a transaction of the same moment read as
#: live.
PURGE_GRACE = 60.0

#: Seconds a connection may stay unused before it is checked again.
IDLE_CHECK = 1.0

#: ``<prefix>_keys.kind``
VALUE, LIST = 0, 1

#: The advisory lock held while the tables are created: "SHIJ" in ASCII.
_SCHEMA_LOCK = 0x5348494A

_PREFIX = re.compile(r"[a-z_][a-z0-9_]{0,40}")

#: The server's clock at the start of the statement, in seconds since the
#: epoch.
_NOW = "extract(epoch FROM statement_timestamp())::float8"

#: ``expires`` is in the past.
_EXPIRED = f"(expires IS NOT NULL AND expires <= {_NOW})"

#: ``expires`` is not in the past.
_LIVE = f"(expires IS NULL OR expires > {_NOW})"

#: The SQLSTATE of a write to a server that only reads (a standby).
_READ_ONLY = "25006"

#: The drivers, in order of preference: psycopg2, or psycopg2cffi where
#: psycopg2 does not build (PyPy).
DRIVERS = ("psycopg2", "psycopg2cffi")


def _driver() -> Any:
    """The first driver of :data:`DRIVERS` that can be imported."""
    for name in DRIVERS:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError(
        "the PostgreSQL store needs psycopg2 (pip install psycopg2-binary) or,"
        " on PyPy, psycopg2cffi"
    )


class _Closed(Exception):
    """The store was closed."""

    def __str__(self) -> str:
        return "the store is closed"


class _Lost(Exception):
    """The server could not be used: its cause says why."""


class _Retry(_Lost):
    """The server could not be used before anything was changed."""


def _opener(timeout: float) -> Callable[[Any], None]:
    """
    The pool's ``cp_openfun``: each statement is its own transaction, and
    the server cancels one (or its wait for a lock) that outlasts the
    store's ``timeout``, which the store has given up on by then.
    """
    milliseconds = max(1, math.ceil(timeout * 1000))

    def opened(connection: Any) -> None:
        connection.autocommit = True
        cursor = connection.cursor()
        try:
            cursor.execute(
                f"SET statement_timeout = {milliseconds};"
                f" SET lock_timeout = {milliseconds}"
            )
        finally:
            cursor.close()

    return opened


class _Connection:
    """
    The pool's connection of the current thread, for
    ``ConnectionPool.runWithConnection``: a rollback that fails (the
    connection is dead) drops the connection, quietly, so that the next
    operation of this thread connects again.
    """

    def __init__(self, pool: "adbapi.ConnectionPool") -> None:
        self._pool = pool
        try:
            self.raw: Any = pool.connect()
        except pool.dbapi.Error as e:
            # A connection string the driver refuses: its text may quote
            # the password, so only its kind is told.
            refused = (pool.dbapi.ProgrammingError, pool.dbapi.InterfaceError)
            if isinstance(e, refused) or _quotes_password(str(e), pool.connargs):
                raise _Lost(
                    f"the driver refused the connection string ({type(e).__name__})"
                ) from None
            raise

    def commit(self) -> None:
        """Nothing to do: the connection is in autocommit mode."""

    def rollback(self) -> None:
        if self.raw.closed:
            self._pool.disconnect(self.raw)


class _Pool(adbapi.ConnectionPool):
    """An adbapi pool whose connections roll back as :class:`_Connection`."""

    # adbapi's documented hook; its stub names only its own class.
    connectionFactory = _Connection  # type: ignore[assignment]


class _Call:
    """
    One operation's statements on one connection, and whether the server
    could have changed anything yet (``safe`` while it could not).
    """

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor
        self.safe = True
        self.in_transaction = False

    def read(self, sql: str, parameters: Tuple[Any, ...] = ()) -> Any:
        """Run a statement that changes nothing; its first row."""
        self.cursor.execute(sql, parameters)
        return self.cursor.fetchone()

    def write(self, sql: str, parameters: Tuple[Any, ...] = ()) -> int:
        """Run a statement (committed at once); the rows it changed."""
        self.safe = False
        self.cursor.execute(sql, parameters)
        return int(self.cursor.rowcount)

    def begin(self, sql: str, parameters: Tuple[Any, ...] = ()) -> Any:
        """Begin a transaction with ``sql``; its last statement's first row."""
        self.in_transaction = True
        self.cursor.execute(f"BEGIN; {sql}", parameters)
        return self.cursor.fetchone()

    def commit(self, sql: str = "", parameters: Tuple[Any, ...] = ()) -> None:
        """Run ``sql``, then commit the transaction."""
        self.safe = False
        self.cursor.execute(f"{sql}; COMMIT" if sql else "COMMIT", parameters)
        self.in_transaction = False


class PostgresStore:
    """
    A :class:`~shiji.storage.Store` on the PostgreSQL database ``dsn``.

    :param dsn: a libpq connection string, as a URL
        (``postgresql://user:password@host:5432/database?sslmode=require``)
        or as ``key=value`` pairs (``host=... dbname=...``).
    :param prefix: the start of the tables' names (lowercase letters,
        digits and underscores).
    :param connections: the most connections (and threads) the store opens.
    :param connect_timeout: seconds to wait for a connection to be made,
        unless ``dsn`` says.
    :param timeout: seconds an operation may take (waiting for a
        connection, for the server, for a row another holds) before it
        fails with ``StorageUnavailableError``; a server that stopped
        answering holds the pool's threads until it answers or its
        connections break, and the operations queued meanwhile fail so.
    :raises ImportError: neither ``psycopg2`` nor ``psycopg2cffi`` is
        installed.
    :raises ValueError: ``prefix`` or ``connections`` is not valid.
    """

    def __init__(
        self,
        dsn: str,
        prefix: str = "shiji_store",
        connections: int = 3,
        connect_timeout: float = 5.0,
        timeout: float = 10.0,
    ) -> None:
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(
                f"prefix must be lowercase letters, digits and _, not {prefix!r}"
            )
        if connections < 1:
            raise ValueError(f"connections must be 1 or more, not {connections!r}")
        check_expiry(timeout, "timeout")
        self.timeout = timeout
        driver = _driver()
        self._unreachable: Tuple[Type[BaseException], ...] = (
            driver.OperationalError,
            driver.InterfaceError,
            adbapi.ConnectionLost,
        )
        self._database_error: Type[BaseException] = driver.DatabaseError
        self._connections = connections
        self._keys = f"{prefix}_keys"
        self._locks = f"{prefix}_locks"
        self._pool = _Pool(
            driver.__name__,
            _with_timeout(dsn, connect_timeout),
            cp_min=1,
            cp_max=connections,
            cp_noisy=False,
            cp_openfun=_opener(timeout),
        )
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._next_purge = 0.0
        # When each connection (by id) was last used.
        self._used: Dict[int, float] = {}
        self._pending: List[Deferred[Any]] = []
        self._closed = False
        self._outage = OutageLog(shown_dsn(dsn))

    # The pool

    def _run(
        self, operation: Callable[[_Call], _T], writes: bool = True
    ) -> "Deferred[_T]":
        """
        Run ``operation`` in a thread of the pool; tried again (once per
        connection of the pool, and once more) while the server could not be
        used before anything was changed.
        """
        if self._closed:
            return fail(unavailable(_Closed()))

        def attempt(tries: int) -> "Deferred[_T]":
            d: Deferred[_T] = self._pool.runWithConnection(
                self._perform, operation, writes
            )
            return d.addErrback(failed, tries + 1)

        def failed(failure: Failure, tries: int) -> "Deferred[_T]":
            error: BaseException = failure.value  # type: ignore[assignment]
            # Each try that failed so dropped a dead connection: after a
            # restart, every connection of the pool may be dead.
            if (
                isinstance(error, _Retry)
                and tries <= self._connections
                and not self._closed
            ):
                return attempt(tries)
            if isinstance(error, _Lost):
                error = error.__cause__ or error
            elif not isinstance(error, self._unreachable):
                return failure  # type: ignore[return-value]
            raise unavailable(error) from error

        result = attempt(0)
        result.addTimeout(self.timeout, global_reactor())
        result.addErrback(self._timed_out)
        self._pending.append(result)

        def done(outcome: Any) -> Any:
            self._pending.remove(result)
            return outcome

        return self._outage.watch(result.addBoth(done))

    def _timed_out(self, failure: Failure) -> Failure:
        error = failure.value
        if isinstance(error, defer.TimeoutError):
            raise unavailable(error) from error
        return failure

    def _perform(
        self, connection: _Connection, operation: Callable[[_Call], _T], writes: bool
    ) -> _T:
        """In a thread of the pool: the operation on its connection."""
        raw = connection.raw
        call = _Call(None)
        try:
            try:
                call.cursor = raw.cursor()
                now = time.monotonic()
                if now - self._used.get(id(raw), now) > IDLE_CHECK or _readable(raw):
                    call.read("SELECT 1")
                self._used[id(raw)] = now
                if not self._schema_ready:
                    self._create_tables(call)
                if writes and now >= self._next_purge:
                    self._next_purge = now + PURGE_INTERVAL
                    self._purge(call)
                return operation(call)
            finally:
                if call.in_transaction:
                    with contextlib.suppress(Exception):
                        call.cursor.execute("ROLLBACK")
                with contextlib.suppress(Exception):
                    call.cursor.close()
        except Exception as e:
            if self._lost(e, connection):
                self._used.pop(id(raw), None)
                raise (_Retry() if call.safe else _Lost()) from e
            raise

    def _lost(self, error: Exception, connection: _Connection) -> bool:
        """Whether ``error`` says the server cannot be used."""
        return (
            isinstance(error, self._unreachable)
            or getattr(error, "pgcode", None) == _READ_ONLY
            # psycopg2cffi: a connection closed under a query.
            or (isinstance(error, self._database_error) and bool(connection.raw.closed))
        )

    def _create_tables(self, call: _Call) -> None:
        """Create the tables unless they exist (safe to do again)."""
        with self._schema_lock:
            if self._schema_ready:
                return
            keys, locks = self._keys, self._locks
            found = call.read(
                "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL",
                (keys, locks),
            )
            if found[0]:
                # Made already (maybe on a server that only reads).
                self._schema_ready = True
                return
            # Hosts starting at once must not create them side by side.
            call.begin(f"""SELECT pg_advisory_xact_lock({_SCHEMA_LOCK}, 0);
CREATE TABLE IF NOT EXISTS {keys} (
    key BYTEA PRIMARY KEY,
    kind SMALLINT NOT NULL,
    value BYTEA,
    items BYTEA[],
    expires DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS {keys}_expires ON {keys} (expires)
    WHERE expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS {locks} (
    name BYTEA PRIMARY KEY,
    owner BYTEA NOT NULL,
    expires DOUBLE PRECISION NOT NULL
);
SELECT 1""")
            call.cursor.execute("COMMIT")
            call.in_transaction = False
            self._schema_ready = True

    def _purge(self, call: _Call) -> None:
        """Delete the rows that expired over ``PURGE_GRACE`` seconds ago."""
        # Done again at will: the operation is still safe to try again.
        call.cursor.execute(
            f"DELETE FROM {self._keys} WHERE expires <= {_NOW} - %s;"
            f" DELETE FROM {self._locks} WHERE expires <= {_NOW} - %s",
            (PURGE_GRACE, PURGE_GRACE),
        )

    def _locked(
        self, call: _Call, key: str, columns: str, kind: int, items: Optional[str]
    ) -> Any:
        """
        Begin a transaction: make ``key``'s row (of ``kind``, holding
        ``items``) unless it exists, lock it, and read ``columns`` and
        whether it expired.
        """
        return call.begin(
            f"INSERT INTO {self._keys} (key, kind, value, items, expires)"
            f" VALUES (%s, %s, NULL, {items or 'NULL'}, NULL)"
            " ON CONFLICT (key) DO NOTHING;"
            f" SELECT kind, {_EXPIRED}, expires IS NULL AND value IS NULL"
            f" AND items {'IS NULL' if items is None else '= ' + items}, {columns}"
            f" FROM {self._keys} WHERE key = %s FOR UPDATE",
            (_b(key), kind, _b(key)),
        )

    # Values

    def get(self, key: str) -> "Deferred[Optional[str]]":
        def get(call: _Call) -> Optional[str]:
            row = call.read(
                f"SELECT kind, value FROM {self._keys} WHERE key = %s AND {_LIVE}",
                (_b(key),),
            )
            if row is None:
                return None
            _check_kind(key, row[0], VALUE)
            return _s(row[1])

        return self._run(get, writes=False)

    def set(
        self, key: str, value: str, expires_in: Optional[float] = None
    ) -> "Deferred[None]":
        def set_(call: _Call) -> None:
            call.write(
                f"INSERT INTO {self._keys} (key, kind, value, items, expires)"
                f" VALUES (%s, %s, %s, NULL, {_NOW} + %s::float8)"
                " ON CONFLICT (key) DO UPDATE SET kind = excluded.kind,"
                " value = excluded.value, items = NULL, expires = excluded.expires",
                (_b(key), VALUE, _b(value), _seconds(expires_in)),
            )

        return refused_expiry(expires_in) or self._run(set_)

    def add(
        self, key: str, value: str, expires_in: Optional[float] = None
    ) -> "Deferred[bool]":
        def add(call: _Call) -> bool:
            return (
                call.write(
                    f"INSERT INTO {self._keys} AS k (key, kind, value, items, expires)"
                    f" VALUES (%s, %s, %s, NULL, {_NOW} + %s::float8)"
                    " ON CONFLICT (key) DO UPDATE SET kind = excluded.kind,"
                    " value = excluded.value, items = NULL,"
                    f" expires = excluded.expires WHERE k.expires <= {_NOW}",
                    (_b(key), VALUE, _b(value), _seconds(expires_in)),
                )
                == 1
            )

        return refused_expiry(expires_in) or self._run(add)

    def replace(
        self, key: str, value: str, expires_in: Optional[float] = None
    ) -> "Deferred[bool]":
        def replace(call: _Call) -> bool:
            # The kind it had (before the update), and whether it was updated.
            call.write(
                f"WITH old AS (SELECT kind FROM {self._keys}"
                f" WHERE key = %s AND {_LIVE}), new AS (UPDATE {self._keys}"
                f" SET value = %s, expires = {_NOW} + %s::float8"
                f" WHERE key = %s AND kind = %s AND {_LIVE} RETURNING 1)"
                " SELECT (SELECT kind FROM old), (SELECT count(*) FROM new)",
                (_b(key), _b(value), _seconds(expires_in), _b(key), VALUE),
            )
            kind, updated = call.cursor.fetchone()
            if kind is not None:
                _check_kind(key, kind, VALUE)
            return bool(updated)

        return refused_expiry(expires_in) or self._run(replace)

    def delete(self, key: str) -> "Deferred[bool]":
        def delete(call: _Call) -> bool:
            call.write(
                f"DELETE FROM {self._keys} WHERE key = %s RETURNING {_LIVE}",
                (_b(key),),
            )
            row = call.cursor.fetchone()
            return row is not None and bool(row[0])

        return self._run(delete)

    def expire(self, key: str, expires_in: float) -> "Deferred[bool]":
        def expire(call: _Call) -> bool:
            return (
                call.write(
                    f"UPDATE {self._keys} SET expires = {_NOW} + %s::float8"
                    f" WHERE key = %s AND {_LIVE}",
                    (_seconds(expires_in), _b(key)),
                )
                == 1
            )

        return refused_expiry(expires_in, True) or self._run(expire)

    def incr(
        self, key: str, amount: int = 1, expires_in: Optional[float] = None
    ) -> "Deferred[int]":
        def incr(call: _Call) -> int:
            kind, expired, made, value = self._locked(call, key, "value", VALUE, None)
            if made or expired:
                # A new counter, from 0, with the expiry asked for.
                count = parse_count(key, "0", amount)
                call.commit(
                    f"UPDATE {self._keys} SET kind = %s, value = %s, items = NULL,"
                    f" expires = {_NOW} + %s::float8 WHERE key = %s",
                    (VALUE, _b(str(count)), _seconds(expires_in), _b(key)),
                )
                return count
            _check_kind(key, kind, VALUE)
            count = parse_count(key, _s(value), amount)
            call.commit(
                f"UPDATE {self._keys} SET value = %s WHERE key = %s",
                (_b(str(count)), _b(key)),
            )
            return count

        if isinstance(amount, bool) or not isinstance(amount, int):
            return fail(ValueError(f"amount must be an integer, not {amount!r}"))
        return refused_expiry(expires_in) or self._run(incr)

    # Lists

    def push(
        self, key: str, value: str, cap: int, expires_in: Optional[float] = None
    ) -> "Deferred[int]":
        def push(call: _Call) -> int:
            kind, expired, made, length = self._locked(
                call, key, "cardinality(items)", LIST, "'{}'::bytea[]"
            )
            if made or expired:
                call.commit(
                    f"UPDATE {self._keys} SET kind = %s, value = NULL,"
                    f" items = ARRAY[%s::bytea], expires = {_NOW} + %s::float8"
                    " WHERE key = %s",
                    (LIST, _b(value), _seconds(expires_in), _b(key)),
                )
                return 1
            _check_kind(key, kind, LIST)
            length = int(length or 0) + 1
            # The list and the new item, less the oldest past the cap.
            call.commit(
                f"UPDATE {self._keys} SET items = (items || %s::bytea)[%s:],"
                f" expires = coalesce({_NOW} + %s::float8, expires) WHERE key = %s",
                (_b(value), max(1, length - cap + 1), _seconds(expires_in), _b(key)),
            )
            return min(length, cap)

        try:
            check_cap(cap)
        except ValueError:
            return fail()
        return refused_expiry(expires_in) or self._run(push)

    def pop(self, key: str) -> "Deferred[Optional[str]]":
        def pop(call: _Call) -> Optional[str]:
            row = call.begin(
                f"SELECT kind, {_EXPIRED}, items[1], cardinality(items)"
                f" FROM {self._keys} WHERE key = %s FOR UPDATE",
                (_b(key),),
            )
            if row is None or row[1]:
                call.commit()
                return None
            _check_kind(key, row[0], LIST)
            if (row[3] or 0) <= 1:
                # The last item: the list goes with it.
                call.commit(f"DELETE FROM {self._keys} WHERE key = %s", (_b(key),))
            else:
                call.commit(
                    f"UPDATE {self._keys} SET items = items[2:] WHERE key = %s",
                    (_b(key),),
                )
            return None if row[2] is None else _s(row[2])

        return self._run(pop)

    def items(self, key: str) -> "Deferred[List[str]]":
        def items(call: _Call) -> List[str]:
            row = call.read(
                f"SELECT kind, items FROM {self._keys} WHERE key = %s AND {_LIVE}",
                (_b(key),),
            )
            if row is None:
                return []
            _check_kind(key, row[0], LIST)
            return [_s(item) for item in row[1] or ()]

        return self._run(items, writes=False)

    # Locks

    def acquire(self, name: str, owner: str, lease: float) -> "Deferred[bool]":
        def acquire(call: _Call) -> bool:
            return (
                call.write(
                    f"INSERT INTO {self._locks} AS l (name, owner, expires)"
                    f" VALUES (%s, %s, {_NOW} + %s::float8) ON CONFLICT (name)"
                    " DO UPDATE SET owner = excluded.owner, expires = excluded.expires"
                    f" WHERE l.owner = excluded.owner OR l.expires <= {_NOW}",
                    (_b(name), _b(owner), _seconds(lease)),
                )
                == 1
            )

        return refused_expiry(lease, True, "lease") or self._run(acquire)

    def renew(self, name: str, owner: str, lease: float) -> "Deferred[bool]":
        def renew(call: _Call) -> bool:
            return (
                call.write(
                    f"UPDATE {self._locks} SET expires = {_NOW} + %s::float8"
                    f" WHERE name = %s AND owner = %s AND expires > {_NOW}",
                    (_seconds(lease), _b(name), _b(owner)),
                )
                == 1
            )

        return refused_expiry(lease, True, "lease") or self._run(renew)

    def release(self, name: str, owner: str) -> "Deferred[bool]":
        def release(call: _Call) -> bool:
            call.write(
                f"DELETE FROM {self._locks} WHERE name = %s AND owner = %s"
                f" RETURNING expires > {_NOW}",
                (_b(name), _b(owner)),
            )
            row = call.cursor.fetchone()
            return row is not None and bool(row[0])

        return self._run(release)

    def close(self) -> "Deferred[None]":
        """
        Close the pool's connections and end its threads, once the
        operations already asked for are done.
        """
        if self._closed:
            return succeed(None)
        self._closed = True
        pending = list(self._pending)
        result: Deferred[None] = Deferred()

        def shut(_: object = None) -> None:
            if pending:
                pending.pop().addBoth(shut)
                return
            self._pool.close()
            result.callback(None)

        shut()
        return result


def _readable(connection: Any) -> bool:
    """
    Whether the idle ``connection`` has something to read: the server
    closed it (it restarted, or ended the session), or sent a notice.
    """
    try:
        poller = select.poll()
        poller.register(connection.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except Exception:  # closed, or no poll() here: check it
        return True


_PASSWORD_PAIR = re.compile(r"""password\s*=\s*('(?:[^'\\]|\\.)*'|\S*)""", re.I)


def shown_dsn(dsn: str) -> str:
    """``dsn`` without its password, for the log; never raises."""
    if "://" not in dsn:
        return _PASSWORD_PAIR.sub("password=***", dsn)
    return shown_url(dsn, user=True)


def _quotes_password(text: str, connargs: Tuple[Any, ...]) -> bool:
    """Whether ``text`` holds the password of the DSN in ``connargs``."""
    dsn = str(connargs[0]) if connargs else ""
    if "://" in dsn:
        userinfo = dsn.partition("://")[2].rpartition("@")[0]
        password = userinfo.partition(":")[2]
        secrets = [password, unquote(password)]
    else:
        secrets = [m.group(1).strip("'") for m in _PASSWORD_PAIR.finditer(dsn)]
    return any(secret and secret in text for secret in secrets)


def _with_timeout(dsn: str, seconds: float) -> str:
    """``dsn`` with a ``connect_timeout``, unless it has one."""
    if "connect_timeout" in dsn:
        return dsn
    timeout = max(1, round(seconds))
    if "://" not in dsn:
        return f"{dsn} connect_timeout={timeout}"
    return f"{dsn}{'&' if '?' in dsn else '?'}connect_timeout={timeout}"


def _b(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _s(data: Any) -> str:
    return bytes(data).decode("utf-8", "surrogatepass")


def _seconds(expires_in: Optional[float]) -> Optional[float]:
    return None if expires_in is None else float(expires_in)


def _check_kind(key: str, kind: int, wanted: int) -> None:
    if kind != wanted:
        held = "a list" if kind == LIST else "a value"
        asked = "a list" if wanted == LIST else "a value"
        raise ValueError(f"{key!r} holds {held}, not {asked}")
