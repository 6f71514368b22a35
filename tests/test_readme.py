"""
The README's promises: its set-up commands, CI running its test command, and
a tour that works when pasted.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_twisted

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def code_blocks(section):
    body = README.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w*)\n(.*?)```", body, re.S)


def test_setup_has_exactly_two_commands_each_making_its_own_virtualenv():
    commands = [code.strip() for _, code in code_blocks("Set-up")]
    assert len(commands) == 2
    for command in commands:
        assert "\n" not in command
        assert command.startswith("python3 -m venv .venv && .venv/bin/pip install")


def test_ci_runs_exactly_the_readme_test_commands_under_both_interpreters():
    test_command = code_blocks("Set-up")[1][1].strip()
    [(_, pypy_command)] = code_blocks("Development")
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line for line in ci_lines if line and not line.startswith("#")]
    assert commands == [
        "set -euo pipefail",
        'cd "$(dirname "$0")/.."',
        ".ci/tools",
        test_command,
        pypy_command.strip(),
    ]


def test_the_example_command_starts_shijid_with_the_shipped_configuration():
    example_command = code_blocks("Set-up")[0][1].strip()
    assert example_command.endswith(".venv/bin/shijid -c conf/shijid.conf.example")
    # tests/test_daemon.py serves the shipped configuration over a socket.
    assert (ROOT / "conf" / "shijid.conf.example").is_file()


def test_the_in_memory_demo_runs():
    result = subprocess.run(
        [sys.executable, "examples/demo.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (
        "HTTP 200\n\"PONG! Right back at ya. I'm production baby! (Timestamp Val: 1438732412)"
        in result.stdout
    )
    assert re.findall(r"^HTTP (\d+)$", result.stdout, re.M) == [
        "200",
        "200",
        "409",
        "409",
        "200",
        "409",
        "404",
        "405",
    ]


@pytest.mark.slow
def test_the_tour_works_when_pasted(tmp_path):
    [(language, script)] = code_blocks("A short tour")
    assert language == "sh"
    environment = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    environment.pop("PYTHONPATH", None)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_the_performance_figures_are_those_of_the_committed_results():
    section = README.split("## Performance\n", 1)[1].split("\n## ", 1)[0]
    results = (ROOT / "bench" / "results" / "results.md").read_text()
    rows = [line for line in section.splitlines() if line.startswith("| (")]
    assert len(rows) >= 9
    for line in rows + [line for line in section.splitlines() if line.startswith("- ")]:
        assert line in results.splitlines(), line
    assert (ROOT / "bench" / "results" / "results.png").is_file()


@pytest_twisted.ensureDeferred
async def test_the_migrated_ping_answers_as_the_specification():
    from types import ModuleType

    from apitools import make_api

    from shiji import urldispatch, webapi
    from shiji.testing import TestClient

    section = "Migrating from the original Shiji"
    [after] = [code for language, code in code_blocks(section) if language == "python"]
    calls = ModuleType("migrated_calls")
    calls.urldispatch, calls.webapi = urldispatch, webapi
    exec(after, calls.__dict__)
    api = make_api("mylogin_api", [("1.0", r"1\.0", [calls.PingCall])])
    client = TestClient({"myloginapi": api})
    answer = (
        "PONG! Right back at ya. I'm production baby! "
        "(API: mylogin_api, Version: 1.0, Mode: prod)"
    )
    assert f'`"{answer}"`' in README.split(f"## {section}\n", 1)[1]
    response = await client.get("/myloginapi/ping")
    assert (response.status, response.json) == (200, answer)
    response = await client.get("/myloginapi/ping", mode="test")
    assert response.json == (
        "PONG! Right back at ya. I'm in testing mode. :( "
        "(API: mylogin_api, Version: 1.0, Mode: test)"
    )


@pytest_twisted.ensureDeferred
async def test_the_declarations_example_works(tmp_path):
    from apitools import make_api

    from shiji.testing import TestClient

    body = README.split("### Declaring arguments and answers\n", 1)[1]
    [code] = re.findall(r"```python\n(.*?)```", body.split("\n### ", 1)[0], re.S)
    namespace = {"__name__": "readme_declarations"}
    exec(compile(code, "README.md", "exec"), namespace)
    api = make_api("orders_api", [("1.0", r"1\.0", [namespace["OrdersCall"]])])
    client = TestClient({"shop": api})
    order = {
        "email": "ada@example.com",
        "zip": "75001",
        "lines": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}],
    }
    response = await client.post("/shop/customers/7/orders", json=order)
    assert (response.status, response.json) == (201, {"id": 7000, "lines": 2})
    response = await client.post("/shop/customers/7/orders?dry_run=true", json=order)
    assert (response.status, response.json) == (200, {"id": 7000, "lines": 2})
    bad = {**order, "zip": "7", "lines": [{"sku": "a", "qty": 100}]}
    response = await client.post("/shop/customers/7/orders", json=bad)
    assert response.status == 409
    assert response.json["error"]["fields"] == [
        {
            "field": "zip",
            "in": "body",
            "reason": "too short",
            "expected": "at least 5 characters",
            "pointer": "#/zip",
        },
        {
            "field": "lines[0].qty",
            "in": "body",
            "reason": "too large",
            "expected": "at most 99",
            "pointer": "#/lines/0/qty",
        },
    ]
    response = await client.post("/shop/customers/0/orders", json=order)
    assert response.json["error"]["fields"] == [
        {
            "field": "customer",
            "in": "path",
            "reason": "too small",
            "expected": "at least 1",
        }
    ]
