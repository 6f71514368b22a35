"""
What an API package declares, read once for every documentation format.

:func:`describe_api` walks an API package (its versions, their calls, the
decorators on each handler and the errors the version can raise) into
frozen dataclasses that the JSON, Markdown, HTML and OpenAPI renderers share.
"""

from __future__ import annotations

import inspect
import re
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type

from .. import _errors
from .._lifecycle import Deprecation
from ..urldispatch import CallRouter, URLMatchJSONResource, version_sort_key
from ..webapi import APIError, CallDeclarations, declarations

__all__ = [
    "APIDoc",
    "CallDoc",
    "ErrorDoc",
    "MethodDoc",
    "ParameterDoc",
    "VersionDoc",
    "builtin_errors",
    "describe_api",
    "parameters",
    "readable_route",
]

#: The order methods are listed in; others follow alphabetically.
METHOD_ORDER = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class MethodDoc:
    """One ``render_<METHOD>`` of a call."""

    method: str
    docstring: str
    declarations: CallDeclarations


@dataclass(frozen=True)
class ParameterDoc:
    """One argument of a method, wherever it is sent."""

    name: str
    #: ``"path"``, ``"query"``, ``"body"`` or ``"header"``.
    location: str
    #: Type names: ``("int",)``, ``("int", "str")``.
    types: Tuple[str, ...]
    required: bool
    #: Bounds and defaults, in words.
    detail: str = ""


def parameters(routes: Sequence[str], method: MethodDoc) -> Tuple[ParameterDoc, ...]:
    """What a client sends to ``method``, from the named groups of the call's
    ``routes`` (required if every route has it) and the handler's
    decorators."""
    groups = [list(re.compile(route).groupindex) for route in routes]
    found = []
    for name in dict.fromkeys(name for names in groups for name in names):
        everywhere = all(name in names for names in groups)
        detail = "" if everywhere else "in some of the call's routes"
        found.append(ParameterDoc(name, "path", ("str",), everywhere, detail))
    declared = method.declarations
    if declared.http_basic_realm is not None:
        found.append(
            ParameterDoc(
                "Authorization",
                "header",
                ("str",),
                True,
                f"HTTP Basic credentials (realm {declared.http_basic_realm!r})",
            )
        )
    found += [
        ParameterDoc(name, "query", ("str",), True) for name in declared.url_arguments
    ]
    paging = declared.paged_results
    if paging is not None:
        found.append(
            ParameterDoc(
                "page", "query", ("int",), False, f">= 0, default {paging.default_page}"
            )
        )
        found.append(
            ParameterDoc(
                "page_len",
                "query",
                ("int",),
                False,
                f"0 to {paging.max_page_len}, default {paging.default_page_len}",
            )
        )
    found += [
        ParameterDoc(
            argument.name,
            "body",
            tuple(t.__name__ for t in argument.types),
            not argument.optional,
        )
        for argument in declared.json_arguments
    ]
    return tuple(found)


@dataclass(frozen=True)
class CallDoc:
    """One call class of a version."""

    name: str
    description: str
    #: The route regular expressions, as declared.
    routes: Tuple[str, ...]
    methods: Tuple[MethodDoc, ...]

    @property
    def readable_routes(self) -> Tuple[str, ...]:
        """The routes with named groups shown as ``<name>``."""
        return tuple(readable_route(route) for route in self.routes)


@dataclass(frozen=True)
class ErrorDoc:
    """One error class a version can answer with."""

    exception_class: str
    error_code: int
    exception_text: str
    http_status: int
    builtin: bool


@dataclass(frozen=True)
class VersionDoc:
    """One version of an API."""

    version: str
    pattern: str
    calls: Tuple[CallDoc, ...]
    errors: Tuple[ErrorDoc, ...]
    deprecation: Optional[Deprecation] = None


@dataclass(frozen=True)
class APIDoc:
    """A whole API package."""

    api_name: str
    description: str
    #: ``"markdown"`` or ``"restructuredtext"``: how docstrings are written,
    #: from the package's ``docstring_format``, or ``"auto"`` to detect per
    #: docstring.
    docstring_format: str
    versions: Tuple[VersionDoc, ...]

    def version(self, key: str) -> VersionDoc:
        """The version ``key``; ``KeyError`` if there is none."""
        for version in self.versions:
            if version.version == key:
                return version
        raise KeyError(key)


def group_end(pattern: str, start: int) -> int:
    """The index just past the group that opens at ``pattern[start]``."""
    depth = 0
    index = start
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 2
            continue
        if char == "[":
            # A character class may hold parentheses.
            index += 1
            if index < len(pattern) and pattern[index] == "]":
                index += 1
            while index < len(pattern) and pattern[index] != "]":
                index += 2 if pattern[index] == "\\" else 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return index


_ESCAPED_LITERAL = re.compile(r"\\([./\-_~])")


def readable_route(route: str) -> str:
    """
    A route regular expression as a reader would write the path:
    ``ping/(?P<timestamp>[0-9]+)$`` becomes ``ping/<timestamp>``.
    """
    text = route
    if text.startswith("^"):
        text = text[1:]
    if text.endswith("$") and not text.endswith("\\$"):
        text = text[:-1]
    out = []
    index = 0
    while index < len(text):
        if text.startswith("(?P<", index):
            name_end = text.index(">", index)
            out.append(f"<{text[index + 4 : name_end]}>")
            index = group_end(text, index)
        else:
            out.append(text[index])
            index += 1
    readable = _ESCAPED_LITERAL.sub(r"\1", "".join(out))
    return readable[:-2] if readable.endswith("/?") else readable


def _methods(call: Type[URLMatchJSONResource]) -> Tuple[MethodDoc, ...]:
    found = []
    for name in dir(call):
        if not name.startswith("render_") or name == "render_":
            continue
        handler = getattr(call, name)
        if not callable(handler):
            continue
        found.append(
            MethodDoc(
                method=name[len("render_") :],
                docstring=inspect.cleandoc(handler.__doc__ or ""),
                declarations=declarations(handler),
            )
        )

    def order(method: MethodDoc) -> Tuple[int, str]:
        known = method.method in METHOD_ORDER
        return (
            METHOD_ORDER.index(method.method) if known else len(METHOD_ORDER),
            method.method,
        )

    return tuple(sorted(found, key=order))


def _describe_call(call: Type[URLMatchJSONResource]) -> CallDoc:
    routes = call.routes
    route_list = (routes,) if isinstance(routes, str) else tuple(routes or ())
    return CallDoc(
        name=call.__name__,
        description=inspect.cleandoc(call.__doc__ or ""),
        routes=route_list,
        methods=_methods(call),
    )


def builtin_errors() -> Tuple[ErrorDoc, ...]:
    """Shiji's own errors, which every API can answer with."""
    return tuple(
        _describe_error(cls, builtin=True)
        for cls in vars(_errors).values()
        if isinstance(cls, type) and issubclass(cls, APIError) and _is_concrete(cls)
    )


def _is_concrete(cls: Type[APIError]) -> bool:
    """
    Whether ``cls`` can be raised: it has a code and a text (``APIError``
    itself and bases of an API's errors have not).
    """
    return cls.error_code is not None and cls.exception_text is not None


def _describe_error(cls: Type[APIError], builtin: bool) -> ErrorDoc:
    return ErrorDoc(
        exception_class=cls.exception_class,
        error_code=cls.error_code,
        exception_text=cls.exception_text,
        http_status=cls.http_status,
        builtin=builtin,
    )


def _api_errors(version_module: ModuleType, calls: Sequence[type]) -> List[ErrorDoc]:
    """
    The API's own errors a version can raise: every ``APIError`` subclass
    found in the version package's modules (defined there or imported), and
    in the modules defining its calls (a version may reuse another's).
    """
    prefix = version_module.__name__
    homes = {call.__module__ for call in calls}
    seen: Dict[str, ErrorDoc] = {}
    for name, module in list(sys.modules.items()):
        if module is None:
            continue
        if not (name == prefix or name.startswith(prefix + ".") or name in homes):
            continue
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, APIError)
                and _is_concrete(value)
                and not value.__module__.startswith("shiji.")
            ):
                seen[value.exception_class] = _describe_error(value, builtin=False)
    return list(seen.values())


def describe_api(api: Any) -> APIDoc:
    """
    Read an API package (``api_name``, ``api_versions``, ``version_router``,
    and optionally ``docstring_format``) into an :class:`APIDoc`.
    """
    versions = []
    builtins = builtin_errors()
    for key in sorted(api.api_versions, key=version_sort_key):
        pattern, module = api.api_versions[key]
        call_router: CallRouter = module.call_router
        errors = sorted(
            [*builtins, *_api_errors(module, call_router.calls)],
            key=lambda error: error.exception_class,
        )
        versions.append(
            VersionDoc(
                version=key,
                pattern=pattern,
                calls=tuple(_describe_call(call) for call in call_router.calls),
                errors=tuple(errors),
                deprecation=getattr(module, "deprecation", None),
            )
        )
    return APIDoc(
        api_name=api.api_name,
        description=inspect.cleandoc(api.__doc__ or ""),
        docstring_format=getattr(api, "docstring_format", "auto"),
        versions=tuple(versions),
    )
