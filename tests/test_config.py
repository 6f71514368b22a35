"""
The configuration file: every option parsed, every mistake named in one line.
"""

import ipaddress
import json
import socket
from pathlib import Path

import pytest
from daemons import TESTS, failing_run, run_shijid

from shiji.config import ConfigError, GeneralConfig, load_config

ROOT = Path(__file__).resolve().parent.parent


def config_file(tmp_path, text):
    path = tmp_path / "shijid.conf"
    path.write_text(text)
    return path


def test_defaults_with_only_apis(tmp_path):
    config = load_config(config_file(tmp_path, "[apis]\nmylogin_api: myloginapi\n"))
    assert config.general == GeneralConfig()
    assert config.general.listen_ip == "127.0.0.1"
    assert config.general.listen_port == 9990
    assert config.general.max_body_bytes == 1048576
    assert config.general.listen_backlog == 1024
    assert config.general.workers == 1
    assert config.logging.log_file is None
    assert config.logging.redacted_arguments == (
        "password",
        "passwd",
        "pwd",
        "token",
        "secret",
        "key",
        "auth",
    )
    assert config.general.version_in_query is False
    assert config.general.cross_origin_domains == ()
    assert config.statsd.host is None
    assert (config.statsd.scheme, config.statsd.names) == ("shiji", "v2")
    assert config.settings().metric_names == "v2"
    assert config.auth.secure_cookies_secrets is None
    assert config.auth.cookie_secure is False
    assert config.apis == (("mylogin_api", "myloginapi"),)
    assert config.api_options == {}


def test_every_option_of_the_shipped_example(tmp_path):
    config = load_config(ROOT / "conf" / "shijid.conf.example")
    general = config.general
    assert general.base_path == (ROOT / "examples").resolve()
    assert general.trusted_proxies == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    assert config.logging.log_file == "-"
    assert (config.statsd.host, config.statsd.scheme, config.statsd.names) == (
        None,
        "shiji",
        "v2",
    )
    assert config.apis == (("mylogin_api", "myloginapi"),)


def test_values_are_parsed_into_types(tmp_path):
    config = load_config(
        config_file(
            tmp_path,
            """
[general]
listen_ip = ::1
listen_port = 0
reactor = epoll
server_ident = "Quoted Server"
base_path = apis
cross_origin_domains = https://a.example, https://b.example
inhibit_http_caching = yes
honor_x_realip = on
version_in_query = true
field_errors = true
validate_responses = yes
request_timeout = 2.5
trusted_proxies = 10.0.0.0/8 192.168.1.7
workers = 4
[logging]
log_file:
syslog_prefix: "Shiji"
redacted_arguments: password, api_key
[auth]
secure_cookies_secrets: ["first secret, thirty-two characters!", "second secret, also long enough..."]
cookie_secure: true
[statsd]
host: localhost
port: 8126
scheme: myco.apis
names: v1
[apis]
pkg.sub_api: sub
other_api: "other|alias"
[config_pkg.sub_api]
db_server = value1
db_port = "value2"
""",
        )
    )
    general = config.general
    assert general.listen_ip == "::1"
    assert general.listen_port == 0
    assert general.reactor == "epoll"
    assert general.server_ident == "Quoted Server"
    assert general.base_path == (tmp_path / "apis").resolve()
    assert general.cross_origin_domains == ("https://a.example", "https://b.example")
    assert general.inhibit_http_caching is True
    assert general.honor_x_realip is True
    assert general.version_in_query is True
    assert (general.field_errors, general.validate_responses) == (True, True)
    settings = config.settings()
    assert (settings.field_errors, settings.validate_responses) == (True, True)
    assert general.request_timeout == 2.5
    assert general.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.7/32"),
    )
    assert general.workers == 4
    assert config.logging.log_file is None
    assert config.logging.syslog_prefix == "Shiji"
    assert config.logging.redacted_arguments == ("password", "api_key")
    assert config.auth.secure_cookies_secrets == (
        "first secret, thirty-two characters!",
        "second secret, also long enough...",
    )
    assert config.auth.cookie_secure is True
    assert (
        config.statsd.host,
        config.statsd.port,
        config.statsd.scheme,
        config.statsd.names,
    ) == ("localhost", 8126, "myco.apis", "v1")
    assert config.settings().metric_names == "v1"
    assert config.apis == (("pkg.sub_api", "sub"), ("other_api", "other|alias"))
    assert config.api_options == {
        "pkg.sub_api": {"db_server": "value1", "db_port": "value2"}
    }


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "[general]\nlisten_port: 1\n",
            "[apis]: list at least one API as module_name: url_regex",
        ),
        ("[apis]\n", "[apis]: list at least one API as module_name: url_regex"),
        (
            "[generl]\n[apis]\na: b\n",
            "[generl]: unknown section (did you mean 'general'?)",
        ),
        ("[nonsense]\n[apis]\na: b\n", "[nonsense]: unknown section"),
        (
            "[general]\nlisten_prot: 1\n[apis]\na: b\n",
            "[general] listen_prot: unknown option (did you mean 'listen_port'?)",
        ),
        (
            "[general]\nlisten_port: abc\n[apis]\na: b\n",
            "[general] listen_port: must be a whole number from 0 to 65535, not 'abc'",
        ),
        (
            "[general]\nlisten_port: 70000\n[apis]\na: b\n",
            "[general] listen_port: must be a whole number from 0 to 65535, not '70000'",
        ),
        (
            "[general]\nlisten_ip: localhost\n[apis]\na: b\n",
            "[general] listen_ip: must be an IP address such as 127.0.0.1, not 'localhost'",
        ),
        (
            "[general]\nreactor: iocp\n[apis]\na: b\n",
            "[general] reactor: must be one of default, select, poll, epoll, kqueue, not 'iocp'",
        ),
        (
            "[general]\ninhibit_http_caching: maybe\n[apis]\na: b\n",
            "[general] inhibit_http_caching: must be true or false, not 'maybe'",
        ),
        (
            "[general]\nrequest_timeout: 0\n[apis]\na: b\n",
            "[general] request_timeout: must be a number of seconds greater than 0, not '0'",
        ),
        (
            "[general]\nrequest_timeout: nan\n[apis]\na: b\n",
            "[general] request_timeout: must be a number of seconds greater than 0, not 'nan'",
        ),
        (
            "[general]\nworkers: 0\n[apis]\na: b\n",
            "[general] workers: must be a whole number from 1 to 256, not '0'",
        ),
        (
            "[general]\nversion_header: X Version\n[apis]\na: b\n",
            "[general] version_header: must be an HTTP header name such as X-API-Version, not 'X Version'",
        ),
        (
            "[general]\ncross_origin_domains: https://a.example, null\n[apis]\na: b\n",
            "[general] cross_origin_domains: must be * or origins such as "
            "https://app.example.com ('null' is not one), not 'https://a.example, null'",
        ),
        (
            "[general]\ncross_origin_domains: a.example\n[apis]\na: b\n",
            "[general] cross_origin_domains: must be * or origins such as "
            "https://app.example.com ('a.example' is not one), not 'a.example'",
        ),
        (
            "[general]\ncross_origin_domains: https://a.example/app\n[apis]\na: b\n",
            "[general] cross_origin_domains: must be * or origins such as "
            "https://app.example.com ('https://a.example/app' is not one), "
            "not 'https://a.example/app'",
        ),
        (
            "[general]\nversion_in_query: maybe\n[apis]\na: b\n",
            "[general] version_in_query: must be true or false, not 'maybe'",
        ),
        (
            "[general]\nvalidate_responses: 2\n[apis]\na: b\n",
            "[general] validate_responses: must be true or false, not '2'",
        ),
        (
            "[general]\ntrusted_proxies: 10.0.0.0/33\n[apis]\na: b\n",
            "[general] trusted_proxies: must be IP addresses or networks such as 10.0.0.0/8, not '10.0.0.0/33'",
        ),
        (
            "[auth]\nsecure_cookies_secrets: secret\n[apis]\na: b\n",
            "[auth] secure_cookies_secrets: must be a JSON list of strings",
        ),
        (
            "[auth]\nsecure_cookies_secrets: [1]\n[apis]\na: b\n",
            "[auth] secure_cookies_secrets: must be a JSON list of strings",
        ),
        (
            "[auth]\nsecure_cookies_secrets: []\n[apis]\na: b\n",
            "[auth] secure_cookies_secrets: list at least one secret",
        ),
        (
            '[auth]\nsecure_cookies_secrets: [""]\n[apis]\na: b\n',
            "[auth] secure_cookies_secrets: secret 1 is shorter than 32 characters",
        ),
        (
            '[auth]\nsecure_cookies_secrets: ["a secret that is long enough, surely", "hunter2"]\n'
            "[apis]\na: b\n",
            "[auth] secure_cookies_secrets: secret 2 is shorter than 32 characters",
        ),
        (
            "[statsd]\nport: x\n[apis]\na: b\n",
            "[statsd] port: must be a whole number from 1 to 65535, not 'x'",
        ),
        (
            "[statsd]\nnames: current\n[apis]\na: b\n",
            "[statsd] names: must be one of v2, v1, not 'current'",
        ),
        (
            "[statsd]\nnames: V2\n[apis]\na: b\n",
            "[statsd] names: must be one of v2, v1, not 'V2'",
        ),
        (
            "[statsd]\nname: v1\n[apis]\na: b\n",
            "[statsd] name: unknown option (did you mean 'names'?)",
        ),
        (
            "[statsd]\nscheme: my co|apis\n[apis]\na: b\n",
            "[statsd] scheme: must be names of letters, digits, _ and - separated "
            "by dots, such as myco.apis, not 'my co|apis'",
        ),
        (
            "[statsd]\nscheme: myco..apis\n[apis]\na: b\n",
            "[statsd] scheme: must be names of letters, digits, _ and - separated "
            "by dots, such as myco.apis, not 'myco..apis'",
        ),
        ("[apis]\nmy-api: x\n", "[apis] my-api: is not a Python module name"),
        (
            "[apis]\napi: (unclosed\n",
            "[apis] api: '(unclosed' is not a valid regular expression",
        ),
        (
            "[apis]\napi: a\n[config_apj]\nx: 1\n",
            "[config_apj]: configures an API not listed in [apis] (did you mean 'api'?)",
        ),
        ("[apis]\napi: a\napi: b\n", "[apis] api: line 3: repeated option"),
        ("[apis]\napi: a\n[apis]\n", "[apis]: line 3: repeated section"),
        ("listen_port: 1\n", "line 1: options must follow a [section] header"),
        ("[apis]\nnot an option line\n", "line 2: not an option or a section"),
    ],
)
def test_mistakes_are_named_with_file_section_and_option(tmp_path, text, message):
    path = config_file(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: {message}")
    assert "\n" not in str(info.value)
    if "secure_cookies_secrets" in text:
        assert ", not " not in str(info.value)  # secrets are never echoed
        assert "hunter2" not in str(info.value)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match=r"nope.conf: no such file$"):
        load_config(tmp_path / "nope.conf")
    (tmp_path / "bad.conf").write_bytes(b"[apis]\na: \xff\n")
    with pytest.raises(ConfigError, match=r"bad.conf: cannot be read: 'utf-8' codec"):
        load_config(tmp_path / "bad.conf")


BROKEN_SYNTAX = TESTS / "daemon_apis" / "broken_syntax_api" / "__init__.py"


def syntax_error_message(path):
    """What this interpreter says of the syntax error in ``path``."""
    try:
        compile(path.read_text(), str(path), "exec")
    except SyntaxError as e:
        return e.msg
    raise AssertionError(f"{path} compiles")


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"generl": {"x": "1"}}, "[generl]: unknown section (did you mean 'general'?)"),
        (
            {"general": {"listen_prot": "1"}},
            "[general] listen_prot: unknown option (did you mean 'listen_port'?)",
        ),
        (
            {"general": {"workers": "many"}},
            "[general] workers: must be a whole number from 1 to 256, not 'many'",
        ),
        (
            {"general": {"reactor": "kqueue"}},
            "[general] reactor: the kqueue reactor is not available here",
        ),
        (
            {"general": {"base_path": "/no/such/dir"}},
            "[general] base_path: /no/such/dir is not a directory",
        ),
        (
            {"apis": {"no_such_api": "x"}},
            "[apis] no_such_api: cannot import no_such_api: ModuleNotFoundError: No module named 'no_such_api'",
        ),
        (
            {"apis": {"broken_import_api": "x"}},
            "[apis] broken_import_api: cannot import broken_import_api: NameError: name 'this' "
            f"is not defined ({TESTS / 'daemon_apis' / 'broken_import_api' / '__init__.py'}, line 4)",
        ),
        (
            {"apis": {"broken_syntax_api": "x"}},
            "[apis] broken_syntax_api: cannot import broken_syntax_api: SyntaxError: "
            f"{syntax_error_message(BROKEN_SYNTAX)} ({BROKEN_SYNTAX}, line 4)",
        ),
        (
            {"general": {"workers": "2"}, "apis": {"no_such_api": "x"}},
            "[apis] no_such_api: cannot import no_such_api: ModuleNotFoundError: No module named 'no_such_api'",
        ),
        (
            {"apis": {"no_routes_api": "x"}},
            "[apis]: API package 'no_routes_api' has no api_versions",
        ),
        (
            {"config_probe_api": {"refuse": "yes"}},
            "[config_probe_api]: probe_api.config.validate_config refused it: refused: yes",
        ),
    ],
)
def test_bad_configurations_exit_1_with_one_line(tmp_path, overrides, expected):
    path, line = failing_run(tmp_path, overrides)
    assert line.startswith(f"shijid: error: {path}: {expected}"), line


@pytest.mark.slow
def test_a_port_in_use_exits_1_with_one_line(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        for workers in ("1", "2"):
            path, line = failing_run(
                tmp_path, {"general": {"listen_port": str(port), "workers": workers}}
            )
            assert line == (
                f"shijid: error: {path}: [general] listen_port: cannot listen on "
                f"127.0.0.1:{port}: [Errno 98] Address already in use"
            )
    finally:
        taken.close()


@pytest.mark.slow
def test_a_missing_file_exits_1_with_one_line(tmp_path):
    result = run_shijid("-c", str(tmp_path / "absent.conf"))
    assert result.returncode == 1
    assert result.stderr == f"shijid: error: {tmp_path / 'absent.conf'}: no such file\n"


@pytest.mark.slow
def test_check_reports_what_a_start_would(tmp_path):
    _, line = failing_run(
        tmp_path, {"config_probe_api": {"refuse": "yes"}}, args=["--check"]
    )
    assert "validate_config refused it" in line


@pytest.mark.parametrize(
    "auth, expected",
    [
        ({"enable_auth": "true"}, "[auth] auth_module: is required with enable_auth"),
        (
            {"enable_auth": "true", "auth_module": "probe_auth"},
            "[auth] auth_class: is required with enable_auth",
        ),
        (
            {"enable_auth": "true", "auth_module": "no_such_auth", "auth_class": "X"},
            "[auth] auth_module: cannot import no_such_auth: ModuleNotFoundError: No module named 'no_such_auth'",
        ),
        (
            {
                "enable_auth": "true",
                "auth_module": "probe_auth",
                "auth_class": "Missing",
            },
            "[auth] auth_class: probe_auth has no class Missing",
        ),
        (
            {
                "enable_auth": "true",
                "auth_module": "probe_auth",
                "auth_class": "Exploding",
            },
            "[auth] auth_args: probe_auth.Exploding(**auth_args) failed: ValueError: no database at /nonexistent",
        ),
        (
            {
                "enable_auth": "true",
                "auth_module": "probe_auth",
                "auth_class": "HeaderBackend",
                "auth_args": '{"header": "X"}',
            },
            "[auth] auth_args: probe_auth.HeaderBackend(**auth_args) failed: TypeError:",
        ),
        (
            {
                "enable_auth": "true",
                "auth_module": "probe_auth",
                "auth_class": "NoAuthenticate",
            },
            "[auth] auth_class: probe_auth.NoAuthenticate has no authenticate(request) method",
        ),
        (
            {"auth_args": "[1]"},
            '[auth] auth_args: must be a JSON object such as {"path": "users.sqlite"}',
        ),
    ],
)
@pytest.mark.slow
def test_auth_backend_configuration_errors(tmp_path, auth, expected):
    path, line = failing_run(tmp_path, {"auth": auth})
    assert line.startswith(f"shijid: error: {path}: {expected}"), line


@pytest.mark.slow
def test_a_configured_backend_guards_calls(shijid):
    daemon = shijid(
        {
            "auth": {
                "enable_auth": "true",
                "auth_module": "probe_auth",
                "auth_class": "HeaderBackend",
                "auth_args": '{"header": "X-Token", "token": "t0k3n", "grants": {"roles": ["ops"]}}',
            }
        }
    )
    assert daemon.request("GET", "/probe/ops")[0] == 401
    status, _, body = daemon.request("GET", "/probe/ops", headers={"X-Token": "t0k3n"})
    assert (status, json.loads(body)) == (200, {"permissions": {"roles": ["ops"]}})


def test_an_empty_metric_scheme_means_no_prefix(tmp_path):
    config = load_config(config_file(tmp_path, "[statsd]\nscheme:\n[apis]\na: b\n"))
    assert config.statsd.scheme == ""


def test_the_store_is_an_sqlite_file_beside_the_configuration_by_default(tmp_path):
    config = load_config(config_file(tmp_path, "[apis]\nmylogin_api = x\n"))
    assert (
        config.storage.url
        == f"sqlite:{(tmp_path / 'shijid.conf.storage.sqlite').resolve()}"
    )
    assert config.storage.backend == "sqlite"
    assert (config.sessions.cookie_name, config.sessions.max_age) == (
        "session",
        1209600.0,
    )
    settings = config.settings()
    assert (settings.session_cookie, settings.session_max_age) == ("session", 1209600.0)


@pytest.mark.parametrize(
    "given, url, backend",
    [
        ("sqlite:shared/store.sqlite", "sqlite:{tmp}/shared/store.sqlite", "sqlite"),
        ("sqlite:/var/lib/shiji.sqlite", "sqlite:/var/lib/shiji.sqlite", "sqlite"),
        ("redis://127.0.0.1:6379/2", "redis://127.0.0.1:6379/2", "redis"),
        (
            "rediss://:pw@cache.example:6380/0",
            "rediss://:pw@cache.example:6380/0",
            "redis",
        ),
        ("memory:", "memory:", "memory"),
        ("", "sqlite:{tmp}/shijid.conf.storage.sqlite", "sqlite"),
    ],
)
def test_store_urls(tmp_path, given, url, backend):
    config = load_config(
        config_file(tmp_path, f"[apis]\nmylogin_api = x\n[storage]\nurl = {given}\n")
    )
    assert config.storage.url == url.format(tmp=tmp_path.resolve())
    assert config.storage.backend == backend


@pytest.mark.parametrize(
    "given",
    [
        "redis:",
        "redis://",
        "redis:/:hunter2@cache",
        "http://cache:6379",
        "sqlite:",
        "memory:elsewhere",
        "cache",
    ],
)
def test_an_unusable_store_url_is_one_line_that_hides_the_value(tmp_path, given):
    path = config_file(tmp_path, f"[apis]\nmylogin_api = x\n[storage]\nurl = {given}\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: [storage] url: must be ")
    # A Redis URL may carry a password: the value is never echoed.
    assert ", not " not in message and "hunter2" not in message
    assert "\n" not in message


def test_sessions_options(tmp_path):
    config = load_config(
        config_file(
            tmp_path,
            "[apis]\nmylogin_api = x\n[sessions]\ncookie_name = sid\nmax_age = 3600\n",
        )
    )
    assert (config.sessions.cookie_name, config.sessions.max_age) == ("sid", 3600.0)
    for option, value, expected in (
        ("cookie_name", "a b", "a cookie name"),
        ("cookie_name", "a;b", "a cookie name"),
        ("max_age", "soon", "a number of seconds"),
        ("expiry", "1", None),
    ):
        path = config_file(
            tmp_path, f"[apis]\nmylogin_api = x\n[sessions]\n{option} = {value}\n"
        )
        with pytest.raises(ConfigError) as raised:
            load_config(path)
        message = str(raised.value)
        assert message.startswith(f"{path}: [sessions] {option}: ")
        if expected:
            assert expected in message


def test_a_queue_file_is_refused_when_the_queue_is_in_redis(tmp_path):
    path = config_file(
        tmp_path,
        "[apis]\nmylogin_api = x\n[tasks]\ndatabase = q.sqlite\n"
        "[storage]\nurl = redis://127.0.0.1:6379/0\n",
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value) == (
        f"{path}: [tasks] database: is not used when [storage] url names a "
        "Redis server (the queue is kept there); remove it"
    )


def test_a_store_in_memory_is_refused_with_workers(tmp_path):
    path = config_file(
        tmp_path,
        "[general]\nworkers = 2\n[apis]\nmylogin_api = x\n[storage]\nurl = memory:\n",
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value) == (
        f"{path}: [storage] url: memory: is one process's own, and each worker "
        "would keep its own sessions and limits: use sqlite:<path> or redis://"
    )


def test_a_session_lives_ten_years_at_most(tmp_path):
    path = config_file(
        tmp_path, "[apis]\nmylogin_api = x\n[sessions]\nmax_age = 1e12\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value) == (
        f"{path}: [sessions] max_age: must be a number of seconds greater than 0,"
        " up to ten years, not '1e12'"
    )
    path = config_file(
        tmp_path, "[apis]\nmylogin_api = x\n[sessions]\nmax_age = 315360000\n"
    )
    assert load_config(path).sessions.max_age == 315360000.0


def test_session_calls_without_cookie_secrets_exit_1_with_one_line(tmp_path):
    path, line = failing_run(
        tmp_path,
        text=(
            f"[general]\nlisten_ip = 127.0.0.1\nlisten_port = 0\n"
            f"base_path = {ROOT / 'examples'}\n"
            "[apis]\nmylogin_api = myloginapi\n"
            f"[config_mylogin_api]\ndb_path = {tmp_path / 'users.sqlite'}\n"
        ),
    )
    assert line == (
        f"shijid: error: {path}: [auth] secure_cookies_secrets: is required: "
        "sessions.session_filter keeps the session's id in a signed cookie"
    )


def test_a_store_file_that_cannot_be_made_exits_1_with_one_line(tmp_path):
    missing = tmp_path / "missing"
    path, line = failing_run(
        tmp_path, {"storage": {"url": "sqlite:missing/store.sqlite"}}
    )
    assert line == (
        f"shijid: error: {path}: [storage] url: cannot open "
        f"{missing.resolve() / 'store.sqlite'}: {missing.resolve()} is not a directory"
    )
