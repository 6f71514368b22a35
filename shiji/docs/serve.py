"""
The documentation shijid serves under ``/_docs/``.

- ``/_docs/``: an index of the APIs served;
- ``/_docs/<api>/``: the API's HTML documentation (``/_docs/<api>``
  redirects there);
- ``/_docs/<api>/openapi.json``: the index of its OpenAPI documents;
- ``/_docs/<api>/<version>/openapi.json``: one version's OpenAPI document;
- ``/_docs/<api>/<version>/explorer``: an interactive explorer of it, when
  the Swagger UI bundle is installed (``shiji[explorer]``).

Every call is shown at the prefix its ``[apis]`` expression serves it at
(:mod:`shiji.docs.prefix`). The API pages' commands and the OpenAPI
documents' servers name the server as the request reached it: its scheme
and its ``Host`` when that is a well-formed host name or address (else the
address the request came in on).

Everything is rendered once, when the daemon starts; the pages naming the
server are rendered naming a placeholder, which each server's name then
replaces (a client naming a new host costs a copy, not a rendering). The
pages of the last few servers are kept.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
from collections import OrderedDict
from typing import Any, Dict, Iterable, Optional, Tuple

from twisted.web import resource
from twisted.web.server import NOT_DONE_YET

from .._errors import MethodNotAllowedError, UnknownAPICallError, clip
from .._request import JSON_CONTENT_TYPE
from .._response import write_error
from .explorer import EXPLORER_CSP, explorer_assets, explorer_page
from .html import IndexEntry, PageLinks, html_document, index_document
from .model import APIDoc, describe_api
from .openapi import openapi_document, openapi_index
from .prefix import ServedPrefix, served_prefix

__all__ = ["DOCS_PREFIX", "DocsResource", "server_url"]

DOCS_PREFIX = b"/_docs"

#: How many servers' (scheme and host) pages are kept rendered.
SERVERS_KEPT = 16

_HTML = b"text/html; charset=utf-8"
# The pages carry no script: forbid everything but their inline styles.
_CSP = b"default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
_EXPLORER_ASSETS = "/swagger-ui/"

# A host name: dot-separated labels of letters, digits, hyphens and
# underscores (IPv4 addresses are such names too); or an IPv6 address in
# brackets. Then an optional port.
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST = re.compile(
    rf"(?P<name>(?:{_LABEL}\.)*{_LABEL}\.?|\[(?P<ipv6>[0-9a-f:.]+)\])"
    r"(?::(?P<port>[0-9]{1,5}))?"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


#: One answer: its content type, body and Content-Security-Policy.
Page = Tuple[bytes, bytes, bytes]


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"


def _authority(scheme: str, host: str, port: Optional[int]) -> str:
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def server_url(request: Any) -> str:
    """
    The base URL (``scheme://host[:port]``) ``request`` reached: its
    ``Host`` when that is a host name, an IPv4 address or an IPv6 address in
    brackets, with a port from 1 to 65535; otherwise the address it came in
    on. Nothing else of the ``Host`` header is ever repeated.
    """
    scheme = "https" if request.isSecure() else "http"
    header = request.getHeader(b"host")
    if header is not None and len(header) <= 260:
        found = _HOST.fullmatch(header.decode("latin-1").lower())
        if found is not None:
            ipv6, port = found.group("ipv6"), found.group("port")
            valid = len(found.group("name")) <= 255
            if ipv6 is not None:
                try:
                    ipaddress.IPv6Address(ipv6)
                except ValueError:
                    valid = False
            number = int(port) if port is not None else None
            if valid and (number is None or 0 < number < 65536):
                return _authority(scheme, found.group("name"), number)
    address = request.getHost()
    host = str(getattr(address, "host", "") or "127.0.0.1")
    if ":" in host:
        try:
            host = f"[{ipaddress.IPv6Address(host.split('%', 1)[0]).compressed}]"
        except ValueError:
            host = "127.0.0.1"
    port = getattr(address, "port", None)
    return _authority(scheme, host, port if isinstance(port, int) else None)


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
        self.version_header = version_header
        #: Pages that are the same whatever the server, by path.
        self.pages: Dict[str, Page] = {}
        #: Pages naming the server, by path, rendered naming
        #: :attr:`placeholder` instead.
        self.templates: Dict[str, Page] = {}
        #: What the templates name instead of a server: a URL no page can
        #: otherwise hold.
        self.placeholder = f"http://server-{secrets.token_hex(8)}.invalid"
        #: ``/_docs/<api>`` paths, which redirect to the API's page.
        self.redirects: Dict[str, bytes] = {}
        #: The pages rendered for each server, the most recently used last.
        self.rendered: OrderedDict[str, Dict[str, Page]] = OrderedDict()
        assets = explorer_assets()
        if assets is not None:
            for name, (content_type, body) in assets.items():
                self.pages[_EXPLORER_ASSETS + name] = (content_type, body, _CSP)
        entries = []
        for regex, api in apis:
            doc = describe_api(api)
            prefix = served_prefix(regex, doc.api_name)
            links = self._links(doc.api_name, explorer=assets is not None)
            entries.append(IndexEntry(doc, prefix, links))
            self._add_api(doc, prefix, links)
        index = index_document(entries, version_header)
        self.pages["/"] = (_HTML, index.encode("utf-8"), _CSP)

    @staticmethod
    def _links(name: str, explorer: bool) -> PageLinks:
        base = f"/_docs/{name}/"
        return PageLinks(
            index="/_docs/",
            page=base,
            openapi=lambda version: f"{base}{version}/openapi.json",
            explorer=(lambda version: f"{base}{version}/explorer")
            if explorer
            else None,
        )

    def _add_api(self, doc: APIDoc, prefix: ServedPrefix, links: PageLinks) -> None:
        name, header, server = doc.api_name, self.version_header, self.placeholder
        self.redirects[f"/{name}"] = f"/_docs/{name}/".encode()
        page = html_document(doc, header, prefix, server=server, links=links)
        self.templates[f"/{name}/"] = (_HTML, page.encode("utf-8"), _CSP)
        self.pages[f"/{name}/openapi.json"] = (
            JSON_CONTENT_TYPE,
            _json(openapi_index(doc, links.openapi)),
            _CSP,
        )
        for version in doc.versions:
            document = openapi_document(
                doc,
                version.version,
                prefix=prefix,
                server=server,
                version_header=header,
            )
            self.templates[f"/{name}/{version.version}/openapi.json"] = (
                JSON_CONTENT_TYPE,
                _json(document),
                _CSP,
            )
            if links.explorer is not None:
                explorer = explorer_page(
                    f"{name} {version.version}",
                    links.openapi(version.version),
                    "/_docs" + _EXPLORER_ASSETS,
                )
                self.pages[f"/{name}/{version.version}/explorer"] = (
                    _HTML,
                    explorer.encode("utf-8"),
                    EXPLORER_CSP,
                )

    def _page(self, path: str, server: str) -> Page:
        """The page at ``path`` naming ``server`` (a well-formed URL, which
        needs no escaping in HTML, JSON or a shell's quotes), kept for the
        last :data:`SERVERS_KEPT` servers."""
        pages = self.rendered.get(server)
        if pages is None:
            pages = self.rendered[server] = {}
            while len(self.rendered) > SERVERS_KEPT:
                self.rendered.popitem(last=False)
        else:
            self.rendered.move_to_end(server)
        found = pages.get(path)
        if found is None:
            content_type, template, policy = self.templates[path]
            body = template.replace(self.placeholder.encode(), server.encode())
            found = pages[path] = (content_type, body, policy)
        return found

    def render(self, request: Any) -> int:
        path = request.path[len(DOCS_PREFIX) :].decode("utf-8", "replace") or "/"
        known = path in self.pages or path in self.templates
        reading = request.method in (b"GET", b"HEAD")
        if reading and path in self.redirects:
            target = self.redirects[path]
            body = b'<a href="%s">%s</a>\n' % (target, target)
            request.setResponseCode(301)
            request.setHeader(b"location", target)
            request.setHeader(b"content-type", _HTML)
            request.setHeader(b"content-length", b"%d" % len(body))
            request.setHeader(b"content-security-policy", _CSP)
            request.setHeader(b"x-content-type-options", b"nosniff")
            request.write(body)
            request.finish()
        elif not known:
            write_error(request, UnknownAPICallError(request, clip("_docs" + path)))
        elif not reading:
            error = MethodNotAllowedError(
                request, clip(request.method.decode("latin-1"))
            )
            error.headers["Allow"] = "GET, HEAD"
            write_error(request, error)
        else:
            found = self.pages.get(path)
            if found is None:
                found = self._page(path, server_url(request))
            content_type, body, policy = found
            request.setHeader(b"content-type", content_type)
            request.setHeader(b"content-length", b"%d" % len(body))
            request.setHeader(b"content-security-policy", policy)
            request.setHeader(b"x-content-type-options", b"nosniff")
            request.write(body)
            request.finish()
        return NOT_DONE_YET
