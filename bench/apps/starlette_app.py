"""
(j) The benchmark's logic in Starlette, the toolkit under FastAPI, without
FastAPI's models: routes of ``async def`` handlers and orjson responses.

Usage: uvicorn --app-dir bench/apps starlette_app:app ...
"""

import orjson
from benchdata import ITEMS, invalid_argument, ping_argument_error
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

JSON_TYPE = "application/json; charset=utf-8"


def answer(result, status=200):
    return Response(orjson.dumps(result), status, media_type=JSON_TYPE)


def invalid(name, why):
    return answer(
        invalid_argument(name, why),
        409,
    )


def wrong_version(request):
    if request.headers.get("x-api-version") != "benchapi-1.0+prod":
        return answer({"result": None, "error": "unknown version"}, 406)
    return None


async def ping(request):
    refused = wrong_version(request)
    if refused is not None:
        return refused
    media = request.headers.get("content-type", "")
    if media.split(";")[0].strip().lower() != "application/json":
        return answer({"result": None, "error": "not JSON"}, 406)
    try:
        args = orjson.loads(await request.body())
    except ValueError:
        return invalid("body", "bad JSON")
    if not isinstance(args, dict):
        return invalid("body", "not an object")
    problem = ping_argument_error(args, request.query_params.get("simple_auth_key"))
    if problem is not None:
        return invalid(*problem)
    return answer(
        {
            "result": {
                "timestamp": request.path_params["timestamp"],
                "client_tz": args["client_tz"],
                "client_id": args["client_id"],
                "new_client": args.get("new_client", False),
            }
        }
    )


async def items(request):
    refused = wrong_version(request)
    if refused is not None:
        return refused
    query = request.query_params
    try:
        page = int(query.get("page", "0"))
        page_len = int(query.get("page_len", "100"))
    except ValueError:
        return invalid("page", "Must be of type int")
    if page < 0 or not 1 <= page_len <= 100:
        return invalid("page_len", "Must be between 1 and 100.")
    start = page * page_len
    return answer({"result": ITEMS[start : start + page_len]})


app = Starlette(
    routes=[
        Route("/benchapi/ping/{timestamp:int}", ping, methods=["POST"]),
        Route("/benchapi/items", items, methods=["GET"]),
    ]
)
