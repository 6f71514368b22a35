"""
(i) The benchmark's logic in Sanic, serving itself: one process
(``single_process``), uvloop, access log off. Sanic reads HTTP/1.1 with its
own parser, in Python (httptools only splits its URLs).

Usage: python sanic_app.py PORT
"""

import sys

import orjson
from benchdata import ITEMS, invalid_argument, ping_argument_error
from sanic import Sanic
from sanic.response import HTTPResponse

JSON_TYPE = "application/json; charset=utf-8"

app = Sanic("benchapi")


def answer(result, status=200):
    return HTTPResponse(orjson.dumps(result), status, content_type=JSON_TYPE)


def invalid(name, why):
    return answer(
        invalid_argument(name, why),
        409,
    )


def wrong_version(request):
    if request.headers.get("x-api-version") != "benchapi-1.0+prod":
        return answer({"result": None, "error": "unknown version"}, 406)
    return None


@app.post("/benchapi/ping/<timestamp:int>")
async def ping(request, timestamp):
    refused = wrong_version(request)
    if refused is not None:
        return refused
    media = request.headers.get("content-type", "")
    if media.split(";")[0].strip().lower() != "application/json":
        return answer({"result": None, "error": "not JSON"}, 406)
    try:
        args = orjson.loads(request.body)
    except ValueError:
        return invalid("body", "bad JSON")
    if not isinstance(args, dict):
        return invalid("body", "not an object")
    problem = ping_argument_error(args, request.args.get("simple_auth_key"))
    if problem is not None:
        return invalid(*problem)
    return answer(
        {
            "result": {
                "timestamp": timestamp,
                "client_tz": args["client_tz"],
                "client_id": args["client_id"],
                "new_client": args.get("new_client", False),
            }
        }
    )


@app.get("/benchapi/items")
async def items(request):
    refused = wrong_version(request)
    if refused is not None:
        return refused
    try:
        page = int(request.args.get("page", "0"))
        page_len = int(request.args.get("page_len", "100"))
    except ValueError:
        return invalid("page", "Must be of type int")
    if page < 0 or not 1 <= page_len <= 100:
        return invalid("page_len", "Must be between 1 and 100.")
    start = page * page_len
    return answer({"result": ITEMS[start : start + page_len]})


if __name__ == "__main__":
    app.run(
        host="127.0.0.1",
        port=int(sys.argv[1]),
        single_process=True,
        access_log=False,
        backlog=4096,
        motd=False,
    )
