"""
API documentation as one self-contained HTML page.
"""

from __future__ import annotations

import re
from html import escape
from typing import List

from .._version_header import VersionHeader
from .docstrings import to_html
from .model import APIDoc, CallDoc, MethodDoc, VersionDoc, interface
from .render import answer_words, deprecation_notice, error_words, parameter_rows
from .schema_words import BodyWords, body_words

__all__ = ["html_document"]

_STYLE = """
:root { --ink: #1d2430; --muted: #5b6576; --line: #dde3ea; --paper: #fbfcfd;
  --accent: #2457c5; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.55 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--ink); background: var(--paper); display: flex; }
nav { width: 260px; flex: none; height: 100vh; position: sticky; top: 0;
  overflow-y: auto; padding: 24px 18px; border-right: 1px solid var(--line);
  background: #fff; }
nav h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .06em;
  color: var(--muted); margin: 18px 0 6px; }
nav a { display: block; color: var(--ink); text-decoration: none; padding: 3px 6px;
  border-radius: 4px; font-size: 14px; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; }
nav a:hover { background: #eef2f8; }
main { flex: 1; max-width: 980px; padding: 32px 48px 80px; }
h1 { margin-top: 0; } h2 { border-bottom: 1px solid var(--line); padding-bottom: 6px;
  margin-top: 48px; }
.call { background: #fff; border: 1px solid var(--line); border-radius: 8px;
  padding: 4px 22px 14px; margin: 22px 0; }
.route { font: 600 16px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
.badge { display: inline-block; min-width: 64px; text-align: center; color: #fff;
  font: 700 12px/22px ui-monospace, monospace; border-radius: 4px; margin-right: 10px;
  padding: 0 6px; }
.GET { background: #1f8a4c; } .POST { background: #2457c5; } .PUT { background: #b26a00; }
.PATCH { background: #7a4fc4; } .DELETE { background: #c23b3b; } .other { background: #596273; }
table { border-collapse: collapse; width: 100%; margin: 10px 0 18px; font-size: 14px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 90%;
  background: #eef2f8; padding: 1px 4px; border-radius: 3px; }
pre code { display: block; padding: 10px; overflow-x: auto; }
.muted { color: var(--muted); }
.deprecated { border-left: 4px solid #c23b3b; background: #fdf1f1; padding: 8px 12px; }
"""


def _anchor(*parts: str) -> str:
    return "-".join(re.sub(r"[^A-Za-z0-9]+", "-", part).strip("-") for part in parts)


def _badge(method: str) -> str:
    known = method in ("GET", "POST", "PUT", "PATCH", "DELETE")
    return f'<span class="badge {method if known else "other"}">{escape(method)}</span>'


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _body(heading: str, words: BodyWords) -> List[str]:
    text = f"{heading}: {escape(words.type)}."
    if words.description:
        text += f" {escape(words.description)}"
    out = [f"<p>{text}</p>"]
    if words.fields:
        out.append(
            "<table><thead><tr><th>Field</th><th>Type</th><th>Required</th>"
            "<th>Rules</th><th>Description</th></tr></thead><tbody>"
        )
        out += [
            f"<tr><td><code>{escape(row.field)}</code></td><td>{escape(row.type)}</td>"
            f"<td>{_yes(row.required)}</td><td>{escape(row.rules)}</td>"
            f"<td>{escape(row.description)}</td></tr>"
            for row in words.fields
        ]
        out.append("</tbody></table>")
    return out


def _method(doc: APIDoc, call: CallDoc, method: MethodDoc) -> List[str]:
    declared = interface(call.routes, method)
    out = [f"<h4>{_badge(method.method)}{escape(call.readable_routes[0])}</h4>"]
    if method.docstring:
        out.append(to_html(method.docstring, doc.docstring_format))
    if declared.requires is not None:
        out.append(f'<p class="muted">Requires {escape(declared.requires)}.</p>')
    if declared.parameters:
        out.append(
            "<table><thead><tr><th>Parameter</th><th>In</th><th>Type</th>"
            "<th>Required</th><th>Rules</th><th>Description</th></tr></thead><tbody>"
        )
        out += [
            f"<tr><td><code>{escape(row.field)}</code></td>"
            f"<td>{escape(parameter.location)}</td><td>{escape(row.type)}</td>"
            f"<td>{_yes(row.required)}</td><td>{escape(row.rules)}</td>"
            f"<td>{escape(row.description)}</td></tr>"
            for parameter, row in zip(declared.parameters, parameter_rows(declared))
        ]
        out.append("</tbody></table>")
    body = declared.body
    if body is not None:
        out += _body(
            f"Request body, <code>{escape(body.content_type)}</code>",
            body_words(body.schema, body.description),
        )
    for response in declared.responses:
        answer = answer_words(response)
        if answer is None:
            text = f"Response {response.status}: no body."
            if response.description:
                text += f" {escape(response.description)}"
            out.append(f"<p>{text}</p>")
        else:
            out += _body(f"Response {response.status}", answer)
    if declared.errors:
        out.append(
            f'<p class="muted">Errors: {escape(error_words(declared.errors))}.</p>'
        )
    return out


def _version(doc: APIDoc, version: VersionDoc, version_header: str) -> List[str]:
    out = [
        f'<h2 id="{_anchor("v", version.version)}">Version {escape(version.version)}</h2>',
        f'<p class="muted">Header: <code>{escape(version_header)}: '
        f"{escape(str(VersionHeader(doc.api_name, version.version)))}</code> "
        "(or <code>+test</code>)</p>",
    ]
    if version.deprecation is not None:
        out.append(f'<p class="deprecated">{escape(deprecation_notice(version))}</p>')
    for call in version.calls:
        routes = ", ".join(f"{escape(route)}" for route in call.readable_routes)
        out.append(
            f'<section class="call" id="{_anchor("v", version.version, call.name)}">'
            f'<h3 class="route">{routes}</h3>'
        )
        if call.description:
            out.append(to_html(call.description, doc.docstring_format))
        for method in call.methods:
            out += _method(doc, call, method)
        out.append("</section>")
    out += [
        f'<h3 id="{_anchor("v", version.version, "errors")}">Errors</h3>',
        "<table><thead><tr><th>exception_class</th><th>error_code</th><th>HTTP</th>"
        "<th>exception_text</th></tr></thead><tbody>",
    ]
    out += [
        f'<tr id="{_anchor("v", version.version, "error", error.exception_class)}">'
        f"<td><code>{escape(error.exception_class)}</code></td><td>{error.error_code}</td>"
        f"<td>{error.http_status}</td><td>{escape(error.exception_text)}</td></tr>"
        for error in version.errors
    ]
    out.append("</tbody></table>")
    return out


def html_document(doc: APIDoc, version_header: str = "X-API-Version") -> str:
    """The whole API's documentation as one HTML page, styles included."""
    nav = [f"<strong>{escape(doc.api_name)}</strong>"]
    body = [f"<h1>{escape(doc.api_name)}</h1>"]
    if doc.description:
        body.append(to_html(doc.description, doc.docstring_format))
    body.append(
        '<p class="muted">Every error is sent as <code>{"result": null, "error": '
        '{"error_code", "exception_class", "exception_text"}}</code>.</p>'
    )
    for version in reversed(doc.versions):
        label = escape(version.version) + (
            " (deprecated)" if version.deprecation else ""
        )
        nav.append(f'<h2><a href="#{_anchor("v", version.version)}">{label}</a></h2>')
        nav += [
            f'<a href="#{_anchor("v", version.version, call.name)}">'
            f"{escape(call.readable_routes[0])}</a>"
            for call in version.calls
        ]
        nav.append(f'<a href="#{_anchor("v", version.version, "errors")}">Errors</a>')
        body += _version(doc, version, version_header)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(doc.api_name)} API</title><style>{_STYLE}</style></head>"
        f"<body><nav>{''.join(nav)}</nav><main>{''.join(body)}</main></body></html>\n"
    )
