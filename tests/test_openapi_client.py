"""
A typed client of the example, as a new user would make one: the OpenAPI
document ``shiji_admin`` writes for a running shijid, turned into Python by
openapi-python-client, calling that shijid. Results must come back as the
generated models, with the declared types, and errors as the generated
error model, at the statuses the document lists (the client raises on any
other); the version header is the document's default, never passed.
"""

import importlib
import json
import pathlib
import subprocess
import sys
import time

import pytest
from daemons import ROOT, example_daemon

from shiji.admin.cli import main as admin_main

pytest.importorskip(
    "openapi_python_client", reason="openapi-python-client runs on CPython 3.11+"
)

pytestmark = pytest.mark.slow


@pytest.fixture
def daemon(tmp_path):
    (tmp_path / "daemon").mkdir()
    running = example_daemon(tmp_path / "daemon").start()
    try:
        yield running
        assert running.stop() == 0
    finally:
        running.kill()


@pytest.fixture
def document(tmp_path, daemon):
    """The example's document, for the running daemon."""
    out = tmp_path / "openapi.json"
    arguments = ["-D", "mylogin_api", "-T", "openapi", "-V", "1.0"]
    arguments += ["-p", str(ROOT / "examples"), "--prefix", "myloginapi"]
    arguments += ["--server", f"http://127.0.0.1:{daemon.port}", "-o", str(out)]
    assert admin_main(arguments) == 0
    return out


@pytest.fixture
def generated(tmp_path, document, monkeypatch):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(document),
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
    """The generated module of an operation, by its name."""
    api = importlib.import_module(client_package.__name__ + ".api")
    for tag in api.__path__:
        for path in sorted(pathlib.Path(tag).rglob(f"{name}.py")):
            relative = path.relative_to(tag).with_suffix("")
            return importlib.import_module(".".join([api.__name__, *relative.parts]))
    raise LookupError(name)


def test_the_generated_client_is_typed(generated, document, daemon):
    models = importlib.import_module("client.models")
    [server] = json.loads(document.read_text())["servers"]
    assert server == {"url": f"http://127.0.0.1:{daemon.port}/myloginapi"}
    http = generated.Client(base_url=server["url"], raise_on_unexpected_status=True)
    signup = operation(generated, "signup_call_post")
    login = operation(generated, "login_call_post")
    me = operation(generated, "me_call_get")
    logout = operation(generated, "logout_call_post")
    ping = operation(generated, "ping_call_get_ping_timestamp")
    credentials = models.SignupCallPostBody(
        email=" Ada@Example.com ", password="correct horse"
    )

    # The version header is the document's default: production mode.
    pong = ping.sync_detailed(timestamp=42, client=http)
    assert pong.status_code == 200
    assert pong.parsed == (
        "PONG! Right back at ya. I'm production baby! (Timestamp Val: 42) "
        "(API: mylogin_api, Version: 1.0, Mode: prod)"
    )

    response = signup.sync_detailed(client=http, body=credentials)
    assert response.status_code == 201
    account = response.parsed
    assert type(account) is models.SignupCallPostAccountResult
    assert type(account.result) is models.SignupCallPostAccountResultAccount
    assert (account.result.id, account.result.email) == (1, "ada@example.com")
    assert type(account.result.id) is int

    refused = signup.sync_detailed(
        client=http,
        body=models.SignupCallPostBody(email="ada@example.com", password="short"),
    )
    assert refused.status_code == 409
    assert type(refused.parsed) is models.Error
    error = refused.parsed.error
    assert error.exception_class == models.ErrorErrorExceptionClass.VALUEERROR
    [field] = error.fields
    assert (field.field, field.in_, field.reason, field.expected) == (
        "password",
        "body",
        "too short",
        "at least 8 characters",
    )

    def log_in(password):
        return login.sync_detailed(
            client=http,
            body=models.LoginCallPostBody(email="ada@example.com", password=password),
        )

    wrong = log_in("wrong horse")
    assert wrong.status_code == 401
    assert type(wrong.parsed) is models.Error
    assert wrong.parsed.error.to_dict() == {
        "error_code": 111,
        "exception_class": "LoginFailedError",
        "exception_text": "The email or the password is wrong.",
    }
    assert (
        wrong.parsed.error.exception_class
        is models.ErrorErrorExceptionClass.LOGINFAILEDERROR
    )

    right = log_in("correct horse")
    assert right.status_code == 200
    assert type(right.parsed) is models.LoginCallPostAccountResult
    assert right.parsed.to_dict() == {"result": {"id": 1, "email": "ada@example.com"}}
    assert list(http.get_httpx_client().cookies) == ["session"]

    mine = me.sync_detailed(client=http)
    assert mine.status_code == 200
    assert type(mine.parsed) is models.MeCallGetAccountResult
    assert mine.parsed.to_dict() == {"result": {"id": 1, "email": "ada@example.com"}}

    out = logout.sync_detailed(client=http)
    assert out.status_code == 200
    assert type(out.parsed) is models.LogoutCallPostMessage
    assert out.parsed.result == "logged out"
    gone = me.sync_detailed(client=http)
    assert gone.status_code == 401
    assert gone.parsed.error.exception_class == "InvalidAuthenticationError"

    # Five failed logins to one account from one address, then 429.
    for _ in range(5):
        assert log_in("wrong horse").status_code == 401
    sent = time.time()
    limited = log_in("correct horse")
    answered = time.time()
    assert limited.status_code == 429
    assert type(limited.parsed) is models.Error
    retry_after = limited.headers["retry-after"]
    # Until the current 900-second window (aligned to the epoch) ends.
    assert 900 - answered % 900 <= int(retry_after) < 900 - sent % 900 + 1
    assert limited.parsed.error.to_dict() == {
        "error_code": 112,
        "exception_class": "TooManyAttemptsError",
        "exception_text": f"Too many attempts; try again in {retry_after} seconds.",
    }
