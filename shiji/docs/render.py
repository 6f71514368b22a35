"""
API documentation as JSON (the original Shiji's structure) and as Markdown.

What a method declares is shown from :func:`shiji.docs.model.interface`,
in the words of :mod:`shiji.docs.schema_words`, the same in every format.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional, Sequence

from .._request import has_body
from .._version_header import VersionHeader
from ..webapi import Response
from .docstrings import as_markdown, to_html
from .model import (
    APIDoc,
    CallDoc,
    ErrorDoc,
    MethodDoc,
    MethodInterface,
    VersionDoc,
    interface,
)
from .prefix import ServedPrefix, default_prefix
from .schema_words import BodyWords, FieldRow, body_words, schema_row
from .usage import served_paths, where_served

__all__ = [
    "answer_words",
    "declarations_document",
    "deprecation_notice",
    "error_words",
    "filters_json",
    "json_document",
    "markdown_document",
    "parameter_rows",
]


def parameter_rows(declared: MethodInterface) -> List[FieldRow]:
    """The rows of the method's parameters, in the order declared."""
    return [
        schema_row(p.name, p.schema, p.required, p.description)
        for p in declared.parameters
    ]


def answer_words(response: Response) -> Optional[BodyWords]:
    """The body of an answer in words; ``None`` if it has none."""
    if response.schema is None or not has_body(response.status):
        return None
    return body_words(response.schema, response.description)


def error_words(errors: Sequence[ErrorDoc]) -> str:
    """The errors a method declares, in one line: ``ValueError (409), ...``."""
    return ", ".join(f"{e.exception_class} ({e.http_status})" for e in errors)


def _body_json(words: BodyWords) -> Dict[str, Any]:
    return {
        "type": words.type,
        "description": words.description,
        "fields": [row.as_dict() for row in words.fields],
    }


def _declared_json(declared: MethodInterface) -> Dict[str, Any]:
    parameters = [
        {
            "name": row.field,
            "in": parameter.location,
            "type": row.type,
            "required": row.required,
            "rules": row.rules,
            "description": row.description,
            "schema": parameter.schema,
        }
        for parameter, row in zip(declared.parameters, parameter_rows(declared))
    ]
    body: Optional[Dict[str, Any]] = None
    if declared.body is not None:
        words = body_words(declared.body.schema, declared.body.description)
        body = {
            "content_type": declared.body.content_type,
            **_body_json(words),
            "schema": declared.body.schema,
        }
    responses: Dict[str, Dict[str, Any]] = {}
    for response in declared.responses:
        answer = answer_words(response)
        if answer is None:
            responses[str(response.status)] = {
                "type": None,
                "description": response.description,
                "fields": [],
                "schema": None,
            }
        else:
            responses[str(response.status)] = {
                **_body_json(answer),
                "schema": response.schema,
            }
    return {
        "parameters": parameters,
        "body": body,
        "responses": responses,
        "errors": [
            {
                "exception_class": error.exception_class,
                "error_code": error.error_code,
                "http_status": error.http_status,
            }
            for error in declared.errors
        ],
        "security": list(declared.security),
        "requires": declared.requires,
    }


def filters_json(call: CallDoc) -> List[Dict[str, str]]:
    """The filters around ``call``, in the order they run: ``[{"name":
    ..., "description": <first docstring line>}]``."""
    return [
        {"name": found.name, "description": found.description} for found in call.filters
    ]


def declarations_document(version: VersionDoc) -> Dict[str, Dict[str, Any]]:
    """
    What each method of ``version`` declares, by readable route and method:
    ``{<route>: {<VERB>: {"parameters": [...], "body": {...} or None,
    "responses": {<status>: {...}}, "errors": [...], "security": [...],
    "requires": <words> or None}}}``, each parameter, body and body field
    with its type, rules and description in words; and, for a call with
    filters, ``"filters"``: the filters around it in the order they run
    (see :func:`filters_json`).
    """
    found: Dict[str, Dict[str, Any]] = {}
    for call in version.calls:
        filters = filters_json(call)
        for route, readable in zip(call.routes, call.readable_routes):
            found[readable] = {
                method.method: _declared_json(interface((route,), method))
                for method in call.methods
            }
            if filters:
                for declared in found[readable].values():
                    declared["filters"] = filters
    # The schemas are the declarations' own: the caller gets copies.
    return copy.deepcopy(found)


def json_document(doc: APIDoc) -> Dict[str, Any]:
    """
    ``{"api_name", "versions": {<version>: {"calls": {<route>: {<VERB>:
    <docstring as HTML>}}, "error_codes": {<exception_class>:
    {"error_code", "exception_text"}}, "declarations": {<route>: {<VERB>:
    ...}}}}}``: the original Shiji's structure, and what each method
    declares (:func:`declarations_document`).
    """
    versions = {}
    for version in doc.versions:
        calls: Dict[str, Dict[str, str]] = {}
        for call in version.calls:
            for route in call.readable_routes:
                calls[route] = {
                    method.method: to_html(method.docstring, doc.docstring_format)
                    for method in call.methods
                }
        versions[version.version] = {
            "calls": calls,
            "error_codes": {
                error.exception_class: {
                    "error_code": error.error_code,
                    "exception_text": error.exception_text,
                }
                for error in version.errors
            },
            "declarations": declarations_document(version),
        }
        if version.deprecation is not None:
            versions[version.version]["deprecation"] = version.deprecation.describe()
    return {"api_name": doc.api_name, "versions": versions}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _line(text: str) -> str:
    return " ".join(text.split())


def _markdown_body(heading: str, words: BodyWords) -> List[str]:
    text = f"{heading}: {words.type}."
    if words.description:
        text += f" {_line(words.description)}"
    lines = [text, ""]
    if words.fields:
        lines += [
            "| Field | Type | Required | Rules | Description |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| `{_cell(row.field)}` | {_cell(row.type)} | {_yes(row.required)} | "
            f"{_cell(row.rules)} | {_cell(row.description)} |"
            for row in words.fields
        ]
        lines.append("")
    return lines


def _markdown_method(doc: APIDoc, call: CallDoc, method: MethodDoc) -> List[str]:
    declared = interface(call.routes, method)
    lines = [f"#### {method.method}", ""]
    if method.docstring:
        lines += [as_markdown(method.docstring, doc.docstring_format), ""]
    if declared.requires is not None:
        lines += [f"*Requires {declared.requires}.*", ""]
    if declared.parameters:
        lines += [
            "| Parameter | In | Type | Required | Rules | Description |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| `{_cell(row.field)}` | {parameter.location} | {_cell(row.type)} | "
            f"{_yes(row.required)} | {_cell(row.rules)} | {_cell(row.description)} |"
            for parameter, row in zip(declared.parameters, parameter_rows(declared))
        ]
        lines.append("")
    body = declared.body
    if body is not None:
        lines += _markdown_body(
            f"Request body, `{body.content_type}`",
            body_words(body.schema, body.description),
        )
    for response in declared.responses:
        answer = answer_words(response)
        if answer is None:
            text = f"Response {response.status}: no body."
            if response.description:
                text += f" {_line(response.description)}"
            lines += [text, ""]
        else:
            lines += _markdown_body(f"Response {response.status}", answer)
    if declared.errors:
        lines += [f"Errors: {error_words(declared.errors)}.", ""]
    return lines


def _markdown_filters(call: CallDoc) -> List[str]:
    if not call.filters:
        return []
    lines = ["Filters, in the order they run:", ""]
    for found in call.filters:
        line = f"- `{found.name}`"
        if found.description:
            line += f": {_line(found.description)}"
        lines.append(line)
    return [*lines, ""]


def _code_sentence(parts: Sequence[str]) -> str:
    """Text and code alternating, the text first, as Markdown."""
    return "".join(
        f"`{part}`" if index % 2 else part for index, part in enumerate(parts)
    )


def _served_at(call: CallDoc, prefix: ServedPrefix) -> str:
    paths = [f"`{path}`" for path in served_paths(call, prefix)]
    listed = paths[0] if len(paths) < 2 else f"{', '.join(paths[:-1])} and {paths[-1]}"
    return f"Served at {listed}."


def _markdown_version(
    doc: APIDoc, version: VersionDoc, version_header: str, prefix: ServedPrefix
) -> List[str]:
    lines = [
        f"## Version {version.version}",
        "",
        f"Ask for it with `{version_header}: "
        f"{VersionHeader(doc.api_name, version.version)}` "
        f"(or `+test`).",
        "",
    ]
    if version.deprecation is not None:
        lines += [f"> **{deprecation_notice(version)}**", ""]
    for call in version.calls:
        routes = ", ".join(f"`{route}`" for route in call.readable_routes)
        lines += [f"### {routes}", "", _served_at(call, prefix), ""]
        if call.description:
            lines += [as_markdown(call.description, doc.docstring_format), ""]
        lines += _markdown_filters(call)
        for method in call.methods:
            lines += _markdown_method(doc, call, method)
    lines += [
        f"### Errors of version {version.version}",
        "",
        "| exception_class | error_code | HTTP | exception_text |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {error.exception_class} | {error.error_code} | {error.http_status} | "
        f"{_cell(error.exception_text)} |"
        for error in version.errors
    ]
    lines.append("")
    return lines


def deprecation_notice(version: VersionDoc) -> str:
    """One sentence on a deprecated version: since when, until when, where
    to read more."""
    deprecation = version.deprecation
    assert deprecation is not None
    text = f"Deprecated since {deprecation.deprecated_at.date().isoformat()}"
    if deprecation.sunset_at is not None:
        gone = "answers 410 from" if deprecation.gone_after_sunset else "sunset on"
        text += f"; {gone} {deprecation.sunset_at.date().isoformat()}"
    text += "."
    if deprecation.link:
        text += f" See {deprecation.link}"
    return text


def markdown_document(
    doc: APIDoc,
    version_header: str = "X-API-Version",
    prefix: Optional[ServedPrefix] = None,
) -> str:
    """
    The API's documentation as Markdown, for READMEs and wikis.

    :param version_header: the name of the version header.
    :param prefix: where the API is served; at its name if not given.
    """
    prefix = prefix if prefix is not None else default_prefix(doc.api_name)
    lines = [f"# {doc.api_name}", ""]
    if doc.description:
        lines += [as_markdown(doc.description, doc.docstring_format), ""]
    lines += [
        _code_sentence(where_served(prefix)),
        "",
        "Versions: " + ", ".join(version.version for version in doc.versions) + ".",
        "Every error is sent as "
        '`{"result": null, "error": {"error_code": ..., "exception_class": ..., '
        '"exception_text": ...}}`.',
        "",
    ]
    for version in reversed(doc.versions):
        lines += _markdown_version(doc, version, version_header, prefix)
    return "\n".join(lines).rstrip() + "\n"
