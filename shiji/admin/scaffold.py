"""
Create API packages and add versions to them from the templates.

A new version touches nothing of the existing ones: it adds a version
package, one import and one ``api_versions`` entry to the API's
``__init__.py``, found by parsing the file, so that the rest of the user's
edits stay as they are.
"""

from __future__ import annotations

import ast
import keyword
import re
from pathlib import Path
from string import Template
from typing import Any, List

import shiji

__all__ = [
    "ScaffoldError",
    "add_version",
    "create_api",
    "templates_dir",
    "version_module",
]

_VERSION = re.compile(r"[0-9]+(\.[0-9]+)*")


class ScaffoldError(Exception):
    """The API or version cannot be created; the message says why."""


def templates_dir() -> Path:
    """Where the templates are: inside an installed package, or the checkout's
    ``templates/``."""
    installed = Path(shiji.__file__).parent / "templates"
    if installed.is_dir():
        return installed
    return Path(shiji.__file__).resolve().parent.parent / "templates"


def version_module(version: str) -> str:
    """The package name of ``version``: ``1.0`` lives in ``v1_0``."""
    return "v" + version.replace(".", "_")


def _check_names(api_name: str, version: str) -> None:
    if not api_name.isidentifier() or keyword.iskeyword(api_name):
        raise ScaffoldError(f"API name {api_name!r} is not a Python identifier")
    if not _VERSION.fullmatch(version):
        raise ScaffoldError(f"version {version!r} is not a dotted number such as 1.0")


def _render(template: str, api_name: str, version: str) -> str:
    text = (templates_dir() / template).read_text()
    return Template(text).substitute(
        api_name=api_name,
        version=version,
        version_module=version_module(version),
        version_pattern=re.escape(version),
    )


def _write_version(package: Path, api_name: str, version: str) -> List[Path]:
    directory = package / version_module(version)
    directory.mkdir()
    written = []
    for name in ("__init__.py", "calls.py", "errors.py"):
        path = directory / name
        path.write_text(_render(f"version/{name}.tmpl", api_name, version))
        written.append(path)
    return written


def create_api(parent: Path, api_name: str, version: str) -> List[Path]:
    """
    Create the package ``parent/api_name`` with its first ``version``.

    :returns: the files written.
    :raises ScaffoldError: a name is invalid or the package exists.
    """
    _check_names(api_name, version)
    package = parent / api_name
    if package.exists():
        raise ScaffoldError(f"{package} exists already")
    package.mkdir(parents=True)
    written = []
    for name in ("__init__.py", "config.py"):
        path = package / name
        path.write_text(_render(f"api/{name}.tmpl", api_name, version))
        written.append(path)
    return written + _write_version(package, api_name, version)


def _api_versions_dict(tree: ast.Module, path: Path) -> ast.Dict:
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(
                isinstance(t, ast.Name) and t.id == "api_versions" for t in node.targets
            )
            and isinstance(node.value, ast.Dict)
        ):
            return node.value
    raise ScaffoldError(f"{path} has no api_versions = {{...}} to add the version to")


def _offset(lines: List[str], line: int, column: int) -> int:
    """The index in the joined text of 1-based ``line``, 0-based ``column``
    (a UTF-8 byte offset, as ``ast`` counts)."""
    before = sum(len(text) for text in lines[: line - 1])
    return before + len(lines[line - 1].encode("utf-8")[:column].decode("utf-8"))


def add_version(package: Path, version: str) -> List[Path]:
    """
    Add ``version`` to the API package at ``package``.

    :returns: the files written or changed.
    :raises ScaffoldError: the version exists, a name is invalid, or the
        package's ``__init__.py`` has no ``api_versions`` dict.
    """
    api_name = package.name
    _check_names(api_name, version)
    init = package / "__init__.py"
    source = init.read_text()
    try:
        tree = ast.parse(source, str(init))
    except SyntaxError as e:
        raise ScaffoldError(
            f"{init} cannot be parsed: {e.msg} (line {e.lineno})"
        ) from None
    versions = _api_versions_dict(tree, init)
    keys = [key.value for key in versions.keys if isinstance(key, ast.Constant)]
    module = version_module(version)
    if version in keys or (package / module).exists():
        raise ScaffoldError(f"version {version} of {api_name} exists already")

    lines = source.splitlines(keepends=True)
    entry = f'"{version}": (r"{re.escape(version)}", {module}),'
    assert versions.end_lineno is not None and versions.end_col_offset is not None
    close = _offset(lines, versions.end_lineno, versions.end_col_offset - 1)
    if versions.values and versions.lineno != versions.end_lineno:
        # A dict over several lines: the entry goes on a line of its own,
        # indented like the first key, after a comma the last entry may lack.
        last = versions.values[-1]
        assert last.end_lineno is not None and last.end_col_offset is not None
        after_last = _offset(lines, last.end_lineno, last.end_col_offset)
        # Between the last value and the brace there can only be a comma,
        # space and comments (which may hold commas of their own).
        between = re.sub(r"#[^\n]*", "", source[after_last:close])
        comma = "" if "," in between else ","
        indent = " " * versions.keys[0].col_offset  # type: ignore[union-attr]
        line_start = source.rfind("\n", 0, close) + 1
        source = (
            source[:after_last]
            + comma
            + source[after_last:line_start]
            + f"{indent}{entry}\n"
            + source[line_start:]
        )
    else:
        separator = ", " if versions.values else ""
        source = source[:close] + separator + entry.rstrip(",") + source[close:]

    init.write_text(
        _add_import(
            source, tree, module, versions.end_lineno, original_lines=len(lines)
        )
    )
    return [init, *_write_version(package, api_name, version)]


def _natural(name: str) -> List[Any]:
    return [
        int(part) if part.isdigit() else part for part in re.split(r"([0-9]+)", name)
    ]


def _add_import(
    source: str, tree: ast.Module, module: str, added_at: int, original_lines: int
) -> str:
    """
    ``source`` importing ``module`` too: added, in natural order, to a
    one-line ``from . import v1_0`` statement, or else as a line of its own
    after the last import.
    """
    lines = source.splitlines(keepends=True)
    shift = len(lines) - original_lines  # lines the new entry added
    relative = [
        node
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module is None
    ]
    for node in reversed(relative):
        if node.lineno == node.end_lineno and all(
            alias.asname is None for alias in node.names
        ):
            index = node.lineno - 1 + (shift if node.lineno > added_at else 0)
            names = sorted(
                [alias.name for alias in node.names] + [module], key=_natural
            )
            ending = lines[index][len(lines[index].rstrip("\r\n")) :]
            lines[index] = f"from . import {', '.join(names)}{ending}"
            return "".join(lines)
    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    at = imports[-1].end_lineno or 0 if imports else 0
    if imports and imports[-1].lineno > added_at:
        at += shift
    lines.insert(at, f"from . import {module}\n")
    return "".join(lines)
