import os

from twisted.internet import defer, reactor, task

from shiji import auth, urldispatch, webapi


class Sleep(urldispatch.URLMatchJSONResource):
    routes = r"sleep/(?P<seconds>[0-9.]+)"

    def render_GET(self, request):
        seconds = float(self.url_matches["seconds"])
        return task.deferLater(reactor, seconds, lambda: {"slept": seconds})


class Hang(urldispatch.URLMatchJSONResource):
    routes = r"hang"

    def render_GET(self, request):
        return defer.Deferred()


class Probe(urldispatch.URLMatchJSONResource):
    routes = r"probe"

    def render_GET(self, request):
        request.metrics.increment("probe_api.custom")
        return {
            "pid": os.getpid(),
            "client_ip": request.client_ip,
            "reactor": type(reactor).__name__,
            "thread_pool_max": reactor.getThreadPool().max,
            "api_config": request.api_config,
        }

    @webapi.json_arguments([("n", int)])
    def render_POST(self, request):
        return {"n": request.jsonArgs["n"], "bytes": len(request.content.getvalue())}


class Fail(urldispatch.URLMatchJSONResource):
    routes = r"fail"

    def render_GET(self, request):
        raise webapi.AccessDeniedError(request)


class InFlight(urldispatch.URLMatchJSONResource):
    routes = r"in_flight"

    def render_GET(self, request):
        return {"others": len(request.site.in_flight) - 1, "pid": os.getpid()}


class Crash(urldispatch.URLMatchJSONResource):
    routes = r"crash"

    def render_GET(self, request):
        raise RuntimeError("internal detail 42")


class Ops(urldispatch.URLMatchJSONResource):
    routes = r"ops"

    @auth.login_required(role="ops")
    def render_GET(self, request):
        return {"permissions": request.permissions}
