"""
Where queued tasks and cron ticks are kept: :class:`TaskStore`, the small
interface the task service needs, and :class:`SQLiteTaskStore`, its
implementation on one SQLite file shared by every worker process.

Every method blocks (SQLite waits up to ``busy_timeout`` for another
process's write lock), so the task service calls them off the reactor
thread, one at a time, in a thread of its own. Times are seconds since the
epoch, always passed in by the caller (whose clock tests control).

Claims are atomic: a transaction begun with ``BEGIN IMMEDIATE`` holds the
database's write lock while it picks tasks and marks them claimed, so two
processes never claim the same task. A claim is a lease: the owner renews it
while the task runs; a task whose lease has expired (its process was
killed) is claimed again, unless that run was its last (``max_runs``): it
is then marked failed in the same transaction, so that one process only
learns of it.

The file is created readable by its owner only (mode 0600); SQLite gives
its ``-wal`` and ``-shm`` files the mode of the database. The schema's
version is the database's ``user_version``; :meth:`SQLiteTaskStore.open`
brings an older schema up to date.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from dataclasses import dataclass, replace
from typing import List, Optional, Protocol, Sequence, Tuple

from . import _sqlite

__all__ = ["SQLiteTaskStore", "StoredTask", "TaskStore", "TickClaim"]

#: The states of a task.
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


@dataclass(frozen=True)
class StoredTask:
    """A task as the store keeps it; ``arguments`` is JSON text."""

    id: str
    api: str
    name: str
    arguments: str
    state: str
    #: Runs begun so far, this one included once claimed.
    attempts: int
    run_at: float
    error: Optional[str] = None
    #: Runs it may have in all (``retries`` + 1); ``None`` for a task
    #: queued before the store kept it.
    max_runs: Optional[int] = None


def lost_error(run: int) -> str:
    """What the store keeps of a task whose process ended during ``run``."""
    return f"its process ended during run {run}"


#: What :meth:`TaskStore.claim_tick` found: ``run`` (this process runs the
#: tick), ``taken`` (another process claimed it), ``busy`` (the job's
#: previous run still holds it; the tick is skipped) or ``missed`` (recorded
#: without running, as asked).
TickClaim = str


class TaskStore(Protocol):
    """What the task service needs of a store; every method may block."""

    def open(self) -> None:
        """Create the tables if needed."""

    def close(self) -> None:
        """Release the connection."""

    def enqueue(
        self,
        api: str,
        name: str,
        arguments: str,
        now: float,
        run_at: float,
        max_runs: Optional[int] = None,
    ) -> str:
        """Queue a task that may run ``max_runs`` times; returns its new id."""

    def claim(
        self, owner: str, now: float, lease: float, limit: int
    ) -> List[StoredTask]:
        """
        Claim up to ``limit`` tasks that are due, or whose lease expired,
        for ``owner`` until ``now + lease``; each claim counts an attempt.
        A task whose lease expired during its last run is not claimed but
        marked failed (:func:`lost_error`) and returned in state
        ``failed``.
        """

    def renew(
        self, owner: str, task_ids: Sequence[str], jobs: Sequence[str], until: float
    ) -> None:
        """Extend ``owner``'s leases on these tasks and cron jobs."""

    def finish(self, task_id: str, owner: str, now: float) -> bool:
        """Mark a task done; ``False`` if ``owner`` no longer holds it."""

    def retry(self, task_id: str, owner: str, run_at: float, error: str) -> bool:
        """Queue a failed task again for ``run_at``."""

    def fail(self, task_id: str, owner: str, now: float, error: str) -> bool:
        """Mark a task failed for good."""

    def release(self, owner: str, task_ids: Sequence[str], now: float) -> None:
        """
        Give back tasks ``owner`` could not finish (shutting down): queued
        again at once, the interrupted attempt not counted.
        """

    def purge(self, before: float) -> int:
        """Delete finished tasks and cron ticks older than ``before``."""

    def tasks(self, state: Optional[str] = None) -> List[StoredTask]:
        """Every task (in that state), oldest first."""

    def last_tick(self, job: str) -> Optional[float]:
        """The newest tick of ``job`` claimed so far."""

    def claim_tick(
        self, job: str, tick: float, owner: str, now: float, lease: float, run: bool
    ) -> TickClaim:
        """
        Claim ``job``'s ``tick`` once across processes. With ``run`` the
        claimant runs it unless the job's previous run still holds its
        lease; without, the tick is only recorded (``missed``).
        """

    def end_tick(self, job: str, tick: float, owner: str, outcome: str) -> None:
        """Record a tick's outcome and let the job run again."""


#: The version of the tables below, kept as the database's ``user_version``:
#: 0 before ``max_runs`` was kept.
SCHEMA_VERSION = 1

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS shiji_tasks (
    id TEXT PRIMARY KEY,
    api TEXT NOT NULL,
    name TEXT NOT NULL,
    arguments TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    run_at REAL NOT NULL,
    created REAL NOT NULL,
    finished REAL,
    owner TEXT,
    lease_until REAL,
    error TEXT,
    max_runs INTEGER
)""",
    "CREATE INDEX IF NOT EXISTS shiji_tasks_due ON shiji_tasks (state, run_at)",
    """CREATE TABLE IF NOT EXISTS shiji_cron_ticks (
    job TEXT NOT NULL,
    tick REAL NOT NULL,
    owner TEXT NOT NULL,
    outcome TEXT NOT NULL,
    PRIMARY KEY (job, tick)
)""",
    """CREATE TABLE IF NOT EXISTS shiji_cron_jobs (
    job TEXT PRIMARY KEY,
    last_tick REAL NOT NULL,
    owner TEXT,
    lease_until REAL
)""",
]

_COLUMNS = "id, api, name, arguments, state, attempts, run_at, error, max_runs"


class SQLiteTaskStore:
    """
    :class:`TaskStore` on an SQLite file (or ``":memory:"``), in WAL mode
    so that readers never wait for a writer, with ``busy_timeout`` seconds
    of waiting for another process's write lock.
    """

    def __init__(self, path: str, busy_timeout: float = 10.0) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._connection: Optional[sqlite3.Connection] = None
        # One connection, used by one call at a time.
        self._lock = threading.Lock()

    def open(self) -> None:
        """
        Create the file (mode 0600) and its tables if needed, or bring its
        tables up to date.

        :raises OSError: the file cannot be created.
        :raises sqlite3.Error: it cannot be opened, or is not a database
            of this or an older schema.
        """
        connection = _sqlite.connect(self.path, self.busy_timeout)
        try:
            with _Transaction(connection, self._lock) as db:
                _migrate(db)
        except BaseException:
            connection.close()
            raise
        self._connection = connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise RuntimeError("the task store is not open")
        return self._connection

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db(), self._lock)

    def enqueue(
        self,
        api: str,
        name: str,
        arguments: str,
        now: float,
        run_at: float,
        max_runs: Optional[int] = None,
    ) -> str:
        task_id = uuid.uuid4().hex
        with self._transaction() as db:
            _sqlite.change(
                db,
                "INSERT INTO shiji_tasks (id, api, name, arguments, state, run_at,"
                " created, max_runs) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (task_id, api, name, arguments, QUEUED, run_at, now, max_runs),
            )
        return task_id

    def claim(
        self, owner: str, now: float, lease: float, limit: int
    ) -> List[StoredTask]:
        with self._transaction() as db:
            rows = _sqlite.rows(
                db,
                f"SELECT {_COLUMNS} FROM shiji_tasks"
                " WHERE (state = ? AND run_at <= ?) OR (state = ? AND lease_until <= ?)"
                " ORDER BY run_at LIMIT ?",
                (QUEUED, now, RUNNING, now, limit),
            )
            found = [StoredTask(*row) for row in rows]
            # A lease that expired during the last run: its process ended.
            lost = [
                replace(task, state=FAILED, error=lost_error(task.attempts))
                for task in found
                if task.state == RUNNING
                and task.max_runs is not None
                and task.attempts >= task.max_runs
            ]
            lost_ids = {task.id for task in lost}
            claimed = [
                replace(task, state=RUNNING, attempts=task.attempts + 1)
                for task in found
                if task.id not in lost_ids
            ]
            _sqlite.change_many(
                db,
                "UPDATE shiji_tasks SET state = ?, owner = ?, lease_until = ?,"
                " attempts = attempts + 1 WHERE id = ?",
                [(RUNNING, owner, now + lease, task.id) for task in claimed],
            )
            _sqlite.change_many(
                db,
                "UPDATE shiji_tasks SET state = ?, finished = ?, error = ?,"
                " owner = NULL, lease_until = NULL WHERE id = ?",
                [(FAILED, now, task.error, task.id) for task in lost],
            )
        settled = {task.id: task for task in [*lost, *claimed]}
        return [settled[task.id] for task in found]

    def renew(
        self, owner: str, task_ids: Sequence[str], jobs: Sequence[str], until: float
    ) -> None:
        with self._transaction() as db:
            _sqlite.change_many(
                db,
                "UPDATE shiji_tasks SET lease_until = ? WHERE id = ? AND owner = ?"
                " AND state = ?",
                [(until, task_id, owner, RUNNING) for task_id in task_ids],
            )
            _sqlite.change_many(
                db,
                "UPDATE shiji_cron_jobs SET lease_until = ? WHERE job = ? AND owner = ?",
                [(until, job, owner) for job in jobs],
            )

    def _settle(self, sql: str, parameters: Tuple[object, ...]) -> bool:
        with self._transaction() as db:
            return _sqlite.change(db, sql, parameters) == 1

    def finish(self, task_id: str, owner: str, now: float) -> bool:
        return self._settle(
            "UPDATE shiji_tasks SET state = ?, finished = ?, owner = NULL,"
            " lease_until = NULL WHERE id = ? AND owner = ? AND state = ?",
            (DONE, now, task_id, owner, RUNNING),
        )

    def retry(self, task_id: str, owner: str, run_at: float, error: str) -> bool:
        return self._settle(
            "UPDATE shiji_tasks SET state = ?, run_at = ?, error = ?, owner = NULL,"
            " lease_until = NULL WHERE id = ? AND owner = ? AND state = ?",
            (QUEUED, run_at, error, task_id, owner, RUNNING),
        )

    def fail(self, task_id: str, owner: str, now: float, error: str) -> bool:
        return self._settle(
            "UPDATE shiji_tasks SET state = ?, finished = ?, error = ?, owner = NULL,"
            " lease_until = NULL WHERE id = ? AND owner = ? AND state = ?",
            (FAILED, now, error, task_id, owner, RUNNING),
        )

    def release(self, owner: str, task_ids: Sequence[str], now: float) -> None:
        with self._transaction() as db:
            _sqlite.change_many(
                db,
                "UPDATE shiji_tasks SET state = ?, run_at = ?, owner = NULL,"
                " lease_until = NULL, attempts = attempts - 1"
                " WHERE id = ? AND owner = ? AND state = ?",
                [(QUEUED, now, task_id, owner, RUNNING) for task_id in task_ids],
            )
            _sqlite.change(
                db,
                "UPDATE shiji_cron_jobs SET owner = NULL, lease_until = NULL"
                " WHERE owner = ?",
                (owner,),
            )

    def purge(self, before: float) -> int:
        with self._transaction() as db:
            purged = _sqlite.change(
                db,
                "DELETE FROM shiji_tasks WHERE state IN (?, ?) AND finished < ?",
                (DONE, FAILED, before),
            )
            # The newest tick of each job stays: it marks the last run.
            _sqlite.change(
                db,
                "DELETE FROM shiji_cron_ticks WHERE tick < ? AND tick < (SELECT"
                " last_tick FROM shiji_cron_jobs WHERE shiji_cron_jobs.job ="
                " shiji_cron_ticks.job)",
                (before,),
            )
        return purged

    def tasks(self, state: Optional[str] = None) -> List[StoredTask]:
        with self._transaction() as db:
            if state is None:
                rows = _sqlite.rows(
                    db, f"SELECT {_COLUMNS} FROM shiji_tasks ORDER BY created, rowid"
                )
            else:
                rows = _sqlite.rows(
                    db,
                    f"SELECT {_COLUMNS} FROM shiji_tasks WHERE state = ?"
                    " ORDER BY created, rowid",
                    (state,),
                )
        return [StoredTask(*row) for row in rows]

    def last_tick(self, job: str) -> Optional[float]:
        with self._transaction() as db:
            row = _sqlite.first(
                db, "SELECT last_tick FROM shiji_cron_jobs WHERE job = ?", (job,)
            )
        return None if row is None else float(row[0])

    def claim_tick(
        self, job: str, tick: float, owner: str, now: float, lease: float, run: bool
    ) -> TickClaim:
        with self._transaction() as db:
            inserted = _sqlite.change(
                db,
                "INSERT OR IGNORE INTO shiji_cron_ticks (job, tick, owner, outcome)"
                " VALUES (?, ?, ?, ?)",
                (job, tick, owner, "claimed"),
            )
            if not inserted:
                return "taken"
            row = _sqlite.first(
                db,
                "SELECT owner, lease_until FROM shiji_cron_jobs WHERE job = ?",
                (job,),
            )
            busy = row is not None and row[0] is not None and row[1] > now
            if busy or not run:
                outcome = "busy" if busy else "missed"
                _set_outcome(db, job, tick, outcome)
                _sqlite.change(
                    db,
                    "INSERT INTO shiji_cron_jobs (job, last_tick) VALUES (?, ?)"
                    " ON CONFLICT (job) DO UPDATE SET last_tick ="
                    " max(last_tick, excluded.last_tick)",
                    (job, tick),
                )
                return outcome
            _sqlite.change(
                db,
                "INSERT INTO shiji_cron_jobs (job, last_tick, owner, lease_until)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (job) DO UPDATE SET last_tick ="
                " max(last_tick, excluded.last_tick), owner = excluded.owner,"
                " lease_until = excluded.lease_until",
                (job, tick, owner, now + lease),
            )
        return "run"

    def end_tick(self, job: str, tick: float, owner: str, outcome: str) -> None:
        with self._transaction() as db:
            _set_outcome(db, job, tick, outcome)
            _sqlite.change(
                db,
                "UPDATE shiji_cron_jobs SET owner = NULL, lease_until = NULL"
                " WHERE job = ? AND owner = ?",
                (job, owner),
            )


def _migrate(db: sqlite3.Connection) -> None:
    """Create the tables, or bring those of an older schema up to date."""
    version = _sqlite.first(db, "PRAGMA user_version")[0]
    if version > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"its schema (version {version}) is newer than this Shiji's"
            f" ({SCHEMA_VERSION})"
        )
    if version == SCHEMA_VERSION:
        return
    columns = [row[1] for row in _sqlite.rows(db, "PRAGMA table_info(shiji_tasks)")]
    if columns and "max_runs" not in columns:
        # Tasks queued before have no limit on the runs a crash starts.
        _sqlite.change(db, "ALTER TABLE shiji_tasks ADD COLUMN max_runs INTEGER")
    for statement in _SCHEMA:
        _sqlite.change(db, statement)
    _sqlite.change(db, f"PRAGMA user_version = {SCHEMA_VERSION}")


def _set_outcome(db: sqlite3.Connection, job: str, tick: float, outcome: str) -> None:
    _sqlite.change(
        db,
        "UPDATE shiji_cron_ticks SET outcome = ? WHERE job = ? AND tick = ?",
        (outcome, job, tick),
    )


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK``) under the lock."""

    def __init__(self, connection: sqlite3.Connection, lock: threading.Lock) -> None:
        self._connection = connection
        self._lock = lock

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        try:
            self._connection.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise
        return self._connection

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        try:
            self._connection.execute("COMMIT" if kind is None else "ROLLBACK")
        finally:
            self._lock.release()
