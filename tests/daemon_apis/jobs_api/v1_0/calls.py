import os

from shiji import urldispatch


class Pid(urldispatch.URLMatchJSONResource):
    routes = r"pid"

    def render_GET(self, request):
        return {"pid": os.getpid()}
