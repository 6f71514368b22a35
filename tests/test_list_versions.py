"""
list_versions, added by CallRouter(auto_list_versions=True).
"""

import pytest_twisted
from apitools import make_version

from shiji.testing import TestClient
from shiji.urldispatch import URLMatchJSONResource, VersionRouter


class Ping(URLMatchJSONResource):
    routes = r"ping"

    def render_GET(self, request):
        return "pong"


def versioned_api(keys):
    from types import ModuleType

    api = ModuleType("many")
    api.api_name = "many"
    api.api_versions = {
        key: (key.replace(".", r"\."), make_version(f"many.{key}", [Ping]))
        for key in keys
    }
    api.version_router = VersionRouter(api.api_versions)
    return api


@pytest_twisted.ensureDeferred
async def test_versions_are_sorted_as_versions_and_current_is_the_asked_one():
    client = TestClient({"many": versioned_api(["10.0", "2.0", "1.0", "2.10", "2.9"])})
    for asked in ("1.0", "2.9", "10.0"):
        response = await client.get("/many/list_versions", version=asked)
        assert response.status == 200
        assert response.json == {
            "all_versions": ["1.0", "2.0", "2.9", "2.10", "10.0"],
            "curr_version": asked,
        }
    assert (await client.get("/many/list_versions/")).status == 200


@pytest_twisted.ensureDeferred
async def test_list_versions_only_where_asked_for():
    from types import ModuleType

    api = ModuleType("few")
    api.api_name = "few"
    api.api_versions = {
        "1.0": (r"1\.0", make_version("few.1.0", [Ping], auto_list_versions=False))
    }
    api.version_router = VersionRouter(api.api_versions)
    response = await TestClient({"few": api}).get("/few/list_versions")
    assert response.status == 404


@pytest_twisted.ensureDeferred
async def test_list_versions_answers_get_only():
    client = TestClient({"many": versioned_api(["1.0"])})
    response = await client.post("/many/list_versions")
    assert response.status == 405
    assert response.headers["allow"] == "GET, HEAD, OPTIONS"
