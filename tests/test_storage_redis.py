"""
The Redis store's own behaviour, on a real redis-server (tests/redis_server.py):
reconnecting after the server restarts, bounded waits on a server that is
down, silent or refuses the password, persistence across a restart, atomic
counting under concurrency, what it keeps in Redis, and closing.
"""

import threading
import time

import pytest
import pytest_twisted
from twisted.internet import defer, protocol

from shiji.storage import StorageUnavailableError, open_store

redis = pytest.importorskip("redis")

from shiji._storage_redis import LOCK_PREFIX, RedisStore  # noqa: E402

CONNECT_TIMEOUT = 0.5
TIMEOUT = 1.0


@pytest_twisted.async_yield_fixture
async def opened():
    """Stores opened by the test, closed after it."""
    stores = []
    yield stores
    for store in stores:
        await store.close()


def open_redis(opened, url, **options):
    options.setdefault("connect_timeout", CONNECT_TIMEOUT)
    options.setdefault("timeout", TIMEOUT)
    store = RedisStore(url, **options)
    opened.append(store)
    return store


def closed_port():
    """A 127.0.0.1 port nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def unavailable(deferred, within):
    """Await ``deferred``'s StorageUnavailableError, in under ``within`` s."""
    started = time.monotonic()
    with pytest.raises(StorageUnavailableError) as caught:
        await deferred
    elapsed = time.monotonic() - started
    assert elapsed < within, elapsed
    assert caught.value.http_status == 503
    assert caught.value.error_code == 218
    return caught.value, elapsed


@pytest_twisted.ensureDeferred
async def test_what_the_store_keeps_in_redis(fresh_redis, opened):
    store = open_redis(opened, fresh_redis.url)
    direct = store.blocking_client()
    try:
        assert await store.set("v", "été", expires_in=0.0001) is None
        # At least 1 ms: stored, with an expiry.
        assert direct.pttl("v") in (0, 1) or direct.get("v") is None
        assert await store.set("v", "été", expires_in=30) is None
        assert direct.get("v") == "été"
        assert 29000 < direct.pttl("v") <= 30000
        assert await store.add("v", "other") is False
        assert await store.add("w", "new", expires_in=1.5) is True
        assert 1000 < direct.pttl("w") <= 1500

        assert await store.incr("n", -5, expires_in=60) == -5
        assert 59000 < direct.pttl("n") <= 60000
        direct.pexpire("n", 5000)
        # The expiry applies when the counter is created, not after.
        assert await store.incr("n", 5, expires_in=60) == 0
        assert 0 < direct.pttl("n") <= 5000
        assert await store.incr("m") == 1
        assert direct.pttl("m") == -1

        for i in range(5):
            assert await store.push("l", str(i), cap=3, expires_in=20) == min(i + 1, 3)
        assert direct.lrange("l", 0, -1) == ["2", "3", "4"]
        assert 19000 < direct.pttl("l") <= 20000
        assert await store.items("l") == ["2", "3", "4"]
        assert await store.pop("l") == "2"
        assert await store.pop("nothing") is None
        assert await store.items("nothing") == []

        assert await store.acquire("cron", "a", 10) is True
        assert direct.get(LOCK_PREFIX + "cron") == "a"
        assert await store.acquire("cron", "b", 10) is False
        direct.pexpire(LOCK_PREFIX + "cron", 1000)
        assert await store.acquire("cron", "a", 10) is True
        assert 9000 < direct.pttl(LOCK_PREFIX + "cron") <= 10000
        assert await store.renew("cron", "b", 10) is False
        assert await store.renew("cron", "a", 20) is True
        assert 19000 < direct.pttl(LOCK_PREFIX + "cron") <= 20000
        assert await store.release("cron", "b") is False
        assert await store.release("cron", "a") is True
        assert direct.exists(LOCK_PREFIX + "cron") == 0
        assert await store.get("cron") is None
        assert sorted(direct.keys("*")) == ["l", "m", "n", "v", "w"]
    finally:
        direct.close()


@pytest_twisted.ensureDeferred
async def test_refusals_are_value_errors(fresh_redis, opened):
    store = open_redis(opened, fresh_redis.url)
    await store.set("text", "abc")
    await store.push("list", "x", cap=5)
    await store.set("big", str(2**63 - 1))
    refused = [
        (store.incr("text"), "'text' holds a value that is not an integer"),
        (store.incr("big"), "'big' would count beyond a 64-bit integer"),
        (store.incr("list"), "'list' holds a list, not a value"),
        (store.get("list"), "'list' holds a list, not a value"),
        (store.push("text", "y", cap=5), "'text' holds a value, not a list"),
        (store.pop("text"), "'text' holds a value, not a list"),
        (store.items("text"), "'text' holds a value, not a list"),
        (store.incr("n", 2**63), "'n' would count beyond a 64-bit integer"),
        (store.incr("n", 1.5), "amount must be an integer, not 1.5"),
        (store.push("list", "y", cap=0), "cap must be an integer of 1 or more, not 0"),
        (store.set("k", "v", expires_in=0), "expires_in must be a number of seconds above 0, not 0.0"),
        (store.acquire("k", "me", -1), "lease must be a number of seconds above 0, not -1.0"),
    ]  # fmt: skip
    for deferred, text in refused:
        with pytest.raises(ValueError) as caught:
            await deferred
        assert type(caught.value) is ValueError
        assert str(caught.value) == text
    assert await store.get("text") == "abc"
    assert await store.items("list") == ["x"]
    assert await store.get("n") is None


@pytest_twisted.ensureDeferred
async def test_reconnects_after_the_server_restarts(fresh_redis, opened):
    store = open_redis(opened, fresh_redis.url)
    assert await store.incr("n") == 1
    assert await store.set("v", "kept") is None
    fresh_redis.stop()
    for operation in (store.incr("n"), store.get("v"), store.acquire("l", "a", 5)):
        error, _ = await unavailable(operation, within=CONNECT_TIMEOUT + TIMEOUT + 1)
        assert isinstance(error.__cause__, redis.exceptions.ConnectionError)
    fresh_redis.start()
    # The same store, at once: the connections of before are replaced.
    assert await store.incr("n") == 2
    assert await store.get("v") == "kept"
    results = await defer.gatherResults([store.incr("n") for _ in range(20)])
    assert sorted(results) == list(range(3, 23))


@pytest_twisted.ensureDeferred
async def test_data_survives_a_restart(fresh_redis, opened):
    store = open_redis(opened, fresh_redis.url)
    await store.set("v", "kept")
    await store.push("l", "a", cap=5)
    await store.push("l", "b", cap=5)
    await store.incr("n", 7)
    fresh_redis.stop()
    fresh_redis.start()
    assert await store.get("v") == "kept"
    assert await store.items("l") == ["a", "b"]
    assert await store.incr("n") == 8


class Silent(protocol.Protocol):
    """Reads what it is sent and never answers."""

    def connectionMade(self):
        self.factory.connected.append(self)


@pytest_twisted.async_yield_fixture
async def silent_server():
    """The port of a server that accepts connections and never answers."""
    from twisted.internet import reactor

    factory = protocol.Factory.forProtocol(Silent)
    factory.connected = []
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    yield port.getHost().port
    await port.stopListening()
    for connection in factory.connected:
        connection.transport.abortConnection()


@pytest_twisted.ensureDeferred
async def test_a_server_that_never_answers(silent_server, opened):
    store = open_redis(
        opened, f"redis://127.0.0.1:{silent_server}/0", max_connections=1
    )
    error, elapsed = await unavailable(store.get("k"), within=TIMEOUT + 0.5)
    assert elapsed >= TIMEOUT - 0.05
    assert isinstance(error.__cause__, redis.exceptions.TimeoutError)
    # With its one thread busy, operations that waited the timeout for it
    # give up without reaching Redis: no operation waits much longer.
    started = time.monotonic()
    calls = [store.incr("n"), store.get("k"), store.set("k", "v")]
    for call in calls:
        await unavailable(call, within=2 * TIMEOUT + 0.5)
    assert time.monotonic() - started < 2 * TIMEOUT + 0.5


@pytest_twisted.ensureDeferred
async def test_a_closed_port(opened):
    store = open_redis(opened, f"redis://127.0.0.1:{closed_port()}/0")
    error, _ = await unavailable(store.get("k"), within=CONNECT_TIMEOUT + 0.5)
    assert isinstance(error.__cause__, redis.exceptions.ConnectionError)
    await unavailable(store.release("l", "me"), within=CONNECT_TIMEOUT + 0.5)


@pytest_twisted.ensureDeferred
async def test_a_wrong_password(fresh_redis, opened):
    url = fresh_redis.url.replace("redis://", "redis://nobody:wrong@")
    store = open_redis(opened, url)
    error, _ = await unavailable(store.set("k", "v"), within=TIMEOUT + 0.5)
    assert isinstance(error.__cause__, redis.exceptions.AuthenticationError)
    assert fresh_redis.running


@pytest_twisted.ensureDeferred
async def test_open_store_takes_redis_and_rediss_urls(fresh_redis):
    for url in (fresh_redis.url, "rediss://:secret@127.0.0.1:6380/2"):
        store = open_store(url)
        assert isinstance(store, RedisStore)
        assert (store.connect_timeout, store.timeout) == (1.0, 2.0)
        await store.close()
    store = open_store(fresh_redis.url)
    assert await store.set("k", "v") is None
    assert await store.get("k") == "v"
    await store.close()


@pytest_twisted.ensureDeferred
async def test_concurrent_increments_count_exactly(fresh_redis, opened):
    store = open_redis(opened, fresh_redis.url)
    counts = await defer.gatherResults(
        [store.incr("n", expires_in=60) for _ in range(200)]
    )
    assert sorted(counts) == list(range(1, 201))
    assert await store.get("n") == "200"


@pytest_twisted.ensureDeferred
async def test_the_blocking_client(fresh_redis, opened):
    store = open_redis(opened, fresh_redis.url)
    await store.set("k", "é")
    client = store.blocking_client()
    try:
        assert client.get("k") == "é"
        assert client.connection_pool.connection_kwargs["socket_timeout"] == TIMEOUT
        assert client.connection_pool.connection_kwargs["socket_connect_timeout"] == (
            CONNECT_TIMEOUT
        )
        assert client.connection_pool is not store.blocking_client().connection_pool
    finally:
        client.close()


def store_threads():
    return [t for t in threading.enumerate() if "shiji-redis" in t.name]


@pytest_twisted.ensureDeferred
async def test_close_stops_the_threads_and_refuses_operations(fresh_redis):
    before = len(store_threads())
    store = RedisStore(fresh_redis.url, max_connections=4)
    await defer.gatherResults([store.incr("n") for _ in range(20)])
    assert 1 <= len(store_threads()) - before <= 5
    # Operations under way or waiting for a thread still finish.
    pending = [store.incr("n") for _ in range(50)]
    closing = store.close()
    await unavailable(store.get("n"), within=0.5)
    await closing
    assert sorted(await defer.gatherResults(pending)) == list(range(21, 71))
    await store.close()
    deadline = time.monotonic() + 5
    while len(store_threads()) > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(store_threads()) == before
    unused = RedisStore(fresh_redis.url)
    await unused.close()


@pytest.fixture
def configured(fresh_redis):
    """A client of the test server; its changed settings restored after."""
    client = redis.Redis.from_url(fresh_redis.url, socket_timeout=5)
    saved = {
        name: client.config_get(name)[name]
        for name in ("maxmemory", "maxmemory-policy")
    }
    try:
        yield client
    finally:
        for name, value in saved.items():
            client.config_set(name, value)
        client.close()


@pytest_twisted.ensureDeferred
async def test_a_server_out_of_memory_is_unavailable(fresh_redis, configured, opened):
    from shiji._task_store_redis import RedisTaskStore

    store = open_redis(opened, fresh_redis.url)
    await store.set("kept", "v")
    await store.push("list", "x", cap=5)
    configured.config_set("maxmemory-policy", "noeviction")
    configured.config_set("maxmemory", 1)
    writes = [
        lambda: store.set("a", "v"),
        lambda: store.add("b", "v"),
        lambda: store.replace("kept", "w"),  # a script
        lambda: store.incr("n"),
        lambda: store.push("list", "y", cap=5),
        lambda: store.acquire("lock", "me", 60),
    ]
    for write in writes:
        error, _ = await unavailable(write(), within=TIMEOUT + 1)
        assert isinstance(error.__cause__, redis.exceptions.ResponseError)
        assert "OOM" in str(error.__cause__) or isinstance(
            error.__cause__, redis.exceptions.OutOfMemoryError
        ), repr(error.__cause__)
    # Reads are answered all the same.
    assert await store.get("kept") == "v"
    tasks = RedisTaskStore(fresh_redis.url, keep_finished=60.0)
    tasks.open()
    try:
        with pytest.raises(StorageUnavailableError) as caught:
            tasks.enqueue("api", "job", "{}", 0.0, 0.0)
        assert isinstance(caught.value.__cause__, redis.exceptions.ResponseError)
    finally:
        tasks.close()
    configured.config_set("maxmemory", 0)
    assert await store.replace("kept", "w") is True
    assert await store.get("kept") == "w"


@pytest.mark.parametrize(
    "text",
    [
        "MISCONF Redis is configured to save RDB snapshots, but it's currently"
        " unable to persist to disk.",
        "BUSY Redis is busy running a script.",
        "NOREPLICAS Not enough good replicas to write.",
        "READONLY You can't write against a read only replica.",
        # A refusal inside a script, as Redis before 7 wraps it.
        "ERR Error running script (call to f_0123): @user_script:3:"
        " @user_script: 3: -OOM command not allowed when used memory >"
        " 'maxmemory'.",
    ],
)
def test_refusals_for_now_are_unavailable(text):
    from shiji._storage_redis import unavailable_reply

    assert unavailable_reply(redis.exceptions.ResponseError(text)) is True
    refusal = RedisStore._refusal(redis.exceptions.ResponseError(text), "value", "k")
    assert isinstance(refusal, StorageUnavailableError)


def test_other_replies_are_not_unavailable():
    from shiji._storage_redis import unavailable_reply

    for text in (
        "ERR syntax error",
        "WRONGTYPE Operation against a key",
        "ERR Error running script (call to f_0123): @user_script:2: WRONGTYPE",
        "",
    ):
        assert unavailable_reply(redis.exceptions.ResponseError(text)) is False


@pytest.mark.parametrize(
    "url, shown",
    [
        ("redis://:pa/ss@127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://user:p#w@cache:6380/1", "redis://cache:6380/1"),
        ("rediss://:x?y@cache:6380", "rediss://cache:6380"),
        ("redis://:secret@cache:6380/2?password=secret", "redis://cache:6380/2"),
        ("redis://cache:6380/2?user=x@corp&password=secret", "redis://..."),
    ],
)
def test_the_store_is_named_without_its_password(url, shown):
    from shiji._storage_redis import _shown

    name = _shown(url)
    assert name == shown
    try:
        store = RedisStore(url)  # nothing connects yet
    except ValueError as e:
        # A port that is no number: told without the password.
        assert str(e) == (
            f"{shown} is not a Redis URL redis-py takes"
            " (percent-encode / # ? @ : in the password)"
        )
        assert e.__cause__ is None and e.__suppress_context__
    else:
        assert store.close().called
