"""
(i) The benchmark's logic in Sanic, serving itself: one process
(``single_process``), uvloop, access log off. Sanic reads HTTP/1.1 with its
own parser, in Python (httptools only splits its URLs).

Usage: python sanic_app.py PORT
"""

import sys

import orjson
from benchdata import items_answer, ping_answer
from sanic import Sanic
from sanic.response import HTTPResponse

JSON_TYPE = "application/json; charset=utf-8"

app = Sanic("benchapi")


def answer(found):
    status, result = found
    return HTTPResponse(orjson.dumps(result), status, content_type=JSON_TYPE)


@app.post("/benchapi/ping/<timestamp:int>")
async def ping(request, timestamp):
    headers = request.headers
    return answer(
        ping_answer(
            headers.get("x-api-version"),
            headers.get("content-type", ""),
            request.body,
            request.args.get("simple_auth_key"),
            timestamp,
        )
    )


@app.get("/benchapi/items")
async def items(request):
    args = request.args
    return answer(
        items_answer(
            request.headers.get("x-api-version"),
            args.get("page", "0"),
            args.get("page_len", "100"),
        )
    )


if __name__ == "__main__":
    app.run(
        host="127.0.0.1",
        port=int(sys.argv[1]),
        single_process=True,
        access_log=False,
        backlog=4096,
        motd=False,
    )
