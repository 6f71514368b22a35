"""
API documentation as self-contained HTML pages: one page per API, and the
index of the APIs a server runs.

Each call is shown at the paths it is served at (under the API's
:class:`~shiji.docs.prefix.ServedPrefix`), each method with what it
declares, the errors it may answer with and a ``curl`` command; each
version with its version header and, when shijid serves the page, links to
its OpenAPI document and explorer.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from html import escape
from typing import Callable, List, Optional, Sequence, Tuple

from .._version_header import VersionHeader
from .docstrings import to_html
from .model import (
    APIDoc,
    CallDoc,
    ErrorDoc,
    MethodDoc,
    MethodInterface,
    VersionDoc,
    interface,
)
from .openapi import DEFAULT_AUTH_SCHEME
from .prefix import ServedPrefix, default_prefix
from .render import answer_words, deprecation_notice, parameter_rows
from .schema_words import BodyWords, body_words
from .style import html_page
from .usage import (
    DEFAULT_SERVER,
    curl_command,
    served_path,
    served_paths,
    where_served,
)

__all__ = [
    "IndexEntry",
    "PageLinks",
    "html_document",
    "index_document",
    "with_server",
]


@dataclass(frozen=True)
class PageLinks:
    """Where an API's page and the pages beside it are, when served."""

    #: The index of every API served.
    index: str
    #: The API's page.
    page: str
    #: A version's OpenAPI document, given the version.
    openapi: Callable[[str], str]
    #: A version's interactive explorer, given the version; ``None`` when
    #: there is none.
    explorer: Optional[Callable[[str], str]] = None


@dataclass(frozen=True)
class IndexEntry:
    """One API in the index of APIs."""

    doc: APIDoc
    prefix: ServedPrefix
    links: PageLinks


def _anchor(*parts: str) -> str:
    return "-".join(re.sub(r"[^A-Za-z0-9]+", "-", part).strip("-") for part in parts)


def _badge(method: str) -> str:
    known = method in ("GET", "POST", "PUT", "PATCH", "DELETE")
    return f'<span class="badge {method if known else "other"}">{escape(method)}</span>'


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _table(headings: Sequence[str], rows: Sequence[str]) -> str:
    """A table that scrolls in its own box when it is wider than the page."""
    head = "".join(f"<th>{escape(heading)}</th>" for heading in headings)
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _sentence(parts: Sequence[str]) -> str:
    """Text and code alternating, the text first, as HTML."""
    return "".join(
        f"<code>{escape(part)}</code>" if index % 2 else escape(part)
        for index, part in enumerate(parts)
    )


def _body(heading: str, words: BodyWords) -> List[str]:
    text = f"{heading}: {escape(words.type)}."
    if words.description:
        text += f" {escape(words.description)}"
    out = [f"<p>{text}</p>"]
    if words.fields:
        out.append(
            _table(
                ("Field", "Type", "Required", "Rules", "Description"),
                [
                    f"<tr><td><code>{escape(row.field)}</code></td>"
                    f"<td>{escape(row.type)}</td><td>{_yes(row.required)}</td>"
                    f"<td>{escape(row.rules)}</td><td>{escape(row.description)}</td></tr>"
                    for row in words.fields
                ],
            )
        )
    return out


def _errors(
    version: VersionDoc, declared: MethodInterface
) -> List[Tuple[ErrorDoc, str]]:
    """
    The errors a method may answer with, beyond those of any call: those its
    decorators declare, then, unless the handler declares its own
    (``webapi.raises``), the API's (any handler may raise them).
    """
    found = {error.exception_class: (error, "declared") for error in declared.errors}
    if not declared.handler_errors:
        for error in version.own_errors:
            found.setdefault(error.exception_class, (error, "the API"))
    return list(found.values())


def _error_rows(version: VersionDoc, errors: Sequence[Tuple[ErrorDoc, str]]) -> str:
    return _table(
        ("exception_class", "HTTP", "error_code", "exception_text", "from"),
        [
            f'<tr><td><a href="#{_anchor("v", version.version, "error", e.exception_class)}">'
            f"<code>{escape(e.exception_class)}</code></a></td><td>{e.http_status}</td>"
            f"<td>{e.error_code}</td><td>{escape(e.exception_text)}</td>"
            f"<td>{source}</td></tr>"
            for e, source in errors
        ],
    )


def _method(
    doc: APIDoc,
    version: VersionDoc,
    call: CallDoc,
    method: MethodDoc,
    prefix: ServedPrefix,
    server: str,
    version_header: str,
) -> List[str]:
    declared = interface(call.routes, method)
    route = call.routes[0] if call.routes else ""
    out = [f"<h4>{_badge(method.method)}{escape(served_path(route, prefix))}</h4>"]
    if method.docstring:
        out.append(to_html(method.docstring, doc.docstring_format))
    if declared.requires is not None:
        out.append(f'<p class="muted">Requires {escape(declared.requires)}.</p>')
    if declared.parameters:
        out.append(
            _table(
                ("Parameter", "In", "Type", "Required", "Rules", "Description"),
                [
                    f"<tr><td><code>{escape(row.field)}</code></td>"
                    f"<td>{escape(parameter.location)}</td><td>{escape(row.type)}</td>"
                    f"<td>{_yes(row.required)}</td><td>{escape(row.rules)}</td>"
                    f"<td>{escape(row.description)}</td></tr>"
                    for parameter, row in zip(
                        declared.parameters, parameter_rows(declared)
                    )
                ],
            )
        )
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
    out.append("<h5>Errors</h5>")
    errors = _errors(version, declared)
    if errors:
        out.append(_error_rows(version, errors))
    every = _anchor("v", version.version, "errors")
    out.append(
        f'<p class="muted">{"And" if errors else "Only"} the errors any call may '
        f'answer with (see <a href="#{every}">every error</a>).</p>'
    )
    command = curl_command(
        doc.api_name,
        version.version,
        method.method,
        route,
        declared,
        prefix,
        server,
        version_header,
        version.auth_scheme if version.auth_scheme is not None else DEFAULT_AUTH_SCHEME,
    )
    out += ["<h5>Example</h5>", f"<pre><code>{escape(command)}</code></pre>"]
    return out


def _version_links(version: VersionDoc, links: PageLinks) -> str:
    found = [f'<a href="{escape(links.openapi(version.version))}">OpenAPI document</a>']
    if links.explorer is not None:
        found.append(
            f'<a href="{escape(links.explorer(version.version))}">explorer</a>'
        )
    return f'<p class="links">{"".join(found)}</p>'


def _version(
    doc: APIDoc,
    version: VersionDoc,
    version_header: str,
    prefix: ServedPrefix,
    server: str,
    links: Optional[PageLinks],
) -> List[str]:
    out = [
        f'<h2 id="{_anchor("v", version.version)}">Version {escape(version.version)}</h2>',
        f'<p class="muted">Header: <code>{escape(version_header)}: '
        f"{escape(str(VersionHeader(doc.api_name, version.version)))}</code> "
        "(or <code>+test</code>)</p>",
    ]
    if version.deprecation is not None:
        out.append(f'<p class="deprecated">{escape(deprecation_notice(version))}</p>')
    if links is not None:
        out.append(_version_links(version, links))
    for call in version.calls:
        paths = "".join(
            f"<span>{escape(path)}</span>" for path in served_paths(call, prefix)
        )
        out.append(
            f'<section class="call" id="{_anchor("v", version.version, call.name)}">'
            f'<h3 class="route">{paths}</h3>'
        )
        if call.description:
            out.append(to_html(call.description, doc.docstring_format))
        if call.filters:
            out.append("<p>Filters, in the order they run:</p>")
            out.append(
                "<ul>"
                + "".join(
                    f"<li><code>{escape(found.name)}</code>"
                    + (f": {escape(found.description)}" if found.description else "")
                    + "</li>"
                    for found in call.filters
                )
                + "</ul>"
            )
        for method in call.methods:
            out += _method(doc, version, call, method, prefix, server, version_header)
        out.append("</section>")
    out += [
        f'<h3 id="{_anchor("v", version.version, "errors")}">Errors</h3>',
        '<p class="muted">Every error a call of this version may answer with: '
        "Shiji's (the HTTP layer's, the router's, the decorators') and the "
        "API's own.</p>",
        _table(
            ("exception_class", "error_code", "HTTP", "exception_text"),
            [
                f'<tr id="{_anchor("v", version.version, "error", error.exception_class)}">'
                f"<td><code>{escape(error.exception_class)}</code></td>"
                f"<td>{error.error_code}</td><td>{error.http_status}</td>"
                f"<td>{escape(error.exception_text)}</td></tr>"
                for error in version.errors
            ],
        ),
    ]
    return out


def html_document(
    doc: APIDoc,
    version_header: str = "X-API-Version",
    prefix: Optional[ServedPrefix] = None,
    *,
    server: str = DEFAULT_SERVER,
    links: Optional[PageLinks] = None,
) -> str:
    """
    The whole API's documentation as one HTML page, styles included.

    :param version_header: the name of the version header.
    :param prefix: where the API is served; at its name if not given.
    :param server: the base URL (``scheme://host[:port]``) the page's
        commands call.
    :param links: where the index, the OpenAPI documents and the explorers
        are, when the page is served with them; a page written alone links
        only within itself.
    """
    prefix = prefix if prefix is not None else default_prefix(doc.api_name)
    nav = []
    if links is not None:
        nav.append(f'<a class="home" href="{escape(links.index)}">All APIs</a>')
    nav.append(f"<strong>{escape(doc.api_name)}</strong>")
    body = [f"<h1>{escape(doc.api_name)}</h1>"]
    if doc.description:
        body.append(to_html(doc.description, doc.docstring_format))
    body += [
        f"<p>{_sentence(where_served(prefix))}</p>",
        '<p class="muted">Every error is sent as <code>{"result": null, "error": '
        '{"error_code", "exception_class", "exception_text"}}</code>.</p>',
    ]
    for version in reversed(doc.versions):
        label = escape(version.version) + (
            " (deprecated)" if version.deprecation else ""
        )
        nav.append(f'<h2><a href="#{_anchor("v", version.version)}">{label}</a></h2>')
        nav += [
            f'<a href="#{_anchor("v", version.version, call.name)}">'
            f"{escape(call.readable_routes[0] if call.readable_routes else '')}</a>"
            for call in version.calls
        ]
        nav.append(f'<a href="#{_anchor("v", version.version, "errors")}">Errors</a>')
        body += _version(doc, version, version_header, prefix, server, links)
    return html_page(f"{doc.api_name} API", "".join(body), "".join(nav))


# A command's URL as the page shows it: a word of the characters a shell
# leaves alone, or one in single quotes (which the page writes as &#x27;).
_QUOTE = escape("'").encode()
_URL_WORD = rb"([A-Za-z0-9_@%+=:,./-]*)"


def with_server(page: bytes, placeholder: str, server: str) -> bytes:
    """
    ``page``, an :func:`html_document` whose commands call ``placeholder``
    (a base URL a shell leaves alone), calling ``server`` instead (a base
    URL with no quote): a URL the substitution leaves needing quotes for a
    shell (``http://[::1]:9990/...``) gets them.
    """
    target = server.encode()
    if shlex.quote(server) == server:
        return page.replace(placeholder.encode(), target)

    def fill(found: re.Match[bytes]) -> bytes:
        start = found.start()
        if page[start - len(_QUOTE) : start] == _QUOTE:
            return target + found.group(1)
        return escape(shlex.quote((target + found.group(1)).decode())).encode()

    return re.sub(re.escape(placeholder.encode()) + _URL_WORD, fill, page)


def _summary(doc: APIDoc) -> str:
    """The first paragraph of the API's description, as HTML."""
    first = doc.description.strip().split("\n\n", 1)[0]
    return to_html(first, doc.docstring_format) if first else ""


def _index_entry(entry: IndexEntry, version_header: str) -> str:
    doc, links = entry.doc, entry.links
    out = [
        '<section class="card">',
        f'<h2><a href="{escape(links.page)}">{escape(doc.api_name)}</a></h2>',
        _summary(doc),
        f"<p>{_sentence(where_served(entry.prefix))}</p>",
        '<ul class="versions">',
    ]
    for version in reversed(doc.versions):
        header = str(VersionHeader(doc.api_name, version.version))
        documents = [f'<a href="{escape(links.openapi(version.version))}">OpenAPI</a>']
        if links.explorer is not None:
            documents.append(
                f'<a href="{escape(links.explorer(version.version))}">explorer</a>'
            )
        state = " (deprecated)" if version.deprecation is not None else ""
        out.append(
            f'<li><a class="version" href="{escape(links.page)}'
            f'#{_anchor("v", version.version)}">{escape(version.version)}</a>'
            f"{state} <code>{escape(version_header)}: {escape(header)}</code> "
            f'<span class="links">{"".join(documents)}</span></li>'
        )
    out += ["</ul>", "</section>"]
    return "".join(out)


def index_document(
    entries: Sequence[IndexEntry], version_header: str = "X-API-Version"
) -> str:
    """The index of the APIs a server runs, in the style of their pages."""
    count = len(entries)
    body = [
        "<h1>API documentation</h1>",
        f'<p class="muted">{count} API{"" if count == 1 else "s"} served here. '
        f"Every call names the API and version it is for in the "
        f"<code>{escape(version_header)}</code> header.</p>",
    ]
    body += [_index_entry(entry, version_header) for entry in entries]
    return html_page("API documentation", "".join(body), page_class="index")
