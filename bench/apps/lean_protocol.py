"""
(h) The ceiling of an HTTP server on Twisted: one bare
``twisted.internet.protocol.Protocol`` on the epoll reactor that reads
requests with llhttp (httptools), answers the benchmark's calls with orjson
and keeps connections alive. Nothing more: no limits, no timeouts, no
logging, no Date header, no chunked answers.

This is a measuring stick, not a server for use: it trusts every client.

Usage: python lean_protocol.py PORT
"""

import re
import sys
from urllib.parse import parse_qs

from twisted.internet import epollreactor

epollreactor.install()

import httptools  # noqa: E402
import orjson  # noqa: E402
from benchdata import ITEMS, invalid_argument, ping_argument_error  # noqa: E402
from twisted.internet import reactor  # noqa: E402
from twisted.internet.protocol import Factory, Protocol  # noqa: E402

PING = re.compile(rb"/benchapi/ping/([0-9]+)")
REASONS = {200: b"OK", 404: b"Not Found", 406: b"Not Acceptable", 409: b"Conflict"}
HEAD = b"HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\n"


def invalid(name, why):
    return 409, invalid_argument(name, why)


def ping(timestamp, query, headers, body):
    media = headers.get(b"content-type", b"")
    if media.split(b";")[0].strip().lower() != b"application/json":
        return 406, {"result": None, "error": "not JSON"}
    try:
        args = orjson.loads(body)
    except ValueError:
        return invalid("body", "bad JSON")
    if not isinstance(args, dict):
        return invalid("body", "not an object")
    problem = ping_argument_error(args, query.get("simple_auth_key", [None])[0])
    if problem is not None:
        return invalid(*problem)
    return 200, {
        "result": {
            "timestamp": int(timestamp),
            "client_tz": args["client_tz"],
            "client_id": args["client_id"],
            "new_client": args.get("new_client", False),
        }
    }


def items(query):
    try:
        page = int(query.get("page", ["0"])[0])
        page_len = int(query.get("page_len", ["100"])[0])
    except ValueError:
        return invalid("page", "Must be of type int")
    if page < 0 or not 1 <= page_len <= 100:
        return invalid("page_len", "Must be between 1 and 100.")
    return 200, {"result": ITEMS[page * page_len : (page + 1) * page_len]}


def route(method, url, headers, body):
    if headers.get(b"x-api-version") != b"benchapi-1.0+prod":
        return 406, {"result": None, "error": "unknown version"}
    parts = httptools.parse_url(url)
    query = parse_qs(parts.query.decode()) if parts.query else {}
    if method == b"POST" and (found := PING.fullmatch(parts.path)):
        return ping(found.group(1), query, headers, body)
    if method == b"GET" and parts.path == b"/benchapi/items":
        return items(query)
    return 404, {"result": None, "error": "no such call"}


class LeanHTTP(Protocol):
    def connectionMade(self):
        self.parser = httptools.HttpRequestParser(self)

    def dataReceived(self, data):
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.write(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
            )
            self.transport.loseConnection()

    # httptools' callbacks, in the order it calls them
    def on_message_begin(self):
        self.url, self.headers, self.body = b"", {}, []

    def on_url(self, url):
        self.url += url

    def on_header(self, name, value):
        self.headers[name.lower()] = value

    def on_body(self, body):
        self.body.append(body)

    def on_message_complete(self):
        method = self.parser.get_method()
        status, result = route(method, self.url, self.headers, b"".join(self.body))
        body = orjson.dumps(result)
        head = HEAD % (status, REASONS[status]) + b"Content-Length: %d\r\n" % len(body)
        if not self.parser.should_keep_alive():
            self.transport.write(head + b"Connection: close\r\n\r\n" + body)
            self.transport.loseConnection()
        else:
            self.transport.write(head + b"\r\n" + body)


if __name__ == "__main__":
    factory = Factory.forProtocol(LeanHTTP)
    factory.noisy = False
    reactor.listenTCP(int(sys.argv[1]), factory, backlog=4096, interface="127.0.0.1")
    reactor.run()
