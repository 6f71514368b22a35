"""
CORS (preflights, origins, credentials) and cache inhibition.
"""

import re

import pytest
import pytest_twisted
from apitools import make_api, without_date

from shiji.testing import TestClient
from shiji.urldispatch import URLMatchJSONResource


class Things(URLMatchJSONResource):
    routes = r"things"

    def render_GET(self, request):
        return []

    def render_POST(self, request):
        return {}


class OnlyInTwo(URLMatchJSONResource):
    routes = r"things"

    def render_DELETE(self, request):
        return {}


def client(**options):
    api = make_api("c_api", [("1.0", r"1\.0", [Things]), ("2.0", r"2\.0", [OnlyInTwo])])
    return TestClient({"c": api}, **options)


ORIGIN = "https://app.example.com"


@pytest_twisted.ensureDeferred
async def test_preflight_needs_no_version_header_and_lists_every_versions_methods():
    response = await client(cross_origin_domains=[ORIGIN]).options(
        "/c/things",
        version=None,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-api-version",
        },
    )
    assert response.status == 204
    assert response.body == b""
    assert without_date(response.headers) == {
        "server": "Shiji API Server",
        "vary": "Origin, Access-Control-Request-Headers",
        "access-control-allow-origin": ORIGIN,
        "access-control-allow-credentials": "true",
        "allow": "DELETE, GET, HEAD, OPTIONS, POST",
        "access-control-allow-methods": "DELETE, GET, HEAD, OPTIONS, POST",
        # The headers asked for, as the original Shiji granted them.
        "access-control-allow-headers": "content-type, x-api-version",
        "access-control-max-age": "600",
    }


USUAL_HEADERS = "Content-Type, Authorization, X-Requested-With, X-API-Version"


@pytest.mark.parametrize(
    "asked, granted",
    [
        (None, USUAL_HEADERS),
        ("", USUAL_HEADERS),
        ("x-custom", "x-custom"),
        ("  X-One,X-Two ,\tx-three  ", "X-One,X-Two ,\tx-three"),
        ("x-api-version, authorization", "x-api-version, authorization"),
        # Not a list of header names: the usual grant, never an echo.
        ("x-custom, ", USUAL_HEADERS),
        (",x-custom", USUAL_HEADERS),
        ("x custom", USUAL_HEADERS),
        ("x-custom: 1", USUAL_HEADERS),
        ("x-custom(1)", USUAL_HEADERS),
        ("x-custom;q=1", USUAL_HEADERS),
        ("é", USUAL_HEADERS),
        ("x" * 2049, USUAL_HEADERS),
        (",".join(["x-a"] * 512), ",".join(["x-a"] * 512)),
    ],
)
@pytest_twisted.ensureDeferred
async def test_preflight_grants_the_headers_asked_for(asked, granted):
    headers = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    if asked is not None:
        headers["Access-Control-Request-Headers"] = asked
    response = await client(cross_origin_domains=[ORIGIN]).options(
        "/c/things", version=None, headers=headers
    )
    assert response.status == 204
    assert response.headers["access-control-allow-headers"] == granted
    assert response.headers["vary"] == "Origin, Access-Control-Request-Headers"


@pytest_twisted.ensureDeferred
async def test_preflight_asking_twice_gets_the_usual_grant():
    connection_client = client(cross_origin_domains="*")
    response = await connection_client.request(
        "OPTIONS",
        "/c/things",
        version=None,
        headers=[
            ("Origin", ORIGIN),
            ("Access-Control-Request-Headers", "x-one"),
            ("Access-Control-Request-Headers", "x-two"),
        ],
    )
    assert response.status == 204
    assert response.headers["access-control-allow-headers"] == USUAL_HEADERS
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["vary"] == "Access-Control-Request-Headers"


@pytest_twisted.ensureDeferred
async def test_preflight_from_an_origin_not_listed_gets_no_cors_grant():
    response = await client(cross_origin_domains=ORIGIN).options(
        "/c/things", version=None, headers={"Origin": "https://evil.example.net"}
    )
    assert response.status == 204
    assert without_date(response.headers) == {
        "server": "Shiji API Server",
        "vary": "Origin, Access-Control-Request-Headers",
        "allow": "DELETE, GET, HEAD, OPTIONS, POST",
    }


@pytest_twisted.ensureDeferred
async def test_options_without_cors_configured_answers_allow():
    response = await client().options("/c/things", version=None)
    assert response.status == 204
    assert without_date(response.headers) == {
        "server": "Shiji API Server",
        "allow": "DELETE, GET, HEAD, OPTIONS, POST",
    }


@pytest_twisted.ensureDeferred
async def test_options_for_unknown_calls_and_apis_are_404():
    response = await client().options("/c/nothing", version=None)
    assert response.status == 404
    assert response.error["exception_class"] == "UnknownAPICallError"
    response = await client().options("/nothing/things", version=None)
    assert response.status == 404
    assert response.error["exception_class"] == "UnknownAPIError"


@pytest_twisted.ensureDeferred
async def test_wildcard_origin_never_sends_credentials():
    wildcard = client(cross_origin_domains="*")
    for response in (
        await wildcard.get("/c/things", headers={"Origin": ORIGIN}),
        await wildcard.options("/c/things", version=None, headers={"Origin": ORIGIN}),
        await wildcard.get("/c/nothing", headers={"Origin": ORIGIN}),
    ):
        assert response.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in response.headers
        # The answer doesn't depend on the origin; errors vary by Accept,
        # preflights by the headers asked for.
        assert response.headers.get("vary") == (
            "Access-Control-Request-Headers"
            if response.status == 204
            else None
            if response.status < 400
            else "Accept"
        )
    # "*" among named origins still means any origin, without credentials
    mixed = client(cross_origin_domains=[ORIGIN, "*"])
    response = await mixed.get("/c/things", headers={"Origin": ORIGIN})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize(
    "domains",
    [
        f"{ORIGIN}, https://other.example.com",
        f"https://other.example.com {ORIGIN}/",
        [ORIGIN, "https://other.example.com"],
    ],
)
@pytest_twisted.ensureDeferred
async def test_listed_origins_are_echoed_on_every_response(domains):
    listed = client(cross_origin_domains=domains)
    for path, status in (("/c/things", 200), ("/c/nothing", 404), ("/nope", 404)):
        response = await listed.get(path, headers={"Origin": ORIGIN}, version="1.0")
        assert response.status == status
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert response.headers["access-control-allow-credentials"] == "true"
        assert response.headers["vary"] == (
            "Origin" if status == 200 else "Origin, Accept"
        )
    response = await listed.get(
        "/c/things", headers={"Origin": "https://app.example.com.evil.net"}
    )
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-credentials" not in response.headers
    response = await listed.get("/c/things")
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("domains", [None, "", [], " , "])
@pytest_twisted.ensureDeferred
async def test_no_cors_headers_when_no_origins_are_configured(domains):
    response = await client(cross_origin_domains=domains).get(
        "/c/things", headers={"Origin": ORIGIN}
    )
    assert not [name for name in response.headers if name.startswith("access-control")]


@pytest.mark.parametrize(
    "origin", ["null", "app.example.com", "https://app.example.com/path", "https://a@b"]
)
def test_what_is_not_an_origin_is_refused(origin):
    # "null" is what sandboxed frames and file: pages send: any page can.
    with pytest.raises(ValueError, match=f"'{re.escape(origin)}' is not an origin"):
        client(cross_origin_domains=[ORIGIN, origin])


@pytest_twisted.ensureDeferred
async def test_a_null_origin_gets_no_grant():
    response = await client(cross_origin_domains=ORIGIN).get(
        "/c/things", headers={"Origin": "null"}, version="1.0"
    )
    assert response.status == 200
    assert not [name for name in response.headers if name.startswith("access-control")]


@pytest_twisted.ensureDeferred
async def test_inhibit_http_caching_on_every_response():
    no_cache = client(inhibit_http_caching=True)
    for response in (
        await no_cache.get("/c/things"),
        await no_cache.get("/c/nothing"),
        await no_cache.get("/c/things", version="9.9"),
        await no_cache.options("/c/things", version=None),
    ):
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["pragma"] == "no-cache"
    response = await client().get("/c/things")
    assert "cache-control" not in response.headers
    assert "pragma" not in response.headers


@pytest_twisted.ensureDeferred
async def test_server_header_is_configurable():
    response = await client(server_ident="Acme").get("/c/things")
    assert response.headers["server"] == "Acme"
