"""
The shared store (shiji.storage): the same cases against every backend,
then what only SQLite does (several processes on one file, its faults).
"""

import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet.defer import gatherResults
from twisted.internet.task import Clock, deferLater

from shiji._storage_memory import MemoryStore
from shiji._storage_sqlite import SQLiteStore
from shiji.storage import StorageUnavailableError, open_store

ROOT = Path(__file__).resolve().parent.parent

#: Short expiries, and a wait that outlasts them.
SHORT, PAST_SHORT = 0.25, 0.4


async def sleep(seconds):
    from twisted.internet import reactor

    await deferLater(reactor, seconds, lambda: None)


async def failure_of(deferred):
    """The exception ``deferred`` fails with (within 30 s)."""
    from twisted.internet import reactor

    try:
        result = await deferred.addTimeout(30, reactor)
    except Exception as e:
        return e
    raise AssertionError(f"succeeded with {result!r}")


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def store_url(request):
    if request.param == "memory":
        return "memory:"
    if request.param == "sqlite":
        return "sqlite:store.sqlite"
    if request.param == "postgres":
        from shiji._storage_postgres import _driver

        try:
            _driver()
        except ImportError as e:
            pytest.skip(str(e))
        server = request.getfixturevalue("fresh_postgres")  # tables dropped
        return server.url
    try:
        server = request.getfixturevalue("redis_server")
    except pytest.FixtureLookupError:
        pytest.skip("redis_server fixture not available")
    server.flush()
    return server.url


@pytest_twisted.async_yield_fixture
async def store(store_url, tmp_path):
    """Every backend, opened empty and closed after the test."""
    from twisted.internet import reactor

    opened = open_store(store_url, base=tmp_path)
    try:
        yield opened
    finally:
        await opened.close().addTimeout(30, reactor)


# Values


@pytest_twisted.ensureDeferred
async def test_get_set_and_replace(store):
    assert await store.get("a") is None
    assert await store.set("a", "one") is None
    assert await store.get("a") == "one"
    await store.set("a", "two")
    assert await store.get("a") == "two"
    await store.set("empty", "")
    assert await store.get("empty") == ""
    assert await store.get("b") is None


@pytest_twisted.ensureDeferred
async def test_values_expire_and_set_replaces_the_expiry(store):
    await store.set("short", "1", expires_in=SHORT)
    await store.set("long", "2", expires_in=60)
    await store.set("kept", "3", expires_in=SHORT)
    await store.set("kept", "4")  # no expiry any more
    await sleep(PAST_SHORT)
    assert await store.get("short") is None
    assert await store.get("long") == "2"
    assert await store.get("kept") == "4"


@pytest_twisted.ensureDeferred
async def test_add_stores_only_if_absent_or_expired(store):
    assert await store.add("a", "first") is True
    assert await store.add("a", "second") is False
    assert await store.get("a") == "first"
    assert await store.add("b", "first", expires_in=SHORT) is True
    assert await store.add("b", "second", expires_in=60) is False
    await sleep(PAST_SHORT)
    assert await store.add("b", "third", expires_in=60) is True
    assert await store.get("b") == "third"
    await store.push("list", "x", cap=5)
    assert await store.add("list", "value") is False
    assert await store.items("list") == ["x"]


@pytest_twisted.ensureDeferred
async def test_replace_stores_only_over_a_live_value(store):
    assert await store.replace("missing", "v") is False
    assert await store.get("missing") is None
    assert await store.add("missing", "first") is True  # nothing was stored

    await store.set("a", "one")
    assert await store.replace("a", "two") is True
    assert await store.get("a") == "two"

    await store.set("n", "5")
    assert await store.incr("n") == 6
    assert await store.replace("n", "counted") is True  # a counter is a value
    assert await store.get("n") == "counted"

    await store.push("list", "x", cap=5)
    with pytest.raises(ValueError):
        await store.replace("list", "value")
    assert await store.items("list") == ["x"]


@pytest_twisted.ensureDeferred
async def test_replace_replaces_the_expiry_and_skips_expired_values(store):
    await store.set("gains", "1")  # no expiry
    await store.set("loses", "2", expires_in=SHORT)
    await store.set("gone", "3", expires_in=SHORT)
    assert await store.replace("gains", "one", expires_in=SHORT) is True
    assert await store.replace("loses", "two") is True
    await sleep(PAST_SHORT)
    assert await store.get("gains") is None
    assert await store.get("loses") == "two"
    assert await store.replace("gone", "three", expires_in=60) is False
    assert await store.get("gone") is None
    with pytest.raises(ValueError):
        await store.replace("loses", "v", expires_in=0)
    assert await store.get("loses") == "two"


@pytest_twisted.ensureDeferred
async def test_delete_removes_a_value_a_counter_or_a_list(store):
    await store.set("value", "v")
    await store.incr("counter")
    await store.push("list", "x", cap=3)
    assert await store.delete("value") is True
    assert await store.delete("counter") is True
    assert await store.delete("list") is True
    assert await store.get("value") is None
    assert await store.incr("counter") == 1
    assert await store.items("list") == []
    assert await store.delete("value") is False
    assert await store.delete("missing") is False
    await store.set("gone", "v", expires_in=SHORT)
    await sleep(PAST_SHORT)
    assert await store.delete("gone") is False


@pytest_twisted.ensureDeferred
async def test_a_key_is_one_thing(store):
    await store.push("k", "x", cap=3)
    await store.set("k", "value")  # set replaces the list
    assert await store.get("k") == "value"
    with pytest.raises(ValueError):
        await store.items("k")
    with pytest.raises(ValueError):
        await store.push("k", "y", cap=3)
    with pytest.raises(ValueError):
        await store.pop("k")
    await store.delete("k")
    await store.push("k", "z", cap=3)
    with pytest.raises(ValueError):
        await store.get("k")
    with pytest.raises(ValueError):
        await store.incr("k")
    assert await store.items("k") == ["z"]
    await store.set("k", "again")
    await store.push("k2", "fresh", cap=3)
    assert await store.items("k2") == ["fresh"]


@pytest_twisted.ensureDeferred
async def test_expire_gives_an_existing_key_a_new_expiry(store):
    await store.set("value", "v")
    await store.incr("counter", expires_in=60)
    await store.push("list", "x", cap=3)
    assert await store.expire("value", SHORT) is True
    assert await store.expire("counter", SHORT) is True
    assert await store.expire("list", SHORT) is True
    assert await store.expire("missing", SHORT) is False
    await store.set("extended", "e", expires_in=SHORT)
    assert await store.expire("extended", 60) is True
    await sleep(PAST_SHORT)
    assert await store.get("value") is None
    assert await store.incr("counter") == 1
    assert await store.items("list") == []
    assert await store.get("extended") == "e"
    assert await store.expire("value", 60) is False
    assert await store.get("value") is None


@pytest_twisted.ensureDeferred
async def test_expiries_must_be_positive(store):
    for seconds in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            await store.set("a", "v", expires_in=seconds)
        with pytest.raises(ValueError):
            await store.expire("a", seconds)
        with pytest.raises(ValueError):
            await store.acquire("lock", "me", seconds)
    with pytest.raises(ValueError):
        await store.push("l", "v", cap=0)
    assert await store.get("a") is None
    assert await store.items("l") == []


# Counters


@pytest_twisted.ensureDeferred
async def test_incr_counts_from_zero_by_any_amount(store):
    assert await store.incr("n") == 1
    assert await store.incr("n") == 2
    assert await store.incr("n", 10) == 12
    assert await store.incr("n", -15) == -3
    assert await store.get("n") == "-3"
    assert await store.incr("m", -2) == -2
    assert await store.incr("z", 0) == 0
    await store.set("text-number", "41")
    assert await store.incr("text-number") == 42


@pytest_twisted.ensureDeferred
async def test_incr_sets_the_expiry_only_when_it_creates_the_counter(store):
    assert await store.incr("window", expires_in=SHORT) == 1
    # A later increment's expiry does not extend the window.
    assert await store.incr("window", expires_in=60) == 2
    assert await store.incr("forever") == 1
    await sleep(PAST_SHORT)
    assert await store.get("window") is None
    assert await store.incr("window", expires_in=60) == 1
    assert await store.get("forever") == "1"


@pytest_twisted.ensureDeferred
async def test_incr_of_text_is_a_value_error(store):
    await store.set("t", "not a number")
    with pytest.raises(ValueError) as raised:
        await store.incr("t")
    assert not isinstance(raised.value, StorageUnavailableError)
    for text in ("1.5", " 1", "", "1e3"):
        await store.set("t", text)
        with pytest.raises(ValueError):
            await store.incr("t")
        assert await store.get("t") == text


@pytest_twisted.ensureDeferred
async def test_concurrent_increments_each_count_once(store):
    counts = await gatherResults([store.incr("hits") for _ in range(50)])
    assert sorted(counts) == list(range(1, 51))
    assert await store.get("hits") == "50"


# Lists


@pytest_twisted.ensureDeferred
async def test_push_keeps_the_newest_items_up_to_the_cap(store):
    lengths = [await store.push("l", str(i), cap=3) for i in range(5)]
    assert lengths == [1, 2, 3, 3, 3]
    assert await store.items("l") == ["2", "3", "4"]
    assert await store.push("l", "5", cap=1) == 1
    assert await store.items("l") == ["5"]


@pytest_twisted.ensureDeferred
async def test_pop_takes_the_oldest_first(store):
    for value in ("a", "b", "c"):
        await store.push("q", value, cap=10)
    assert await store.pop("q") == "a"
    await store.push("q", "d", cap=10)
    assert [await store.pop("q") for _ in range(4)] == ["b", "c", "d", None]
    assert await store.items("q") == []
    assert await store.pop("missing") is None
    # Emptied, the list is gone.
    assert await store.delete("q") is False


@pytest_twisted.ensureDeferred
async def test_items_of_a_missing_list_are_none(store):
    assert await store.items("nothing") == []


@pytest_twisted.ensureDeferred
async def test_each_push_renews_the_lists_expiry(store):
    await store.push("l", "a", cap=5, expires_in=0.5)
    await sleep(0.3)
    await store.push("l", "b", cap=5, expires_in=0.5)
    await sleep(0.3)
    # 0.6 s after the first push, 0.3 s after the second.
    assert await store.items("l") == ["a", "b"]
    # A push without an expiry keeps the list's.
    await store.push("l", "c", cap=5)
    await sleep(0.3)
    assert await store.items("l") == []
    assert await store.pop("l") is None
    # A push after the expiry starts a new list.
    assert await store.push("l", "d", cap=5) == 1
    assert await store.items("l") == ["d"]


# Locks


@pytest_twisted.ensureDeferred
async def test_a_lock_has_one_owner_at_a_time(store):
    assert await store.acquire("cron", "a", 60) is True
    assert await store.acquire("cron", "b", 60) is False
    # The holder acquiring again renews its hold.
    assert await store.acquire("cron", "a", 60) is True
    assert await store.renew("cron", "a", 60) is True
    assert await store.renew("cron", "b", 60) is False
    assert await store.release("cron", "b") is False
    assert await store.acquire("cron", "b", 60) is False
    assert await store.release("cron", "a") is True
    assert await store.release("cron", "a") is False
    assert await store.acquire("cron", "b", 60) is True
    assert await store.renew("other", "b", 60) is False
    assert await store.release("other", "b") is False


@pytest_twisted.ensureDeferred
async def test_an_expired_lock_is_free_for_another_owner(store):
    assert await store.acquire("cron", "a", SHORT) is True
    assert await store.acquire("cron", "b", 60) is False
    # A non-holder's renew changes nothing: the lease still ends soon.
    assert await store.renew("cron", "b", 60) is False
    await sleep(PAST_SHORT)
    assert await store.renew("cron", "a", 60) is False
    assert await store.acquire("cron", "b", SHORT) is True
    assert await store.release("cron", "a") is False
    assert await store.acquire("cron", "a", 60) is False
    assert await store.renew("cron", "b", 60) is True
    await sleep(PAST_SHORT)
    # Renewed for a minute: still held.
    assert await store.acquire("cron", "a", 60) is False


@pytest_twisted.ensureDeferred
async def test_locks_do_not_touch_keys(store):
    await store.set("name", "value")
    assert await store.acquire("name", "me", 60) is True
    assert await store.get("name") == "value"
    assert await store.delete("name") is True
    assert await store.acquire("name", "you", 60) is False


# Text


KEYS = [
    "ключ",
    "emoji 🎉🔑",
    "quotes ' \" `",
    "like % and _ and \\",
    "%",
    "_",
    "'; DROP TABLE x; --",
    "a:b/c?d=e",
    " spaced ",
    "new\nline",
]


@pytest_twisted.ensureDeferred
async def test_any_text_keys_and_values(store):
    for i, key in enumerate(KEYS):
        await store.set(key, f"{key}={i}")
    # No key matches another as a pattern would.
    for i, key in enumerate(KEYS):
        assert await store.get(key) == f"{key}={i}"
    assert await store.get("a") is None
    assert await store.get("like x and y and \\") is None
    for key in KEYS:
        assert await store.incr(key + "#") == 1
        await store.push(key + "[]", key, cap=3)
        assert await store.items(key + "[]") == [key]
        assert await store.acquire(key, key, 60) is True
    assert await store.delete("%") is True
    assert await store.get("_") == "_=5"


@pytest_twisted.ensureDeferred
async def test_values_with_nul_characters_round_trip(store):
    value = "a\x00b\x00"
    await store.set("nul\x00key", value)
    assert await store.get("nul\x00key") == value
    assert await store.get("nul") is None
    await store.push("nul-list", value, cap=2)
    await store.push("nul-list", "\x00", cap=2)
    assert await store.items("nul-list") == [value, "\x00"]
    assert await store.pop("nul-list") == value


@pytest_twisted.ensureDeferred
async def test_long_values_round_trip(store):
    value = "é" * 200_000
    await store.set("long", value)
    assert await store.get("long") == value


@pytest_twisted.ensureDeferred
async def test_a_closed_store_is_unavailable(store_url, tmp_path):
    opened = open_store(store_url, base=tmp_path)
    await opened.set("a", "b")
    await opened.close()
    assert isinstance(await failure_of(opened.get("a")), StorageUnavailableError)


# The memory store


def fired(deferred):
    results = []
    deferred.addBoth(results.append)
    assert len(results) == 1
    return results[0]


def test_the_memory_store_answers_at_once_on_its_clock():
    clock = Clock()
    store = MemoryStore(clock)
    assert fired(store.set("a", "v", expires_in=10)) is None
    assert fired(store.incr("n", expires_in=10)) == 1
    assert fired(store.acquire("lock", "me", 10)) is True
    clock.advance(9.999)
    assert fired(store.get("a")) == "v"
    assert fired(store.acquire("lock", "you", 10)) is False
    clock.advance(0.001)
    assert fired(store.get("a")) is None
    assert fired(store.incr("n")) == 1
    assert fired(store.acquire("lock", "you", 10)) is True
    failure = fired(store.incr("a", 1.5))
    assert failure.check(ValueError)


def test_the_memory_store_sweeps_out_what_expired():
    clock = Clock()
    store = MemoryStore(clock)
    for i in range(100):
        store.set(f"k{i}", "v", expires_in=1)
        store.acquire(f"lock{i}", "me", 1)
    store.set("kept", "v")
    clock.advance(61)
    store.set("other", "v")
    assert sorted(store._entries) == ["kept", "other"]
    assert store._locks == {}


# SQLite


@pytest_twisted.ensureDeferred
async def test_the_sqlite_file_is_private_and_used_off_the_reactor_thread(tmp_path):
    threads = []

    class Seconds:
        def seconds(self):
            import time

            threads.append(threading.current_thread())
            return time.time()

    store = SQLiteStore(str(tmp_path / "s.sqlite"), clock=Seconds())
    try:
        await store.set("a", "b")
        assert await store.get("a") == "b"
    finally:
        await store.close()
    assert stat.S_IMODE(os.stat(tmp_path / "s.sqlite").st_mode) == 0o600
    assert len(threads) == 2
    assert threading.main_thread() not in threads
    # Closing ends the thread.
    threads[0].join(10)
    assert not threads[0].is_alive()
    connection = sqlite3.connect(tmp_path / "s.sqlite")
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("PRAGMA user_version").fetchone() == (1,)
    finally:
        connection.close()


@pytest_twisted.ensureDeferred
async def test_two_sqlite_stores_on_one_file_share_everything(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    one, two = SQLiteStore(path), SQLiteStore(path)
    try:
        await one.set("a", "from one")
        assert await two.get("a") == "from one"
        assert await one.incr("n") == 1
        assert await two.incr("n") == 2
        await two.push("l", "x", cap=5)
        await one.push("l", "y", cap=5)
        assert await one.items("l") == ["x", "y"]
        held = await gatherResults(
            [one.acquire("cron", "one", 60), two.acquire("cron", "two", 60)]
        )
        assert sorted(held) == [False, True]
        assert await one.acquire("cron", "one", 60) is held[0]
        counts = await gatherResults(
            [store.incr("both") for _ in range(25) for store in (one, two)]
        )
        assert sorted(counts) == list(range(1, 51))
    finally:
        await one.close()
        await two.close()


INCREMENTS = textwrap.dedent(
    """
    import sys

    from twisted.internet import defer, task

    from shiji._storage_sqlite import SQLiteStore


    async def main(reactor):
        store = SQLiteStore(sys.argv[1])
        for _ in range(int(sys.argv[2])):
            await store.incr("total")
        # Ends without closing the store: its thread must not hold the exit.


    task.react(lambda reactor: defer.ensureDeferred(main(reactor)))
    """
)


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_two_processes_count_on_one_sqlite_file(tmp_path):
    script = tmp_path / "increments.py"
    script.write_text(INCREMENTS)
    path = str(tmp_path / "shared.sqlite")
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), path, "200"],
            env=environment,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    try:
        for process in processes:
            _, errors = process.communicate(timeout=60)
            assert (process.returncode, errors) == (0, b"")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)
    store = SQLiteStore(path)
    try:
        assert await store.get("total") == "400"
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_a_missing_directory_makes_the_store_unavailable(tmp_path):
    store = SQLiteStore(str(tmp_path / "missing" / "s.sqlite"))
    try:
        error = await failure_of(store.get("a"))
        assert isinstance(error, StorageUnavailableError)
        assert isinstance(error.__cause__, FileNotFoundError)
        assert (error.http_status, error.error_code) == (503, 218)
        # It opens the file once it can.
        (tmp_path / "missing").mkdir()
        await store.set("a", "b")
        assert await store.get("a") == "b"
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_a_file_that_is_no_database_makes_the_store_unavailable(tmp_path):
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a database, " * 512)
    for path in (garbage, tmp_path):  # and a directory
        store = SQLiteStore(str(path))
        try:
            error = await failure_of(store.set("a", "b"))
            assert isinstance(error, StorageUnavailableError)
            assert isinstance(error.__cause__, (sqlite3.DatabaseError, OSError))
        finally:
            await store.close()


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes any file"
)
@pytest_twisted.ensureDeferred
async def test_an_unwritable_file_makes_the_store_unavailable(tmp_path):
    path = tmp_path / "read-only.sqlite"
    path.touch()
    path.chmod(0o400)
    store = SQLiteStore(str(path))
    try:
        error = await failure_of(store.get("a"))
        assert isinstance(error, StorageUnavailableError)
        assert isinstance(error.__cause__, PermissionError)
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_a_locked_database_is_unavailable_until_unlocked(tmp_path):
    path = str(tmp_path / "locked.sqlite")
    store = SQLiteStore(path, busy_timeout=0.05)
    locker = sqlite3.connect(path, isolation_level=None)
    try:
        await store.set("a", "before")
        locker.execute("BEGIN EXCLUSIVE")
        error = await failure_of(store.set("a", "during"))
        assert isinstance(error, StorageUnavailableError)
        assert isinstance(error.__cause__, sqlite3.OperationalError)
        assert "locked" in str(error.__cause__)
        error = await failure_of(store.incr("n"))
        assert isinstance(error, StorageUnavailableError)
        locker.execute("ROLLBACK")
        assert await store.get("a") == "before"
        await store.set("a", "after")
        assert await store.get("a") == "after"
        assert await store.incr("n") == 1
    finally:
        locker.close()
        await store.close()


@pytest_twisted.ensureDeferred
async def test_operations_queued_behind_a_lock_do_not_wait_in_turn(tmp_path):
    from twisted.internet import reactor

    path = str(tmp_path / "locked.sqlite")
    store = SQLiteStore(path, busy_timeout=0.2)
    locker = sqlite3.connect(path, isolation_level=None)
    try:
        await store.set("a", "before")
        locker.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        writes = [store.set(f"k{i}", "v") for i in range(10)]
        errors = [await failure_of(write) for write in writes]
        elapsed = time.monotonic() - started
        # The first waits busy_timeout for the lock; the others, queued
        # meanwhile, give up when their turn comes, without waiting again.
        assert elapsed < 0.6, elapsed
        assert all(isinstance(e, StorageUnavailableError) for e in errors)
        assert isinstance(errors[0].__cause__, sqlite3.OperationalError)
        late = [e.__cause__ for e in errors[1:]]
        assert all(isinstance(cause, TimeoutError) for cause in late), late
        assert all("for the store's thread" in str(cause) for cause in late)
        locker.execute("ROLLBACK")
        assert await store.get("a") == "before"
        await store.set("a", "after")
        assert await store.get("a") == "after"
        assert await store.get("k9") is None
        assert await deferLater(reactor, 0, lambda: None) is None
    finally:
        locker.close()
        await store.close()


@pytest_twisted.ensureDeferred
async def test_sqlite_purges_expired_rows(tmp_path):
    path = tmp_path / "purged.sqlite"

    class Seconds:
        now = 1000.0

        def seconds(self):
            return self.now

    clock = Seconds()
    store = SQLiteStore(str(path), clock=clock)
    try:
        await store.set("value", "v", expires_in=1)
        await store.push("list", "x", cap=3, expires_in=1)
        await store.acquire("lock", "me", 1)
        await store.set("kept", "v")
        clock.now += 30
        await store.set("other", "v")
        counts = _counts(path)
        assert counts == (4, 1, 1)  # not yet purged, though expired
        clock.now += 31
        await store.set("other", "v")
        assert _counts(path) == (2, 0, 0)
    finally:
        await store.close()


def _counts(path):
    connection = sqlite3.connect(path)
    try:
        return tuple(
            connection.execute(f"SELECT count(*) FROM shiji_store_{table}").fetchone()[
                0
            ]
            for table in ("keys", "items", "locks")
        )
    finally:
        connection.close()


# The store's URL in the configuration


@pytest.mark.parametrize(
    "url",
    [
        "redis://:pass/word@127.0.0.1:6379/0",
        "rediss://user:pa#ss@cache:6380",
        "redis://u:a:b@host:port/db",
    ],
)
def test_a_store_url_whose_port_is_no_number_is_refused_unquoted(tmp_path, url):
    from shiji.config import ConfigError, load_config

    path = tmp_path / "shijid.conf"
    path.write_text(f"[apis]\nmylogin_api = x\n[storage]\nurl = {url}\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value) == (
        f"{path}: [storage] url: must be a URL whose port is a number"
        " (percent-encode / # ? @ : in the password)"
    )
    # Nor does a traceback of it: no error of the chain quotes the URL.
    error, shown = raised.value, []
    while error is not None:
        shown.append(str(error))
        error = error.__cause__ or (
            None if error.__suppress_context__ else error.__context__
        )
    password = url.split("//", 1)[1].rpartition("@")[0]
    assert shown and not any(password in text for text in shown), shown


def test_a_postgresql_url_is_left_to_libpq(tmp_path):
    from shiji.config import load_config

    url = "postgresql://u@h1:5432,h2:5433/db?target_session_attrs=read-write"
    path = tmp_path / "shijid.conf"
    path.write_text(f"[apis]\nmylogin_api = x\n[storage]\nurl = {url}\n")
    assert load_config(path).storage.url == url
