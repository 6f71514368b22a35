"""
(d) The benchmark's logic in Falcon's ASGI flavour, the peer the goals are
set against: it answers all three scenarios, the error with Shiji's envelope.

Usage: uvicorn --app-dir bench/apps falcon_app:app ...
"""

import falcon
import falcon.asgi
import falcon.media
from benchdata import ITEMS, invalid_argument, ping_argument_error

try:
    import orjson

    handler = falcon.media.JSONHandler(dumps=orjson.dumps, loads=orjson.loads)
except ImportError:
    handler = falcon.media.JSONHandler()


def invalid(resp, name, why):
    """Shiji's answer to an argument of the wrong type: 409 and its envelope."""
    resp.status = falcon.HTTP_409
    resp.media = invalid_argument(name, why)


def check_version(req):
    if req.get_header("X-API-Version") != "benchapi-1.0+prod":
        raise falcon.HTTPNotAcceptable(description="unknown version")


class Ping:
    async def on_post(self, req, resp, timestamp):
        check_version(req)
        if req.content_type is None or not req.content_type.startswith(
            "application/json"
        ):
            raise falcon.HTTPNotAcceptable(description="not JSON")
        args = await req.get_media()
        if not isinstance(args, dict):
            return invalid(resp, "body", "not an object")
        problem = ping_argument_error(args, req.get_param("simple_auth_key"))
        if problem is not None:
            return invalid(resp, *problem)
        resp.media = {
            "result": {
                "timestamp": timestamp,
                "client_tz": args["client_tz"],
                "client_id": args["client_id"],
                "new_client": args.get("new_client", False),
            }
        }


class Items:
    async def on_get(self, req, resp):
        check_version(req)
        page = req.get_param_as_int("page", default=0, min_value=0)
        page_len = req.get_param_as_int(
            "page_len", default=100, min_value=1, max_value=100
        )
        start = page * page_len
        resp.media = {"result": ITEMS[start : start + page_len]}


app = falcon.asgi.App()
app.req_options.media_handlers[falcon.MEDIA_JSON] = handler
app.resp_options.media_handlers[falcon.MEDIA_JSON] = handler
app.add_route("/benchapi/ping/{timestamp:int}", Ping())
app.add_route("/benchapi/items", Items())
