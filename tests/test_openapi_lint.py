"""
The OpenAPI documents pass both linters without a single problem: Redocly
CLI's recommended rules and Spectral's ``spectral:oas``. Linted: the
example's (served at a literal, an alternation and a regular expression),
the test APIs' packages (every version), and the APIs the documentation
tests define, each with contact and license as their packages would
declare them. A control document, the example's without its contact and
license, must get exactly the two warnings that call for them, so a run
that checks nothing cannot pass.
"""

import json

import pytest
import test_docs_declarations
import test_lifecycle
from apitools import make_api
from daemons import ROOT, TESTS
from linters import find, redocly, spectral

from shiji.admin.cli import main as admin_main
from shiji.docs.model import describe_api
from shiji.docs.openapi import openapi_document

pytestmark = pytest.mark.slow

CONTACT = {"name": "The Shiji developers"}
LICENSE = {"name": "MIT License", "identifier": "MIT"}


def _admin(*arguments):
    assert admin_main(["-T", "openapi", *arguments]) == 0


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    """Every document to lint, and the control document, last."""
    out = tmp_path_factory.mktemp("openapi")
    examples, daemon_apis = str(ROOT / "examples"), str(TESTS / "daemon_apis")
    for name, prefix in [
        ("literal", "myloginapi"),
        ("alternation", "(myloginapi|login)"),
        ("regex", "[a-z_]+api"),
    ]:
        target = out / f"mylogin_api-{name}.json"
        _admin(
            *("-D", "mylogin_api", "-V", "1.0", "-p", examples),
            *("--prefix", prefix, "-o", str(target)),
        )
    _admin("-D", "rich_api", "-p", daemon_apis, "-o", str(out / "rich_api"))
    _admin("-D", "probe_api", "-p", daemon_apis, "-o", str(out / "probe_api"))
    shop = make_api(
        "shop_api",
        [
            (
                "1.0",
                r"1\.0",
                [test_docs_declarations.Orders, test_docs_declarations.Receipts],
            )
        ],
    )
    for api in (shop, test_lifecycle.lifecycle_api()):
        api.api_contact, api.api_license = CONTACT, LICENSE
        doc = describe_api(api)
        for version in doc.versions:
            document = openapi_document(
                doc, version.version, server="http://127.0.0.1:9990"
            )
            target = out / f"{doc.api_name}-{version.version}.json"
            target.write_text(json.dumps(document, indent=2))
    paths = sorted(path for path in out.rglob("*.json") if path.name != "index.json")
    control = json.loads((out / "mylogin_api-literal.json").read_text())
    del control["info"]["contact"], control["info"]["license"]
    (out / "control.json").write_text(json.dumps(control, indent=2))
    return [*paths, out / "control.json"]


def test_the_documents_linted(documents):
    assert [path.name for path in documents] == [
        "life_api-0.9.json",
        "life_api-1.0.json",
        "life_api-1.5.json",
        "life_api-2.0.json",
        "mylogin_api-alternation.json",
        "mylogin_api-literal.json",
        "mylogin_api-regex.json",
        "probe_api-1.0.openapi.json",
        "rich_api-1.0.openapi.json",
        "rich_api-2.0.openapi.json",
        "shop_api-1.0.json",
        "control.json",
    ]


@pytest.mark.skipif(
    find("redocly") is None,
    reason="Redocly CLI is not installed: run .ci/tools (npm install into .ci/node)",
)
def test_redocly_recommended_finds_nothing(documents):
    status, reports = redocly(documents)
    assert status == 0
    assert len(reports) == len(documents)
    *linted, control = reports
    for path, report in zip(documents, linted):
        assert report["totals"] == {"errors": 0, "warnings": 0, "ignored": 0}, path
        assert report["problems"] == [], path
    assert control["totals"] == {"errors": 0, "warnings": 1, "ignored": 0}
    assert [(p["ruleId"], p["severity"]) for p in control["problems"]] == [
        ("info-license", "warn")
    ]


@pytest.mark.skipif(
    find("spectral") is None,
    reason="Spectral is not installed: run .ci/tools (npm install into .ci/node)",
)
def test_spectral_oas_finds_nothing(documents):
    status, problems = spectral(documents)
    assert status == 0
    assert [(p["source"], p["code"], p["severity"]) for p in problems] == [
        (str(documents[-1]), "info-contact", 1)
    ]
