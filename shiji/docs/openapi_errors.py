"""
How OpenAPI documents describe Shiji's errors: the schemas of the error
envelope (``Error``), of RFC 9457 problem details (``Problem``) and of one
failing field (``FieldError``), and the answer of an error status, which
names the errors behind it and carries both media types.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping

from .._errors import status_phrase
from .model import ErrorDoc

__all__ = ["ERROR_CONTENT", "error_description", "error_schemas"]

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

#: The members problem details always have.
_PROBLEM_REQUIRED = [
    "type",
    "title",
    "status",
    "detail",
    "error_code",
    "exception_class",
]

#: The content of every error answer: the envelope, or problem details.
ERROR_CONTENT: Mapping[str, Any] = {
    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}},
    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}},
}


def error_description(status: int, errors: Iterable[ErrorDoc]) -> str:
    """The description of the answer ``status``: its phrase, and a line for
    each of ``errors`` (its class, code and text), sorted by class."""
    lines = [
        f"- `{e.exception_class}` ({e.error_code}): {e.exception_text}"
        for e in sorted(errors, key=lambda e: e.exception_class)
    ]
    return f"{status_phrase(status)}.\n\n" + "\n".join(lines)


def error_schemas(classes: List[str]) -> Dict[str, Any]:
    """The ``Error``, ``Problem`` and ``FieldError`` schemas, for a version
    whose errors are ``classes`` (their ``exception_class``, sorted)."""
    return {
        "Error": {
            "description": "The error envelope.",
            "type": "object",
            "required": ["result", "error"],
            "properties": {
                "result": {"type": "null"},
                "error": {
                    "type": "object",
                    "required": ["error_code", "exception_class", "exception_text"],
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
            "required": _PROBLEM_REQUIRED,
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
    }
