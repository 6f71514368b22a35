import os

from twisted.internet import threads

from shiji import urldispatch, webapi

from .. import tasks


class Record(urldispatch.URLMatchJSONResource):
    """Queue ``count`` runs of ``record``, labelled ``<label>-<i>``."""

    routes = r"record"

    @webapi.json_arguments([("label", str), ("count", int)])
    async def render_POST(self, request):
        label, count = request.jsonArgs["label"], request.jsonArgs["count"]
        ids = []
        for i in range(count):
            ids.append(await tasks.record.enqueue(f"{label}-{i}"))
        return {"ids": ids, "pid": os.getpid()}


class Slow(urldispatch.URLMatchJSONResource):
    """Queue one run of ``slow_record``."""

    routes = r"slow"

    @webapi.json_arguments([("label", str), ("seconds", float)])
    async def render_POST(self, request):
        task_id = await tasks.slow_record.enqueue(
            label=request.jsonArgs["label"], seconds=request.jsonArgs["seconds"]
        )
        return {"id": task_id}


class Stuck(urldispatch.URLMatchJSONResource):
    """Queue ``count`` runs of ``stuck``, labelled ``<label>-<i>``."""

    routes = r"stuck"

    @webapi.json_arguments([("label", str), ("count", int)])
    async def render_POST(self, request):
        label, count = request.jsonArgs["label"], request.jsonArgs["count"]
        ids = []
        for i in range(count):
            ids.append(await tasks.stuck.enqueue(f"{label}-{i}"))
        return {"ids": ids}


class Threaded(urldispatch.URLMatchJSONResource):
    """Answer with what a function run by ``deferToThread`` returns."""

    routes = r"threaded"

    async def render_GET(self, request):
        return {"pid": await threads.deferToThread(os.getpid)}


class Refused(urldispatch.URLMatchJSONResource):
    """Queue ``record`` with an argument that is not JSON."""

    routes = r"refused"

    async def render_POST(self, request):
        try:
            await tasks.record.enqueue({1, 2})
        except TypeError as e:
            return {"refused": str(e)}
        return {"refused": None}
