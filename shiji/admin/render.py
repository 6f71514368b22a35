"""
API documentation as JSON (the original Shiji's structure) and as Markdown.
"""

from __future__ import annotations

from typing import Any, Dict, List

from .docstrings import as_markdown, to_html
from .model import APIDoc, CallDoc, MethodDoc, VersionDoc, parameters

__all__ = ["deprecation_notice", "json_document", "markdown_document"]


def json_document(doc: APIDoc) -> Dict[str, Any]:
    """
    ``{"api_name", "versions": {<version>: {"calls": {<route>: {<VERB>:
    <docstring as HTML>}}, "error_codes": {<exception_class>:
    {"error_code", "exception_text"}}}}}``.
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
        }
        if version.deprecation is not None:
            versions[version.version]["deprecation"] = version.deprecation.describe()
    return {"api_name": doc.api_name, "versions": versions}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown_method(doc: APIDoc, call: CallDoc, method: MethodDoc) -> List[str]:
    lines = [f"#### {method.method}", ""]
    if method.docstring:
        lines += [as_markdown(method.docstring, doc.docstring_format), ""]
    rule = method.declarations.access_rule
    if rule is not None:
        lines += [f"*Requires {rule}.*", ""]
    rows = parameters(call.routes, method)
    if rows:
        lines += [
            "| Argument | In | Type | Required | Notes |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| `{_cell(p.name)}` | {p.location} | {' or '.join(p.types)} | "
            f"{'yes' if p.required else 'no'} | {_cell(p.detail)} |"
            for p in rows
        ]
        lines.append("")
    return lines


def _markdown_version(
    doc: APIDoc, version: VersionDoc, version_header: str
) -> List[str]:
    lines = [
        f"## Version {version.version}",
        "",
        f"Ask for it with `{version_header}: {doc.api_name}-{version.version}+prod` "
        f"(or `+test`).",
        "",
    ]
    if version.deprecation is not None:
        lines += [f"> **{deprecation_notice(version)}**", ""]
    for call in version.calls:
        routes = ", ".join(f"`{route}`" for route in call.readable_routes)
        lines += [f"### {routes}", ""]
        if call.description:
            lines += [as_markdown(call.description, doc.docstring_format), ""]
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


def markdown_document(doc: APIDoc, version_header: str = "X-API-Version") -> str:
    """The API's documentation as Markdown, for READMEs and wikis."""
    lines = [f"# {doc.api_name}", ""]
    if doc.description:
        lines += [as_markdown(doc.description, doc.docstring_format), ""]
    lines += [
        "Versions: " + ", ".join(version.version for version in doc.versions) + ".",
        "Every error is sent as "
        '`{"result": null, "error": {"error_code": ..., "exception_class": ..., '
        '"exception_text": ...}}`.',
        "",
    ]
    for version in reversed(doc.versions):
        lines += _markdown_version(doc, version, version_header)
    return "\n".join(lines).rstrip() + "\n"
