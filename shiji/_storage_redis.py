"""
:class:`RedisStore`: the :class:`~shiji.storage.Store` kept on one Redis
server (``[storage] url = redis://...`` or ``rediss://...``), shared by
every process and host that names it.

Operations run on redis-py's blocking client, in a small pool of threads of
the store's own (one connection per thread), and answer through the
reactor; the reactor never waits for Redis. Each operation is one Redis
command, or one Lua script where it takes several, so each is atomic.

Every wait is bounded: connecting by ``connect_timeout``, each reply by
``timeout``, and an operation that waited ``timeout`` for a free thread
gives up without reaching Redis. A server that cannot be reached, refuses
the password, is loading its data or does not answer in time fails the
operation with :class:`~shiji.storage.StorageUnavailableError` (the cause
chained); the next operation connects again, so the store recovers on its
own when the server is back. Operations are not retried: a command that
may have run is never sent twice.

Lock names are kept under keys of their own, ``shiji:lock:<name>``.
"""

import math
import threading
import time
from typing import Any, Callable, List, Optional, TypeVar, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from ._errors import StorageUnavailableError
from ._reactor import global_reactor
from ._storage_memory import check_cap, check_expiry
from ._storage_outage import OutageLog, shown_url

__all__ = ["RedisStore", "unavailable_reply"]

_T = TypeVar("_T")

#: The key prefix of lock names.
LOCK_PREFIX = "shiji:lock:"

# KEYS[1]: the counter; ARGV[1]: the amount; ARGV[2]: the expiry in ms, or "".
_INCR = """
local existed = redis.call('EXISTS', KEYS[1])
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
if existed == 0 and ARGV[2] ~= '' then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return count
"""

# KEYS[1]: the list; ARGV[1]: the value; ARGV[2]: the cap; ARGV[3]: ms or "".
_PUSH = """
local length = redis.call('RPUSH', KEYS[1], ARGV[1])
local cap = tonumber(ARGV[2])
if length > cap then
    redis.call('LTRIM', KEYS[1], -cap, -1)
    length = cap
end
if ARGV[3] ~= '' then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return length
"""

# KEYS[1]: the lock; ARGV[1]: the owner; ARGV[2]: the lease in ms.
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
return 0
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('DEL', KEYS[1])
    return 1
end
return 0
"""

# KEYS[1]: the key; ARGV[1]: the value; ARGV[2]: the expiry in ms, or "".
_REPLACE = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then
    return 0
end
if kind ~= 'string' then
    return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
end
if ARGV[2] == '' then
    redis.call('SET', KEYS[1], ARGV[1])
else
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
"""

# Replies that mean the server cannot serve now (it may later): the first
# word of the reply.
UNAVAILABLE_REPLIES = (
    "LOADING",
    "MASTERDOWN",
    "NOAUTH",
    "WRONGPASS",
    "READONLY",
    "OOM",
    "MISCONF",
    "BUSY",
    "NOREPLICAS",
    "CLUSTERDOWN",
    "TRYAGAIN",
)

#: redis-py's classes of those replies (it strips their first word).
UNAVAILABLE_ERRORS = (
    redis.exceptions.ReadOnlyError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ClusterDownError,  # and MASTERDOWN
    redis.exceptions.TryAgainError,
)


def unavailable_reply(error: Exception) -> bool:
    """Whether the Redis error reply ``error`` says the server cannot serve now."""
    if isinstance(error, UNAVAILABLE_ERRORS):
        return True
    text = str(error)
    words = text.split(None, 1)
    if not words:
        return False
    # Before Redis 7, a refusal inside a script comes wrapped:
    # "ERR Error running script (...): ... -OOM command not allowed ...".
    return words[0] in UNAVAILABLE_REPLIES or any(
        f"-{reply} " in text for reply in UNAVAILABLE_REPLIES
    )


def _shown(url: str) -> str:
    """``url`` without its user and password, for the log; never raises."""
    return shown_url(url)


def _milliseconds(seconds: float, what: str = "expires_in") -> int:
    """A checked expiry in whole milliseconds, at least 1."""
    return max(1, math.ceil(check_expiry(seconds, what) * 1000))


def _check_amount(amount: int) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValueError(f"amount must be an integer, not {amount!r}")
    return amount


class _Threads(ThreadPool):
    """A thread pool whose threads do not keep the process alive."""

    def threadFactory(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> threading.Thread:
        thread = threading.Thread(*args, **kwargs)
        thread.daemon = True
        return thread


class RedisStore:
    """
    A :class:`~shiji.storage.Store` on the Redis server ``url`` names
    (``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` for TLS,
    or any URL redis-py's ``from_url`` takes).

    Nothing connects until the first operation.

    :param connect_timeout: seconds to wait for a connection.
    :param timeout: seconds to wait for each reply, and at most for a free
        thread.
    :param max_connections: threads and connections of the store.
    """

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 1.0,
        timeout: float = 2.0,
        max_connections: int = 8,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be 1 or more")
        self.url = url
        self.connect_timeout = float(connect_timeout)
        self.timeout = float(timeout)
        self.max_connections = max_connections
        self._outage = OutageLog(_shown(url))
        try:
            self._client = self._new_client(max_connections)
        except ValueError:
            # redis-py's text may quote the password.
            raise ValueError(
                f"{self._outage.name} is not a Redis URL redis-py takes"
                " (percent-encode / # ? @ : in the password)"
            ) from None
        self._incr = self._client.register_script(_INCR)
        self._push = self._client.register_script(_PUSH)
        self._acquire = self._client.register_script(_ACQUIRE)
        self._renew = self._client.register_script(_RENEW)
        self._release = self._client.register_script(_RELEASE)
        self._replace = self._client.register_script(_REPLACE)
        self._threads: Optional[_Threads] = None
        self._reactor: Any = None
        self._shutdown_trigger: Any = None
        self._closed: Optional[Deferred[None]] = None

    def _new_client(self, max_connections: Optional[int]) -> "redis.Redis":
        pool = redis.ConnectionPool.from_url(
            self.url,
            decode_responses=True,
            socket_connect_timeout=self.connect_timeout,
            socket_timeout=self.timeout,
            max_connections=max_connections,
            retry=Retry(NoBackoff(), 0),
        )
        return redis.Redis(connection_pool=pool)

    def blocking_client(self) -> "redis.Redis":
        """
        A new blocking redis-py client of the same server, with the same
        timeouts and text values, for code running in threads of its own;
        it has its own connections, which its user closes (``close()``).
        """
        return self._new_client(None)

    # Running operations

    def _run(self, kind: str, key: str, call: Callable[[], _T]) -> "Deferred[_T]":
        """
        Run ``call`` in a thread of the store; its Redis errors become
        ``StorageUnavailableError`` or ``ValueError`` (``kind``, "value" or
        "list", says what ``key`` should hold).
        """
        if self._closed is not None:
            return defer.fail(StorageUnavailableError())
        if self._threads is None:
            self._start()
        queued = time.monotonic()

        def run() -> _T:
            if time.monotonic() - queued > self.timeout:
                raise StorageUnavailableError()
            try:
                return call()
            except redis.exceptions.ResponseError as e:
                refusal = self._refusal(e, kind, key)
                if refusal is e:
                    raise
                raise refusal from e
            except (
                redis.exceptions.ConnectionError,
                redis.exceptions.TimeoutError,
            ) as e:
                raise StorageUnavailableError() from e
            except OSError as e:
                raise StorageUnavailableError() from e

        assert self._threads is not None
        return self._outage.watch(deferToThreadPool(self._reactor, self._threads, run))

    def _start(self) -> None:
        self._reactor = global_reactor()
        self._threads = _Threads(0, self.max_connections, "shiji-redis")
        self._threads.start()
        self._shutdown_trigger = self._reactor.addSystemEventTrigger(
            "during", "shutdown", self._shutting_down
        )

    def _shutting_down(self) -> "Deferred[None]":
        self._shutdown_trigger = None
        return self.close()

    @staticmethod
    def _refusal(error: Exception, kind: str, key: str) -> Exception:
        """What a Redis error reply to an operation on ``key`` means."""
        text = str(error)
        if unavailable_reply(error):
            return StorageUnavailableError()
        if "WRONGTYPE" in text:
            if kind == "list":
                return ValueError(f"{key!r} holds a value, not a list")
            return ValueError(f"{key!r} holds a list, not a value")
        if "not an integer" in text:
            return ValueError(f"{key!r} holds a value that is not an integer")
        if "overflow" in text:
            return ValueError(f"{key!r} would count beyond a 64-bit integer")
        return error

    # Values

    def get(self, key: str) -> "Deferred[Optional[str]]":
        return self._run(
            "value", key, lambda: cast(Optional[str], self._client.get(key))
        )

    def set(
        self, key: str, value: str, expires_in: Optional[float] = None
    ) -> "Deferred[None]":
        try:
            px = None if expires_in is None else _milliseconds(expires_in)
        except ValueError:
            return defer.fail()

        def set_() -> None:
            self._client.set(key, value, px=px)

        return self._run("value", key, set_)

    def add(
        self, key: str, value: str, expires_in: Optional[float] = None
    ) -> "Deferred[bool]":
        try:
            px = None if expires_in is None else _milliseconds(expires_in)
        except ValueError:
            return defer.fail()
        return self._run(
            "value", key, lambda: bool(self._client.set(key, value, px=px, nx=True))
        )

    def replace(
        self, key: str, value: str, expires_in: Optional[float] = None
    ) -> "Deferred[bool]":
        try:
            px = "" if expires_in is None else str(_milliseconds(expires_in))
        except ValueError:
            return defer.fail()
        return self._run(
            "value", key, lambda: bool(self._replace(keys=[key], args=[value, px]))
        )

    def delete(self, key: str) -> "Deferred[bool]":
        return self._run("value", key, lambda: bool(self._client.delete(key)))

    def expire(self, key: str, expires_in: float) -> "Deferred[bool]":
        try:
            px = _milliseconds(expires_in)
        except ValueError:
            return defer.fail()
        return self._run("value", key, lambda: bool(self._client.pexpire(key, px)))

    def incr(
        self, key: str, amount: int = 1, expires_in: Optional[float] = None
    ) -> "Deferred[int]":
        try:
            _check_amount(amount)
            px = "" if expires_in is None else str(_milliseconds(expires_in))
        except ValueError:
            return defer.fail()
        if not -(2**63) <= amount < 2**63:
            return defer.fail(
                ValueError(f"{key!r} would count beyond a 64-bit integer")
            )
        return self._run(
            "value", key, lambda: int(self._incr(keys=[key], args=[amount, px]))
        )

    # Lists

    def push(
        self, key: str, value: str, cap: int, expires_in: Optional[float] = None
    ) -> "Deferred[int]":
        try:
            check_cap(cap)
            px = "" if expires_in is None else str(_milliseconds(expires_in))
        except ValueError:
            return defer.fail()
        return self._run(
            "list", key, lambda: int(self._push(keys=[key], args=[value, cap, px]))
        )

    def pop(self, key: str) -> "Deferred[Optional[str]]":
        return self._run(
            "list", key, lambda: cast(Optional[str], self._client.lpop(key))
        )

    def items(self, key: str) -> "Deferred[List[str]]":
        return self._run(
            "list", key, lambda: cast(List[str], self._client.lrange(key, 0, -1))
        )

    # Locks

    def _lock(
        self, script: Any, name: str, args: List[Any], lease: Optional[float]
    ) -> "Deferred[bool]":
        try:
            if lease is not None:
                args.append(_milliseconds(lease, "lease"))
        except ValueError:
            return defer.fail()
        lock = LOCK_PREFIX + name
        return self._run("value", lock, lambda: bool(script(keys=[lock], args=args)))

    def acquire(self, name: str, owner: str, lease: float) -> "Deferred[bool]":
        return self._lock(self._acquire, name, [owner], lease)

    def renew(self, name: str, owner: str, lease: float) -> "Deferred[bool]":
        return self._lock(self._renew, name, [owner], lease)

    def release(self, name: str, owner: str) -> "Deferred[bool]":
        return self._lock(self._release, name, [owner], None)

    def close(self) -> "Deferred[None]":
        """
        Refuse further operations, let those under way finish (each is
        bounded by the timeouts), then stop the threads and disconnect; in
        a thread of its own, so the reactor does not wait.
        """
        if self._closed is not None:
            return self._follow(self._closed)
        closed: Deferred[None] = Deferred()
        self._closed = closed
        threads, reactor = self._threads, self._reactor
        if self._shutdown_trigger is not None:
            reactor.removeSystemEventTrigger(self._shutdown_trigger)
            self._shutdown_trigger = None
        if threads is None:
            self._client.close()
            closed.callback(None)
            return self._follow(closed)

        def stop() -> None:
            try:
                threads.stop()
                self._client.close()
            finally:
                reactor.callFromThread(closed.callback, None)

        threading.Thread(target=stop, name="shiji-redis-close", daemon=True).start()
        return self._follow(closed)

    @staticmethod
    def _follow(closed: "Deferred[None]") -> "Deferred[None]":
        """A Deferred firing with ``closed``, leaving ``closed`` itself alone."""
        follower: Deferred[None] = Deferred()

        def follow(result: Any) -> Any:
            follower.callback(None)
            return result

        closed.addBoth(follow)
        return follower
