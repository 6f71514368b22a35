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
        "VersionHeader",
        "VersionRouter",
        "version_sort_key",
    ],
    "shiji.webapi": [
        "APIError",
        "APIVersionGoneError",
        "ARG_OPTIONAL",
        "ARG_REQUIRED",
        "AccessDeniedError",
        "Arg",
        "CallDeclarations",
        "CharsetNotUTF8Error",
        "Constraints",
        "ContentTypeError",
        "Described",
        "ExpiredSecureCookieError",
        "FieldError",
        "InvalidAuthenticationError",
        "InvalidField",
        "InvalidSecureCookieError",
        "JSONArgument",
        "JSONDecodeError",
        "JSONEncodeError",
        "MISSING",
        "MalformedRequestError",
        "MethodNotAllowedError",
        "NamespaceDeclaration",
        "Object",
        "PagingDeclaration",
        "Parameter",
        "RequestBody",
        "RequestHeadersTooLargeError",
        "RequestNotHashError",
        "RequestReadTimeoutError",
        "RequestTimeoutError",
        "RequestTooLargeError",
        "RequestURITooLongError",
        "Response",
        "ServiceUnavailableError",
        "StorageUnavailableError",
        "UnexpectedServerError",
        "UnknownAPICallError",
        "UnknownAPIError",
        "UnknownAPIVersionError",
        "ValueError",
        "auth_http_basic",
        "declarations",
        "declare",
        "header_arguments",
        "json_arguments",
        "paged_results",
        "path_arguments",
        "raises",
        "returns",
        "url_arguments",
        "write_json",
    ],
    "shiji.testing": [
        "LATEST",
        "ResponseMismatchError",
        "TestClient",
        "TestConnection",
        "TestResponse",
    ],
    "shiji.auth": [
        "MIN_SECRET_LENGTH",
        "NAMESPACE_SOURCES",
        "ROLES_NAMESPACE",
        "AuthBackend",
        "CookieSigner",
        "access",
        "base_backend",
        "errors",
        "get_secure_cookie",
        "install_auth",
        "install_secure_cookies",
        "login_required",
        "namespace_source",
        "set_secure_cookie",
    ],
    "shiji.auth.errors": [
        "AuthBadBackend",
        "AuthBaseException",
        "AuthNoBackend",
        "BackendWarmingUp",
        "InvalidAuthentication",
        "NotAuthorized",
    ],
    "shiji.auth.base_backend": ["AuthBackend"],
    "shiji": ["__version__", "change_server_ident", "server_ident"],
    "shiji.metrics": ["Metrics", "NullMetrics"],
    "shiji.config": [
        "REACTORS",
        "AuthConfig",
        "ConfigError",
        "GeneralConfig",
        "LoggingConfig",
        "SessionsConfig",
        "ShijiConfig",
        "StatsdConfig",
        "StorageConfig",
        "TasksConfig",
        "load_config",
    ],
    "shiji.storage": ["Store", "StorageUnavailableError", "open_store"],
    "shiji.sessions": ["Session", "expiry_of", "session_cookie_name", "session_filter"],
    "shiji.statsd": ["StatsdClient"],
    "shiji.tasks": [
        "CronJob",
        "SQLiteTaskStore",
        "StoredTask",
        "Task",
        "TaskContext",
        "TaskLostError",
        "TaskService",
        "TaskStore",
        "TaskTimeoutError",
        "cron",
        "current",
        "every",
        "task",
    ],
    "shiji.client": [
        "IDEMPOTENT_METHODS",
        "APIError",
        "BadAnswerError",
        "Client",
        "ClientError",
        "ClientTimeoutError",
        "ConnectionFailedError",
        "Headers",
        "OAuth2ClientCredentials",
        "Response",
        "Retry",
        "SyncClient",
        "TokenError",
    ],
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
    "shiji.docs": [
        "DOCS_PREFIX",
        "APIDoc",
        "DocsResource",
        "describe_api",
        "html_document",
        "json_document",
        "markdown_document",
        "openapi_document",
        "openapi_index",
    ],
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


def _modules():
    for path in sorted(SHIJI.rglob("*.py")):
        relative = path.relative_to(ROOT).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


def _runtime_imports(module, path):
    """The shiji modules ``module`` imports when it is imported (not those
    imported for type checkers only, nor inside functions)."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for child in (
            ast.walk(node)
            if not isinstance(node, (ast.FunctionDef, ast.ClassDef))
            else []
        ):
            if isinstance(child, ast.ImportFrom):
                base = package
                for _ in range(child.level - 1):
                    base = base.rpartition(".")[0]
                name = (
                    (base + "." + child.module)
                    if child.level and child.module
                    else (base if child.level else child.module)
                )
                if not name or not name.startswith("shiji"):
                    continue
                for alias in child.names:
                    candidate = f"{name}.{alias.name}"
                    found.add(
                        candidate
                        if (SHIJI.parent / candidate.replace(".", "/"))
                        .with_suffix(".py")
                        .exists()
                        else name
                    )
            elif isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name.startswith("shiji"))
    return found


def test_no_import_cycles():
    graph = {module: _runtime_imports(module, path) for module, path in _modules()}

    # Importing a package's module imports the package first, unless the
    # package is what imports it (its __init__ importing it, directly or
    # through its other modules): then the package is already being imported.
    def reachable(start):
        seen, todo = set(), [start]
        while todo:
            for imported in graph.get(todo.pop(), ()):
                if imported not in seen:
                    seen.add(imported)
                    todo.append(imported)
        return seen

    parents = {}
    for module in list(graph):
        parent = module.rpartition(".")[0]
        if parent in graph and module not in reachable(parent):
            parents[module] = parent
    for module, parent in parents.items():
        graph[module].add(parent)

    visiting, done = [], set()

    def visit(module):
        if module in done:
            return
        if module in visiting:
            cycle = [*visiting[visiting.index(module) :], module]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        visiting.append(module)
        for imported in sorted(graph.get(module, ())):
            if imported != module:
                visit(imported)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_no_private_attribute_of_another_object_is_read():
    # A name with a leading underscore belongs to its own class: Shiji reads
    # none of Twisted's, nor its own modules' of each other.
    allowed = {
        "_shiji_declarations",  # set on handlers by Shiji's decorators
        "_exit",  # os._exit: public, how the watchdog's thread ends the process
    }
    found = []
    for _, path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and node.attr not in allowed
                and not (
                    isinstance(node.value, ast.Name)
                    and node.value.id in ("self", "cls")
                )
            ):
                found.append(
                    f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}"
                )
    assert found == []


def test_no_code_depends_on_a_dependency_version():
    for _, path in _modules():
        text = path.read_text()
        assert "twisted.copyright" not in text, path
        assert ".__version__" not in text, path


SITE_MODULES = """
import sys
from shiji.config import load_config
from shiji.daemon import make_site

config = load_config(sys.argv[1])
make_site(config)
loaded = sorted(
    name for name in sys.modules
    if name.startswith(("shiji.docs", "shiji.admin", "markdown", "docutils"))
)
print(" ".join(loaded))
"""


@pytest.mark.parametrize(
    "serve_docs, expected",
    [
        ("false", ""),
        (
            "true",
            "markdown shiji.docs shiji.docs.docstrings shiji.docs.explorer "
            "shiji.docs.html shiji.docs.model shiji.docs.openapi shiji.docs.openapi_errors "
            "shiji.docs.prefix shiji.docs.render shiji.docs.schema_words "
            "shiji.docs.serve shiji.docs.style shiji.docs.usage",
        ),
    ],
)
def test_the_server_loads_documentation_code_only_to_serve_it(
    tmp_path, serve_docs, expected
):
    shipped = (ROOT / "conf" / "shijid.conf.example").read_text()
    config = tmp_path / "shijid.conf"
    config.write_text(
        shipped.replace("serve_docs: true", f"serve_docs: {serve_docs}")
        .replace("base_path: ../examples", f"base_path: {ROOT / 'examples'}")
        .replace("db_path: mylogin_api.sqlite", f"db_path: {tmp_path / 'db.sqlite'}")
    )
    found = subprocess.run(
        [sys.executable, "-c", SITE_MODULES, str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = " ".join(
        name
        for name in found.stdout.split()
        if "." not in name or name.startswith("shiji")
    )
    assert loaded == expected


def test_the_server_imports_the_file_watcher_only_for_reload():
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, shiji.daemon; print(sys.modules.get('watchfiles'))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert found.stdout == "None\n"
