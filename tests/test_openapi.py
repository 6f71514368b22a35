"""
OpenAPI 3.1 documents, validated with openapi-spec-validator.
"""

import importlib
import json
import sys

import pytest
from daemons import TESTS
from openapi_spec_validator import validate

from shiji.admin import cli
from shiji.docs.model import describe_api
from shiji.docs.openapi import openapi_document, openapi_path

EXAMPLES = TESTS.parent / "examples"


@pytest.fixture(scope="module")
def rich_api():
    sys.path.insert(0, str(TESTS / "daemon_apis"))
    try:
        yield describe_api(importlib.import_module("rich_api"))
    finally:
        sys.path.remove(str(TESTS / "daemon_apis"))


@pytest.fixture(scope="module")
def example():
    import mylogin_api

    return describe_api(mylogin_api)


def test_every_document_is_valid_openapi_3_1(rich_api, example):
    for doc in (rich_api, example):
        for version in doc.versions:
            document = openapi_document(doc, version.version)
            validate(document)
            assert document["openapi"] == "3.1.0"
            assert document["info"]["version"] == version.version


def test_the_example_document(example):
    document = openapi_document(
        example, "1.0", mount="/myloginapi", version_header="X-DigiTar-API-Version"
    )
    assert sorted(document["paths"]) == [
        "/myloginapi/list_versions",
        "/myloginapi/login",
        "/myloginapi/logout",
        "/myloginapi/me",
        "/myloginapi/me/sessions",
        "/myloginapi/ping",
        "/myloginapi/ping/{timestamp}",
        "/myloginapi/sample_error/{kind}",
        "/myloginapi/users",
    ]
    post = document["paths"]["/myloginapi/ping/{timestamp}"]["post"]
    assert post["parameters"] == [
        {
            "name": "timestamp",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": "^(?:[0-9]+)$"},
        },
        {
            "name": "X-DigiTar-API-Version",
            "in": "header",
            "required": True,
            "description": "The API, version and mode that should answer.",
            "schema": {
                "type": "string",
                "enum": ["mylogin_api-1.0+prod", "mylogin_api-1.0+test"],
            },
        },
        {
            "name": "simple_auth_key",
            "in": "query",
            "required": True,
            "schema": {"type": "string"},
        },
    ]
    assert post["requestBody"] == {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "client_tz": {"type": "integer"},
                        "client_id": {"type": "string"},
                        "new_client": {"type": "boolean"},
                    },
                    "required": ["client_tz", "client_id"],
                }
            }
        },
    }
    assert post["responses"] == {
        "200": {
            "description": "OK.",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "result": {
                                "type": "object",
                                "properties": {
                                    "latency": {"type": "number"},
                                    "client_tz": {"type": "integer"},
                                    "client_id": {"type": "string"},
                                    "new_client": {"type": "boolean"},
                                },
                                "required": [
                                    "latency",
                                    "client_tz",
                                    "client_id",
                                    "new_client",
                                ],
                                "title": "Latency",
                                "description": (
                                    "A round trip's latency, and the arguments echoed."
                                ),
                            }
                        },
                        "required": ["result"],
                        "title": "PingResult",
                    }
                }
            },
        },
        **{
            status: {"$ref": f"#/components/responses/Error{status}"}
            for status in (
                "400",
                "404",
                "405",
                "406",
                "408",
                "409",
                "413",
                "414",
                "431",
                "500",
                "503",
            )
        },
    }
    # The GET declares the timestamp an integer, and its answer.
    get = document["paths"]["/myloginapi/ping/{timestamp}"]["get"]
    assert get["parameters"][0] == {
        "name": "timestamp",
        "in": "path",
        "required": True,
        "description": "A client-supplied UNIX timestamp.",
        "schema": {
            "type": "integer",
            "description": "A client-supplied UNIX timestamp.",
        },
    }
    assert get["responses"]["200"] == {
        "description": "Names the API, version and mode.",
        "content": {"application/json": {"schema": {"type": "string"}}},
    }
    signup = document["paths"]["/myloginapi/users"]["post"]
    assert signup["requestBody"]["content"]["application/json"]["schema"] == {
        "type": "object",
        "properties": {
            "email": {
                "type": "string",
                "maxLength": 320,
                "description": (
                    "The account's email; case and surrounding spaces are ignored."
                ),
            },
            "password": {
                "type": "string",
                "minLength": 8,
                "maxLength": 1024,
                "description": "The account's password.",
            },
        },
        "required": ["email", "password"],
    }
    assert sorted(signup["responses"])[:2] == ["201", "400"]
    kind = document["paths"]["/myloginapi/sample_error/{kind}"]["get"]["parameters"][0]
    assert kind["schema"]["pattern"] == "^(?:normal|advanced)$"
    responses = document["components"]["responses"]
    assert sorted(responses) == [
        f"Error{s}"
        for s in (
            "400",
            "401",
            "403",
            "404",
            "405",
            "406",
            "408",
            "409",
            "410",
            "413",
            "414",
            "429",
            "431",
            "500",
            "503",
        )
    ]
    assert responses["Error409"]["description"].startswith(
        "An argument is missing or invalid, or the call answered with an API error. One of: "
    )
    assert "SampleAdvancedError" in responses["Error409"]["description"]
    classes = document["components"]["schemas"]["Error"]["properties"]["error"][
        "properties"
    ]["exception_class"]["enum"]
    assert "SampleNormalError" in classes and "UnknownAPIVersionError" in classes


def test_guarded_calls_document_their_refusals_and_errors_offer_problem_details(
    example,
):
    document = openapi_document(example, "1.0", mount="/myloginapi")
    me = document["paths"]["/myloginapi/me"]["get"]
    assert me["x-shiji-requires"] == "a logged-in caller"
    assert "401" in me["responses"] and "403" not in me["responses"]
    ping = document["paths"]["/myloginapi/ping"]["get"]
    assert "x-shiji-requires" not in ping and "401" not in ping["responses"]
    error = document["components"]["responses"]["Error409"]["content"]
    assert error["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    problem = document["components"]["schemas"]["Problem"]
    assert problem["required"] == [
        "type",
        "title",
        "status",
        "detail",
        "error_code",
        "exception_class",
    ]
    assert "EmailTakenError" in problem["properties"]["exception_class"]["enum"]


def test_declarations_become_parameters_bodies_and_security(rich_api):
    document = openapi_document(rich_api, "1.0")
    items = document["paths"]["/rich_api/items"]
    paging = {
        p["name"]: p["schema"] for p in items["get"]["parameters"] if p["in"] == "query"
    }
    assert paging == {
        "page": {"type": "integer", "minimum": 0, "default": 0},
        "page_len": {"type": "integer", "minimum": 0, "maximum": 100, "default": 20},
    }
    post = items["post"]
    assert post["security"] == [{"basic": []}]
    assert "401" in post["responses"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"] == {
        "name": {"type": "string"},
        "price": {"type": "number"},
        "tags": {"type": "array"},
        "stock": {"type": ["integer", "null"]},
        "extra": {"type": "object"},
        "active": {"type": "boolean"},
    }
    assert schema["required"] == ["name", "price"]
    patch = document["paths"]["/rich_api/items/{item_id}"]["patch"]
    assert list(patch["requestBody"]["content"]) == ["application/merge-patch+json"]
    assert "<dl" in items["get"]["description"]  # reST rendered
    assert document["x-shiji-unlisted-routes"] == ["search(es)?/<term>"]
    assert "Error404" in document["components"]["responses"]
    assert (
        "ItemsError" in document["components"]["responses"]["Error404"]["description"]
    )


def test_a_version_reusing_another_versions_calls(rich_api):
    document = openapi_document(rich_api, "2.0")
    assert sorted(document["paths"]) == [
        "/rich_api/items",
        "/rich_api/items/{item_id}",
        "/rich_api/list_versions",
    ]
    # The reused calls raise the error their own module defines.
    classes = document["components"]["schemas"]["Error"]["properties"]["error"]
    assert "ItemsError" in classes["properties"]["exception_class"]["enum"]


@pytest.mark.parametrize(
    "route, path",
    [
        (r"ping", "/api/ping"),
        (r"ping/(?P<ts>\d+)$", "/api/ping/{ts}"),
        (r"a/(?P<x>[^/]+)/b/(?P<y>.+)", "/api/a/{x}/b/{y}"),
        (r"files/(?P<name>[a-z]+)\.json", "/api/files/{name}.json"),
        (r"ping[^/]*", None),
        (r"(a|b)", None),
        (r"", "/api"),
    ],
)
def test_openapi_paths(route, path):
    assert openapi_path(route, "/api") == path


def test_the_command_writes_every_version_and_an_index(tmp_path, capsys):
    rich_path = str(TESTS / "daemon_apis")
    assert (
        cli.main(
            ["-D", "rich_api", "-p", rich_path, "-T", "openapi", "-o", str(tmp_path)]
        )
        == 0
    )
    index = json.loads((tmp_path / "index.json").read_text())
    assert index == {
        "api_name": "rich_api",
        "versions": [
            {"version": "2.0", "openapi": "rich_api-2.0.openapi.json"},
            {"version": "1.0", "openapi": "rich_api-1.0.openapi.json"},
        ],
    }
    for entry in index["versions"]:
        validate(json.loads((tmp_path / entry["openapi"]).read_text()))
    assert (
        cli.main(
            ["-D", "mylogin_api", "-p", str(EXAMPLES), "-T", "openapi", "-V", "1.0"]
        )
        == 0
    )
    validate(json.loads(capsys.readouterr().out))
    assert (
        cli.main(
            ["-D", "mylogin_api", "-p", str(EXAMPLES), "-T", "openapi", "-V", "9.0"]
        )
        == 1
    )
    assert (
        capsys.readouterr().err
        == "shiji_admin: error: mylogin_api has no version 9.0 (it has 1.0)\n"
    )
    assert cli.main(["-D", "mylogin_api", "-p", str(EXAMPLES), "-T", "openapi"]) == 1
    assert capsys.readouterr().err == (
        "shiji_admin: error: -T openapi needs -V VERSION, or -o DIRECTORY for every version\n"
    )
