"""A job due every second that takes longer than that."""

import os
import time

from shiji import tasks


@tasks.every(seconds=1)
def slow():
    config = tasks.current().config
    with open(config["out"], "a") as out:
        out.write(f"slow {tasks.current().id} {os.getpid()}\n")
    time.sleep(float(config.get("seconds", "2.5")))
