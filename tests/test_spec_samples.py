"""
The specification's code samples, as written once ``unicode`` becomes ``str``,
``has_key`` becomes ``in`` and implicit relative imports become explicit.
"""

import json
import time
import warnings

import pytest_twisted
from apitools import envelope, make_api
from twisted.internet import defer, reactor, task

from shiji import urldispatch, webapi
from shiji.testing import TestClient


def get_some_entries():
    return task.deferLater(reactor, 0, lambda: [{"n": n} for n in range(7)])


class PingCall(urldispatch.URLMatchJSONResource):
    routes = r"ping/(?P<timestamp>\d+)$"

    @webapi.json_arguments(
        [
            ("client_tz", int),
            ("client_id", str),
            ("new_client", bool, webapi.ARG_OPTIONAL),
        ]
    )
    @webapi.url_arguments(["simple_auth_key"])
    @defer.inlineCallbacks
    def render_POST(self, request):
        auth_key = request.args["simple_auth_key"][0]
        if auth_key != "abc":
            defer.returnValue(
                str(webapi.ValueError(request, "simple_auth_key", "Key isn't valid!"))
            )
        start_time = time.time()
        yield task.deferLater(reactor, 0, lambda: None)
        end_time = time.time()
        new_client = False
        if "new_client" in request.jsonArgs:
            new_client = request.jsonArgs["new_client"]
        return_dict = {
            "result": {
                "latency": end_time - start_time,
                "client_tz": request.jsonArgs["client_tz"],
                "client_id": request.jsonArgs["client_id"],
                "new_client": new_client,
            }
        }
        defer.returnValue(json.dumps(return_dict))


class EntriesCall(urldispatch.URLMatchJSONResource):
    routes = r"entries"

    @webapi.paged_results(default_page=0, default_page_len=50, max_page_len=75)
    @defer.inlineCallbacks
    def render_GET(self, request):
        curr_page = request.args["page"][0]
        entries_per_page = request.args["page_len"][0]
        entries_list = yield get_some_entries()
        if len(entries_list) == 0:
            defer.returnValue(json.dumps([]))
        first_entry_idx = curr_page * entries_per_page
        if first_entry_idx > len(entries_list):
            first_entry_idx = 0
        last_entry_idx = first_entry_idx + entries_per_page
        if last_entry_idx > len(entries_list):
            last_entry_idx = len(entries_list)
        defer.returnValue(json.dumps(entries_list[first_entry_idx:last_entry_idx]))


def client():
    return TestClient(
        {
            "myloginapi": make_api(
                "mylogin_api", [("1.0", r"1.0", [PingCall, EntriesCall])]
            )
        }
    )


@pytest_twisted.ensureDeferred
async def test_spec_post_sample():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # defer.returnValue
        response = await client().post(
            "/myloginapi/ping/123?simple_auth_key=abc",
            json={"client_tz": -7, "client_id": "myclient012", "new_client": True},
        )
        assert response.status == 200
        assert response.json["result"]["client_id"] == "myclient012"
        assert response.json["result"]["new_client"] is True
        response = await client().post(
            "/myloginapi/ping/123?simple_auth_key=abd",
            json={"client_tz": -7, "client_id": "myclient012"},
        )
    assert response.status == 409
    assert response.json == envelope(
        "ValueError",
        502,
        "Invalid value for argument 'simple_auth_key'. Key isn't valid!",
    )


@pytest_twisted.ensureDeferred
async def test_spec_paging_sample():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        response = await client().get("/myloginapi/entries?page=1&page_len=3")
    assert response.status == 200
    assert response.json == [{"n": 3}, {"n": 4}, {"n": 5}]
