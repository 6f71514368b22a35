"""
:class:`RedisTaskStore`: the :class:`~shiji._task_store.TaskStore` of the
task queue and the cron ticks on one Redis server, shared by every process
of every host whose ``[storage] url`` names it.

Its methods block (redis-py's blocking client), like those of
:class:`~shiji._task_store.SQLiteTaskStore`: the task service calls them in
its own thread. Each change is one Lua script, which Redis runs atomically,
so two processes never claim one task, nor one tick, twice. Keys, under
``prefix`` (``shiji:tasks:`` by default)::

    task:<id>       hash: api name arguments state attempts run_at created
                    finished owner lease_until error max_runs
    due             sorted set of queued and running task ids, scored by when
                    they may be claimed: run_at (queued), lease_until (running)
    finished        sorted set of done and failed task ids, by finish time
    order           sorted set of every task id, by a counter (oldest first)
    seq             that counter
    seen, resumed   when a claim last came, and when claims came back after
                    none came for longer than a lease (see below)
    owner:<owner>   set of the ids of the tasks an owner runs
    job:<job>       hash: last_tick owner lease_until (a cron job)
    jobs            set of the cron jobs' names
    tick:<job>:<t>  "<outcome> <owner>" of a claimed tick, expiring after
                    ``keep_finished`` seconds

Times are the callers' (seconds since the epoch), passed to the scripts as
text and stored as given. When no claim has come for longer than a lease
(the server was down, or no process ran), the claims that expired meanwhile
are honoured for one lease more, so that the processes that still run
them, cut off from Redis, can renew them or store their outcome before
another process runs them again.

A claim whose answer is lost (the server stopped as it answered) leaves
tasks claimed that their owner does not know of: the store notes that the
owner's claim is in doubt, and its next claim takes back first the tasks
the owner holds in Redis but was never given (their run already counted),
so that they run now rather than after their lease, as lost.

When the server cannot be reached, or refuses to serve for now (out of
memory, read-only, unable to persist, busy), every method raises
:class:`~shiji._errors.StorageUnavailableError` (no command is retried by
the client: a script whose answer was lost may have run); the client
connects again on the next call.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ._errors import StorageUnavailableError
from ._storage_redis import unavailable_reply
from ._task_store import QUEUED, StoredTask, TickClaim

__all__ = ["RedisTaskStore"]

_T = TypeVar("_T")

# Fields a script returns for a task, in StoredTask's order.
_FIELDS = ("api", "name", "arguments", "state", "attempts", "run_at", "error")

_ENQUEUE = """
local key = ARGV[1] .. 'task:' .. ARGV[2]
if redis.call('EXISTS', key) == 1 then return 0 end
redis.call('HSET', key, 'api', ARGV[3], 'name', ARGV[4], 'arguments', ARGV[5],
  'state', 'queued', 'attempts', 0, 'run_at', ARGV[6], 'created', ARGV[7],
  'max_runs', ARGV[8])
redis.call('ZADD', ARGV[1] .. 'due', ARGV[6], ARGV[2])
redis.call('ZADD', ARGV[1] .. 'order', redis.call('INCR', ARGV[1] .. 'seq'), ARGV[2])
return 1
"""

# ARGV: prefix, owner, now, lease, until (now + lease), limit, in doubt
# (1: take back first this owner's claims that the caller never learnt of,
# whose ids follow, after the claim's answer was lost)
_CLAIM = """
local p, owner, now, lease = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local owned = p .. 'owner:' .. owner
local seen = tonumber(redis.call('GET', p .. 'seen') or '')
if seen == nil or now > seen then redis.call('SET', p .. 'seen', ARGV[3]) end
if seen ~= nil and now - seen > lease then
  redis.call('SET', p .. 'resumed', ARGV[3])
end
local resumed = tonumber(redis.call('GET', p .. 'resumed') or '-1e300')
local reclaim = now >= resumed + lease
local limit = tonumber(ARGV[6])
local found = {}
if ARGV[7] == '1' then
  local known = {}
  for i = 8, #ARGV do known[ARGV[i]] = true end
  for _, id in ipairs(redis.call('SMEMBERS', owned)) do
    local key = p .. 'task:' .. id
    local t = redis.call('HMGET', key, 'state', 'owner')
    if t[1] == 'running' and t[2] == owner then
      if not known[id] then
        redis.call('HSET', key, 'lease_until', ARGV[5])
        redis.call('ZADD', p .. 'due', ARGV[5], id)
        table.insert(found, id)
      end
    else
      redis.call('SREM', owned, id)
    end
  end
end
local offset = 0
while #found < limit do
  local ids = redis.call('ZRANGEBYSCORE', p .. 'due', '-inf', ARGV[3],
    'LIMIT', offset, limit)
  if #ids == 0 then break end
  offset = offset + #ids
  for _, id in ipairs(ids) do
    if #found >= limit then break end
    local key = p .. 'task:' .. id
    local t = redis.call('HMGET', key, 'state', 'attempts', 'max_runs', 'owner')
    local state, attempts = t[1], tonumber(t[2] or '0')
    if state == 'queued' or (state == 'running' and reclaim) then
      local max_runs = tonumber(t[3] or '')
      if state == 'running' then
        redis.call('SREM', p .. 'owner:' .. (t[4] or ''), id)
      end
      if state == 'running' and max_runs ~= nil and attempts >= max_runs then
        local error = 'its process ended during run ' .. attempts
        redis.call('HSET', key, 'state', 'failed', 'finished', ARGV[3],
          'error', error, 'owner', '', 'lease_until', '')
        redis.call('ZREM', p .. 'due', id)
        redis.call('ZADD', p .. 'finished', ARGV[3], id)
      else
        redis.call('HSET', key, 'state', 'running', 'owner', owner,
          'lease_until', ARGV[5], 'attempts', attempts + 1)
        redis.call('SADD', owned, id)
        -- Now leased: past the window read, so not read again.
        redis.call('ZADD', p .. 'due', ARGV[5], id)
      end
      offset = offset - 1
      table.insert(found, id)
    elseif state ~= 'queued' and state ~= 'running' then
      redis.call('ZREM', p .. 'due', id)
      offset = offset - 1
    end
  end
end
local out = {}
for _, id in ipairs(found) do
  local t = redis.call('HMGET', p .. 'task:' .. id, 'api', 'name', 'arguments',
    'state', 'attempts', 'run_at', 'error', 'max_runs')
  table.insert(out, id)
  for i = 1, 8 do table.insert(out, t[i] or '') end
end
return out
"""

# ARGV: prefix, owner, until, #task ids, task ids..., jobs...
_RENEW = """
local p, owner = ARGV[1], ARGV[2]
local count = tonumber(ARGV[4])
for i = 5, 4 + count do
  local key = p .. 'task:' .. ARGV[i]
  local t = redis.call('HMGET', key, 'owner', 'state')
  if t[1] == owner and t[2] == 'running' then
    redis.call('HSET', key, 'lease_until', ARGV[3])
    redis.call('ZADD', p .. 'due', ARGV[3], ARGV[i])
  end
end
for i = 5 + count, #ARGV do
  local key = p .. 'job:' .. ARGV[i]
  if redis.call('HGET', key, 'owner') == owner then
    redis.call('HSET', key, 'lease_until', ARGV[3])
  end
end
return 0
"""

# ARGV: prefix, id, owner, outcome (done, failed, queued), time, error or ''
_SETTLE = """
local p, id = ARGV[1], ARGV[2]
local key = p .. 'task:' .. id
local t = redis.call('HMGET', key, 'owner', 'state')
if t[1] ~= ARGV[3] or t[2] ~= 'running' then return 0 end
redis.call('SREM', p .. 'owner:' .. ARGV[3], id)
redis.call('HSET', key, 'state', ARGV[4], 'owner', '', 'lease_until', '')
if ARGV[6] ~= '' then redis.call('HSET', key, 'error', ARGV[6]) end
if ARGV[4] == 'queued' then
  redis.call('HSET', key, 'run_at', ARGV[5])
  redis.call('ZADD', p .. 'due', ARGV[5], id)
else
  redis.call('HSET', key, 'finished', ARGV[5])
  redis.call('ZREM', p .. 'due', id)
  redis.call('ZADD', p .. 'finished', ARGV[5], id)
end
return 1
"""

# ARGV: prefix, owner, now, task ids...
_RELEASE = """
local p, owner = ARGV[1], ARGV[2]
for i = 4, #ARGV do
  local key = p .. 'task:' .. ARGV[i]
  local t = redis.call('HMGET', key, 'owner', 'state', 'attempts')
  if t[1] == owner and t[2] == 'running' then
    redis.call('SREM', p .. 'owner:' .. owner, ARGV[i])
    redis.call('HSET', key, 'state', 'queued', 'run_at', ARGV[3], 'owner', '',
      'lease_until', '', 'attempts', tonumber(t[3]) - 1)
    redis.call('ZADD', p .. 'due', ARGV[3], ARGV[i])
  end
end
for _, job in ipairs(redis.call('SMEMBERS', p .. 'jobs')) do
  local key = p .. 'job:' .. job
  if redis.call('HGET', key, 'owner') == owner then
    redis.call('HSET', key, 'owner', '', 'lease_until', '')
  end
end
return 0
"""

# ARGV: prefix, before, batch
_PURGE = """
local p = ARGV[1]
local ids = redis.call('ZRANGEBYSCORE', p .. 'finished', '-inf', '(' .. ARGV[2],
  'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  redis.call('DEL', p .. 'task:' .. id)
  redis.call('ZREM', p .. 'finished', id)
  redis.call('ZREM', p .. 'order', id)
  redis.call('ZREM', p .. 'due', id)
end
return #ids
"""

# ARGV: prefix, job, tick key part, tick, owner, now, until, run (1/0), keep (ms)
_CLAIM_TICK = """
local p, job = ARGV[1], ARGV[2]
local tick_key = p .. 'tick:' .. job .. ':' .. ARGV[3]
if not redis.call('SET', tick_key, 'claimed ' .. ARGV[5], 'NX', 'PX', ARGV[9]) then
  return 'taken'
end
local key = p .. 'job:' .. job
redis.call('SADD', p .. 'jobs', job)
local last = redis.call('HGET', key, 'last_tick')
if not last or tonumber(last) < tonumber(ARGV[4]) then
  redis.call('HSET', key, 'last_tick', ARGV[4])
end
local t = redis.call('HMGET', key, 'owner', 'lease_until')
local busy = t[1] and t[1] ~= '' and tonumber(t[2]) > tonumber(ARGV[6])
if busy or ARGV[8] ~= '1' then
  local outcome = busy and 'busy' or 'missed'
  redis.call('SET', tick_key, outcome .. ' ' .. ARGV[5], 'KEEPTTL')
  return outcome
end
redis.call('HSET', key, 'owner', ARGV[5], 'lease_until', ARGV[7])
return 'run'
"""

# ARGV: prefix, job, tick key part, owner, outcome
_END_TICK = """
local p, job = ARGV[1], ARGV[2]
local tick_key = p .. 'tick:' .. job .. ':' .. ARGV[3]
if redis.call('EXISTS', tick_key) == 1 then
  redis.call('SET', tick_key, ARGV[5] .. ' ' .. ARGV[4], 'KEEPTTL')
end
local key = p .. 'job:' .. job
if redis.call('HGET', key, 'owner') == ARGV[4] then
  redis.call('HSET', key, 'owner', '', 'lease_until', '')
end
return 0
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _number(value: float) -> str:
    """A time as the scripts are given it: exact (``repr`` of the float)."""
    return repr(float(value))


def _stored(task_id: str, fields: Sequence[str]) -> StoredTask:
    api, name, arguments, state, attempts, run_at, error, max_runs = fields
    return StoredTask(
        id=task_id,
        api=api,
        name=name,
        arguments=arguments,
        state=state,
        attempts=int(attempts or 0),
        run_at=float(run_at),
        error=error or None,
        max_runs=int(max_runs) if max_runs else None,
    )


class RedisTaskStore:
    """
    :class:`~shiji._task_store.TaskStore` on the Redis server of ``url``
    (``redis://[:password@]host[:port][/db]`` or ``rediss://...``).

    :param url: the server.
    :param keep_finished: seconds a cron tick's claim is kept (finished
        tasks are deleted by :meth:`purge`).
    :param prefix: put before every key.
    :param timeout: seconds to connect, and to wait for an answer, before
        the server counts as unreachable.
    """

    def __init__(
        self,
        url: str,
        *,
        keep_finished: float = 7 * 86400.0,
        prefix: str = "shiji:tasks:",
        timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.keep_finished = keep_finished
        self.prefix = prefix
        self.timeout = timeout
        self._client: Optional[redis.Redis] = None
        self._scripts: Dict[str, Any] = {}
        #: The ids of the running tasks each owner was given.
        self._given: Dict[str, Set[str]] = {}
        #: Owners whose last claim failed: it may have claimed unbeknown.
        self._in_doubt: Set[str] = set()

    def open(self) -> None:
        """
        Make the client; it connects on the first call, so a server down
        now is no error here (the calls fail until it is back).

        :raises ValueError: the URL is malformed.
        """
        client = redis.Redis.from_url(
            self.url,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            decode_responses=True,
        )
        self._scripts = {
            name: client.register_script(source)
            for name, source in (
                ("enqueue", _ENQUEUE),
                ("claim", _CLAIM),
                ("renew", _RENEW),
                ("settle", _SETTLE),
                ("release", _RELEASE),
                ("purge", _PURGE),
                ("claim_tick", _CLAIM_TICK),
                ("end_tick", _END_TICK),
            )
        }
        self._client = client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _redis(self) -> redis.Redis:
        if self._client is None:
            raise RuntimeError("the task store is not open")
        return self._client

    def _call(self, function: Callable[[], _T]) -> _T:
        try:
            return function()
        except (redis.ConnectionError, redis.TimeoutError) as e:
            # The client is told no more than that; the log has the cause.
            raise StorageUnavailableError() from e
        except redis.ResponseError as e:
            # Out of memory, read-only, unable to persist...: for now.
            if unavailable_reply(e):
                raise StorageUnavailableError() from e
            raise

    def _script(self, name: str, *args: Any) -> Any:
        self._redis()
        script = self._scripts[name]
        return self._call(lambda: script(args=[self.prefix, *args]))

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
        self._script(
            "enqueue",
            task_id,
            api,
            name,
            arguments,
            _number(run_at),
            _number(now),
            "" if max_runs is None else str(max_runs),
        )
        return task_id

    def claim(
        self, owner: str, now: float, lease: float, limit: int
    ) -> List[StoredTask]:
        given = self._given.setdefault(owner, set())
        in_doubt = owner in self._in_doubt
        if limit <= 0 and not in_doubt:
            return []
        try:
            found = self._script(
                "claim",
                owner,
                _number(now),
                _number(lease),
                _number(now + lease),
                str(max(0, limit)),
                "1" if in_doubt else "0",
                *(sorted(given) if in_doubt else ()),
            )
        except StorageUnavailableError:
            self._in_doubt.add(owner)
            raise
        self._in_doubt.discard(owner)
        claimed = [
            _stored(_text(found[i]), [_text(v) for v in found[i + 1 : i + 9]])
            for i in range(0, len(found), 9)
        ]
        given.update(t.id for t in claimed if t.state == "running")
        return claimed

    def _settled(self, owner: str, task_ids: Sequence[str]) -> None:
        given = self._given.get(owner)
        if given is not None:
            given.difference_update(task_ids)

    def renew(
        self, owner: str, task_ids: Sequence[str], jobs: Sequence[str], until: float
    ) -> None:
        self._script(
            "renew",
            owner,
            _number(until),
            str(len(task_ids)),
            *task_ids,
            *jobs,
        )

    def _settle(
        self, task_id: str, owner: str, state: str, when: float, error: str
    ) -> bool:
        settled = bool(
            self._script("settle", task_id, owner, state, _number(when), error)
        )
        self._settled(owner, [task_id])
        return settled

    def finish(self, task_id: str, owner: str, now: float) -> bool:
        return self._settle(task_id, owner, "done", now, "")

    def retry(self, task_id: str, owner: str, run_at: float, error: str) -> bool:
        return self._settle(task_id, owner, QUEUED, run_at, error)

    def fail(self, task_id: str, owner: str, now: float, error: str) -> bool:
        return self._settle(task_id, owner, "failed", now, error)

    def release(self, owner: str, task_ids: Sequence[str], now: float) -> None:
        self._script("release", owner, _number(now), *task_ids)
        self._settled(owner, task_ids)

    def purge(self, before: float) -> int:
        purged = 0
        while True:
            count = int(self._script("purge", _number(before), "500"))
            purged += count
            if count < 500:
                return purged

    def tasks(self, state: Optional[str] = None) -> List[StoredTask]:
        client = self._redis()
        ids = [
            _text(i)
            for i in self._call(lambda: client.zrange(self.prefix + "order", 0, -1))
        ]
        pipe = client.pipeline(transaction=False)
        for task_id in ids:
            pipe.hmget(f"{self.prefix}task:{task_id}", [*_FIELDS, "max_runs"])
        rows = self._call(pipe.execute)
        found = [
            _stored(task_id, ["" if v is None else _text(v) for v in row])
            for task_id, row in zip(ids, rows)
            if row[0] is not None
        ]
        return [t for t in found if state is None or t.state == state]

    def last_tick(self, job: str) -> Optional[float]:
        client = self._redis()
        value = self._call(lambda: client.hget(f"{self.prefix}job:{job}", "last_tick"))
        return None if value is None else float(_text(value))

    def claim_tick(
        self, job: str, tick: float, owner: str, now: float, lease: float, run: bool
    ) -> TickClaim:
        keep = max(1, int(self.keep_finished * 1000))
        return _text(
            self._script(
                "claim_tick",
                job,
                _number(tick),
                _number(tick),
                owner,
                _number(now),
                _number(now + lease),
                "1" if run else "0",
                str(keep),
            )
        )

    def end_tick(self, job: str, tick: float, owner: str, outcome: str) -> None:
        self._script("end_tick", job, _number(tick), owner, outcome)
