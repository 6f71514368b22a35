"""
OpenAPI 3.1 documents: one per API version, and an index of them.

Everything comes from what the code declares: routes and their named groups
(path parameters, with the group's pattern), what each decorator on a
handler describes (its parameters with their schemas, the request body, the
answers, the errors, security requirements), the guards that ask the auth
backend, the version header (one parameter, defaulting to the document's
version) and the error envelope. Each operation lists every status it can
answer, with the errors behind each, as the envelope and as problem
details. Paths are relative to where the API is served, which the
document's server names.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from .. import _errors
from .._errors import status_phrase
from .._request import has_body
from .._version_header import API_MODES, VersionHeader
from ..webapi import Response
from .docstrings import as_markdown
from .model import (
    APIDoc,
    CallDoc,
    ErrorDoc,
    MethodDoc,
    MethodInterface,
    ParameterDoc,
    VersionDoc,
    error_doc,
    interface,
    is_pattern_route,
    readable_route,
    templated_route,
)
from .openapi_errors import ERROR_CONTENT, error_description, error_schemas
from .prefix import ServedPrefix, default_prefix
from .render import filters_json

__all__ = ["openapi_document", "openapi_index", "openapi_path"]

OPENAPI_VERSION = "3.1.0"

#: The methods an OpenAPI path item has.
_OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

#: Shiji's errors any call can answer: the HTTP layer's refusals, a missing
#: or unknown version, a result that cannot be sent, a failure, a timeout.
_ANY_CALL = (
    _errors.MalformedRequestError,
    _errors.UnknownAPIVersionError,
    _errors.RequestReadTimeoutError,
    _errors.RequestTooLargeError,
    _errors.RequestURITooLongError,
    _errors.RequestHeadersTooLargeError,
    _errors.UnexpectedServerError,
    _errors.JSONEncodeError,
    _errors.RequestTimeoutError,
)

#: What a signed session cookie that is not accepted answers.
_COOKIE_ERRORS = (_errors.InvalidSecureCookieError, _errors.ExpiredSecureCookieError)

#: The security scheme of calls the auth backend guards, unless the API
#: declares its own (``auth_scheme``).
DEFAULT_AUTH_SCHEME: Mapping[str, Any] = {
    "type": "apiKey",
    "in": "cookie",
    "name": "session",
    "description": "The signed session cookie the server's auth backend checks.",
}

#: The names of the security schemes: the auth backend's, and HTTP Basic.
_SESSION = "session"
_BASIC = "basic"
_SCHEMES: Mapping[str, Mapping[str, Any]] = {
    _BASIC: {
        "type": "http",
        "scheme": "basic",
        "description": "HTTP Basic credentials (RFC 7617).",
    },
}

#: Header parameters OpenAPI ignores (security schemes and media types
#: describe them).
_IGNORED_HEADERS = ("accept", "content-type", "authorization")

#: Response headers, in ``components.headers`` when an answer has them.
_HEADERS: Mapping[str, Mapping[str, Any]] = {
    "Deprecation": {
        "description": "When this version was deprecated (RFC 9745), as @<epoch seconds>.",
        "schema": {"type": "string", "pattern": "^@[0-9]+$"},
    },
    "Sunset": {
        "description": "When this version stops being served (RFC 8594).",
        "schema": {"type": "string"},
    },
    "Link": {
        "description": 'Pages about the deprecation (rel="deprecation") and sunset.',
        "schema": {"type": "string"},
    },
    "WWW-Authenticate": {
        "description": "The challenge saying how to authenticate (RFC 9110).",
        "required": True,
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again, if the error says.",
        "schema": {"type": "string"},
    },
}
_DEPRECATION_HEADERS = ("Deprecation", "Sunset", "Link")
_STATUS_HEADERS = {
    401: ("WWW-Authenticate",),
    429: ("Retry-After",),
    503: ("Retry-After",),
}

_VERSION_PARAMETER = "VersionHeader"

#: The answer of a call that declares none: any JSON.
_UNDECLARED = Response(200, {}, "The call's result.")


# A sentence: up to a full stop, question or exclamation mark and a space.
_SENTENCE = re.compile(r"(.+?[.!?])(?:\s|$)")

# Keys whose values are data rather than schemas.
_DATA_KEYS = frozenset({"default", "example", "examples", "enum", "const"})


def openapi_path(route: str, mount: str = "") -> Optional[str]:
    """
    The OpenAPI path of ``route`` under ``mount`` (empty: relative to where
    the API is served): ``ping/(?P<timestamp>[0-9]+)`` becomes
    ``/ping/{timestamp}``; ``None`` for routes that are patterns rather than
    paths.
    """
    if is_pattern_route(route):
        return None
    templated = templated_route(route)
    return f"{mount.rstrip('/')}/{templated}" if templated else mount or "/"


@dataclass
class _Context:
    """What every operation of one document is built from."""

    doc: APIDoc
    version: VersionDoc
    prefix: ServedPrefix
    auth_scheme: Mapping[str, Any]
    #: Security schemes and headers the operations use.
    schemes: Set[str] = field(default_factory=set)
    headers: Set[str] = field(default_factory=set)


def _summary(docstring: str) -> str:
    """The first sentence of ``docstring``, cut at a word past 120
    characters."""
    paragraph = " ".join(docstring.strip().split("\n\n", 1)[0].split())
    sentence = _SENTENCE.match(paragraph)
    text = sentence.group(1) if sentence else paragraph
    if len(text) > 120:
        text = text[:119].rsplit(" ", 1)[0] + "…"
    return text


def _parameter(parameter: ParameterDoc) -> Dict[str, Any]:
    found: Dict[str, Any] = {
        "name": parameter.name,
        "in": parameter.location,
        "required": parameter.required,
    }
    if parameter.description:
        found["description"] = parameter.description
    found["schema"] = parameter.schema
    return found


def _headers(context: _Context, names: Iterable[str]) -> Dict[str, Any]:
    context.headers.update(names)
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def _response(context: _Context, response: Response) -> Dict[str, Any]:
    found: Dict[str, Any] = {
        "description": response.description or f"{status_phrase(response.status)}."
    }
    if context.version.deprecation is not None:
        found["headers"] = _headers(context, _DEPRECATION_HEADERS)
    if response.schema is not None and has_body(response.status):
        found["content"] = {"application/json": {"schema": response.schema}}
    return found


def _error_response(
    context: _Context, status: int, errors: List[ErrorDoc]
) -> Dict[str, Any]:
    found: Dict[str, Any] = {"description": error_description(status, errors)}
    names = list(_STATUS_HEADERS.get(status, ()))
    if context.version.deprecation is not None:
        names += _DEPRECATION_HEADERS
    if names:
        found["headers"] = _headers(context, names)
    found["content"] = ERROR_CONTENT
    return found


def _errors_of(
    context: _Context, call: CallDoc, path: str, declared: MethodInterface
) -> Dict[int, List[ErrorDoc]]:
    """Every error a method of ``call`` that ``declared`` describes can
    answer on ``path``, by HTTP status."""
    classes: List[Any] = list(_ANY_CALL)
    if "{" in path:  # a value the route's pattern refuses
        classes.append(_errors.UnknownAPICallError)
    if not context.prefix.literal:  # a segment the [apis] expression refuses
        classes.append(_errors.UnknownAPIError)
    if declared.backend_guarded and context.auth_scheme.get("in") == "cookie":
        classes += _COOKIE_ERRORS
    deprecation = context.version.deprecation
    if deprecation is not None and deprecation.gone_after_sunset:
        classes.append(_errors.APIVersionGoneError)
    found = {e.exception_class: e for e in map(error_doc, classes) if e is not None}
    found.update((e.exception_class, e) for e in declared.errors)
    if not (call.builtin or declared.handler_errors):
        # Without webapi.raises, any handler may raise any of the version's.
        found.update((e.exception_class, e) for e in context.version.own_errors)
    by_status: Dict[int, List[ErrorDoc]] = {}
    for error in found.values():
        by_status.setdefault(error.http_status, []).append(error)
    return by_status


def _operation(
    context: _Context,
    call: CallDoc,
    method: MethodDoc,
    route: str,
    path: str,
    operation_id: str,
) -> Dict[str, Any]:
    doc = context.doc
    declared = interface((route,), method)
    path_parameters = [p for p in declared.parameters if p.location == "path"]
    others = [
        p
        for p in declared.parameters
        if p.location != "path"
        and not (p.location == "header" and p.name.lower() in _IGNORED_HEADERS)
    ]
    parameters: List[Dict[str, Any]] = [_parameter(p) for p in path_parameters]
    parameters.append({"$ref": f"#/components/parameters/{_VERSION_PARAMETER}"})
    parameters += [_parameter(p) for p in others]
    docstring = method.docstring or call.description
    summary = _summary(docstring) if docstring else f"{method.method} {path}"
    operation: Dict[str, Any] = {
        "operationId": operation_id,
        "tags": [call.name],
        "summary": summary,
        "description": (
            as_markdown(docstring, doc.docstring_format) if docstring else summary
        ),
        "parameters": parameters,
    }
    body = declared.body
    if body is not None:
        request_body: Dict[str, Any] = {}
        if body.description:
            request_body["description"] = body.description
        request_body["required"] = True
        request_body["content"] = {body.content_type: {"schema": body.schema}}
        operation["requestBody"] = request_body
    schemes = [_SESSION] if declared.backend_guarded else []
    schemes += [s for s in declared.security if s not in schemes]
    context.schemes.update(schemes)
    operation["security"] = [{scheme: [] for scheme in schemes}] if schemes else []
    if declared.requires is not None:
        operation["x-shiji-requires"] = declared.requires
    if call.filters:
        operation["x-shiji-filters"] = filters_json(call)
    if context.version.deprecation is not None:
        operation["deprecated"] = True
    responses = {
        str(response.status): _response(context, response)
        for response in declared.responses or (_UNDECLARED,)
    }
    errors = _errors_of(context, call, path, declared)
    for status in sorted(errors):
        if str(status) not in responses:
            responses[str(status)] = _error_response(context, status, errors[status])
    operation["responses"] = responses
    return operation


def _operation_id(call: CallDoc, method: str, path: str, several: bool) -> str:
    """``LoginCall_post``; with the path's words when the call has several
    paths: ``PingCall_get_ping_timestamp``."""
    name = f"{call.name}_{method}"
    if several:
        name += "_" + (re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_") or "root")
    return name


def _paths(context: _Context) -> Tuple[Dict[str, Dict[str, Any]], List[str]]:
    """The path items, and the routes that are patterns rather than paths."""
    paths: Dict[str, Dict[str, Any]] = {}
    unlisted = []
    taken: Set[str] = set()
    for call in context.version.calls:
        listed = []
        for route in call.routes:
            path = openapi_path(route)
            if path is None:
                unlisted.append(readable_route(route))
            else:
                listed.append((route, path))
        for route, path in listed:
            item = paths.setdefault(path, {})
            for method in call.methods:
                name = method.method.lower()
                if name not in _OPERATIONS:
                    continue
                operation_id = _operation_id(call, name, path, len(listed) > 1)
                unique, count = operation_id, 1
                while unique in taken:
                    count += 1
                    unique = f"{operation_id}_{count}"
                taken.add(unique)
                item[name] = _operation(context, call, method, route, path, unique)
    return paths, unlisted


def _server(
    prefix: ServedPrefix, server: Optional[str], api_name: str
) -> Dict[str, Any]:
    """The server: ``server`` (or the host the document came from) and
    the API's prefix, a variable unless it is one segment (whose default
    is a segment the API answers on, or else its name)."""
    base = (server or "").rstrip("/")
    if len(prefix.segments) == 1:
        return {"url": f"{base}/{prefix.segments[0]}"}
    variable: Dict[str, Any]
    if prefix.segments:
        variable = {"default": prefix.segments[0], "enum": list(prefix.segments)}
    else:
        variable = {
            "default": prefix.example or api_name,
            "description": (
                "The first path segment: any that fully matches the regular "
                f"expression {prefix.pattern}"
            ),
        }
    return {"url": f"{base}/{{api}}", "variables": {"api": variable}}


def _tags(
    doc: APIDoc, version: VersionDoc, paths: Dict[str, Dict[str, Any]]
) -> List[Dict[str, Any]]:
    """A tag per call that has operations: its docstring, or its paths."""
    tags = []
    for call in version.calls:
        where = [
            f"`{path}`"
            for path, item in paths.items()
            if any(call.name in operation["tags"] for operation in item.values())
        ]
        if not where:
            continue
        description = (
            as_markdown(call.description, doc.docstring_format)
            if call.description
            else f"The call at {', '.join(where)}."
        )
        tags.append({"name": call.name, "description": description})
    return tags


def _complete_arrays(node: Any) -> None:
    """Give every array schema without ``items`` the schema of any item:
    an array's items are then always described."""
    if isinstance(node, dict):
        kind = node.get("type")
        arrays = kind == "array" or (isinstance(kind, list) and "array" in kind)
        if arrays and "items" not in node and "prefixItems" not in node:
            node["items"] = {}
        for key, value in node.items():
            if key not in _DATA_KEYS:
                _complete_arrays(value)
    elif isinstance(node, list):
        for value in node:
            _complete_arrays(value)


def _version_values(doc: APIDoc, version: VersionDoc) -> List[str]:
    """The version header's values for ``version``: prod's first."""
    modes = sorted(API_MODES, key=lambda mode: (mode != "prod", mode))
    return [str(VersionHeader(doc.api_name, version.version, m)) for m in modes]


def _version_parameter(values: List[str], version_header: str) -> Dict[str, Any]:
    """The version header, with the first of ``values`` as its default."""
    return {
        "name": version_header,
        "in": "header",
        "required": True,
        "description": (
            "The API, version and mode that should answer; this document's "
            "version in production mode by default."
        ),
        # One schema, so that a client has one type for it; the default
        # beside it, so that the client sends it unasked.
        "schema": {
            "allOf": [{"$ref": f"#/components/schemas/{_VERSION_PARAMETER}"}],
            "default": values[0],
        },
    }


def _description(doc: APIDoc, values: List[str], version_header: str) -> str:
    """The API's docstring, and how to call it."""
    usage = (
        f"Every call names the API, version and mode that should answer in the "
        f"`{version_header}` header: `{values[0]}`, or `{values[1]}` for the test "
        "mode. Errors come as the JSON envelope "
        '`{"result": null, "error": {...}}`, or as RFC 9457 problem details when '
        "the request's `Accept` asks for `application/problem+json`."
    )
    if not doc.description:
        return usage
    return as_markdown(doc.description, doc.docstring_format) + "\n\n" + usage


def openapi_document(
    doc: APIDoc,
    version_key: str,
    *,
    prefix: Optional[ServedPrefix] = None,
    server: Optional[str] = None,
    version_header: str = "X-API-Version",
) -> Dict[str, Any]:
    """
    The OpenAPI 3.1 document of one version of ``doc``.

    :param prefix: where the API is served (see
        :func:`~shiji.docs.prefix.served_prefix`); ``/<api_name>`` by
        default.
    :param server: the server's base URL (``http://127.0.0.1:9990``, no
        path); without it the server is the prefix alone, relative to where
        the document was fetched from.
    :param version_header: the header naming the version.
    :raises KeyError: ``doc`` has no version ``version_key``.
    """
    version = doc.version(version_key)
    if prefix is None:
        prefix = default_prefix(doc.api_name)
    context = _Context(doc, version, prefix, version.auth_scheme or DEFAULT_AUTH_SCHEME)
    paths, unlisted = _paths(context)
    values = _version_values(doc, version)
    info: Dict[str, Any] = {
        "title": doc.api_name,
        "version": version.version,
        "description": _description(doc, values, version_header),
    }
    if doc.contact is not None:
        info["contact"] = doc.contact
    if doc.license is not None:
        info["license"] = doc.license
    if version.deprecation is not None:
        info["x-shiji-deprecation"] = version.deprecation.describe()
    components: Dict[str, Any] = {
        "schemas": {
            **error_schemas(sorted(e.exception_class for e in version.errors)),
            _VERSION_PARAMETER: {
                "description": "A value of the version header: <api>-<version>+<mode>.",
                "type": "string",
                "enum": values,
                "default": values[0],
            },
        },
        "parameters": {_VERSION_PARAMETER: _version_parameter(values, version_header)},
    }
    if context.headers:
        components["headers"] = {
            name: _HEADERS[name] for name in _HEADERS if name in context.headers
        }
    schemes = {_SESSION: context.auth_scheme, **_SCHEMES}
    used = {name: schemes[name] for name in sorted(context.schemes) if name in schemes}
    if used:
        components["securitySchemes"] = used
    document: Dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": info,
        "servers": [_server(prefix, server, doc.api_name)],
        "tags": _tags(doc, version, paths),
        "paths": paths,
        "components": components,
    }
    if unlisted:
        document["x-shiji-unlisted-routes"] = unlisted
    # The schemas are the declarations' own: the caller gets copies.
    document = copy.deepcopy(document)
    _complete_arrays(document["paths"])
    return document


def openapi_index(doc: APIDoc, url_for: Any) -> Dict[str, Any]:
    """
    The list of ``doc``'s OpenAPI documents, newest version first;
    ``url_for(version)`` says where each is.
    """
    return {
        "api_name": doc.api_name,
        "versions": [
            {"version": version.version, "openapi": url_for(version.version)}
            for version in reversed(doc.versions)
        ],
    }
