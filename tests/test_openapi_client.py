"""
A typed client of the example, as a new user would make one: the OpenAPI
document ``shiji_admin`` writes, turned into Python by openapi-python-client,
calling a live shijid. Results must come back as the generated models, with
the declared types, and errors as the envelope with its field list.
"""

import importlib
import subprocess
import sys

import pytest
from daemons import ROOT, example_daemon

from shiji.admin.cli import main as admin_main

pytest.importorskip(
    "openapi_python_client", reason="openapi-python-client runs on CPython 3.11+"
)

pytestmark = pytest.mark.slow


@pytest.fixture
def generated(tmp_path, monkeypatch):
    out = tmp_path / "openapi"
    arguments = ["-D", "mylogin_api", "-T", "openapi", "-p", str(ROOT / "examples")]
    assert admin_main([*arguments, "--mount", "/myloginapi", "-o", str(out)]) == 0
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(out / "mylogin_api-1.0.openapi.json"),
            "--output-path",
            str(tmp_path / "client"),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    # Nothing the generator could not type is left out silently.
    assert "WARNING" not in run.stdout + run.stderr, run.stdout + run.stderr
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("client")
    for name in [name for name in sys.modules if name.split(".")[0] == "client"]:
        del sys.modules[name]


def operation(client_package, name):
    """The generated module of an operation, by the start of its name."""
    api = importlib.import_module(client_package.__name__ + ".api")
    for tag in api.__path__:
        for path in sorted(__import__("pathlib").Path(tag).rglob("*.py")):
            if path.stem.startswith(name):
                relative = path.relative_to(tag).with_suffix("")
                return importlib.import_module(
                    ".".join([api.__name__, *relative.parts])
                )
    raise LookupError(name)


def test_the_generated_client_is_typed(generated, tmp_path):
    models = importlib.import_module("client.models")
    (tmp_path / "daemon").mkdir()
    daemon = example_daemon(tmp_path / "daemon").start()
    try:
        http = generated.Client(
            base_url=f"http://127.0.0.1:{daemon.port}",
            headers={"X-API-Version": "mylogin_api-1.0+prod"},
            raise_on_unexpected_status=True,
        )
        signup = operation(generated, "signup_call_post")
        body_model = next(
            getattr(models, name)
            for name in dir(models)
            if name.lower().startswith("signupcallpost") and "body" in name.lower()
        )
        response = signup.sync_detailed(
            client=http,
            body=body_model(email=" Ada@Example.com ", password="correct horse"),
            x_api_version="mylogin_api-1.0+prod",
        )
        assert response.status_code == 201
        account = response.parsed
        # Models are named after their schema's title (prefixed by the
        # operation when the schema is inline).
        assert type(account).__name__.endswith("AccountResult")
        assert type(account.result).__module__.startswith("client.models.")
        assert (account.result.id, account.result.email) == (1, "ada@example.com")
        assert type(account.result.id) is int

        refused = signup.sync_detailed(
            client=http,
            body=body_model(email="ada@example.com", password="short"),
            x_api_version="mylogin_api-1.0+prod",
        )
        assert refused.status_code == 409
        error = refused.parsed.error
        assert error.exception_class == "ValueError"
        [field] = error.fields
        assert (field.field, field.in_, field.reason, field.expected) == (
            "password",
            "body",
            "too short",
            "at least 8 characters",
        )

        ping = operation(generated, "ping_call_get_0")
        pong = ping.sync_detailed(
            timestamp=42, client=http, x_api_version="mylogin_api-1.0+prod"
        )
        assert pong.status_code == 200
        assert pong.parsed.startswith("PONG! Right back at ya. I'm production baby! ")
        assert "(Timestamp Val: 42)" in pong.parsed
        assert daemon.stop() == 0
    finally:
        daemon.kill()
