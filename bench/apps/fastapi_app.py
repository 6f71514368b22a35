"""
(c) The benchmark's logic in FastAPI, written as FastAPI documents it: a
pydantic model for the body, query and header parameters, and ``async def``
handlers (a plain ``def`` would run each request in a thread).

Usage: uvicorn --app-dir bench/apps fastapi_app:app ...
"""

from typing import Optional

from benchdata import ITEMS
from fastapi import FastAPI, Header, HTTPException, Query
from fastapi.responses import ORJSONResponse
from pydantic import BaseModel, StrictBool, StrictInt, StrictStr

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
