"""
Routing: API by URL regex, version by header, call by route; the API module
contract; routers unchanged while serving.
"""

import copy
from types import ModuleType

import mylogin_api
import pytest
import pytest_twisted
from apitools import envelope, make_api, make_version, without_date

from shiji import urldispatch
from shiji.testing import TestClient
from shiji.urldispatch import (
    APIDefinitionError,
    APIRouter,
    CallRouter,
    URLMatchJSONResource,
    VersionRouter,
)

JSON = "application/json; charset=utf-8"


class Echo(URLMatchJSONResource):
    routes = [r"echo/(?P<word>[^/]+)", r"echo"]

    def render_GET(self, request):
        return {"call": "echo", "url_matches": dict(self.url_matches)}


class Items(URLMatchJSONResource):
    routes = r"items/(?P<item_id>[0-9]+)(/(?P<detail>[a-z]+))?"

    def render_GET(self, request):
        return {
            "call": "items",
            "url_matches": dict(self.url_matches),
            "request_url_matches": dict(request.url_matches),
        }


class Anything(URLMatchJSONResource):
    routes = r"items/.*"

    def render_GET(self, request):
        return {"call": "anything"}


def zoo_api():
    return make_api("zoo", [("1.0", r"1\.0", [Echo, Items, Anything])])


def zoo_client(**options):
    return TestClient(
        {r"zoo": zoo_api(), r"zoo-(?P<region>[a-z]+)": zoo_api()}, **options
    )


@pytest_twisted.ensureDeferred
async def test_first_segment_fully_matches_the_api_regex():
    client = zoo_client()
    response = await client.get("/zoo/echo")
    assert response.status == 200
    assert response.json == {"call": "echo", "url_matches": {}}
    assert (await client.get("/zoo-east/echo")).status == 200
    for path in ("/zoox/echo", "/xzoo/echo", "/zoo-/echo", "/ZOO/echo"):
        response = await client.get(path)
        name = path.split("/")[1]
        assert response.status == 404, path
        assert response.json == envelope(
            "UnknownAPIError", 208, f"The requested API '{name}' is unknown."
        )


@pytest_twisted.ensureDeferred
async def test_unknown_api_response_exactly():
    client = TestClient({"myloginapi": mylogin_api})
    response = await client.get("/unknown/ping")
    assert response.status == 404
    assert without_date(response.headers) == {
        "server": "Shiji API Server",
        "content-type": JSON,
        "content-length": str(len(response.body)),
        "vary": "Accept",
    }
    assert response.body == (
        b'{"result":null,"error":{"error_code":208,"exception_class":'
        b'"UnknownAPIError","exception_text":"The requested API \'unknown\' '
        b'is unknown."}}'
    )


@pytest_twisted.ensureDeferred
async def test_root_and_empty_paths_are_unknown_apis():
    client = zoo_client()
    for path in ("/", "//zoo/echo"):
        response = await client.get(path)
        assert response.status == 404
        assert response.error["exception_class"] == "UnknownAPIError"


@pytest_twisted.ensureDeferred
async def test_apis_are_tried_in_order():
    first = make_api("first", [("1.0", r"1\.0", [Echo])])
    second = make_api("second", [("1.0", r"1\.0", [Items])])
    client = TestClient([(r"api.*", first), (r"api", second)])
    response = await client.get(
        "/api/echo", headers={"X-API-Version": "first-1.0+prod"}
    )
    assert response.json["call"] == "echo"


@pytest_twisted.ensureDeferred
async def test_rest_of_path_fully_matches_a_route():
    client = zoo_client()
    assert (await client.get("/zoo/echo/hello")).json == {
        "call": "echo",
        "url_matches": {"word": "hello"},
    }
    for path in ("/zoo/echo/hello/again", "/zoo/echox", "/zoo/xecho", "/zoo/echo/"):
        response = await client.get(path)
        call = path.split("/", 2)[2]
        assert response.status == 404, path
        assert response.json == envelope(
            "UnknownAPICallError", 203, f"The requested API call '{call}' is unknown."
        )


@pytest_twisted.ensureDeferred
async def test_first_matching_call_in_module_order_wins():
    client = zoo_client()
    assert (await client.get("/zoo/items/12")).json["call"] == "items"
    assert (await client.get("/zoo/items/x")).json["call"] == "anything"


@pytest_twisted.ensureDeferred
async def test_named_groups_are_url_decoded_str_and_unmatched_ones_left_out():
    client = zoo_client()
    response = await client.get("/zoo/items/12")
    assert response.json["url_matches"] == {"item_id": "12"}
    assert response.json["request_url_matches"] == {"item_id": "12"}
    response = await client.get("/zoo/items/7/parts")
    assert response.json["url_matches"] == {"item_id": "7", "detail": "parts"}
    response = await client.get("/zoo/echo/caf%C3%A9%20au%2Flait+x")
    assert response.json["url_matches"] == {"word": "café au/lait+x"}


@pytest_twisted.ensureDeferred
async def test_an_unmatched_group_leaves_the_groups_after_it():
    class Optional(URLMatchJSONResource):
        routes = r"opt(?P<first>-[a-z]+)?/(?P<second>[0-9]+)(?P<third>/x)?"

        def render_GET(self, request):
            return dict(self.url_matches)

    client = TestClient({"o": make_api("o", [("1.0", r"1\.0", [Optional])])})
    assert (await client.get("/o/opt/12")).json == {"second": "12"}
    assert (await client.get("/o/opt-a/12/x")).json == {
        "first": "-a",
        "second": "12",
        "third": "/x",
    }


@pytest_twisted.ensureDeferred
async def test_url_match_that_is_not_utf8_is_a_value_error():
    response = await zoo_client().get("/zoo/echo/%FF%FE")
    assert response.status == 409
    assert response.json == envelope(
        "ValueError",
        502,
        "Invalid value for argument 'word'. Path arguments must be percent-encoded UTF-8.",
    )


@pytest_twisted.ensureDeferred
async def test_api_segment_that_is_not_utf8_is_unknown():
    response = await zoo_client().get("/zoo%FF/echo")
    assert response.status == 404
    assert response.json == envelope(
        "UnknownAPIError", 208, "The requested API 'zoo\ufffd' is unknown."
    )


@pytest_twisted.ensureDeferred
async def test_raw_non_ascii_request_target_is_refused_by_the_http_layer():
    response = await zoo_client().get(b"/zoo\xff/echo")
    assert response.status == 400
    assert response.headers["connection"] == "close"
    assert response.error["exception_class"] == "MalformedRequestError"


@pytest_twisted.ensureDeferred
async def test_echoed_client_text_is_clipped():
    response = await zoo_client().get("/zoo/" + "a" * 5000)
    assert response.status == 404
    assert response.json == envelope(
        "UnknownAPICallError",
        203,
        f"The requested API call '{'a' * 200}...' is unknown.",
    )


class Versioned(URLMatchJSONResource):
    routes = r"which"

    def render_GET(self, request):
        return {"version": request.api_version}


def versions_client(order):
    calls = {
        key: type(f"V{key.replace('.', '_')}", (Versioned,), {"tag": key})
        for key, _ in order
    }
    for key, call in calls.items():
        call.render_GET = lambda self, request, key=key: {
            "served_by": key,
            "asked": request.api_version,
        }
    api = make_api("ver", [(key, pattern, [calls[key]]) for key, pattern in order])
    return TestClient({"ver": api})


@pytest.mark.parametrize(
    "asked, served_by",
    [
        ("1.0", "1.0"),
        ("10.0", "10.0"),
        ("1.5", "1.x"),
        ("1.0.1", "1.x"),
        ("100.0", None),
    ],
)
@pytest_twisted.ensureDeferred
async def test_versions_are_tried_in_declaration_order(asked, served_by):
    client = versions_client([("1.0", r"1.0"), ("10.0", r"10.0"), ("1.x", r"1\..*")])
    response = await client.get("/ver/which", version=asked)
    if served_by is None:
        assert response.status == 406
    else:
        assert response.json == {"served_by": served_by, "asked": asked}


@pytest_twisted.ensureDeferred
async def test_a_broad_pattern_first_shadows_later_versions():
    client = versions_client([("1.x", r"1.*"), ("1.0", r"1\.0"), ("10.0", r"10\.0")])
    assert (await client.get("/ver/which", version="1.0")).json["served_by"] == "1.x"
    assert (await client.get("/ver/which", version="10.0")).json["served_by"] == "1.x"


@pytest_twisted.ensureDeferred
async def test_routers_are_not_changed_by_serving():
    api = zoo_api()
    router = APIRouter({"zoo": api})
    version_router = api.version_router
    call_router = api.api_versions["1.0"][1].call_router
    before = [copy.copy(vars(r)) for r in (router, version_router, call_router)]
    client = TestClient(router)
    for path in ("/zoo/echo/a", "/zoo/items/3", "/zoo/nothing", "/zoo/list_versions"):
        await client.get(path)
    await client.get("/zoo/echo", version="9.9")
    after = [vars(r) for r in (router, version_router, call_router)]
    assert before == after


@pytest_twisted.ensureDeferred
async def test_each_request_gets_its_own_call_instance():
    seen = []

    class Remember(URLMatchJSONResource):
        routes = r"remember/(?P<n>[0-9]+)"

        def render_GET(self, request):
            seen.append(self)
            return dict(self.url_matches)

    client = TestClient({"r": make_api("r", [("1.0", r"1\.0", [Remember])])})
    assert (await client.get("/r/remember/1")).json == {"n": "1"}
    assert (await client.get("/r/remember/2")).json == {"n": "2"}
    assert seen[0] is not seen[1]
    assert seen[0].url_matches == {"n": "1"}


def test_the_example_follows_the_module_contract():
    assert mylogin_api.api_name == "mylogin_api"
    assert set(mylogin_api.api_versions) == {"1.0"}
    assert isinstance(mylogin_api.version_router, VersionRouter)
    v1_0 = mylogin_api.api_versions["1.0"][1]
    assert isinstance(v1_0.call_router, CallRouter)
    assert [c.__name__ for c in v1_0.call_router.calls] == [
        "PingCall",
        "SampleErrorsCall",
        "SignupCall",
        "LoginCall",
        "LogoutCall",
        "MeCall",
        "SessionsCall",
        "ListVersionsCall",
    ]


def test_call_router_skips_classes_without_routes():
    class Base(URLMatchJSONResource):
        pass

    class Real(Base):
        routes = r"real"

        def render_GET(self, request):
            return {}

    version = make_version(
        "v", [Base, URLMatchJSONResource, Real], auto_list_versions=False
    )
    assert version.call_router.calls == (Real,)
    assert version.call_router.match("real") == (Real, {})
    assert version.call_router.match("list_versions") is None


@pytest.mark.parametrize(
    "routes, message",
    [
        (42, "routes must be a regular expression string or a list of them, not 42"),
        ([r"ok", 7], "routes must be a regular expression string or a list of them"),
        (r"bad(", "'bad(' is not a valid regular expression"),
    ],
)
def test_malformed_routes_are_refused_when_the_router_is_built(routes, message):
    broken = type("Broken", (URLMatchJSONResource,), {"routes": routes})
    with pytest.raises(APIDefinitionError, match="Broken") as info:
        make_version("v", [broken])
    assert message in str(info.value)


def test_malformed_version_maps_are_refused():
    good = make_version("v", [Echo])
    with pytest.raises(APIDefinitionError, match=r"api_versions\['1.0'\] must be a"):
        VersionRouter({"1.0": good})
    with pytest.raises(APIDefinitionError, match="has no call_router"):
        VersionRouter({"1.0": (r"1\.0", ModuleType("empty"))})
    with pytest.raises(APIDefinitionError, match="not a valid regular expression"):
        VersionRouter({"1.0": (r"1.0(", good)})
    with pytest.raises(APIDefinitionError, match="version regex must be a string"):
        VersionRouter({"1.0": (1.0, good)})


def test_malformed_api_packages_are_refused():
    api = zoo_api()
    for missing in ("api_name", "api_versions", "version_router"):
        broken = ModuleType("broken")
        broken.__dict__.update(
            {
                k: v
                for k, v in vars(api).items()
                if k != missing and not k.startswith("__")
            }
        )
        with pytest.raises(APIDefinitionError, match=f"'broken' has no {missing}"):
            APIRouter({"b": broken})
    broken = ModuleType("broken")
    broken.api_name, broken.api_versions, broken.version_router = (
        "b",
        api.api_versions,
        {},
    )
    with pytest.raises(
        APIDefinitionError, match=r"must be a urldispatch\.VersionRouter"
    ):
        APIRouter({"b": broken})
    with pytest.raises(APIDefinitionError, match="URL regex of 'zoo'"):
        APIRouter({"zoo(": api})


def test_version_sort_key():
    versions = ["10.0", "2.0", "1.10", "1.2", "1.2.1", "2.0b", "1.0"]
    assert sorted(versions, key=urldispatch.version_sort_key) == [
        "1.0",
        "1.2",
        "1.2.1",
        "1.10",
        "2.0",
        "2.0b",
        "10.0",
    ]
