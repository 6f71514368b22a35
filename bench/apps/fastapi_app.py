"""
(c) The benchmark's logic in FastAPI, written as FastAPI documents it: a
pydantic model for the body, query and header parameters, and ``async def``
handlers (a plain ``def`` would run each request in a thread). The nested
scenario's order is a tree of pydantic models with strict types and the
rules of Shiji's declaration (``benchapi``'s ``OrderCall``) as ``Field``
constraints; an order that breaks one gets FastAPI's 422 listing every
failing field.

Usage: uvicorn --app-dir bench/apps fastapi_app:app ...
"""

from typing import Annotated, List, Literal, Optional

from benchdata import ITEMS, order_result
from fastapi import FastAPI, Header, HTTPException, Query
from fastapi.responses import ORJSONResponse
from pydantic import BaseModel, Field, StrictBool, StrictFloat, StrictInt, StrictStr

app = FastAPI(default_response_class=ORJSONResponse)


class Ping(BaseModel):
    client_tz: StrictInt
    client_id: StrictStr
    new_client: Optional[StrictBool] = None


def check_version(x_api_version: Optional[str]) -> None:
    if x_api_version != "benchapi-1.0+prod":
        raise HTTPException(406, "unknown version")


@app.post("/benchapi/ping/{timestamp}")
async def ping(
    timestamp: int,
    body: Ping,
    simple_auth_key: str,
    x_api_version: Optional[str] = Header(None),
):
    check_version(x_api_version)
    if simple_auth_key != "abc":
        raise HTTPException(409, "Invalid value for argument 'simple_auth_key'.")
    return {
        "result": {
            "timestamp": timestamp,
            "client_tz": body.client_tz,
            "client_id": body.client_id,
            "new_client": bool(body.new_client),
        }
    }


@app.get("/benchapi/items")
async def items(
    page: int = Query(0, ge=0),
    page_len: int = Query(100, ge=1, le=100),
    x_api_version: Optional[str] = Header(None),
) -> dict:
    check_version(x_api_version)
    start = page * page_len
    return {"result": ITEMS[start : start + page_len]}


# pydantic's patterns are searched for (Rust's regex, where $ is only the
# end of the string): ^ and $ make them match the whole string, as Shiji's do.


class Address(BaseModel):
    street: Annotated[StrictStr, Field(min_length=1, max_length=100)]
    city: Annotated[StrictStr, Field(min_length=1, max_length=60)]
    zip: Annotated[StrictStr, Field(min_length=3, max_length=10)]
    country: Annotated[StrictStr, Field(pattern=r"^[A-Z]{2}$")]


class Customer(BaseModel):
    name: Annotated[StrictStr, Field(min_length=1, max_length=100)]
    email: Annotated[
        StrictStr, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")
    ]
    age: Annotated[StrictInt, Field(ge=18, le=130)]
    address: Address


class Line(BaseModel):
    sku: Annotated[StrictStr, Field(pattern=r"^[A-Z]{3}-[0-9]{4}$")]
    quantity: Annotated[StrictInt, Field(ge=1, le=100)]
    price: Annotated[StrictFloat, Field(gt=0, le=10_000)]


class Flags(BaseModel):
    gift: StrictBool
    express: StrictBool
    insured: StrictBool


class Order(BaseModel):
    order_id: Annotated[StrictStr, Field(pattern=r"^ORD-[0-9]{6}$")]
    currency: Literal["EUR", "USD", "GBP"]
    priority: Annotated[StrictInt, Field(ge=1, le=5)]
    customer: Customer
    lines: Annotated[List[Line], Field(min_length=1, max_length=10)]
    flags: Flags
    tags: Annotated[
        List[Annotated[StrictStr, Field(min_length=1, max_length=20)]],
        Field(max_length=5),
    ]
    note: Annotated[StrictStr, Field(max_length=200)] = ""


@app.post("/benchapi/orders")
async def orders(order: Order, x_api_version: Optional[str] = Header(None)):
    check_version(x_api_version)
    lines = [(line.quantity, line.price) for line in order.lines]
    return order_result(order.order_id, lines)
