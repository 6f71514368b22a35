"""
Users in a database, through twisted.enterprise.adbapi so that queries run
in threads and never block the reactor. SQLite by default; PostgreSQL with
db_driver = psycopg2.

Sessions are not kept here but in shijid's shared store (see
:mod:`shiji.sessions`); a ``sessions`` table that an earlier version of the
example made is left as it is, unused.
"""

import sqlite3
import time

from twisted.enterprise import adbapi

SCHEMAS = {
    "sqlite3": [
        """CREATE TABLE IF NOT EXISTS users (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            email TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            created REAL NOT NULL)""",
    ],
    "psycopg2": [
        """CREATE TABLE IF NOT EXISTS users (
            id BIGSERIAL PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            created DOUBLE PRECISION NOT NULL)""",
    ],
}


class EmailTaken(Exception):
    """A user with that email exists."""


class UserStore:
    """
    :param driver: ``sqlite3`` or ``psycopg2``.
    :param connect: the driver's connection arguments (a database path for
        SQLite, a DSN for PostgreSQL).
    """

    def __init__(self, driver, connect):
        self.driver = driver
        self.module = sqlite3 if driver == "sqlite3" else __import__(driver)
        self.marker = "?" if driver == "sqlite3" else "%s"
        self.create_schema(driver, connect)
        if driver == "sqlite3":
            # One connection: SQLite serialises writers anyway.
            self.pool = adbapi.ConnectionPool(
                "sqlite3", connect, check_same_thread=False, cp_min=1, cp_max=1
            )
        else:
            # A connection the server closed (a restart) is dropped after
            # the call that finds it so, and made anew for the next.
            self.pool = adbapi.ConnectionPool(driver, connect, cp_reconnect=True)

    @staticmethod
    def create_schema(driver, connect):
        """Create the tables if they are missing (once, at start-up)."""
        module = sqlite3 if driver == "sqlite3" else __import__(driver)
        connection = module.connect(connect)
        try:
            cursor = connection.cursor()
            for statement in SCHEMAS[driver]:
                cursor.execute(statement)
            connection.commit()
        finally:
            connection.close()

    def _sql(self, query):
        return query.replace("?", self.marker)

    def close(self):
        self.pool.close()

    def create_user(self, email, password_hash):
        """A Deferred of the new user's id; fails with EmailTaken."""

        def insert(cursor):
            cursor.execute(self._sql("SELECT 1 FROM users WHERE email = ?"), (email,))
            if cursor.fetchone():
                raise EmailTaken(email)
            try:
                cursor.execute(
                    self._sql(
                        "INSERT INTO users (email, password_hash, created) VALUES (?, ?, ?)"
                    ),
                    (email, password_hash, time.time()),
                )
            except self.module.IntegrityError:
                # A concurrent signup took the email between the two statements.
                raise EmailTaken(email) from None
            cursor.execute(self._sql("SELECT id FROM users WHERE email = ?"), (email,))
            return cursor.fetchone()[0]

        return self.pool.runInteraction(insert)

    def user_by_email(self, email):
        """A Deferred of ``(id, email, password_hash)`` or None."""
        query = self._sql("SELECT id, email, password_hash FROM users WHERE email = ?")
        return self.pool.runQuery(query, (email,)).addCallback(
            lambda rows: rows[0] if rows else None
        )

    def optimize(self):
        """
        A Deferred of the nightly upkeep's statement, once run: SQLite's
        ``PRAGMA optimize`` (which refreshes the query planner's statistics
        where they are stale), PostgreSQL's ``ANALYZE users``.
        """
        statement = "PRAGMA optimize" if self.driver == "sqlite3" else "ANALYZE users"
        return self.pool.runOperation(statement).addCallback(lambda _: statement)
