"""
What an API package declares, read once for every documentation format.

:func:`describe_api` walks an API package (its versions, their calls, the
decorators on each handler and the errors the version can raise) into
frozen dataclasses that the JSON, Markdown, HTML and OpenAPI renderers share.
:func:`interface` merges what a method's decorators describe (each one a
:class:`~shiji.webapi.Described`, whatever the decorator) with its routes'
named groups; no renderer knows any decorator.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Type

from .. import _errors
from .._filters import Filter, call_chain, checked_filters, filter_name
from .._lifecycle import Deprecation
from ..urldispatch import (
    APIDefinitionError,
    CallRouter,
    URLMatchJSONResource,
    version_sort_key,
)
from ..webapi import (
    APIError,
    Described,
    Parameter,
    RequestBody,
    Response,
    declarations,
)

__all__ = [
    "ROUTE_GROUP",
    "APIDoc",
    "CallDoc",
    "ErrorDoc",
    "FilterDoc",
    "MethodDoc",
    "MethodInterface",
    "ParameterDoc",
    "VersionDoc",
    "builtin_errors",
    "describe_api",
    "error_doc",
    "filter_doc",
    "group_patterns",
    "interface",
    "is_pattern_route",
    "parameters",
    "readable_route",
    "templated_route",
]

#: The order methods are listed in; others follow alphabetically.
METHOD_ORDER = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")

#: Methods the router answers itself, whatever the call defines: an
#: ``OPTIONS`` is answered 204 with ``Allow`` (and CORS), never by a
#: ``render_OPTIONS``, which is therefore not documented.
ROUTER_METHODS = frozenset({"OPTIONS"})


@dataclass(frozen=True)
class ErrorDoc:
    """One error class a version can answer with."""

    exception_class: str
    error_code: int
    exception_text: str
    http_status: int
    builtin: bool


@dataclass(frozen=True)
class FilterDoc:
    """One filter around a call."""

    #: Its qualified name: ``require_api_key``.
    name: str
    #: The first line of its docstring.
    description: str
    #: What it declares, as a decorator would (``webapi.raises``).
    described: Tuple[Described, ...] = ()


def filter_doc(value: Filter) -> FilterDoc:
    """The documentation of the filter ``value``."""
    lines = inspect.cleandoc(getattr(value, "__doc__", None) or "").splitlines()
    return FilterDoc(
        name=filter_name(value),
        description=lines[0].strip() if lines else "",
        described=declarations(value).described,
    )


@dataclass(frozen=True)
class MethodDoc:
    """One ``render_<METHOD>`` of a call."""

    method: str
    docstring: str
    #: What each decorator on the handler declares, in source order: the
    #: outermost decorator (written on top) first, after what the call's
    #: filters declare (the errors they raise), which run around them.
    described: Tuple[Described, ...] = ()


#: One parameter of a method, in its path, its query string or a header:
#: documented as a decorator declares it.
ParameterDoc = Parameter


@dataclass(frozen=True)
class MethodInterface:
    """
    What a method's decorators declare, merged in source order: what a
    client sends, what it gets back, the errors it may get and what it must
    be.
    """

    #: The path parameters of the routes, then the declared ones; a later
    #: declaration of the same parameter replaces an earlier one.
    parameters: Tuple[ParameterDoc, ...]
    #: The request body; the last one declared, if several are.
    body: Optional[RequestBody]
    #: The declared answers, by status (the last declaration of a status
    #: wins).
    responses: Tuple[Response, ...]
    #: The errors the decorators may answer with, by HTTP status and name.
    errors: Tuple[ErrorDoc, ...]
    #: The OpenAPI security schemes required, all of them.
    security: Tuple[str, ...]
    #: What the caller must be, in words, one entry per guard.
    requirements: Tuple[str, ...]
    #: The handler's own errors are among ``errors`` (``webapi.raises``
    #: declares them), and no others.
    handler_errors: bool = False
    #: A requirement names no security scheme: the auth backend says who
    #: the caller is (:func:`shiji.auth.login_required`,
    #: :func:`shiji.auth.access`), from the credentials the API's
    #: ``auth_scheme`` describes.
    backend_guarded: bool = False

    @property
    def requires(self) -> Optional[str]:
        """The requirements as one phrase (``a logged-in caller``), or
        ``None`` if nothing is required."""
        return " and ".join(self.requirements) if self.requirements else None


def group_patterns(route: str) -> Dict[str, str]:
    """The named groups of ``route`` and their patterns, in order:
    ``{"timestamp": "[0-9]+"}``."""
    patterns = {}
    for found in re.finditer(r"\(\?P<([A-Za-z_][A-Za-z0-9_]*)>", route):
        end = group_end(route, found.start())
        patterns[found.group(1)] = route[found.end() : end - 1]
    return patterns


def _path_parameters(routes: Sequence[str]) -> List[ParameterDoc]:
    """
    The named groups of ``routes`` as strings matching their patterns;
    required if every route has them.
    """
    groups = [group_patterns(route) for route in routes]
    found = []
    for name in dict.fromkeys(name for patterns in groups for name in patterns):
        seen = list(dict.fromkeys(group[name] for group in groups if name in group))
        pattern = seen[0] if len(seen) == 1 else "|".join(f"(?:{p})" for p in seen)
        everywhere = all(name in group for group in groups)
        found.append(
            ParameterDoc(
                name,
                "path",
                {"type": "string", "pattern": f"^(?:{pattern})$"},
                everywhere,
                "" if everywhere else "Only in some of the call's routes.",
            )
        )
    return found


def _key(location: str, name: str) -> Tuple[str, str]:
    # Header names are the same whatever their case.
    return (location, name.lower() if location == "header" else name)


def error_doc(cls: Any) -> Optional[ErrorDoc]:
    """The documentation of an error class; ``None`` for anything that is
    not an ``APIError`` that can be raised."""
    if isinstance(cls, type) and issubclass(cls, APIError) and _is_concrete(cls):
        return _describe_error(cls, builtin=cls.__module__.startswith("shiji."))
    return None


def interface(routes: Sequence[str], method: MethodDoc) -> MethodInterface:
    """
    What ``method`` of a call with ``routes`` declares: the routes' named
    groups (path parameters matching the group's pattern; a path parameter
    the decorators declare for a group gives its schema instead) and what
    each decorator describes, outermost first.
    """
    groups = {_key("path", p.name): p for p in _path_parameters(routes)}
    found: Dict[Tuple[str, str], ParameterDoc] = dict(groups)
    body: Optional[RequestBody] = None
    responses: Dict[int, Response] = {}
    errors: Dict[str, ErrorDoc] = {}
    security: List[str] = []
    requirements: List[str] = []
    handler_errors = backend_guarded = False
    for described in method.described:
        handler_errors = handler_errors or described.handler_errors
        if described.requirement and not described.security:
            backend_guarded = True
        for parameter in described.parameters:
            key = _key(parameter.location, parameter.name)
            if parameter.location == "path":
                if key not in groups:
                    continue  # not a group of these routes
                required = groups[key].required
                note = groups[key].description
            else:
                required = parameter.required
                note = ""
            found[key] = ParameterDoc(
                parameter.name,
                parameter.location,
                dict(parameter.schema),
                required,
                " ".join(filter(None, (parameter.description, note))),
            )
        if described.body is not None:
            body = described.body
        for response in described.responses:
            responses[response.status] = response
        for cls in described.errors:
            error = error_doc(cls)
            if error is not None:
                errors.setdefault(error.exception_class, error)
        security += [s for s in described.security if s not in security]
        if described.requirement and described.requirement not in requirements:
            requirements.append(described.requirement)
    return MethodInterface(
        parameters=tuple(found.values()),
        body=body,
        responses=tuple(responses[status] for status in sorted(responses)),
        errors=tuple(
            sorted(errors.values(), key=lambda e: (e.http_status, e.exception_class))
        ),
        security=tuple(security),
        requirements=tuple(requirements),
        handler_errors=handler_errors,
        backend_guarded=backend_guarded,
    )


def parameters(routes: Sequence[str], method: MethodDoc) -> Tuple[ParameterDoc, ...]:
    """What a client sends to ``method`` outside the body: the path
    parameters of the call's ``routes`` (required if every route has them)
    and the parameters its decorators declare."""
    return interface(routes, method).parameters


@dataclass(frozen=True)
class CallDoc:
    """One call class of a version, and the filters around it."""

    name: str
    description: str
    #: The route regular expressions, as declared.
    routes: Tuple[str, ...]
    methods: Tuple[MethodDoc, ...]
    #: One of Shiji's own calls (``list_versions``), which raise none of the
    #: API's errors.
    builtin: bool = False
    #: The filters around the call, in the order they run: the API's, the
    #: version's, the call's.
    filters: Tuple[FilterDoc, ...] = ()

    @property
    def readable_routes(self) -> Tuple[str, ...]:
        """The routes with named groups shown as ``<name>``."""
        return tuple(readable_route(route) for route in self.routes)


@dataclass(frozen=True)
class VersionDoc:
    """One version of an API."""

    version: str
    pattern: str
    calls: Tuple[CallDoc, ...]
    errors: Tuple[ErrorDoc, ...]
    deprecation: Optional[Deprecation] = None
    #: The API's own errors the version's modules define or import, which
    #: any of its handlers may raise.
    own_errors: Tuple[ErrorDoc, ...] = ()
    #: How callers of its guarded calls authenticate to the auth backend:
    #: an OpenAPI security scheme object, as the version's calls module,
    #: the version package or the API package declares it (``auth_scheme``,
    #: the first found); ``None`` if none does.
    auth_scheme: Optional[Mapping[str, Any]] = None


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
    #: Who answers for the API and under what license, as OpenAPI contact
    #: and license objects: the package's ``api_contact`` and
    #: ``api_license``, if it declares them.
    contact: Optional[Mapping[str, Any]] = None
    license: Optional[Mapping[str, Any]] = None

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


#: A named group of a readable route: ``<timestamp>``.
ROUTE_GROUP = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)>")
# Characters that make a readable route a pattern rather than a path.
_REGEX_SYNTAX = re.compile(r"[\[\]()*+?|^$\\{}]")


def templated_route(route: str) -> str:
    """
    :func:`readable_route` with its groups as path templates:
    ``ping/(?P<timestamp>[0-9]+)$`` becomes ``ping/{timestamp}``.
    """
    return ROUTE_GROUP.sub(r"{\1}", readable_route(route))


def is_pattern_route(route: str) -> bool:
    """Whether ``route``, its named groups aside, is a pattern rather than a
    path (``ping[^/]*``)."""
    return _REGEX_SYNTAX.search(ROUTE_GROUP.sub("", readable_route(route))) is not None


def _methods(
    call: Type[URLMatchJSONResource], around: Tuple[Described, ...] = ()
) -> Tuple[MethodDoc, ...]:
    """The methods the server runs a ``render_<METHOD>`` of ``call`` for,
    each behind what its filters declare (``around``)."""
    found = []
    for name in dir(call):
        if not name.startswith("render_") or name == "render_":
            continue
        if name[len("render_") :] in ROUTER_METHODS:
            continue
        handler = getattr(call, name)
        if not callable(handler):
            continue
        found.append(
            MethodDoc(
                method=name[len("render_") :],
                docstring=inspect.cleandoc(handler.__doc__ or ""),
                described=around + tuple(reversed(declarations(handler).described)),
            )
        )

    def order(method: MethodDoc) -> Tuple[int, str]:
        known = method.method in METHOD_ORDER
        return (
            METHOD_ORDER.index(method.method) if known else len(METHOD_ORDER),
            method.method,
        )

    return tuple(sorted(found, key=order))


def _describe_call(
    call: Type[URLMatchJSONResource], filters: Sequence[Filter] = ()
) -> CallDoc:
    routes = call.routes
    route_list = (routes,) if isinstance(routes, str) else tuple(routes or ())
    filter_docs = tuple(filter_doc(value) for value in filters)
    # A filter's errors add to the call's; what the handler raises is still
    # the handler's to declare.
    around = tuple(
        dataclasses.replace(described, handler_errors=False)
        for found in filter_docs
        for described in found.described
    )
    return CallDoc(
        name=call.__name__,
        description=inspect.cleandoc(call.__doc__ or ""),
        routes=route_list,
        methods=_methods(call, around),
        builtin=call.__module__.startswith("shiji."),
        filters=filter_docs,
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


def _declared_errors(calls: Sequence[CallDoc]) -> List[ErrorDoc]:
    """The errors the decorators of ``calls`` declare (an API's own
    decorator may declare errors defined anywhere)."""
    return [
        error
        for call in calls
        for method in call.methods
        for error in interface(call.routes, method).errors
    ]


def _object(name: str, *modules: Any) -> Optional[Mapping[str, Any]]:
    """
    The first of ``modules`` that declares ``name``: its value, which must
    be a JSON object (a dict); ``None`` if none declares it.

    :raises APIDefinitionError: the value is not a dict.
    """
    for module in modules:
        value = getattr(module, name, None)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            raise APIDefinitionError(
                f"{getattr(module, '__name__', module)}.{name} is an OpenAPI "
                f"object (a dict), not {type(value).__name__}"
            )
        return value
    return None


def describe_api(api: Any) -> APIDoc:
    """
    Read an API package (``api_name``, ``api_versions``, ``version_router``,
    and optionally ``docstring_format``, ``api_contact``, ``api_license``,
    ``auth_scheme`` and ``filters``) into an :class:`APIDoc`.

    :raises APIDefinitionError: ``api_contact``, ``api_license`` or an
        ``auth_scheme`` is not a dict, or ``filters`` is not a list of
        filters.
    """
    versions = []
    builtins = builtin_errors()
    api_filters = checked_filters(
        getattr(api, "filters", None), f"{getattr(api, '__name__', api)}.filters"
    )
    for key in sorted(api.api_versions, key=version_sort_key):
        pattern, module = api.api_versions[key]
        call_router: CallRouter = module.call_router
        calls = tuple(
            _describe_call(call, call_chain(api_filters, call_router.filters_of(call)))
            for call in call_router.calls
        )
        # One error per exception_class: the first of Shiji's (a subclass
        # may keep its base's name), unless the API names one of its own so;
        # then the errors its decorators declare.
        errors: Dict[str, ErrorDoc] = {}
        for error in builtins:
            errors.setdefault(error.exception_class, error)
        own = _api_errors(module, call_router.calls)
        errors.update((error.exception_class, error) for error in own)
        for error in _declared_errors(calls):
            errors.setdefault(error.exception_class, error)
        versions.append(
            VersionDoc(
                version=key,
                pattern=pattern,
                calls=calls,
                errors=tuple(errors[name] for name in sorted(errors)),
                deprecation=getattr(module, "deprecation", None),
                own_errors=tuple(sorted(own, key=lambda e: e.exception_class)),
                auth_scheme=_object(
                    "auth_scheme",
                    getattr(call_router, "calls_module", None),
                    module,
                    api,
                ),
            )
        )
    return APIDoc(
        api_name=api.api_name,
        description=inspect.cleandoc(api.__doc__ or ""),
        docstring_format=getattr(api, "docstring_format", "auto"),
        versions=tuple(versions),
        contact=_object("api_contact", api),
        license=_object("api_license", api),
    )
