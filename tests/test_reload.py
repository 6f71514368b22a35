"""
shijid --reload: the changed code of an API is served without refusing a
connection; broken code or configuration is logged and the old code serves.
"""

import json
import os
import re
import shutil
import signal
import threading
import time

import pytest
from daemons import TESTS, Daemon, alive, failing_run, run_shijid, write_config
from twisted.internet import defer
from twisted.logger import capturedLogs
from twisted.python import usage

from shiji import tap
from shiji._reload import ReloadService, WatchedFiles
from shiji.config import ConfigError, load_config
from shiji.daemon import Options

WATCHER_MISSING = (
    "shijid: error: --reload needs watchfiles: pip install 'shiji[reload]'"
)
WORKERS_REFUSED = (
    "[general] workers: --reload runs a single worker: "
    "set it to 1 or leave --reload out"
)
CODE_CALL = """

class Code(urldispatch.URLMatchJSONResource):
    routes = r"code"

    def render_GET(self, request):
        return {"code": CODE}
"""


def write_code(api, code):
    """Give the copied probe API's ``code`` call the answer ``code``."""
    calls = api / "v1_0" / "calls.py"
    original = (TESTS / "daemon_apis" / "probe_api" / "v1_0" / "calls.py").read_text()
    calls.write_text(original + CODE_CALL.replace("CODE", repr(code)))


def copied_api(tmp_path):
    """A copy of the probe API in ``tmp_path/apis``, with a ``code`` call."""
    apis = tmp_path / "apis"
    shutil.copytree(
        TESTS / "daemon_apis" / "probe_api",
        apis / "probe_api",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    write_code(apis / "probe_api", 1)
    return apis


def sections(apis, **config_probe_api):
    found = {
        "general": {
            "listen_ip": "127.0.0.1",
            "listen_port": "0",
            "base_path": str(apis),
        },
        "apis": {"probe_api": "probe"},
    }
    if config_probe_api:
        found["config_probe_api"] = config_probe_api
    return found


def reloading_daemon(tmp_path, **config_probe_api):
    """A started ``shijid --reload`` serving a copy of the probe API."""
    apis = copied_api(tmp_path)
    settings = sections(apis, **config_probe_api)
    settings["logging"] = {"log_file": str(tmp_path / "shijid.log")}
    config = write_config(tmp_path / "shijid.conf", settings)
    daemon = Daemon(tmp_path, config=config, args=["--reload"])
    daemon.apis = apis
    daemon.settings = settings
    return daemon.start()


def code(daemon):
    status, _, body = daemon.request("GET", "/probe/code")
    assert status == 200, body
    return json.loads(body)["code"]


def probe(daemon):
    status, _, body = daemon.request("GET", "/probe/probe")
    assert status == 200, body
    return json.loads(body)


def wait_for_lines(daemon, pattern, count, timeout=30):
    """Wait until ``count`` lines of the log match ``pattern``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(log_lines(daemon, pattern)) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not logged {count} times: {daemon.log_text()}")


def reloaded(daemon, count, old_pid, timeout=30):
    """
    Wait for the ``count``-th reload, and for the worker it replaced
    (``old_pid``) to exit: until then, both accept connections.
    """
    wait_for_lines(daemon, r"Reloaded:", count, timeout)
    deadline = time.monotonic() + timeout
    while alive(old_pid):
        assert time.monotonic() < deadline, f"worker {old_pid} did not exit"
        time.sleep(0.05)


def log_lines(daemon, pattern):
    """The messages (without time and namespace) of the matching log lines."""
    return [
        line.split("] ", 1)[1]
        for line in daemon.log_text().splitlines()
        if re.search(pattern, line)
    ]


def failed_replacement(daemon, error):
    return (
        "Could not replace worker 0: the new worker exited with status 1 "
        f"(shijid: error: {daemon.config}: {error}); the old one keeps serving"
    )


class Hammer:
    """Requests ``/probe/code`` in a loop, on a new connection each time."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.answers = []
        self.failures = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stopping.is_set():
            try:
                status, _, body = self.daemon.request("GET", "/probe/code", timeout=10)
            except Exception as e:
                self.failures.append(repr(e))
            else:
                self.answers.append((status, json.loads(body)))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stopping.set()
        self.thread.join(15)

    def wait_for(self, expected, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (200, {"code": expected}) in self.answers[-5:]:
                return
            time.sleep(0.05)
        raise AssertionError(f"never answered {expected}: {self.answers[-5:]}")


@pytest.mark.slow
def test_changed_code_is_served_and_no_request_fails_across_the_reload(tmp_path):
    daemon = reloading_daemon(tmp_path)
    try:
        before = probe(daemon)["pid"]
        with Hammer(daemon) as hammer:
            hammer.wait_for(1)
            # An editor saving two files at once; its swap file and the
            # bytecode cache are no reason to reload.
            version = daemon.apis / "probe_api" / "v1_0"
            (version / ".calls.py.swp").write_text("swap")
            (version / "__init__.py").write_text(
                (version / "__init__.py").read_text() + "# saved\n"
            )
            write_code(daemon.apis / "probe_api", 22)
            (version / "__pycache__").mkdir(exist_ok=True)
            (version / "__pycache__" / "stray.py").write_text("")
            reloaded(daemon, 1, before)
            hammer.wait_for(22)
        assert hammer.failures == []
        assert {status for status, _ in hammer.answers} == {200}
        # The old code answered until the new one did (for a moment both).
        codes = [body["code"] for _, body in hammer.answers]
        assert set(codes) == {1, 22}
        assert codes[0] == 1
        assert codes[-1] == 22
        assert code(daemon) == 22
        assert probe(daemon)["pid"] != before
        assert log_lines(daemon, r"shiji\.reload") == [
            "Reloading: probe_api/v1_0/__init__.py, probe_api/v1_0/calls.py changed",
            "Reloaded: a new worker serves the changed code",
        ]
        assert daemon.stop() == 0
    finally:
        daemon.kill()


@pytest.mark.slow
def test_broken_code_is_logged_and_the_old_code_serves_until_it_is_fixed(tmp_path):
    daemon = reloading_daemon(tmp_path)
    try:
        serving = probe(daemon)["pid"]
        calls = daemon.apis / "probe_api" / "v1_0" / "calls.py"
        calls.write_text(calls.read_text() + "\ndef broken(:\n")
        wait_for_lines(daemon, r"Could not replace worker", 1)
        # Worded by the interpreter: the one the worker runs.
        with pytest.raises(SyntaxError) as invalid:
            compile(calls.read_text(), str(calls), "exec")
        error = (
            "[apis] probe_api: cannot import probe_api: SyntaxError: "
            f"{invalid.value.msg} ({calls}, line {invalid.value.lineno})"
        )
        assert log_lines(daemon, r"shiji\.reload|Could not replace") == [
            "Reloading: probe_api/v1_0/calls.py changed",
            failed_replacement(daemon, error),
        ]
        assert code(daemon) == 1
        assert probe(daemon)["pid"] == serving

        write_code(daemon.apis / "probe_api", 333)
        reloaded(daemon, 1, serving)
        assert code(daemon) == 333
        assert probe(daemon)["pid"] != serving
        daemon.send(signal.SIGTERM)
        _, errors = daemon.process.communicate(timeout=30)
        assert daemon.process.returncode == 0
        # The worker that failed said why on shijid's standard error.
        assert errors.decode().splitlines() == [
            f"shijid: error: {daemon.config}: {error}"
        ]
    finally:
        daemon.kill()


@pytest.mark.slow
def test_configuration_changes_reload_and_broken_ones_are_ignored(tmp_path):
    daemon = reloading_daemon(tmp_path, greeting="hello")
    try:
        assert probe(daemon)["api_config"] == {
            "probe_api": {"greeting": "hello", "validated": True}
        }
        started = probe(daemon)["pid"]
        settings = daemon.settings
        settings["config_probe_api"]["greeting"] = "bonjour"
        # Saved as many editors do: a new file renamed over the old one.
        write_config(tmp_path / "shijid.conf.new", settings)
        os.replace(tmp_path / "shijid.conf.new", daemon.config)
        reloaded(daemon, 1, started)
        first = probe(daemon)
        assert first["api_config"] == {
            "probe_api": {"greeting": "bonjour", "validated": True}
        }

        # Not a configuration: logged in one line, nothing else happens.
        settings["general"]["workers"] = "lots"
        write_config(daemon.config, settings)
        with pytest.raises(ConfigError) as refused:
            load_config(daemon.config)
        wait_for_lines(daemon, r"Reloading failed", 1)
        # A configuration its API refuses: the new worker fails.
        del settings["general"]["workers"]
        settings["config_probe_api"]["refuse"] = "yes"
        write_config(daemon.config, settings)
        wait_for_lines(daemon, r"Could not replace worker", 1)
        assert probe(daemon) == first

        # A new port needs a restart; the rest is applied.
        del settings["config_probe_api"]["refuse"]
        settings["general"]["listen_port"] = "1"
        write_config(daemon.config, settings)
        reloaded(daemon, 2, first["pid"])
        assert probe(daemon)["api_config"] == {
            "probe_api": {"greeting": "bonjour", "validated": True}
        }
        assert probe(daemon)["pid"] != first["pid"]
        config = daemon.config
        assert log_lines(daemon, r"shiji\.reload|Could not replace") == [
            f"Reloading: {config} changed",
            "Reloaded: a new worker serves the changed code",
            f"Reloading: {config} changed",
            f"Reloading failed: {refused.value}; the previous code keeps serving",
            f"Reloading: {config} changed",
            failed_replacement(
                daemon,
                "[config_probe_api]: probe_api.config.validate_config refused it: "
                "refused: yes",
            ),
            f"Reloading: {config} changed",
            f"Reloading: {config}: [general] listen_port changed to 1; "
            "it applies when shijid is restarted",
            "Reloaded: a new worker serves the changed code",
        ]
        assert daemon.stop() == 0
    finally:
        daemon.kill()


@pytest.mark.slow
def test_tls_turned_on_is_served_by_the_new_worker(tmp_path):
    from test_tls import https, self_signed

    daemon = reloading_daemon(tmp_path)
    try:
        serving = probe(daemon)["pid"]
        certificate, key = self_signed(tmp_path)
        settings = daemon.settings
        settings["general"]["tls_certificate"] = str(certificate)
        settings["general"]["tls_private_key"] = str(key)
        write_config(daemon.config, settings)
        reloaded(daemon, 1, serving)
        status, _, body = https(daemon, certificate, "/probe/code")
        assert (status, json.loads(body)) == (200, {"code": 1})
        assert log_lines(daemon, r"shiji\.reload") == [
            f"Reloading: {daemon.config} changed",
            "Reloaded: a new worker serves the changed code",
        ]
        assert daemon.stop() == 0
    finally:
        daemon.kill()


def test_reload_refuses_more_than_one_worker(tmp_path):
    path, line = failing_run(tmp_path, {"general": {"workers": "2"}}, args=["--reload"])
    assert line == f"shijid: error: {path}: {WORKERS_REFUSED}"
    # --check checks what --reload would refuse too.
    result = run_shijid("-c", str(path), "--reload", "--check")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"shijid: error: {path}: {WORKERS_REFUSED}\n"


def test_check_with_reload_validates_as_check_does(tmp_path):
    path = write_config(tmp_path / "shijid.conf", sections(TESTS / "daemon_apis"))
    result = run_shijid("-c", str(path), "--reload", "--check")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{path}: OK\n", "")


def test_the_reload_service_refuses_more_than_one_worker(tmp_path):
    settings = sections(APIS)
    settings["general"]["workers"] = "2"
    config = load_config(write_config(tmp_path / "s.conf", settings))
    with pytest.raises(ConfigError) as refused:
        ReloadService(config, FakePool())
    assert str(refused.value) == f"{config.path}: {WORKERS_REFUSED}"


def test_reload_without_watchfiles_names_the_extra(tmp_path):
    shadow = tmp_path / "shadow" / "watchfiles"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('not installed')\n")
    path = write_config(tmp_path / "shijid.conf", sections(TESTS / "daemon_apis"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(shadow.parent), env.get("PYTHONPATH")])
    )
    result = run_shijid("-c", str(path), "--reload", env=env)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == WATCHER_MISSING + "\n"
    # Without --reload, shijid has no need of it.
    checked = run_shijid("-c", str(path), "--check", env=env)
    assert (checked.returncode, checked.stderr) == (0, "")


def test_reload_is_an_option_of_shijid_only():
    assert Options().parseOptions(["-c", "x.conf"]) is None
    options = Options()
    options.parseOptions(["-c", "x.conf", "--reload"])
    assert options["reload"] == 1
    assert Options()["reload"] == 0
    with pytest.raises(usage.UsageError, match="reload"):
        tap.Options().parseOptions(["-c", "x.conf", "--reload"])


# What is watched, without processes.

APIS = TESTS / "daemon_apis"


def watched(tmp_path, **auth):
    settings = sections(APIS)
    if auth:
        settings["auth"] = auth
    return WatchedFiles.of(load_config(write_config(tmp_path / "s.conf", settings)))


def test_the_api_packages_and_the_configuration_are_watched(tmp_path):
    files = watched(tmp_path)
    assert files.config == tmp_path / "s.conf"
    assert files.packages == {APIS / "probe_api"}
    assert files.files == {tmp_path / "s.conf"}
    assert files.watches() == [((APIS / "probe_api",), True), ((tmp_path,), False)]


def test_the_auth_backend_module_is_watched(tmp_path):
    files = watched(
        tmp_path,
        enable_auth="true",
        auth_module="probe_auth",
        auth_class="HeaderBackend",
    )
    assert files.files == {tmp_path / "s.conf", APIS / "probe_auth.py"}
    assert files.watches() == [
        ((APIS / "probe_api",), True),
        (tuple(sorted([APIS, tmp_path])), False),
    ]
    assert files.wanted(str(APIS / "probe_auth.py"))
    assert not files.wanted(str(APIS / "other_module.py"))
    assert files.describe(str(APIS / "probe_auth.py")) == "probe_auth.py"


def test_a_package_imported_from_elsewhere_is_watched(tmp_path):
    settings = sections(APIS)
    settings["apis"]["shiji"] = "shiji"
    files = WatchedFiles.of(load_config(write_config(tmp_path / "s.conf", settings)))
    package = TESTS.parent / "shiji"
    assert files.packages == {APIS / "probe_api", package}
    assert files.describe(str(package / "daemon.py")) == "shiji/daemon.py"


@pytest.mark.parametrize(
    "path, wanted",
    [
        ("probe_api/v1_0/calls.py", True),
        ("probe_api/new/module.py", True),
        ("probe_api/__init__.py", True),
        ("probe_api/v1_0/__pycache__/calls.cpython-311.pyc", False),
        ("probe_api/v1_0/__pycache__/calls.py", False),
        ("probe_api/v1_0/.calls.py.swp", False),
        ("probe_api/v1_0/.#calls.py", False),
        ("probe_api/v1_0/calls.py~", False),
        ("probe_api/v1_0/4913", False),
        ("probe_api/schema.json", False),
        ("rich_api/v1/calls.py", False),
        ("probe_auth.py", False),
    ],
)
def test_only_python_files_of_the_packages_reload(tmp_path, path, wanted):
    files = watched(tmp_path)
    assert files.wanted(str(APIS / path)) is wanted
    assert files.wanted(str(tmp_path / "s.conf"))
    assert not files.wanted(str(tmp_path / "other.conf"))


def test_changes_are_described_from_their_package(tmp_path):
    files = watched(tmp_path)
    calls = APIS / "probe_api" / "v1_0" / "calls.py"
    assert files.describe(str(calls)) == "probe_api/v1_0/calls.py"
    assert files.describe(str(tmp_path / "s.conf")) == str(tmp_path / "s.conf")


class FakePool:
    """Replaces its worker when told to, and says when it is done."""

    def __init__(self):
        self.replacing = []

    def replace(self, index):
        assert index == 0
        self.replacing.append(defer.Deferred())
        return self.replacing[-1]


def reloader(tmp_path, settings=None):
    path = write_config(tmp_path / "s.conf", settings or sections(APIS))
    pool = FakePool()
    service = ReloadService(load_config(path), pool)
    # Running, without watching (the tests tell it what changed).
    service.running = True
    return service, pool


def test_changes_during_a_reload_make_one_more_reload(tmp_path):
    service, pool = reloader(tmp_path)
    calls = str(APIS / "probe_api" / "v1_0" / "calls.py")
    init = str(APIS / "probe_api" / "__init__.py")
    with capturedLogs() as events:
        service.changed([calls])
        service.changed([init])
        service.changed([calls])
        assert len(pool.replacing) == 1
        pool.replacing[0].callback(None)
        assert len(pool.replacing) == 2
        pool.replacing[1].errback(RuntimeError("worker 0 is already being replaced"))
        service.changed([])
        assert len(pool.replacing) == 2
    assert [e["log_format"].format(**e) for e in events] == [
        "Reloading: probe_api/v1_0/calls.py changed",
        "Reloaded: a new worker serves the changed code",
        "Reloading: probe_api/__init__.py, probe_api/v1_0/calls.py changed",
        "Reloading failed: worker 0 is already being replaced",
    ]


def test_a_worker_that_fails_is_reported_by_the_pool_alone(tmp_path):
    from twisted.internet.error import ProcessTerminated

    service, pool = reloader(tmp_path)
    with capturedLogs() as events:
        service.changed([str(APIS / "probe_api" / "__init__.py")])
        pool.replacing[0].errback(ProcessTerminated(1))
    assert [e["log_format"].format(**e) for e in events] == [
        "Reloading: probe_api/__init__.py changed",
    ]


def test_a_broken_configuration_is_logged_and_not_served(tmp_path):
    service, pool = reloader(tmp_path)
    config = tmp_path / "s.conf"
    config.write_text(config.read_text().replace("[apis]", "[apis]\nrich_api"))
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    with capturedLogs() as events:
        service.changed([str(config)])
    assert pool.replacing == []
    assert [e["log_format"].format(**e) for e in events] == [
        f"Reloading: {config} changed",
        f"Reloading failed: {refused.value}; the previous code keeps serving",
    ]


def test_what_needs_a_restart_is_said_and_the_rest_applied(tmp_path):
    service, pool = reloader(tmp_path)
    settings = sections(APIS)
    settings["general"].update(listen_ip="127.0.0.2", workers="2", listen_backlog="5")
    settings["auth"] = {
        "enable_auth": "true",
        "auth_module": "probe_auth",
        "auth_class": "HeaderBackend",
    }
    config = write_config(tmp_path / "s.conf", settings)
    with capturedLogs() as events:
        service.changed([str(config)])
    restart = "it applies when shijid is restarted"
    assert [e["log_format"].format(**e) for e in events] == [
        f"Reloading: {config} changed",
        f"Reloading: {config}: [general] listen_ip changed to 127.0.0.2; {restart}",
        f"Reloading: {config}: [general] listen_backlog changed to 5; {restart}",
        f"Reloading: {config}: [general] workers changed to 2; {restart}",
    ]
    assert len(pool.replacing) == 1
    # The new auth backend's module is watched from now on.
    assert service.watched.files == {config, APIS / "probe_auth.py"}
    # A change of code alone does not repeat the warnings.
    pool.replacing[0].callback(None)
    with capturedLogs() as events:
        service.changed([str(APIS / "probe_auth.py")])
    assert [e["log_format"].format(**e) for e in events] == [
        "Reloading: probe_auth.py changed",
    ]
