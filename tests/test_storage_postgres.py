"""
The shared store on a real PostgreSQL server (shiji._storage_postgres):
every case of tests/test_storage.py that takes only a ``store``, then what
only PostgreSQL does (its tables, the server going away and coming back,
two hosts on one database).
"""

# ruff: noqa: F811 (the fixtures imported from postgres_server are parameters)

import inspect
import time

import pytest
import pytest_twisted
import test_storage
from postgres_server import fresh_postgres, postgres_server  # noqa: F401 (fixtures)
from twisted.internet.defer import gatherResults

from shiji import _storage_postgres
from shiji._storage_postgres import PostgresStore
from shiji.storage import StorageUnavailableError

try:
    _storage_postgres._driver()
except ImportError:
    pytest.skip(
        "neither psycopg2 nor psycopg2cffi is installed for this interpreter:"
        " the PostgreSQL store needs one (pip install psycopg2-binary; on"
        " PyPy, psycopg2cffi)",
        allow_module_level=True,
    )

failure_of, sleep = test_storage.failure_of, test_storage.sleep
SHORT, PAST_SHORT = test_storage.SHORT, test_storage.PAST_SHORT


def _conformance():
    """The cases of tests/test_storage.py that take a ``store`` alone."""
    for name, case in sorted(vars(test_storage).items()):
        if (
            name.startswith("test_")
            and callable(case)
            and list(inspect.signature(case).parameters) == ["store"]
        ):
            yield name, case


globals().update(_conformance())


class logged_errors:
    """Collects the errors logged (with a failure) until ``stop()``."""

    def __init__(self):
        from twisted.logger import globalLogPublisher

        self._publisher = globalLogPublisher
        self.events = []
        self._publisher.addObserver(self._observe)

    def _observe(self, event):
        if "log_failure" in event:
            self.events.append(event)

    def stop(self):
        self._publisher.removeObserver(self._observe)
        return self.events


async def closing(opened):
    from twisted.internet import reactor

    await opened.close().addTimeout(30, reactor)


@pytest_twisted.async_yield_fixture
async def store(fresh_postgres):
    """A store on the test server's database, without tables at first."""
    opened = PostgresStore(fresh_postgres.dsn)
    try:
        yield opened
    finally:
        await closing(opened)


def test_the_shared_cases_are_all_here():
    names = dict(_conformance())
    assert len(names) >= 20
    assert "test_values_with_nul_characters_round_trip" in names
    assert "test_concurrent_increments_each_count_once" in names


# The tables


@pytest_twisted.ensureDeferred
async def test_tables_are_made_on_first_use_under_the_prefix(fresh_postgres):
    first = PostgresStore(fresh_postgres.url, prefix="app_one")
    second = PostgresStore(fresh_postgres.dsn, prefix="app_two")
    try:
        assert fresh_postgres.psql("SELECT count(*) FROM pg_tables WHERE"
                                   " tablename LIKE 'app\\_%'").strip() == "0"  # fmt: skip
        await first.set("ключ", "one")
        await second.set("ключ", "two")
        assert await first.get("ключ") == "one"
        assert await second.get("ключ") == "two"
        tables = fresh_postgres.psql(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'app\\_%'"
            " ORDER BY tablename"
        )
        assert tables.split() == [
            "app_one_keys",
            "app_one_locks",
            "app_two_keys",
            "app_two_locks",
        ]
        rows = fresh_postgres.psql(
            "SELECT convert_from(key, 'UTF8'), kind, convert_from(value, 'UTF8'),"
            " expires IS NULL FROM app_one_keys"
        )
        assert rows == "ключ|0|one|t\n"
    finally:
        await closing(first)
        await closing(second)
        fresh_postgres.psql(
            "DROP TABLE app_one_keys, app_one_locks, app_two_keys, app_two_locks"
        )


def test_a_prefix_is_an_identifier(postgres_server):
    for prefix in ("", "Shiji", "a-b", "a;DROP TABLE x", "1a"):
        with pytest.raises(ValueError):
            PostgresStore(postgres_server.dsn, prefix=prefix)
    with pytest.raises(ValueError):
        PostgresStore(postgres_server.dsn, connections=0)


@pytest_twisted.ensureDeferred
async def test_expiry_is_the_servers_clock(store, fresh_postgres):
    await store.set("a", "v", expires_in=100)
    await store.acquire("lock", "me", 50)
    server_now = float(
        fresh_postgres.psql("SELECT extract(epoch FROM clock_timestamp())")
    )
    expires = fresh_postgres.psql(
        "SELECT expires FROM shiji_store_keys UNION ALL"
        " SELECT expires FROM shiji_store_locks"
    ).split()
    assert server_now + 95 < float(expires[0]) <= server_now + 100
    assert server_now + 45 < float(expires[1]) <= server_now + 50


@pytest_twisted.ensureDeferred
async def test_long_expired_rows_are_purged(store, fresh_postgres, monkeypatch):
    monkeypatch.setattr(_storage_postgres, "PURGE_GRACE", 0.0)
    monkeypatch.setattr(_storage_postgres, "PURGE_INTERVAL", 0.0)
    await store.set("gone", "v", expires_in=SHORT)
    await store.push("gone-list", "x", cap=3, expires_in=SHORT)
    await store.acquire("gone-lock", "me", SHORT)
    await store.set("kept", "v")
    await sleep(PAST_SHORT)
    # Expired rows stay until a write purges them.
    count = (
        "SELECT (SELECT count(*) FROM shiji_store_keys)"
        " + (SELECT count(*) FROM shiji_store_locks)"
    )
    assert fresh_postgres.psql(count).strip() == "4"
    await store.set("other", "v")
    assert fresh_postgres.psql(count).strip() == "2"
    assert await store.get("kept") == "v"


@pytest_twisted.ensureDeferred
async def test_a_closed_store_is_unavailable(postgres_server):
    opened = PostgresStore(postgres_server.dsn)
    await opened.set("closed", "b")
    await opened.close()
    assert isinstance(await failure_of(opened.get("closed")), StorageUnavailableError)
    await opened.close()  # twice is harmless


@pytest_twisted.ensureDeferred
async def test_close_waits_for_the_operations_asked_for(store):
    writes = [store.set(f"k{i}", str(i)) for i in range(20)]
    await closing(store)
    assert await gatherResults(writes) == [None] * 20


# The server going away


@pytest_twisted.ensureDeferred
async def test_a_stopped_server_is_unavailable_until_it_is_back(store, fresh_postgres):
    await store.set("kept", "v")
    assert await store.incr("n") == 1
    errors = logged_errors()
    fresh_postgres.stop()
    for call in (
        lambda: store.get("kept"),
        lambda: store.set("kept", "w"),
        lambda: store.incr("n"),
        lambda: store.items("l"),
        lambda: store.acquire("lock", "me", 60),
    ):
        started = time.monotonic()
        error = await failure_of(call())
        assert isinstance(error, StorageUnavailableError), repr(error)
        assert error.http_status == 503 and error.error_code == 218
        assert error.__cause__ is not None
        assert type(error.__cause__).__module__.startswith("psycopg2")
        assert time.monotonic() - started < 10
    fresh_postgres.start()
    # The same store: its connections were dropped, and are made again.
    assert await store.get("kept") == "v"
    assert await store.incr("n") == 2
    assert await store.acquire("lock", "me", 60) is True
    # Answered, not logged as errors.
    assert errors.stop() == []


@pytest_twisted.ensureDeferred
async def test_a_restarted_server_is_used_at_once(store, fresh_postgres):
    # Every connection of the pool used, then the server restarted under
    # them: each next operation finds its connection dead before anything
    # is changed (checking it, reading, or in a transaction not committed),
    # and is tried again on another connection, or a new one.
    await gatherResults([store.incr("n") for _ in range(10)])
    fresh_postgres.stop()
    fresh_postgres.start()
    counts = await gatherResults([store.incr("n") for _ in range(10)])
    assert sorted(counts) == list(range(11, 21))
    fresh_postgres.stop()
    fresh_postgres.start()
    await gatherResults([store.set(f"k{i}", "w") for i in range(10)])
    fresh_postgres.stop()
    fresh_postgres.start()
    assert await gatherResults([store.get(f"k{i}") for i in range(10)]) == ["w"] * 10
    assert await store.get("n") == "20"


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_each_operation_is_answered_right_after_a_restart(store, fresh_postgres):
    operations = [
        (lambda: store.get("k"), "v"),
        (lambda: store.set("k", "v"), None),
        (lambda: store.add("k", "w"), False),
        (lambda: store.expire("k", 60), True),
        (lambda: store.incr("n"), 2),
        (lambda: store.push("l", "b", cap=5), 2),
        (lambda: store.pop("l"), "a"),
        (lambda: store.items("l"), ["b"]),
        (lambda: store.acquire("lock", "me", 60), True),
        (lambda: store.renew("lock", "me", 60), True),
        (lambda: store.release("lock", "me"), True),
        (lambda: store.delete("k"), True),
    ]
    await store.set("k", "v")
    await store.incr("n")
    await store.push("l", "a", cap=5)
    await store.acquire("lock", "me", 60)
    for operation, expected in operations:
        # Several connections in the pool, all of them left dead.
        await gatherResults([store.get("k") for _ in range(6)])
        fresh_postgres.stop()
        fresh_postgres.start()
        assert await operation() == expected


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_a_silent_server_is_unavailable_after_the_timeout(fresh_postgres):
    opened = PostgresStore(fresh_postgres.dsn, timeout=1.0)
    try:
        await opened.set("kept", "v")
        fresh_postgres.pause()
        try:
            for call in (lambda: opened.get("kept"), lambda: opened.set("late", "x")):
                started = time.monotonic()
                error = await failure_of(call())
                assert isinstance(error, StorageUnavailableError), repr(error)
                assert 0.9 < time.monotonic() - started < 5
        finally:
            fresh_postgres.resume()
        assert await opened.get("kept") == "v"
        # What was asked meanwhile may be done once the server answers.
        assert await opened.incr("n") == 1
    finally:
        await closing(opened)


@pytest_twisted.ensureDeferred
async def test_a_read_only_server_is_unavailable_for_writes(store, fresh_postgres):
    await store.set("kept", "v")
    fresh_postgres.psql(
        "ALTER DATABASE shiji_test SET default_transaction_read_only = on"
    )
    try:
        # New connections are read-only: the tables exist, reads answer.
        standby = PostgresStore(fresh_postgres.dsn)
        try:
            assert await standby.get("kept") == "v"
            error = await failure_of(standby.set("kept", "w"))
            assert isinstance(error, StorageUnavailableError), repr(error)
            assert error.__cause__.pgcode == "25006"
            error = await failure_of(standby.incr("n"))
            assert isinstance(error, StorageUnavailableError), repr(error)
        finally:
            await closing(standby)
    finally:
        fresh_postgres.psql(
            "BEGIN READ WRITE;"
            " ALTER DATABASE shiji_test SET default_transaction_read_only = off;"
            " COMMIT"
        )
    assert await store.get("kept") == "v"


# Two hosts on one database


@pytest_twisted.ensureDeferred
async def test_two_stores_share_counters_lists_and_locks(fresh_postgres):
    one, two = PostgresStore(fresh_postgres.url), PostgresStore(fresh_postgres.dsn)
    try:
        counts = await gatherResults(
            [store.incr("hits") for _ in range(40) for store in (one, two)]
        )
        assert sorted(counts) == list(range(1, 81))
        assert await one.get("hits") == await two.get("hits") == "80"
        lengths = await gatherResults(
            [store.push("l", f"{i}", cap=5) for i in range(20) for store in (one, two)]
        )
        assert sorted(lengths)[-1] == 5
        assert len(await one.items("l")) == 5
        # One lock, one holder, whoever asks first.
        held = await gatherResults(
            [
                store.acquire("cron", name, 60)
                for name, store in (("one", one), ("two", two))
            ]
        )
        assert sorted(held) == [False, True]
        holder, other = ("one", "two") if held[0] else ("two", "one")
        stores = {"one": one, "two": two}
        assert await stores[other].acquire("cron", other, 60) is False
        assert await stores[other].renew("cron", other, 60) is False
        assert await stores[holder].release("cron", holder) is True
        assert await stores[other].acquire("cron", other, 60) is True
        assert await stores[holder].acquire("cron", holder, 60) is False
        assert await one.add("once", "one") is True
        assert await two.add("once", "two") is False
        assert await two.get("once") == "one"
    finally:
        await closing(one)
        await closing(two)


@pytest_twisted.ensureDeferred
async def test_many_adds_of_one_key_at_once_store_one(fresh_postgres):
    one, two = PostgresStore(fresh_postgres.url), PostgresStore(fresh_postgres.dsn)
    try:
        added = await gatherResults(
            [store.add("k", f"{i}") for i in range(10) for store in (one, two)]
        )
        assert added.count(True) == 1
    finally:
        await closing(one)
        await closing(two)


# What the log and the server are told


def _url_with_password(server, password="s3cret"):
    user_and_host = server.url.split("//", 1)[1]
    user, _, place = user_and_host.partition("@")
    return f"postgresql://{user}:{password}@{place}"


@pytest_twisted.ensureDeferred
async def test_an_outage_is_logged_once_without_the_password(fresh_postgres):
    from apitools import log_lines

    url = _url_with_password(fresh_postgres)
    opened = PostgresStore(url)
    shown = fresh_postgres.url  # the same, without the password
    try:
        with log_lines("shiji.storage") as lines:
            await opened.set("kept", "v")
            fresh_postgres.stop()
            for _ in range(3):
                error = await failure_of(opened.get("kept"))
                assert isinstance(error, StorageUnavailableError)
            assert len(lines) == 1, lines
            assert lines[0].startswith(
                f"The shared store {shown} cannot be reached ("
            ), lines
            assert lines[0].endswith(
                "); calls that need it are answered 503 until it answers again"
            )
            fresh_postgres.start()
            assert await opened.get("kept") == "v"
            assert await opened.get("kept") == "v"
        assert lines[1:] == [f"The shared store {shown} answers again"]
        assert not any("s3cret" in line for line in lines)
    finally:
        await closing(opened)


@pytest_twisted.ensureDeferred
async def test_the_server_gives_up_on_a_statement_when_the_store_does(fresh_postgres):
    opened = PostgresStore(fresh_postgres.dsn, timeout=1.5)

    def settings(connection):
        cursor = connection.raw.cursor()
        try:
            cursor.execute("SHOW statement_timeout")
            statement = cursor.fetchone()[0]
            cursor.execute("SHOW lock_timeout")
            return statement, cursor.fetchone()[0]
        finally:
            cursor.close()

    try:
        await opened.set("a", "v")
        assert await opened._pool.runWithConnection(settings) == ("1500ms", "1500ms")
    finally:
        await closing(opened)


@pytest_twisted.ensureDeferred
async def test_a_dsn_the_driver_refuses_is_unavailable_without_the_password(
    fresh_postgres,
):
    from apitools import log_lines

    url = _url_with_password(fresh_postgres, "s3cret%zz")
    opened = PostgresStore(url)
    try:
        with log_lines("shiji.storage") as lines:
            error = await failure_of(opened.get("a"))
        assert isinstance(error, StorageUnavailableError), repr(error)
        assert "s3cret" not in repr(error.__cause__)
        assert error.__cause__.__cause__ is None
        assert len(lines) == 1
        assert "s3cret" not in lines[0]
        assert lines[0].startswith(
            f"The shared store {fresh_postgres.url} cannot be reached (_Lost: the"
            " driver refused the connection string ("
        ), lines
    finally:
        await closing(opened)
