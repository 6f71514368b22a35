"""
A task and a job each second; each run is noted in RUNS and, with the
configuration's ``out``, appended to that file as one line.
"""

import os
import time

from shiji import tasks

#: What ran in this process: ``(kind, label)``.
RUNS = []
#: The shared store each run of ``record`` found in its context.
STORES = []


def _out(line):
    config = tasks.current().config or {}
    if "out" in config:
        descriptor = os.open(config["out"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(descriptor, f"{line} {os.getpid()}\n".encode())
        finally:
            os.close(descriptor)


@tasks.task()
def record(label, seconds=0.0):
    if seconds:
        time.sleep(seconds)
    RUNS.append(("record", label))
    STORES.append(tasks.current().store)
    _out(f"record {label}")


@tasks.every(seconds=1)
def tick():
    RUNS.append(("tick", tasks.current().id))
    _out(f"tick {tasks.current().id}")
