"""
(d) The benchmark's logic in Falcon's ASGI flavour, the peer the goals are
set against: it answers every scenario, the error with Shiji's envelope,
and checks the nested scenario's order with msgspec, decoding the body
straight into Structs whose ``msgspec.Meta`` hold the rules of Shiji's
declaration (``benchapi``'s ``OrderCall``); an order that breaks one is
answered as Falcon answers an unprocessable body, 422 with msgspec's text.

Usage: uvicorn --app-dir bench/apps falcon_app:app ...
"""

from typing import Annotated, List, Literal

import falcon
import falcon.asgi
import falcon.media
import msgspec
from benchdata import ITEMS, invalid_argument, order_result, ping_argument_error
from msgspec import Meta

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


# msgspec looks for a pattern anywhere in the string (re.search); \A and \Z
# make it match the whole string, as Shiji's does (Python's $ would let a
# final line end through).


class Address(msgspec.Struct):
    street: Annotated[str, Meta(min_length=1, max_length=100)]
    city: Annotated[str, Meta(min_length=1, max_length=60)]
    zip: Annotated[str, Meta(min_length=3, max_length=10)]
    country: Annotated[str, Meta(pattern=r"\A[A-Z]{2}\Z")]


class Customer(msgspec.Struct):
    name: Annotated[str, Meta(min_length=1, max_length=100)]
    email: Annotated[
        str, Meta(max_length=254, pattern=r"\A[^@\s]+@[^@\s]+\.[a-z]{2,}\Z")
    ]
    age: Annotated[int, Meta(ge=18, le=130)]
    address: Address


class Line(msgspec.Struct):
    sku: Annotated[str, Meta(pattern=r"\A[A-Z]{3}-[0-9]{4}\Z")]
    quantity: Annotated[int, Meta(ge=1, le=100)]
    price: Annotated[float, Meta(gt=0, le=10_000)]


class Flags(msgspec.Struct):
    gift: bool
    express: bool
    insured: bool


class Order(msgspec.Struct):
    order_id: Annotated[str, Meta(pattern=r"\AORD-[0-9]{6}\Z")]
    currency: Literal["EUR", "USD", "GBP"]
    priority: Annotated[int, Meta(ge=1, le=5)]
    customer: Customer
    lines: Annotated[List[Line], Meta(min_length=1, max_length=10)]
    flags: Flags
    tags: Annotated[
        List[Annotated[str, Meta(min_length=1, max_length=20)]], Meta(max_length=5)
    ]
    note: Annotated[str, Meta(max_length=200)] = ""


order_decoder = msgspec.json.Decoder(Order)


class Orders:
    async def on_post(self, req, resp):
        check_version(req)
        if req.content_type is None or not req.content_type.startswith(
            "application/json"
        ):
            raise falcon.HTTPNotAcceptable(description="not JSON")
        try:
            order = order_decoder.decode(await req.stream.read())
        except msgspec.ValidationError as e:
            raise falcon.HTTPUnprocessableEntity(description=str(e)) from None
        except msgspec.DecodeError as e:
            raise falcon.HTTPBadRequest(description=str(e)) from None
        lines = [(line.quantity, line.price) for line in order.lines]
        resp.media = order_result(order.order_id, lines)


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
app.add_route("/benchapi/orders", Orders())
