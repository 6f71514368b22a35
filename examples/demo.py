"""
Call the example API, mylogin_api, in memory and show each exchange.

    python examples/demo.py

No socket is opened: requests go through Twisted's HTTP parser straight into
Shiji's router, as in the tests (see ``shiji.testing``).
"""

import json

import mylogin_api
from twisted.internet import task
from twisted.internet.defer import ensureDeferred

from shiji.testing import TestClient

EXCHANGES = [
    ("GET", "/myloginapi/ping/1438732412", None),
    (
        "POST",
        "/myloginapi/ping/123?simple_auth_key=abc",
        {"client_tz": -7, "client_id": "myclient012", "new_client": True},
    ),
    (
        "POST",
        "/myloginapi/ping/123?simple_auth_key=abc",
        {"client_tz": "notaninteger", "client_id": "myclient012"},
    ),
    ("POST", "/myloginapi/ping/123", {"client_tz": -7, "client_id": "myclient012"}),
    ("GET", "/myloginapi/list_versions", None),
    ("GET", "/myloginapi/sample_error/advanced", None),
    ("GET", "/myloginapi/no_such_call", None),
    ("DELETE", "/myloginapi/ping", None),
]


async def main(reactor):
    client = TestClient({"myloginapi": mylogin_api})
    for method, path, body in EXCHANGES:
        response = await client.request(method, path, json=body)
        print(f"$ {method} {path}")
        print(f"  X-API-Version: {client.version_header(path)}")
        if body is not None:
            print(f"  {json.dumps(body)}")
        print(f"HTTP {response.status}")
        print(response.body.decode("utf-8"))
        print()


if __name__ == "__main__":
    task.react(lambda reactor: ensureDeferred(main(reactor)))
