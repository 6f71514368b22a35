"""
The documentation shijid serves under ``/_docs/``.

- ``/_docs/``: an index of the APIs served;
- ``/_docs/<api>/``: the API's HTML documentation (``/_docs/<api>``
  redirects there);
- ``/_docs/<api>/openapi.json``: the index of its OpenAPI documents;
- ``/_docs/<api>/<version>/openapi.json``: one version's OpenAPI document;
- ``/_docs/<api>/<version>/explorer``: an interactive explorer of it, when
  the Swagger UI bundle is installed (``shiji[explorer]``), whose files are
  served under ``/_docs/swagger-ui/<digest>/``, named by their content.

Every call is shown at the prefix its ``[apis]`` expression serves it at
(:mod:`shiji.docs.prefix`). The API pages' commands and the OpenAPI
documents' servers name the server as the request reached it
(:func:`server_url`): its scheme and its ``Host`` when that is a
well-formed host name or address (else the address the request came in
on); from a trusted proxy, ``X-Forwarded-Proto`` and ``X-Forwarded-Host``.

Everything is rendered once, when the daemon starts; the pages naming the
server are rendered naming a placeholder, which each request's server
replaces (a copy of the bytes, not a rendering). Those pages are sent with
``Cache-Control: no-cache`` and ``Vary`` naming the headers they depend on;
the explorer's files, whose paths change with their content, may be kept
for a year.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import secrets
from typing import Any, Dict, Iterable, Optional, Tuple

from twisted.web import resource
from twisted.web.server import NOT_DONE_YET

from .._errors import MethodNotAllowedError, UnknownAPICallError, clip
from .._request import JSON_CONTENT_TYPE
from .._response import write_error
from .explorer import EXPLORER_CSP, explorer_assets, explorer_page
from .html import IndexEntry, PageLinks, html_document, index_document, with_server
from .model import APIDoc, describe_api
from .openapi import openapi_document, openapi_index
from .prefix import ServedPrefix, served_prefix

__all__ = ["DOCS_PREFIX", "DocsResource", "server_url"]

DOCS_PREFIX = b"/_docs"

_HTML = b"text/html; charset=utf-8"
# The pages carry no script: forbid everything but their inline styles.
_CSP = b"default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
_EXPLORER_ASSETS = "/swagger-ui/"
# The pages naming the server: asked again each time, and kept apart by
# the headers naming it.
_NAMING_CACHE = b"no-cache"
_VARY = b"Host"
_VARY_FORWARDED = b"Host, X-Forwarded-Host, X-Forwarded-Proto"
# The explorer's files, whose paths name their content.
_ASSET_CACHE = b"public, max-age=31536000, immutable"

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


def _valid_host(header: Optional[bytes], scheme: str) -> Optional[str]:
    """The base URL naming the host ``header`` names, if it is a host name,
    an IPv4 address or an IPv6 address in brackets, with a port from 1 to
    65535; else ``None``."""
    if header is None or len(header) > 260:
        return None
    found = _HOST.fullmatch(header.decode("latin-1").lower())
    if found is None or len(found.group("name")) > 255:
        return None
    ipv6, port = found.group("ipv6"), found.group("port")
    if ipv6 is not None:
        try:
            ipaddress.IPv6Address(ipv6)
        except ValueError:
            return None
    number = int(port) if port is not None else None
    if number is not None and not 0 < number < 65536:
        return None
    return _authority(scheme, found.group("name"), number)


def _first_value(request: Any, name: bytes) -> Optional[bytes]:
    """The first value of the request's header ``name``: of its first line,
    what comes before any comma."""
    values = getattr(request, "header_values", None)
    found = values(name) if values is not None else [request.getHeader(name)]
    if not found or found[0] is None:
        return None
    return bytes(found[0].split(b",", 1)[0].strip())


def _honors_forwarded(request: Any) -> bool:
    """Whether ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` may name the
    server: with ``[general] honor_x_realip`` on (the request's
    ``client_addresses``, which also decide whom ``X-Real-IP`` is believed
    from)."""
    addresses = getattr(request, "client_addresses", None)
    return bool(addresses is not None and addresses.honor_x_realip)


def _from_trusted_proxy(request: Any) -> bool:
    """Whether the request's peer is a proxy the server trusts (one of
    ``trusted_proxies``, with ``honor_x_realip`` on)."""
    if not _honors_forwarded(request):
        return False
    try:
        peer = str(request.getClientAddress().host)
    except AttributeError:
        return False
    return bool(request.client_addresses.trusts_proxy(peer))


def server_url(request: Any) -> str:
    """
    The base URL (``scheme://host[:port]``) ``request`` reached: its
    ``Host`` when that is a host name, an IPv4 address or an IPv6 address in
    brackets, with a port from 1 to 65535; otherwise the address it came in
    on. Nothing else of the ``Host`` header is ever repeated.

    From a trusted proxy (``honor_x_realip`` on and the peer among
    ``trusted_proxies``, as for the client's address), the scheme is the
    first value of ``X-Forwarded-Proto`` when that is ``http`` or
    ``https``, and the host the first of ``X-Forwarded-Host`` when that is
    well-formed as ``Host`` must be; from anyone else both are ignored.
    """
    scheme = "https" if request.isSecure() else "http"
    forwarded_host = None
    if _from_trusted_proxy(request):
        proto = _first_value(request, b"x-forwarded-proto")
        if proto is not None and proto.lower() in (b"http", b"https"):
            scheme = proto.lower().decode("ascii")
        forwarded_host = _first_value(request, b"x-forwarded-host")
    found = _valid_host(forwarded_host, scheme) or _valid_host(
        request.getHeader(b"host"), scheme
    )
    if found is not None:
        return found
    address = request.getHost()
    host = str(getattr(address, "host", "") or "127.0.0.1")
    if ":" in host:
        try:
            host = f"[{ipaddress.IPv6Address(host.split('%', 1)[0]).compressed}]"
        except ValueError:
            host = "127.0.0.1"
    port = getattr(address, "port", None)
    return _authority(scheme, host, port if isinstance(port, int) else None)


def _digest(files: Dict[str, Tuple[bytes, bytes]]) -> str:
    """A name for the content of ``files`` (each a content type and
    bytes): it changes whenever one of them does."""
    hashed = hashlib.sha256()
    for name in sorted(files):
        content_type, body = files[name]
        for part in (name.encode(), content_type, body):
            hashed.update(b"%d:%b" % (len(part), part))
    return hashed.hexdigest()[:16]


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
        #: The explorer's files, by path.
        self.assets: Dict[str, Page] = {}
        assets = explorer_assets()
        assets_path = _EXPLORER_ASSETS
        if assets is not None:
            assets_path += _digest(assets) + "/"
            for name, (content_type, body) in assets.items():
                self.assets[assets_path + name] = (content_type, body, _CSP)
        entries = []
        for regex, api in apis:
            doc = describe_api(api)
            prefix = served_prefix(regex, doc.api_name)
            links = self._links(doc.api_name, explorer=assets is not None)
            entries.append(IndexEntry(doc, prefix, links))
            self._add_api(doc, prefix, links, "/_docs" + assets_path)
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

    def _add_api(
        self, doc: APIDoc, prefix: ServedPrefix, links: PageLinks, assets: str
    ) -> None:
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
                    assets,
                )
                self.pages[f"/{name}/{version.version}/explorer"] = (
                    _HTML,
                    explorer.encode("utf-8"),
                    EXPLORER_CSP,
                )

    def _page(self, path: str, server: str) -> Page:
        """The page at ``path`` naming ``server``, a well-formed URL (which
        needs no escaping in HTML or JSON, and has no quote)."""
        content_type, template, policy = self.templates[path]
        if content_type == _HTML:
            body = with_server(template, self.placeholder, server)
        else:
            body = template.replace(self.placeholder.encode(), server.encode())
        return content_type, body, policy

    def render(self, request: Any) -> int:
        path = request.path[len(DOCS_PREFIX) :].decode("utf-8", "replace") or "/"
        known = (
            path in self.pages
            or path in self.templates
            or path in self.assets
            or path in self.redirects
        )
        reading = request.method in (b"GET", b"HEAD")
        if reading and path in self.redirects:
            target = self.redirects[path]
            request.setResponseCode(301)
            request.setHeader(b"location", target)
            _send(request, (_HTML, b'<a href="%s">%s</a>\n' % (target, target), _CSP))
        elif not known:
            write_error(request, UnknownAPICallError(request, clip("_docs" + path)))
        elif not reading:
            error = MethodNotAllowedError(
                request, clip(request.method.decode("latin-1"))
            )
            error.headers["Allow"] = "GET, HEAD"
            write_error(request, error)
        else:
            if path in self.assets:
                found = self.assets[path]
                request.setHeader(b"cache-control", _ASSET_CACHE)
            elif path in self.templates:
                found = self._page(path, server_url(request))
                request.setHeader(b"cache-control", _NAMING_CACHE)
                forwarded = _honors_forwarded(request)
                request.setHeader(b"vary", _VARY_FORWARDED if forwarded else _VARY)
            else:
                found = self.pages[path]
            _send(request, found)
        return NOT_DONE_YET


def _send(request: Any, page: Page) -> None:
    """Answer ``request`` with ``page``, and the headers every page has."""
    content_type, body, policy = page
    request.setHeader(b"content-type", content_type)
    request.setHeader(b"content-length", b"%d" % len(body))
    request.setHeader(b"content-security-policy", policy)
    request.setHeader(b"x-content-type-options", b"nosniff")
    request.write(body)
    request.finish()
