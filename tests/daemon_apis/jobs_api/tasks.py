"""Jobs for the in-memory tests: noted in RUNS, controlled by the tests."""

from twisted.internet import defer

from shiji import tasks

#: (job name, run id) of each run.
RUNS = []
#: What on_error was called with.
FAILURES = []
#: While set, ``gated`` runs wait on it.
GATE = []
#: While true, ``nightly`` fails.
BROKEN = []
#: While true, ``overrun`` waits for ever (and times out).
OVERRUN = []


@tasks.every(seconds=60)
async def gated():
    RUNS.append(("gated", tasks.current().id))
    if GATE:
        await GATE[0]


@tasks.cron("0 2 * * *")
def nightly():
    RUNS.append(("nightly", tasks.current().id))
    if BROKEN:
        raise OSError("disk full")


@tasks.cron("30 9 * * 1-5", timezone="Europe/Paris", catch_up=True)
def paris():
    RUNS.append(("paris", tasks.current().id))


@tasks.every(seconds=10, timeout=2)
async def overrun():
    RUNS.append(("overrun", tasks.current().id))
    if OVERRUN:
        await defer.Deferred()


def on_error(name, task_id, arguments, failure):
    FAILURES.append((name, task_id, arguments, failure.getErrorMessage()))
