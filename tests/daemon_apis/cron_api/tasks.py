"""Jobs every second, each run written to the file ``out``."""

import os

from shiji import tasks


def _out(line):
    with open(tasks.current().config["out"], "a") as out:
        out.write(f"{line} {os.getpid()}\n")


@tasks.every(seconds=1)
def tick():
    _out(f"tick {tasks.current().id}")


@tasks.every(seconds=1, catch_up=True)
def tick_catch_up():
    _out(f"tick_catch_up {tasks.current().id}")
