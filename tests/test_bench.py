"""
A smoke run of the benchmarks: every server of the quick run starts, gives
the exact answers the benchmark expects, and survives a second of wrk per
scenario; the report is written. Speed is never asserted here: bench/run
measures it. Shiji's answers to the nested scenario are checked in memory.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_twisted

from shiji.testing import TestClient

ROOT = Path(__file__).resolve().parent.parent

needs_wrk = pytest.mark.skipif(
    shutil.which("wrk") is None,
    reason="wrk is not installed (.ci/tools installs it)",
)


def harness():
    """bench/run.py, imported (it puts bench/apps on the path)."""
    bench = str(ROOT / "bench")
    sys.path.insert(0, bench)
    try:
        import run
    finally:
        sys.path.remove(bench)
    return run


@pytest.mark.slow
@needs_wrk
def test_the_quick_benchmark_runs_and_reports(tmp_path):
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["servers"] == {
        "a": "shijid, 1 worker",
        "b": "bare twisted.web Resource",
    }
    # What read the request head: Shiji's pick for shijid, asked of the
    # server's own interpreter.
    assert results["parsers"]["a"] in ("shiji llhttp", "shiji python")
    assert results["parsers"]["b"] == "twisted.web"
    runs = {(run["server"], run["scenario"]): run for run in results["runs"]}
    assert sorted(runs) == [
        (server, scenario)
        for server in ("a", "b")
        for scenario in ("error", "get", "post")
    ]
    for (_, scenario), run in runs.items():
        assert run["requests"] > 0
        assert run["errors"] == 0, run
        # wrk counts every answer that is not 2xx or 3xx: the error scenario's
        # 409s, and nothing else.
        if scenario == "error":
            assert run["non_2xx"] == run["requests"], run
        else:
            assert run["non_2xx"] == 0, run
    report = (tmp_path / "results.md").read_text()
    assert report.startswith("# Shiji benchmark results\n")
    assert "| (a) | shijid, 1 worker | **" in report
    assert "| (b) | bare twisted.web Resource | **" in report
    assert f"| {results['parsers']['a']} |" in report


@pytest.mark.slow
@needs_wrk
def test_a_server_giving_a_wrong_answer_stops_the_run(tmp_path, monkeypatch):
    bench = harness()
    wrong = bench.Scenario(**{**bench.SCENARIOS["post"].__dict__, "status": 201})
    monkeypatch.setitem(bench.SCENARIOS, "post", wrong)
    with pytest.raises(SystemExit, match=r"answered post with 200 .*; expected 201"):
        bench.main(["--quick", "--only", "b", "--out", str(tmp_path)])
    assert not (tmp_path / "results.md").exists()


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("valgrind") is None or sys.implementation.name != "cpython",
    reason="counts CPython instructions with valgrind (.ci/tools installs it)",
)
def test_instruction_counts_are_measured_for_a_site():
    result = subprocess.run(
        [
            sys.executable,
            "bench/instructions.py",
            "--requests",
            "8",
            "--sites",
            "shijid",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["| site | instructions per request |", "|---|---|"]
    [row] = lines[2:]
    count = int(row.rsplit("|", 2)[1].strip().replace(",", ""))
    # Sanity bounds only: a request through Twisted's parser is hundreds of
    # thousands of instructions, never a handful or hundreds of millions.
    assert 10_000 < count < 50_000_000, row


@pytest_twisted.ensureDeferred
async def test_shiji_answers_the_nested_scenario_as_the_benchmark_expects():
    bench = harness()
    import benchapi
    from benchdata import ORDER

    client = TestClient({"benchapi": benchapi})
    nested = bench.SCENARIOS["nested"]
    [refused] = nested.checks
    for scenario in (nested, refused):
        response = await client.request(
            scenario.method,
            scenario.path,
            body=scenario.body.encode(),
            headers=scenario.headers,
        )
        assert (response.status, response.json) == scenario.answer("shijid")
    # What the harness expects, spelled out: the order's lines, items and
    # total; and every broken rule of the refused order in Shiji's envelope.
    assert json.loads(nested.body) == ORDER
    assert nested.expected == {
        "result": {"order_id": "ORD-000123", "lines": 5, "items": 42, "total": 391.45}
    }
    assert refused.status == 409
    error = refused.expected["error"]
    assert error["exception_text"] == (
        "Invalid value for argument 'currency'. Must be one of 'EUR', 'USD', 'GBP'."
    )
    assert [(f["field"], f["reason"]) for f in error["fields"]] == [
        ("currency", "not allowed"),
        ("customer.address.country", "no match"),
        ("lines[2].quantity", "too small"),
    ]
