"""
What Shiji's SQLite files (the task queue, the shared store) do alike:
create the file for its owner only, and run statements with their cursors
closed at once.
"""

import os
import sqlite3
from typing import Any, List

__all__ = ["change", "change_many", "connect", "create_private", "first", "rows"]


def create_private(path: str) -> None:
    """
    Create the file at ``path``, readable by its owner only, unless it
    exists; raise what the system says if it cannot be read and written.
    """
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.close(os.open(path, os.O_RDWR))
        return
    try:
        os.fchmod(descriptor, 0o600)  # whatever the umask
    finally:
        os.close(descriptor)


def connect(path: str, busy_timeout: float) -> sqlite3.Connection:
    """
    Open ``path`` (created for its owner only; ``:memory:`` too) in
    autocommit mode, usable from any one thread at a time, waiting up to
    ``busy_timeout`` seconds for a lock, in WAL mode unless in memory.
    """
    if path != ":memory:":
        create_private(path)
    connection = sqlite3.connect(
        path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )
    try:
        rows(connection, f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        if path != ":memory:":
            rows(connection, "PRAGMA journal_mode=WAL")
    except BaseException:
        connection.close()
        raise
    return connection


def rows(db: sqlite3.Connection, sql: str, parameters: Any = ()) -> List[Any]:
    """Every row ``sql`` gives."""
    # Cursors are closed at once: PyPy's sqlite3 keeps a statement that is
    # not closed in progress, and a transaction with one cannot commit.
    cursor = db.execute(sql, parameters)
    try:
        return cursor.fetchall()
    finally:
        cursor.close()


def first(db: sqlite3.Connection, sql: str, parameters: Any = ()) -> Any:
    """The first row ``sql`` gives, or ``None``."""
    found = rows(db, sql, parameters)
    return found[0] if found else None


def change(db: sqlite3.Connection, sql: str, parameters: Any = ()) -> int:
    """Run ``sql``; the number of rows it changed."""
    cursor = db.execute(sql, parameters)
    try:
        return cursor.rowcount
    finally:
        cursor.close()


def change_many(db: sqlite3.Connection, sql: str, parameters: Any) -> None:
    """Run ``sql`` once for each of ``parameters``."""
    db.executemany(sql, parameters).close()
