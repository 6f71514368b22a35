"""
OpenAPI 3.1 documents: one per API version, and an index of them.

Everything comes from what the code declares: routes and their named groups
(path parameters, with the group's pattern), ``json_arguments`` (the request
body's schema), ``url_arguments`` and ``paged_results`` (query parameters),
``auth_http_basic`` (the ``Authorization`` header), the version header (a
required header with its allowed values) and the error envelope with every
error class as responses.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Set, Tuple

from .docstrings import as_markdown
from .model import APIDoc, CallDoc, MethodDoc, VersionDoc, group_end, readable_route

__all__ = ["openapi_document", "openapi_index", "openapi_path"]

OPENAPI_VERSION = "3.1.0"

_JSON_TYPES = {
    "int": "integer",
    "float": "number",
    "str": "string",
    "bool": "boolean",
    "list": "array",
    "tuple": "array",
    "dict": "object",
    "NoneType": "null",
}

#: What each status means for a client, and the error classes behind it.
_STATUS_TEXT = {
    "400": "The request is not well-formed HTTP/1.1; the connection closes.",
    "401": "Missing, malformed or refused credentials.",
    "403": "The caller lacks the permission the call requires.",
    "404": "No such API or call.",
    "405": "The call does not answer this method.",
    "406": "Missing or unknown version, or a request body of the wrong media type.",
    "408": "The request did not arrive whole in time; the connection closes.",
    "409": "An argument is missing or invalid, or the call answered with an API error.",
    "410": "This version is past its sunset date.",
    "413": "The request body is larger than the server accepts.",
    "414": "The request line is longer than the server reads; the connection closes.",
    "429": "Too many attempts; retry after the seconds Retry-After gives.",
    "431": "The request headers are larger than the server reads; the connection closes.",
    "500": "An unexpected server error; the text carries a request id.",
    "503": "The call did not complete within the server's request timeout.",
}

_DEPRECATION_HEADERS = {
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
}

# Characters that make a readable route a pattern rather than a path.
_REGEX_SYNTAX = re.compile(r"[\[\]()*+?|^$\\{}]")


def openapi_path(route: str, mount: str) -> Optional[str]:
    """
    The OpenAPI path of ``route`` under ``mount`` (``/myloginapi``):
    ``ping/(?P<timestamp>[0-9]+)`` becomes ``/myloginapi/ping/{timestamp}``;
    ``None`` for routes that are patterns rather than paths.
    """
    readable = readable_route(route)
    templated = re.sub(r"<([A-Za-z_][A-Za-z0-9_]*)>", r"{\1}", readable)
    if _REGEX_SYNTAX.search(templated.replace("{", "").replace("}", "")):
        return None
    return f"{mount.rstrip('/')}/{templated}" if templated else mount


def _group_patterns(route: str) -> Dict[str, str]:
    patterns = {}
    for found in re.finditer(r"\(\?P<([A-Za-z_][A-Za-z0-9_]*)>", route):
        end = group_end(route, found.start())
        patterns[found.group(1)] = route[found.end() : end - 1]
    return patterns


def _schema_for(type_names: Tuple[str, ...]) -> Dict[str, Any]:
    types = [_JSON_TYPES[name] for name in type_names if name in _JSON_TYPES]
    if not types or len(types) != len(type_names):
        return {}
    return {"type": types[0]} if len(types) == 1 else {"type": types}


def _summary(docstring: str) -> str:
    return docstring.strip().split("\n\n", 1)[0].replace("\n", " ")[:200]


def _operation(
    doc: APIDoc,
    version: VersionDoc,
    call: CallDoc,
    method: MethodDoc,
    route: str,
    version_header: str,
    operation_id: str,
    error_statuses: Set[str],
) -> Dict[str, Any]:
    declared = method.declarations
    parameters: List[Dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": f"^(?:{pattern})$"},
        }
        for name, pattern in _group_patterns(route).items()
    ]
    parameters.append(
        {
            "name": version_header,
            "in": "header",
            "required": True,
            "description": "The API, version and mode that should answer.",
            "schema": {
                "type": "string",
                "enum": [
                    f"{doc.api_name}-{version.version}+prod",
                    f"{doc.api_name}-{version.version}+test",
                ],
            },
        }
    )
    parameters += [
        {"name": name, "in": "query", "required": True, "schema": {"type": "string"}}
        for name in declared.url_arguments
    ]
    paging = declared.paged_results
    if paging is not None:
        parameters += [
            {
                "name": "page",
                "in": "query",
                "required": False,
                "schema": {
                    "type": "integer",
                    "minimum": 0,
                    "default": paging.default_page,
                },
            },
            {
                "name": "page_len",
                "in": "query",
                "required": False,
                "schema": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": paging.max_page_len,
                    "default": paging.default_page_len,
                },
            },
        ]
    operation: Dict[str, Any] = {
        "operationId": operation_id,
        "tags": [call.name],
        "parameters": parameters,
    }
    if method.docstring:
        operation["summary"] = _summary(method.docstring)
        operation["description"] = as_markdown(method.docstring, doc.docstring_format)
    # Any request may be refused by the HTTP layer, routed nowhere, or fail.
    statuses = ["400", "404", "405", "406", "408", "414", "431", "500"]
    if declared.json_arguments:
        operation["requestBody"] = {
            "required": True,
            "content": {
                declared.json_content_type or "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            argument.name: _schema_for(
                                tuple(t.__name__ for t in argument.types)
                            )
                            for argument in declared.json_arguments
                        },
                        "required": [
                            a.name for a in declared.json_arguments if not a.optional
                        ],
                    }
                }
            },
        }
        statuses.append("413")
    if declared.http_basic_realm is not None:
        operation["security"] = [{"basic": []}]
        statuses.append("401")
    if declared.access_rule is not None:
        operation["x-shiji-requires"] = declared.access_rule
        statuses.append("401")
        if declared.may_deny:
            statuses.append("403")
    statuses += ["409", "503"]
    success: Dict[str, Any] = {
        "description": "The call's result.",
        "content": {"application/json": {"schema": {}}},
    }
    deprecation = version.deprecation
    if deprecation is not None:
        operation["deprecated"] = True
        success["headers"] = _DEPRECATION_HEADERS
        if deprecation.gone_after_sunset:
            statuses.append("410")
    operation["responses"] = {
        "200": success,
        **{
            status: {"$ref": f"#/components/responses/Error{status}"}
            for status in sorted(set(statuses))
            if status in error_statuses
        },
    }
    return operation


def _error_response(status: str, classes: List[str]) -> Dict[str, Any]:
    return {
        "description": f"{_STATUS_TEXT[status]} One of: {', '.join(sorted(classes))}.",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}},
            "application/problem+json": {
                "schema": {"$ref": "#/components/schemas/Problem"}
            },
        },
    }


def openapi_document(
    doc: APIDoc,
    version_key: str,
    *,
    mount: Optional[str] = None,
    version_header: str = "X-API-Version",
    server_url: Optional[str] = None,
) -> Dict[str, Any]:
    """
    The OpenAPI 3.1 document of one version of ``doc``.

    :param mount: the path the API is served under; ``/<api_name>`` by default.
    :param version_header: the header naming the version.
    :param server_url: the server's address, if known.
    """
    version = doc.version(version_key)
    mount = mount or f"/{doc.api_name}"
    by_status: Dict[str, List[str]] = {}
    for error in version.errors:
        if str(error.http_status) in _STATUS_TEXT:
            by_status.setdefault(str(error.http_status), []).append(
                error.exception_class
            )
    paths: Dict[str, Dict[str, Any]] = {}
    unlisted = []
    for call in version.calls:
        for index, route in enumerate(call.routes):
            path = openapi_path(route, mount)
            if path is None:
                unlisted.append(readable_route(route))
                continue
            item = paths.setdefault(path, {})
            for method in call.methods:
                name = method.method.lower()
                if name in (
                    "get",
                    "put",
                    "post",
                    "delete",
                    "options",
                    "head",
                    "patch",
                    "trace",
                ):
                    item[name] = _operation(
                        doc,
                        version,
                        call,
                        method,
                        route,
                        version_header,
                        f"{call.name}_{method.method}_{index}",
                        set(by_status),
                    )
    info: Dict[str, Any] = {"title": doc.api_name, "version": version.version}
    if version.deprecation is not None:
        info["x-shiji-deprecation"] = version.deprecation.describe()
    if doc.description:
        info["description"] = as_markdown(doc.description, doc.docstring_format)
    classes = sorted(e.exception_class for e in version.errors)
    document: Dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": info,
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["result", "error"],
                    "properties": {
                        "result": {"type": "null"},
                        "error": {
                            "type": "object",
                            "required": [
                                "error_code",
                                "exception_class",
                                "exception_text",
                            ],
                            "properties": {
                                "error_code": {"type": "integer"},
                                "exception_class": {"type": "string", "enum": classes},
                                "exception_text": {"type": "string"},
                            },
                        },
                    },
                },
                "Problem": {
                    "description": (
                        "RFC 9457 problem details, sent when the request's Accept "
                        "asks for application/problem+json."
                    ),
                    "type": "object",
                    "required": [
                        "type",
                        "title",
                        "status",
                        "detail",
                        "error_code",
                        "exception_class",
                    ],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "error_code": {"type": "integer"},
                        "exception_class": {"type": "string", "enum": classes},
                    },
                },
            },
            "responses": {
                f"Error{status}": _error_response(status, classes)
                for status, classes in sorted(by_status.items())
            },
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
        },
    }
    if server_url:
        document["servers"] = [{"url": server_url}]
    if unlisted:
        document["x-shiji-unlisted-routes"] = unlisted
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
