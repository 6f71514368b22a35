"""
(b) The benchmark's logic as one bare twisted.web Resource: the ceiling for
an application on Twisted.

Usage: python bare_twisted.py PORT
"""

import re
import sys
from urllib.parse import parse_qs

from benchdata import ITEMS, ping_argument_error
from twisted.internet import reactor
from twisted.web import resource, server

try:
    import orjson

    dumps, loads = orjson.dumps, orjson.loads
except ImportError:  # PyPy: orjson is CPython only
    import json

    _encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def dumps(obj):
        return _encode(obj).encode("utf-8")

    loads = json.loads

PING = re.compile(rb"/benchapi/ping/([0-9]+)")
JSON_TYPE = b"application/json; charset=utf-8"


def error(request, text):
    request.setResponseCode(409)
    return {
        "result": None,
        "error": {
            "error_code": 502,
            "exception_class": "ValueError",
            "exception_text": text,
        },
    }


def invalid(name, why):
    return f"Invalid value for argument '{name}'. {why}"


class Bench(resource.Resource):
    isLeaf = True

    def render(self, request):
        if request.getHeader(b"x-api-version") != b"benchapi-1.0+prod":
            request.setResponseCode(406)
            result = {"result": None, "error": "unknown version"}
        else:
            result = resource.Resource.render(self, request)
        body = dumps(result)
        request.setHeader(b"content-type", JSON_TYPE)
        request.setHeader(b"content-length", b"%d" % len(body))
        return body

    def render_POST(self, request):
        found = PING.fullmatch(request.path)
        if found is None:
            request.setResponseCode(404)
            return {"result": None, "error": "no such call"}
        media = request.getHeader(b"content-type") or b""
        if media.split(b";")[0].strip().lower() != b"application/json":
            request.setResponseCode(406)
            return {"result": None, "error": "not JSON"}
        try:
            args = loads(request.content.read())
        except ValueError:
            return error(request, "bad JSON")
        if not isinstance(args, dict):
            return error(request, "not an object")
        query = parse_qs(request.uri.partition(b"?")[2].decode())
        problem = ping_argument_error(args, query.get("simple_auth_key", [None])[0])
        if problem is not None:
            return error(request, invalid(*problem))
        return {
            "result": {
                "timestamp": int(found.group(1)),
                "client_tz": args["client_tz"],
                "client_id": args["client_id"],
                "new_client": args.get("new_client", False),
            }
        }

    def render_GET(self, request):
        if request.path != b"/benchapi/items":
            request.setResponseCode(404)
            return {"result": None, "error": "no such call"}
        query = parse_qs(request.uri.partition(b"?")[2].decode())
        try:
            page = int(query.get("page", ["0"])[0])
            page_len = int(query.get("page_len", ["100"])[0])
        except ValueError:
            return error(request, invalid("page", "Must be of type int"))
        if page < 0 or not 1 <= page_len <= 100:
            return error(request, invalid("page_len", "Must be between 1 and 100."))
        start = page * page_len
        return {"result": ITEMS[start : start + page_len]}


if __name__ == "__main__":
    site = server.Site(Bench(), parsePOSTFormSubmission=False)
    site.noisy = False
    reactor.listenTCP(int(sys.argv[1]), site, backlog=4096, interface="127.0.0.1")
    reactor.run()
