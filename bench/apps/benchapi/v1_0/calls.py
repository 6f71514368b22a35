"""
The calls of benchapi 1.0: the PingCall POST of the Shiji tour, without its
network round trip, and a paged list.
"""

from benchdata import ITEMS

from shiji import urldispatch, webapi


class PingCall(urldispatch.URLMatchJSONResource):
    """
    Echoes the caller's arguments back.
    """

    routes = r"ping/(?P<timestamp>[0-9]+)"

    @webapi.json_arguments(
        [
            ("client_tz", int),
            ("client_id", str),
            ("new_client", bool, webapi.ARG_OPTIONAL),
        ]
    )
    @webapi.url_arguments(["simple_auth_key"])
    def render_POST(self, request):
        """
        Check the key and echo the JSON arguments and the path's timestamp.
        """
        if request.args["simple_auth_key"][0] != "abc":
            return webapi.ValueError(request, "simple_auth_key", "Key isn't valid!")
        args = request.jsonArgs
        return {
            "result": {
                "timestamp": int(self.url_matches["timestamp"]),
                "client_tz": args["client_tz"],
                "client_id": args["client_id"],
                "new_client": args.get("new_client", False),
            }
        }


class ItemsCall(urldispatch.URLMatchJSONResource):
    """
    A page of the item list.
    """

    routes = r"items"

    @webapi.paged_results(default_page_len=100, max_page_len=100)
    def render_GET(self, request):
        """
        Items ``page * page_len`` up to ``(page + 1) * page_len``.
        """
        page = request.args["page"][0]
        page_len = request.args["page_len"][0]
        start = page * page_len
        return {"result": ITEMS[start : start + page_len]}
