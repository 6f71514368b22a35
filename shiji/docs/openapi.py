"""
OpenAPI 3.1 documents: one per API version, and an index of them.

Everything comes from what the code declares: routes and their named groups
(path parameters, with the group's pattern), what each decorator on a
handler describes (its parameters with their schemas, the request body, the
answers, the errors, security schemes and requirements), the version header
(a required header with its allowed values) and the error envelope with
every error class as responses.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Dict, List, Optional, Set

from .._errors import status_phrase
from .._request import has_body
from .._version_header import API_MODES, VersionHeader
from ..webapi import Response
from .docstrings import as_markdown
from .model import (
    APIDoc,
    CallDoc,
    MethodDoc,
    ParameterDoc,
    VersionDoc,
    interface,
    readable_route,
)

__all__ = ["openapi_document", "openapi_index", "openapi_path"]

OPENAPI_VERSION = "3.1.0"

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

#: The error statuses any operation may answer with: the HTTP layer's
#: refusals, no such call or method, an API error, a failure or a timeout.
_EVERY_OPERATION = (
    "400",
    "404",
    "405",
    "406",
    "408",
    "409",
    "414",
    "431",
    "500",
    "503",
)

#: Header parameters OpenAPI ignores (security schemes and media types
#: describe them).
_IGNORED_HEADERS = ("accept", "content-type", "authorization")

#: One failing field of a request, in the error envelope's ``fields`` and
#: problem details' ``errors``.
_FIELD_ERROR = {
    "type": "object",
    "required": ["field", "in", "reason", "expected"],
    "properties": {
        "field": {
            "type": "string",
            "description": "The field's path: client.address.zip, tags[2].",
        },
        "in": {"type": "string", "enum": ["body", "query", "path", "header"]},
        "reason": {
            "type": "string",
            "description": "What is wrong: missing, wrong type, too long...",
        },
        "expected": {
            "type": "string",
            "description": "What would have been accepted, in words.",
        },
        "pointer": {
            "type": "string",
            "description": "A body field as an RFC 6901 JSON Pointer fragment.",
        },
    },
}

_FIELD_ERRORS = {
    "type": "array",
    "items": {"$ref": "#/components/schemas/FieldError"},
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


def _summary(docstring: str) -> str:
    return docstring.strip().split("\n\n", 1)[0].replace("\n", " ")[:200]


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


def _response(response: Response) -> Dict[str, Any]:
    found: Dict[str, Any] = {
        "description": response.description or f"{status_phrase(response.status)}."
    }
    if response.schema is not None and has_body(response.status):
        found["content"] = {"application/json": {"schema": response.schema}}
    return found


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
    declared = interface((route,), method)
    path = [p for p in declared.parameters if p.location == "path"]
    others = [
        p
        for p in declared.parameters
        if p.location != "path"
        and not (p.location == "header" and p.name.lower() in _IGNORED_HEADERS)
    ]
    parameters: List[Dict[str, Any]] = [_parameter(p) for p in path]
    parameters.append(
        {
            "name": version_header,
            "in": "header",
            "required": True,
            "description": "The API, version and mode that should answer.",
            "schema": {
                "type": "string",
                "enum": [
                    str(VersionHeader(doc.api_name, version.version, mode))
                    for mode in sorted(API_MODES)
                ],
            },
        }
    )
    parameters += [_parameter(p) for p in others]
    operation: Dict[str, Any] = {
        "operationId": operation_id,
        "tags": [call.name],
        "parameters": parameters,
    }
    if method.docstring:
        operation["summary"] = _summary(method.docstring)
        operation["description"] = as_markdown(method.docstring, doc.docstring_format)
    body = declared.body
    if body is not None:
        request_body: Dict[str, Any] = {}
        if body.description:
            request_body["description"] = body.description
        request_body["required"] = True
        request_body["content"] = {body.content_type: {"schema": body.schema}}
        operation["requestBody"] = request_body
    if declared.security:
        operation["security"] = [{scheme: [] for scheme in declared.security}]
    if declared.requires is not None:
        operation["x-shiji-requires"] = declared.requires
    statuses = [*_EVERY_OPERATION, *(str(e.http_status) for e in declared.errors)]
    answers = {
        str(response.status): _response(response) for response in declared.responses
    } or {
        "200": {
            "description": "The call's result.",
            "content": {"application/json": {"schema": {}}},
        }
    }
    deprecation = version.deprecation
    if deprecation is not None:
        operation["deprecated"] = True
        for status, answer in answers.items():
            if status.startswith("2"):
                answer["headers"] = _DEPRECATION_HEADERS
        if deprecation.gone_after_sunset:
            statuses.append("410")
    operation["responses"] = {
        **answers,
        **{
            status: {"$ref": f"#/components/responses/Error{status}"}
            for status in sorted(set(statuses))
            if status in error_statuses and status not in answers
        },
    }
    return operation


def _error_response(status: str, classes: List[str]) -> Dict[str, Any]:
    meaning = _STATUS_TEXT.get(status) or f"{status_phrase(int(status))}."
    return {
        "description": f"{meaning} One of: {', '.join(sorted(classes))}.",
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
        by_status.setdefault(str(error.http_status), []).append(error.exception_class)
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
                                "fields": _FIELD_ERRORS,
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
                        "errors": _FIELD_ERRORS,
                    },
                },
                "FieldError": _FIELD_ERROR,
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
    # The schemas are the declarations' own: the caller gets copies.
    return copy.deepcopy(document)


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
