"""Tasks for the tests: each run is noted in RUNS and, with ``out``, a file."""

import os
import threading
import time

from twisted.internet import defer

from shiji import tasks

#: What ran, in order, in this process.
RUNS = []
#: What on_error was called with.
FAILURES = []
#: Deferreds that ``wait_for`` runs wait on, by key.
WAITING = {}
#: Events that ``held`` runs (in threads) wait on, by label.
HELD = {}


def _out(line):
    config = tasks.current().config or {}
    if "out" in config:
        with open(config["out"], "a") as out:
            out.write(f"{line} {os.getpid()}\n")


@tasks.task()
def record(label):
    RUNS.append(("record", label))
    _out(f"record {label}")


@tasks.task(retries=1)
def slow_record(label, seconds):
    _out(f"start {label}")
    time.sleep(seconds)
    _out(f"end {label}")


@tasks.task(retries=2, backoff=2.0)
def flaky(label, failures=0):
    attempt = tasks.current().attempt
    RUNS.append(("flaky", label, attempt))
    if attempt <= failures:
        raise ValueError(f"failure {attempt} of {label}")


@tasks.task(timeout=5)
async def wait_for(key):
    RUNS.append(("wait_for", key))
    try:
        await WAITING.setdefault(key, defer.Deferred())
    except defer.CancelledError:
        RUNS.append(("cancelled", key))
        raise


@tasks.task(timeout=3)
def in_thread(label):
    RUNS.append(("in_thread", label))


@tasks.task()
def measured():
    context = tasks.current()
    context.metrics.increment("tasks_api.custom")
    RUNS.append(("measured", context.name, context.api, context.attempt))


@tasks.task(timeout=3)
def held(label):
    RUNS.append(("held", label))
    HELD.setdefault(label, threading.Event()).wait(10)


@tasks.task(timeout=0.2)
def stuck(label):
    _out(f"stuck {label}")
    time.sleep(3600)


def on_error(name, task_id, arguments, failure):
    FAILURES.append((name, task_id, arguments, failure.getErrorMessage()))
