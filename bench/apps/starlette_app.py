"""
(j) The benchmark's logic in Starlette, the toolkit under FastAPI, without
FastAPI's models: routes of ``async def`` handlers and orjson responses.

Usage: uvicorn --app-dir bench/apps starlette_app:app ...
"""

import orjson
from benchdata import items_answer, ping_answer
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

JSON_TYPE = "application/json; charset=utf-8"


def answer(found):
    status, result = found
    return Response(orjson.dumps(result), status, media_type=JSON_TYPE)


async def ping(request):
    headers = request.headers
    return answer(
        ping_answer(
            headers.get("x-api-version"),
            headers.get("content-type", ""),
            await request.body(),
            request.query_params.get("simple_auth_key"),
            request.path_params["timestamp"],
        )
    )


async def items(request):
    query = request.query_params
    return answer(
        items_answer(
            request.headers.get("x-api-version"),
            query.get("page", "0"),
            query.get("page_len", "100"),
        )
    )


app = Starlette(
    routes=[
        Route("/benchapi/ping/{timestamp:int}", ping, methods=["POST"]),
        Route("/benchapi/items", items, methods=["GET"]),
    ]
)
