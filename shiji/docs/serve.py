"""
The documentation shijid serves under ``/_docs/``.

- ``/_docs/``: an index of the APIs served;
- ``/_docs/<api>/``: the API's HTML documentation;
- ``/_docs/<api>/openapi.json``: the index of its OpenAPI documents;
- ``/_docs/<api>/<version>/openapi.json``: one version's OpenAPI document.

Everything is rendered once, when the daemon starts.
"""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any, Dict, Iterable, Tuple

from twisted.web import resource
from twisted.web.server import NOT_DONE_YET

from .._errors import MethodNotAllowedError, UnknownAPICallError, clip
from .._request import JSON_CONTENT_TYPE
from .._response import write_error
from .html import html_document
from .model import describe_api
from .openapi import openapi_document, openapi_index

__all__ = ["DOCS_PREFIX", "DocsResource"]

DOCS_PREFIX = b"/_docs"

_HTML = b"text/html; charset=utf-8"
# The pages carry no script: forbid everything but their inline styles.
_CSP = b"default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
_LITERAL = re.compile(r"[A-Za-z0-9_.~-]+")


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"


class DocsResource(resource.Resource):
    """
    Serves the rendered documentation of ``apis``, ``(url_regex, package)``
    pairs as given to ``APIRouter``, documenting ``version_header``.
    """

    isLeaf = True

    def __init__(
        self,
        apis: Iterable[Tuple[str, Any]],
        version_header: str = "X-API-Version",
    ) -> None:
        super().__init__()
        self.pages: Dict[str, Tuple[bytes, bytes]] = {}
        links = []
        for regex, api in apis:
            doc = describe_api(api)
            name = doc.api_name
            mount = f"/{regex}" if _LITERAL.fullmatch(regex) else f"/{name}"
            page = html_document(doc, version_header)
            self.pages[f"/{name}/"] = (_HTML, page.encode("utf-8"))
            self.pages[f"/{name}/openapi.json"] = (
                JSON_CONTENT_TYPE,
                _json(
                    openapi_index(doc, lambda v, n=name: f"/_docs/{n}/{v}/openapi.json")
                ),
            )
            for version in doc.versions:
                document = openapi_document(
                    doc, version.version, mount=mount, version_header=version_header
                )
                self.pages[f"/{name}/{version.version}/openapi.json"] = (
                    JSON_CONTENT_TYPE,
                    _json(document),
                )
            versions = ", ".join(
                f'<a href="/_docs/{escape(name)}/{escape(v.version)}/openapi.json">'
                f"{escape(v.version)}</a>"
                for v in reversed(doc.versions)
            )
            links.append(
                f'<li><a href="/_docs/{escape(name)}/">{escape(name)}</a> '
                f"(OpenAPI: {versions})</li>"
            )
        index = (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            "<title>API documentation</title></head><body>"
            f"<h1>API documentation</h1><ul>{''.join(links)}</ul></body></html>\n"
        )
        self.pages["/"] = (_HTML, index.encode("utf-8"))

    def render(self, request: Any) -> int:
        path = request.path[len(DOCS_PREFIX) :].decode("utf-8", "replace") or "/"
        if path not in self.pages:
            write_error(request, UnknownAPICallError(request, clip("_docs" + path)))
        elif request.method not in (b"GET", b"HEAD"):
            error = MethodNotAllowedError(
                request, clip(request.method.decode("latin-1"))
            )
            error.headers["Allow"] = "GET, HEAD"
            write_error(request, error)
        else:
            content_type, body = self.pages[path]
            request.setHeader(b"content-type", content_type)
            request.setHeader(b"content-length", b"%d" % len(body))
            request.setHeader(b"content-security-policy", _CSP)
            request.setHeader(b"x-content-type-options", b"nosniff")
            request.write(body)
            request.finish()
        return NOT_DONE_YET
