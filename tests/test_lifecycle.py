"""
Version lifecycle: deprecation and sunset headers, 410 after the sunset,
and how every document shows them.
"""

import datetime
import json

import pytest
import pytest_twisted
from apitools import envelope, make_api
from openapi_spec_validator import validate

from shiji.docs.html import html_document
from shiji.docs.model import describe_api
from shiji.docs.openapi import openapi_document
from shiji.docs.render import json_document, markdown_document
from shiji.testing import TestClient
from shiji.urldispatch import (
    APIDefinitionError,
    Deprecation,
    URLMatchJSONResource,
    VersionRouter,
)


class Hello(URLMatchJSONResource):
    routes = r"hello"

    def render_GET(self, request):
        """Say hello."""
        return {"hello": request.api_version}


def lifecycle_api():
    api = make_api(
        "life_api",
        [
            ("0.9", r"0\.9", [Hello]),
            ("1.0", r"1\.0", [Hello]),
            ("1.5", r"1\.5", [Hello]),
            ("2.0", r"2\.0", [Hello]),
        ],
    )
    api.api_versions["0.9"][1].deprecation = Deprecation(
        date="2024-01-01", sunset="2025-01-01", gone_after_sunset=True
    )
    api.api_versions["1.0"][1].deprecation = Deprecation(
        date=datetime.date(2026, 1, 1),
        sunset="2099-01-01T12:00:00+00:00",
        link="https://example.com/deprecations",
        sunset_link="https://example.com/sunsets",
    )
    api.api_versions["1.5"][1].deprecation = Deprecation(
        date="2025-06-01", sunset="2025-07-01"
    )
    api.version_router = VersionRouter(api.api_versions)
    return api


def test_deprecation_headers_exactly():
    deprecation = Deprecation(
        date="2026-01-01",
        sunset="2027-06-30",
        link="https://e.com/d",
        sunset_link="https://e.com/s",
    )
    assert deprecation.headers() == [
        (b"deprecation", [b"@1767225600"]),
        (b"sunset", [b"Wed, 30 Jun 2027 00:00:00 GMT"]),
        (
            b"link",
            [
                b'<https://e.com/d>; rel="deprecation"; type="text/html", '
                b'<https://e.com/s>; rel="sunset"; type="text/html"'
            ],
        ),
    ]
    assert Deprecation(date="2026-01-01").headers() == [
        (b"deprecation", [b"@1767225600"])
    ]


@pytest.mark.parametrize(
    "arguments, message",
    [
        (
            {"date": "2026-06-01", "sunset": "2026-01-01"},
            "sunset 2026-01-01 is earlier than its date",
        ),
        ({"date": "June 2026"}, "Deprecation date 'June 2026' is not an ISO date"),
        (
            {"date": "2026-01-01", "sunset": "soon"},
            "Deprecation sunset 'soon' is not an ISO date",
        ),
        (
            {"date": "2026-01-01", "gone_after_sunset": True},
            "gone_after_sunset needs a sunset date",
        ),
    ],
)
def test_malformed_deprecations_are_refused(arguments, message):
    with pytest.raises(APIDefinitionError, match=message):
        Deprecation(**arguments)


def test_a_deprecation_attribute_of_another_type_is_refused():
    api = make_api("x_api", [("1.0", r"1\.0", [Hello])])
    api.api_versions["1.0"][1].deprecation = {"date": "2026-01-01"}
    with pytest.raises(
        APIDefinitionError, match=r"deprecation must be a urldispatch\.Deprecation"
    ):
        VersionRouter(api.api_versions)


@pytest_twisted.ensureDeferred
async def test_responses_of_a_deprecated_version_carry_the_headers():
    client = TestClient({"life": lifecycle_api()})
    for path, status in (("/life/hello", 200), ("/life/nothing", 404)):
        response = await client.get(path, version="1.0")
        assert response.status == status
        assert response.headers["deprecation"] == "@1767225600"
        assert response.headers["sunset"] == "Thu, 01 Jan 2099 12:00:00 GMT"
        assert response.headers["link"] == (
            '<https://example.com/deprecations>; rel="deprecation"; type="text/html", '
            '<https://example.com/sunsets>; rel="sunset"; type="text/html"'
        )
    response = await client.get("/life/hello", version="2.0")
    assert response.json == {"hello": "2.0"}
    assert not {"deprecation", "sunset", "link"} & set(response.headers)


@pytest_twisted.ensureDeferred
async def test_after_its_sunset_a_version_answers_410_if_declared():
    client = TestClient({"life": lifecycle_api()})
    response = await client.get("/life/hello", version="0.9")
    assert response.status == 410
    assert response.json == envelope(
        "APIVersionGoneError", 212, "API version '0.9' was retired on 2025-01-01."
    )
    assert response.headers["sunset"] == "Wed, 01 Jan 2025 00:00:00 GMT"
    # Past its sunset but not declared gone: still served, still announced.
    response = await client.get("/life/hello", version="1.5")
    assert response.status == 200
    assert response.headers["sunset"] == "Tue, 01 Jul 2025 00:00:00 GMT"


@pytest_twisted.ensureDeferred
async def test_list_versions_shows_deprecations():
    response = await TestClient({"life": lifecycle_api()}).get("/life/list_versions")
    assert response.json == {
        "all_versions": ["0.9", "1.0", "1.5", "2.0"],
        "curr_version": "2.0",
        "deprecated_versions": {
            "0.9": {
                "deprecated": "2024-01-01T00:00:00+00:00",
                "sunset": "2025-01-01T00:00:00+00:00",
            },
            "1.0": {
                "deprecated": "2026-01-01T00:00:00+00:00",
                "sunset": "2099-01-01T12:00:00+00:00",
                "link": "https://example.com/deprecations",
                "sunset_link": "https://example.com/sunsets",
            },
            "1.5": {
                "deprecated": "2025-06-01T00:00:00+00:00",
                "sunset": "2025-07-01T00:00:00+00:00",
            },
        },
    }


def test_every_document_shows_the_lifecycle():
    doc = describe_api(lifecycle_api())
    versions = json_document(doc)["versions"]
    assert versions["1.0"]["deprecation"]["sunset"] == "2099-01-01T12:00:00+00:00"
    assert "deprecation" not in versions["2.0"]
    markdown = markdown_document(doc)
    assert (
        "> **Deprecated since 2026-01-01; sunset on 2099-01-01. See https://example.com/deprecations**"
        in markdown
    )
    assert "> **Deprecated since 2024-01-01; answers 410 from 2025-01-01.**" in markdown
    html = html_document(doc)
    assert (
        '<p class="deprecated">Deprecated since 2026-01-01; sunset on 2099-01-01.'
        in html
    )
    assert "1.0 (deprecated)</a>" in html
    deprecated = openapi_document(doc, "1.0")
    validate(deprecated)
    get = deprecated["paths"]["/hello"]["get"]
    assert get["deprecated"] is True
    # Every answer of the version carries the headers, errors included.
    headers = {
        name: {"$ref": f"#/components/headers/{name}"}
        for name in ("Deprecation", "Sunset", "Link")
    }
    for status, response in get["responses"].items():
        assert {
            name: ref for name, ref in response["headers"].items() if name in headers
        } == headers, status
    assert sorted(deprecated["components"]["headers"]) == [
        "Deprecation",
        "Link",
        "Retry-After",
        "Sunset",
    ]
    assert "410" not in get["responses"]
    assert (
        deprecated["info"]["x-shiji-deprecation"]["link"]
        == "https://example.com/deprecations"
    )
    gone = openapi_document(doc, "0.9")
    validate(gone)
    assert gone["paths"]["/hello"]["get"]["responses"]["410"] == {
        "description": (
            "Gone.\n\n- `APIVersionGoneError` (212): API version '%s' was retired "
            "on %s."
        ),
        "headers": {
            name: {"$ref": f"#/components/headers/{name}"}
            for name in ("Deprecation", "Sunset", "Link")
        },
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}},
            "application/problem+json": {
                "schema": {"$ref": "#/components/schemas/Problem"}
            },
        },
    }
    current = openapi_document(doc, "2.0")
    get = current["paths"]["/hello"]["get"]
    assert "deprecated" not in get
    assert [s for s, r in get["responses"].items() if "headers" in r] == ["503"]
    assert sorted(current["components"]["headers"]) == ["Retry-After"]


@pytest.mark.slow
def test_a_live_daemon_sends_the_lifecycle_headers(shijid):
    daemon = shijid({"apis": {"rich_api": "rich"}})
    status, headers, body = daemon.request(
        "GET", "/rich/items", headers={"X-API-Version": "rich_api-1.0+prod"}
    )
    assert status == 200
    assert headers["Deprecation"] == "@1767225600"
    assert headers["Sunset"] == "Tue, 01 Jan 2030 00:00:00 GMT"
    assert headers["Link"] == (
        '<https://example.com/rich_api/deprecations>; rel="deprecation"; type="text/html"'
    )
    status, headers, body = daemon.request(
        "GET", "/rich/items", headers={"X-API-Version": "rich_api-2.0+prod"}
    )
    assert status == 200
    assert "Deprecation" not in headers
    status, headers, body = daemon.request("GET", "/_docs/rich_api/1.0/openapi.json")
    document = json.loads(body)
    assert document["servers"] == [{"url": f"http://127.0.0.1:{daemon.port}/rich"}]
    assert document["paths"]["/items"]["get"]["deprecated"] is True
