"""
The calls of benchapi 1.0: the PingCall POST of the Shiji tour, without its
network round trip, a paged list, and an order of 30 fields in nested
objects, checked against rules.
"""

from typing import Annotated, List

from benchdata import ITEMS, order_result

from shiji import urldispatch, webapi
from shiji.webapi import Arg


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


#: An order's line: a SKU such as ``ABC-1234``, a quantity, a price.
Line = webapi.Object(
    [
        Arg("sku", str, pattern=r"[A-Z]{3}-[0-9]{4}"),
        Arg("quantity", int, minimum=1, maximum=100),
        Arg("price", float, exclusive_minimum=0, maximum=10_000),
    ]
)

#: The customer, with a postal address.
CUSTOMER = [
    Arg("name", str, min_length=1, max_length=100),
    Arg("email", str, max_length=254, pattern=r"[^@\s]+@[^@\s]+\.[a-z]{2,}"),
    Arg("age", int, minimum=18, maximum=130),
    Arg(
        "address",
        [
            Arg("street", str, min_length=1, max_length=100),
            Arg("city", str, min_length=1, max_length=60),
            Arg("zip", str, min_length=3, max_length=10),
            Arg("country", str, pattern=r"[A-Z]{2}"),
        ],
    ),
]

Tag = Annotated[str, webapi.Constraints(min_length=1, max_length=20)]


class OrderCall(urldispatch.URLMatchJSONResource):
    """
    Takes an order of 30 fields in nested objects and answers with its
    number of lines and items and its total.
    """

    routes = r"orders"

    @webapi.json_arguments(
        [
            Arg("order_id", str, pattern=r"ORD-[0-9]{6}"),
            Arg("currency", str, enum=["EUR", "USD", "GBP"]),
            Arg("priority", int, minimum=1, maximum=5),
            Arg("customer", CUSTOMER),
            Arg("lines", List[Line], min_items=1, max_items=10),
            Arg(
                "flags",
                [Arg("gift", bool), Arg("express", bool), Arg("insured", bool)],
            ),
            Arg("tags", List[Tag], max_items=5),
            Arg("note", str, required=False, max_length=200),
        ]
    )
    def render_POST(self, request):
        """
        The order's lines, items and total.
        """
        args = request.jsonArgs
        lines = [(line["quantity"], line["price"]) for line in args["lines"]]
        return order_result(args["order_id"], lines)
