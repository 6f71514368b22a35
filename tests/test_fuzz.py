"""
schemathesis against a live shijid: one run per version, driven by the
OpenAPI documents ``shiji_admin`` writes, with every check on. It fuzzes
``examples/mylogin_api``, and the test suite's ``rich_api``, whose two
versions share calls. The fast run is part of the suite; ``--fuzz-long``
runs a thousand cases per operation with a fresh seed, and the stateful
phase.
"""

import importlib
import json
import re
import subprocess
import sys

import pytest
from daemons import ROOT, TESTS, Daemon, example_daemon

from shiji.admin.cli import main as admin_main
from shiji.docs.model import describe_api

schemathesis = pytest.importorskip(
    "schemathesis", reason="schemathesis runs on CPython 3.11 and newer"
)

pytestmark = pytest.mark.slow

#: API package, where it lives, and the path shijid serves it under.
APIS = {
    "mylogin_api": (ROOT / "examples", "/myloginapi"),
    "rich_api": (TESTS / "daemon_apis", "/rich"),
}


def _versions():
    for api, (base, _) in APIS.items():
        sys.path.insert(0, str(base))
        try:
            package = importlib.import_module(api)
        finally:
            sys.path.remove(str(base))
        for version in describe_api(package).versions:
            yield pytest.param(api, version.version, id=f"{api}-{version.version}")


#: schemathesis's default checks, named so a new release can't drop one
#: silently, plus every other check it has.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "unsupported_method",
    "missing_required_header",
    "all",
)


def serve(api, home):
    """A shijid serving ``api`` as configured for users (the example) or
    for the tests, checking every answer against its call's declarations
    (a mismatch would be a 500, which fails the run)."""
    home.mkdir()
    if api == "mylogin_api":
        return example_daemon(home, validate_responses="true")
    return Daemon(
        home,
        {
            "general": {"validate_responses": "true"},
            "apis": {"probe_api": "probe", api: "rich"},
        },
    )


@pytest.mark.parametrize("api, version", list(_versions()))
def test_schemathesis_finds_nothing(tmp_path, request, api, version):
    long_run = request.config.getoption("--fuzz-long")
    base, mount = APIS[api]
    out = tmp_path / "openapi"
    arguments = ["-D", api, "-T", "openapi", "-p", str(base), "--mount", mount]
    assert admin_main([*arguments, "-o", str(out)]) == 0
    document = out / f"{api}-{version}.openapi.json"
    spec = json.loads(document.read_text())
    assert spec["info"]["version"] == version
    operations = sum(len(item) for item in spec["paths"].values())
    daemon = serve(api, tmp_path / "daemon").start()
    try:
        if long_run:
            budget = ["--max-examples", "1000"]
            budget += ["--phases", "examples,coverage,fuzzing,stateful"]
        else:
            # Deterministic: the same cases every run, so a red run is a
            # regression, never bad luck.
            budget = ["--max-examples", "15", "--seed", "20261121"]
            budget += ["--phases", "examples,coverage,fuzzing"]
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                str(document),
                "--url",
                f"http://127.0.0.1:{daemon.port}{mount}",
                "--checks",
                ",".join(CHECKS),
                "--generation-database",
                "none",
                "--no-color",
                # One worker: schemathesis's threads can trip CPython 3.11's
                # ast module ("AST constructor recursion depth mismatch").
                "--workers",
                "1",
                *budget,
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=3600 if long_run else 240,
        )
        summary = run.stdout[-3000:]
        assert run.returncode == 0, run.stdout[-20000:] + run.stderr
        # Warnings (calls that need credentials, ids that don't exist) are
        # notes on coverage; failures and errors are not allowed.
        assert re.search(r"=+ (No issues found|[0-9]+ warnings?) in ", summary), summary
        assert "Failures:" not in summary and "Errors:" not in summary, summary
        tested = re.search(r"Tested: ([0-9]+)", run.stdout)
        assert tested and int(tested.group(1)) == operations, summary
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    log = daemon.log_text()
    assert "Traceback" not in log
    assert not re.search(r'" 5[0-9][0-9] ', log), "a 5xx was served"
    assert len(re.findall(r"\[shiji\.access#info\]", log)) > 20 * operations
