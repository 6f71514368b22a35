"""
The version header: <api>-<version>+<mode>, configurable name, and the
query fallback (off unless configured).
"""

import mylogin_api
import pytest
import pytest_twisted
from apitools import envelope, make_api

from shiji.testing import TestClient
from shiji.urldispatch import URLMatchJSONResource


class Whoami(URLMatchJSONResource):
    routes = r"whoami"

    def render_GET(self, request):
        return {
            "api_name": request.api_name,
            "api_version": request.api_version,
            "api_mode": request.api_mode,
        }


def version_error(value):
    return envelope(
        "UnknownAPIVersionError",
        207,
        f"API version '{value}' is invalid or specifies an API/version that does not exist.",
    )


def client(**options):
    api = make_api("who_api", [("1.0", r"1\.0", [Whoami]), ("2.0", r"2\.0", [Whoami])])
    return TestClient({"who": api}, **options)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("who_api-1.0+prod", ("1.0", "prod")),
        ("who_api-2.0+test", ("2.0", "test")),
        ("WHO_API-1.0+prod", ("1.0", "prod")),
        ("Who_Api-2.0+prod", ("2.0", "prod")),
    ],
)
@pytest_twisted.ensureDeferred
async def test_valid_version_headers(value, expected):
    response = await client().get("/who/whoami", headers={"X-API-Version": value})
    assert response.status == 200
    assert response.json == {
        "api_name": "who_api",
        "api_version": expected[0],
        "api_mode": expected[1],
    }


@pytest.mark.parametrize(
    "value",
    [
        "",
        "who_api",
        "who_api-1.0",
        "who_api-1.0+",
        "who_api-+prod",
        "who_api1.0+prod",
        "who_api-1.0+PROD",
        "who_api-1.0+staging",
        "who_api-1.0+prod+test",
        "who_api-3.0+prod",
        "who_api-1.0.0+prod",
        "other_api-1.0+prod",
        "who-1.0+prod",
        "-1.0+prod",
        "who_api-1.0 +prod",
    ],
)
@pytest_twisted.ensureDeferred
async def test_invalid_version_headers_are_406(value):
    response = await client().get("/who/whoami", headers={"X-API-Version": value})
    assert response.status == 406
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json == version_error(value)


@pytest_twisted.ensureDeferred
async def test_missing_version_header_is_406():
    response = await client().get("/who/whoami", version=None)
    assert response.status == 406
    assert response.json == version_error("")


@pytest_twisted.ensureDeferred
async def test_version_header_name_is_configurable():
    digitar = client(version_header="X-DigiTar-API-Version")
    response = await digitar.get(
        "/who/whoami",
        headers={"X-DigiTar-API-Version": "who_api-2.0+prod"},
        version=None,
    )
    assert response.json["api_version"] == "2.0"
    response = await digitar.get(
        "/who/whoami", headers={"X-API-Version": "who_api-2.0+prod"}, version=None
    )
    assert response.status == 406


@pytest_twisted.ensureDeferred
async def test_the_spec_example_with_the_digitar_header():
    spec = TestClient(
        {"myloginapi": mylogin_api}, version_header="X-DigiTar-API-Version"
    )
    response = await spec.get(
        "/myloginapi/ping/123",
        headers={
            "Content-Type": "application/json;charset=utf-8",
            "X-DigiTar-API-Version": "mylogin_api-1.0+prod",
        },
        version=None,
    )
    assert response.status == 200
    assert response.json == (
        "PONG! Right back at ya. I'm production baby! (Timestamp Val: 123) "
        "(API: mylogin_api, Version: 1.0, Mode: prod)"
    )


@pytest_twisted.ensureDeferred
async def test_the_query_string_names_no_version_by_default():
    # A version in the query string would let any web site send "simple"
    # cross-site requests, which browsers send without a CORS preflight.
    response = await client().get(
        "/who/whoami?X-API-Version=who_api-2.0%2Btest", version=None
    )
    assert response.status == 406
    assert response.json == version_error("")


@pytest_twisted.ensureDeferred
async def test_query_argument_stands_in_for_a_missing_header_when_allowed():
    response = await client(version_in_query=True).get(
        "/who/whoami?X-API-Version=who_api-2.0%2Btest", version=None
    )
    assert response.status == 200
    assert response.json["api_version"] == "2.0"
    assert response.json["api_mode"] == "test"


@pytest_twisted.ensureDeferred
async def test_header_wins_over_query_argument():
    response = await client(version_in_query=True).get(
        "/who/whoami?X-API-Version=who_api-2.0%2Bprod",
        headers={"X-API-Version": "who_api-1.0+prod"},
    )
    assert response.json["api_version"] == "1.0"


@pytest_twisted.ensureDeferred
async def test_invalid_query_argument_is_406():
    response = await client(version_in_query=True).get(
        "/who/whoami?X-API-Version=who_api-9.0%2Bprod", version=None
    )
    assert response.status == 406
    assert response.json == version_error("who_api-9.0+prod")


@pytest_twisted.ensureDeferred
async def test_api_names_with_dashes_and_versions_with_dashes():
    api = make_api("my-api", [("1.0-beta", r"1\.0-beta", [Whoami])])
    response = await TestClient({"m": api}).get(
        "/m/whoami", headers={"X-API-Version": "my-api-1.0-beta+prod"}
    )
    assert response.json == {
        "api_name": "my-api",
        "api_version": "1.0-beta",
        "api_mode": "prod",
    }


@pytest_twisted.ensureDeferred
async def test_version_is_checked_before_the_call():
    response = await client().get("/who/no-such-call", headers={"X-API-Version": "x"})
    assert response.status == 406
    response = await client().get("/who/no-such-call")
    assert response.status == 404
    assert response.error["exception_class"] == "UnknownAPICallError"


@pytest_twisted.ensureDeferred
async def test_header_value_that_is_not_utf8_is_406():
    response = await client().get(
        "/who/whoami", headers={"X-API-Version": b"who_api-\xff+prod"}
    )
    assert response.status == 406
    assert response.json == version_error("who_api-\ufffd+prod")
