"""
Background tasks and scheduled jobs of an API, declared in its
``tasks.py`` (imported when the API loads)::

    from shiji import tasks

    @tasks.task(retries=3, backoff=2.0, timeout=30)
    def send_email(to, subject): ...      # blocking: runs in the task threads

    @tasks.task()
    async def refresh(key): ...           # a coroutine: runs on the reactor

    @tasks.cron("0 2 * * *")              # 02:00 UTC, once across processes
    def nightly(): ...

    @tasks.every(seconds=60)
    def sweep(): ...

    def on_error(name, task_id, arguments, failure):
        ...                               # a run failed for good

A handler queues a run with ``task_id = await send_email.enqueue(to=...,
subject=...)``. Every process of shijid that serves the APIs runs a
:class:`TaskService`, which takes queued tasks from a queue shared by the
processes and runs each once (at least once: see the README's "Background
tasks and cron"): an SQLite file shared by the processes of one host
(``[tasks] database``), or, when ``[storage] url`` names a Redis server,
that server, shared by every host (``RedisTaskStore`` in
``shiji._task_store_redis``). One process across all those sharing the
``[storage]`` store times the scheduled jobs: the holder of its lease lock.
When the queue cannot be reached, ``enqueue()`` fails with
:class:`~shiji.webapi.StorageUnavailableError` (HTTP 503, error 218).
"""

from ._task_declarations import (
    CronJob,
    Task,
    TaskContext,
    cron,
    current,
    every,
    task,
)
from ._task_runner import TaskTimeoutError
from ._task_service import TaskLostError, TaskService
from ._task_store import SQLiteTaskStore, StoredTask, TaskStore

__all__ = [
    "CronJob",
    "SQLiteTaskStore",
    "StoredTask",
    "Task",
    "TaskContext",
    "TaskLostError",
    "TaskService",
    "TaskStore",
    "TaskTimeoutError",
    "cron",
    "current",
    "every",
    "task",
]
