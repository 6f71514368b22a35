import os
import time

from shiji import urldispatch


def spin_for(seconds):
    """Keep the reactor busy, never yielding, for ``seconds``."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:  # the spinning line
        pass


class Spin(urldispatch.URLMatchJSONResource):
    routes = r"spin/(?P<seconds>[0-9.]+)"

    def render_GET(self, request):
        spin_for(float(self.url_matches["seconds"]))
        return {"pid": os.getpid()}


class Sleep(urldispatch.URLMatchJSONResource):
    routes = r"sleep/(?P<seconds>[0-9.]+)"

    def render_GET(self, request):
        time.sleep(float(self.url_matches["seconds"]))
        return {"pid": os.getpid()}


class Pid(urldispatch.URLMatchJSONResource):
    routes = r"pid"

    def render_GET(self, request):
        return {"pid": os.getpid()}
