"""
Calls of mylogin_api 1.0.
"""

import time

from twisted.internet import defer, threads

from shiji import urldispatch, webapi

from .errors import SampleAdvancedError, SampleNormalError


class PingCall(urldispatch.URLMatchJSONResource):
    """
    Echoes back at the caller.
    """

    routes = [r"ping/(?P<timestamp>[0-9]+)", r"ping"]

    def render_GET(self, request):
        """
        Simple PING call, that echoes back the client's supplied timestamp.

        URL path arguments:

        - `timestamp` (int, optional): a client-supplied UNIX timestamp.

        Returns a string naming the API, version and mode that answered.
        """
        if request.api_mode == "prod":
            mode_string = "I'm production baby!"
        elif request.api_mode == "test":
            mode_string = "I'm in testing mode. :("
        else:
            mode_string = "I have no clue what mode I'm in."

        response = f"PONG! Right back at ya. {mode_string} "
        if "timestamp" in self.url_matches:
            response += f"(Timestamp Val: {int(self.url_matches['timestamp'])}) "
        response += (
            f"(API: {request.api_name}, Version: {request.api_version}, "
            f"Mode: {request.api_mode})"
        )
        webapi.write_json(request, response)

    @webapi.json_arguments(
        [
            ("client_tz", int),
            ("client_id", str),
            ("new_client", bool, webapi.ARG_OPTIONAL),
        ]
    )
    @webapi.url_arguments(["simple_auth_key"])
    @defer.inlineCallbacks
    def render_POST(self, request):
        """
        Measure how long a round trip through the server's thread pool takes
        (where blocking work such as database queries runs).

        URL query arguments:

        - `simple_auth_key` (str): must be `abc`.

        JSON body arguments:

        - `client_tz` (int): the client's timezone offset from GMT.
        - `client_id` (str): the client's unique ID.
        - `new_client` (bool, optional): does magic if true.

        Returns `{"result": {"latency": seconds, "client_tz": ...,
        "client_id": ..., "new_client": ...}}`.
        """
        auth_key = request.args["simple_auth_key"][0]
        if auth_key != "abc":
            return str(
                webapi.ValueError(request, "simple_auth_key", "Key isn't valid!")
            )

        start_time = time.monotonic()
        yield threads.deferToThread(time.monotonic)
        latency = time.monotonic() - start_time

        new_client = False
        if "new_client" in request.jsonArgs:
            new_client = request.jsonArgs["new_client"]

        return {
            "result": {
                "latency": latency,
                "client_tz": request.jsonArgs["client_tz"],
                "client_id": request.jsonArgs["client_id"],
                "new_client": new_client,
            }
        }


class SampleErrorsCall(urldispatch.URLMatchJSONResource):
    """
    Answers with the API's own errors, to show how they reach clients.
    """

    routes = r"sample_error/(?P<kind>normal|advanced)"

    def render_GET(self, request):
        """
        Answer with `SampleNormalError` (raised) or `SampleAdvancedError`
        (returned as a string), by the `kind` in the path.
        """
        if self.url_matches["kind"] == "normal":
            raise SampleNormalError(request)
        return str(SampleAdvancedError(request, "extra argument"))
