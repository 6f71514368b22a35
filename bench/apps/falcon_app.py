"""
(d) The benchmark's logic in Falcon's ASGI flavour, the fastest of the
asyncio peers here.

Usage: uvicorn --app-dir bench/apps falcon_app:app ...
"""

import falcon
import falcon.asgi
import falcon.media

try:
    import orjson

    handler = falcon.media.JSONHandler(dumps=orjson.dumps, loads=orjson.loads)
except ImportError:
    handler = falcon.media.JSONHandler()

ITEMS = [
    {"id": i, "name": f"item-{i}", "price": round(i * 1.25, 2), "in_stock": i % 3 != 0}
    for i in range(1000)
]


def invalid(name, why):
    return falcon.HTTPConflict(
        title="ValueError", description=f"Invalid value for argument '{name}'. {why}"
    )


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
            raise invalid("body", "not an object")
        key = req.get_param("simple_auth_key")
        if key is None:
            raise invalid("simple_auth_key", "Argument is missing.")
        for name, kind, required in (
            ("client_tz", int, True),
            ("client_id", str, True),
            ("new_client", bool, False),
        ):
            if name not in args:
                if required:
                    raise invalid(name, "Argument is missing.")
                continue
            value = args[name]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise invalid(name, f"Must be of type {kind.__name__}")
        if key != "abc":
            raise invalid("simple_auth_key", "Key isn't valid!")
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
