"""
schemathesis against a live shijid serving ``examples/mylogin_api``: one run
per version, driven by the OpenAPI documents ``shiji_admin`` writes, with
every check on. The fast run is part of the suite; ``--fuzz-long`` runs
thousands of cases per operation with a fresh seed, and the stateful phase.
"""

import json
import re
import subprocess
import sys

import mylogin_api
import pytest
from daemons import ROOT, example_daemon

from shiji.admin.cli import main as admin_main
from shiji.admin.model import describe_api

schemathesis = pytest.importorskip(
    "schemathesis", reason="schemathesis runs on CPython 3.11 and newer"
)

pytestmark = pytest.mark.slow

VERSIONS = [version.version for version in describe_api(mylogin_api).versions]

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


@pytest.fixture
def openapi_documents(tmp_path):
    """The documents ``shiji_admin -T openapi`` writes for every version."""
    out = tmp_path / "openapi"
    arguments = ["-D", "mylogin_api", "-T", "openapi", "-p", str(ROOT / "examples")]
    assert admin_main([*arguments, "--mount", "/myloginapi", "-o", str(out)]) == 0
    return out


@pytest.mark.parametrize("version", VERSIONS)
def test_schemathesis_finds_nothing(tmp_path, openapi_documents, request, version):
    long_run = request.config.getoption("--fuzz-long")
    document = openapi_documents / f"mylogin_api-{version}.openapi.json"
    assert json.loads(document.read_text())["info"]["version"] == version
    home = tmp_path / "daemon"
    home.mkdir()
    daemon = example_daemon(home).start()
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
                f"http://127.0.0.1:{daemon.port}",
                "--checks",
                ",".join(CHECKS),
                "--generation-database",
                "none",
                "--no-color",
                "--workers",
                "2",
                *budget,
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=3600 if long_run else 240,
        )
        summary = run.stdout[-3000:]
        assert run.returncode == 0, run.stdout[-20000:] + run.stderr
        assert "No issues found" in summary, summary
        tested = re.search(r"Tested: ([0-9]+)", run.stdout)
        assert tested and int(tested.group(1)) >= 10, summary
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    log = daemon.log_text()
    assert "Traceback" not in log
    assert not re.search(r'" 5[0-9][0-9] ', log), "a 5xx was served"
    assert len(re.findall(r"\[shiji\.access#info\]", log)) > 300
