from shiji import tasks

raise RuntimeError("tasks.py fails on import")
