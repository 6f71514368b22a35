"""
The shape of the codebase: public names, Python 3.9 syntax, lint and types.
"""

import ast
import importlib
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIJI = ROOT / "shiji"

PUBLIC = {
    "shiji.urldispatch": [
        "APIDefinitionError",
        "APIRouter",
        "CallRouter",
        "Deprecation",
        "ListVersionsCall",
        "URLMatchJSONResource",
        "VersionRouter",
        "version_sort_key",
    ],
    "shiji.webapi": [
        "ARG_OPTIONAL",
        "ARG_REQUIRED",
        "APIError",
        "APIVersionGoneError",
        "AccessDeniedError",
        "CallDeclarations",
        "CharsetNotUTF8Error",
        "ContentTypeError",
        "ExpiredSecureCookieError",
        "InvalidAuthenticationError",
        "InvalidSecureCookieError",
        "JSONArgument",
        "JSONDecodeError",
        "JSONEncodeError",
        "MalformedRequestError",
        "MethodNotAllowedError",
        "NamespaceDeclaration",
        "PagingDeclaration",
        "RequestHeadersTooLargeError",
        "RequestNotHashError",
        "RequestReadTimeoutError",
        "RequestTimeoutError",
        "RequestTooLargeError",
        "RequestURITooLongError",
        "UnexpectedServerError",
        "UnknownAPICallError",
        "UnknownAPIError",
        "UnknownAPIVersionError",
        "ValueError",
        "auth_http_basic",
        "declarations",
        "json_arguments",
        "paged_results",
        "url_arguments",
        "write_json",
    ],
    "shiji.testing": ["LATEST", "TestClient", "TestResponse"],
    "shiji.auth": [
        "MIN_SECRET_LENGTH",
        "NAMESPACE_SOURCES",
        "ROLES_NAMESPACE",
        "AuthBackend",
        "CookieSigner",
        "access",
        "get_secure_cookie",
        "login_required",
        "namespace_source",
        "set_secure_cookie",
    ],
    "shiji.metrics": ["Metrics", "NullMetrics"],
    "shiji.config": [
        "REACTORS",
        "AuthConfig",
        "ConfigError",
        "GeneralConfig",
        "LoggingConfig",
        "ShijiConfig",
        "StatsdConfig",
        "load_config",
    ],
    "shiji.statsd": ["StatsdClient"],
    "shiji.daemon": [
        "ConfigOptions",
        "HTTPService",
        "Options",
        "WorkerPool",
        "build_service",
        "load_apis",
        "main",
        "makeService",
    ],
    "shiji.tap": ["Options", "makeService"],
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_public_names_are_pinned(module_name):
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(PUBLIC[module_name])
    for name in module.__all__:
        assert getattr(module, name) is not None


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_public_names_are_documented(module_name):
    module = importlib.import_module(module_name)
    assert module.__doc__
    for name in module.__all__:
        value = getattr(module, name)
        if callable(value) and not isinstance(value, str):
            assert value.__doc__, f"{module_name}.{name} has no docstring"


@pytest.mark.parametrize("path", sorted(SHIJI.rglob("*.py")), ids=lambda p: p.name)
def test_shiji_is_python_3_9_syntax(path):
    ast.parse(path.read_text(), filename=str(path), feature_version=(3, 9))


needs_cpython_tools = pytest.mark.skipif(
    platform.python_implementation() != "CPython", reason="ruff and mypy run on CPython"
)


@needs_cpython_tools
def test_ruff_is_clean():
    subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--quiet", str(ROOT)],
        check=True,
        timeout=120,
    )
    subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--quiet", str(ROOT)],
        check=True,
        timeout=120,
    )


@needs_cpython_tools
def test_mypy_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_tooling_left_in_the_tree():
    assert shutil.which("python3") is not None
    for forbidden in ("TODO", "FIXME", "XXX"):
        for path in SHIJI.rglob("*.py"):
            assert forbidden not in path.read_text(), f"{forbidden} in {path}"
