import os

from shiji import urldispatch, webapi

from .. import tasks


class Record(urldispatch.URLMatchJSONResource):
    """Queue ``count`` runs of ``record``, labelled ``<label>-<i>``."""

    routes = r"record"

    @webapi.json_arguments([("label", str), ("count", int), ("seconds", float)])
    async def render_POST(self, request):
        label, count = request.jsonArgs["label"], request.jsonArgs["count"]
        seconds = request.jsonArgs["seconds"]
        ids = []
        for i in range(count):
            ids.append(await tasks.record.enqueue(f"{label}-{i}", seconds))
        return {"ids": ids, "pid": os.getpid()}
