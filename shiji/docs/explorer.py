"""
An interactive explorer of each version's OpenAPI document: Swagger UI,
served offline from the files the ``swagger-ui-bundle-v2`` package ships
(``pip install shiji[explorer]``). Without that package there is none.

The page loads its scripts and stylesheet from shijid itself, starts
Swagger UI with a script of its own (no inline script) and lets it reach
nothing but the server it came from.
"""

from __future__ import annotations

import importlib
from html import escape
from typing import Dict, Optional, Tuple

__all__ = ["EXPLORER_CSP", "explorer_assets", "explorer_page"]

#: What the explorer page may load: its scripts and stylesheet from the
#: server, the ``data:`` icons of Swagger UI's stylesheet, and requests to
#: the server only (the OpenAPI document, and calls tried out). Swagger UI
#: sets styles from its script, which needs no inline style.
EXPLORER_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src data:; "
    b"connect-src 'self'; base-uri 'none'; form-action 'none'; "
    b"frame-ancestors 'none'"
)

_JAVASCRIPT = b"text/javascript; charset=utf-8"
_CSS = b"text/css; charset=utf-8"

# Starts Swagger UI on the element naming the OpenAPI document: no
# validator (it would call a server elsewhere), no inline script.
_START = b"""\
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  var node = document.getElementById("explorer");
  window.ui = SwaggerUIBundle({
    url: node.getAttribute("data-openapi"),
    domNode: node,
    deepLinking: true,
    validatorUrl: null
  });
});
"""

# The files served, and the names they are served at.
_SHIPPED = {
    "swagger-ui-bundle.js": ("swagger-ui-bundle.js", _JAVASCRIPT),
    "swagger-ui.css": ("swagger-ui.css", _CSS),
}


def explorer_assets() -> Optional[Dict[str, Tuple[bytes, bytes]]]:
    """The explorer's files by name, each its content type and bytes, read
    from the installed Swagger UI bundle; ``None`` if it is not installed."""
    try:
        bundle = importlib.import_module("swagger_ui_bundle")
    except ImportError:
        return None
    root = bundle.swagger_ui_path
    files = {"start.js": (_JAVASCRIPT, _START)}
    for name, (shipped, content_type) in _SHIPPED.items():
        files[name] = (content_type, (root / shipped).read_bytes())
    return files


def explorer_page(title: str, openapi_url: str, assets_url: str) -> str:
    """
    The explorer of the OpenAPI document at ``openapi_url``, loading the
    files served at ``assets_url`` (a path ending with ``/``).
    """
    assets = escape(assets_url)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        f'<link rel="stylesheet" href="{assets}swagger-ui.css"></head><body>'
        f'<div id="explorer" data-openapi="{escape(openapi_url)}"></div>'
        f'<script src="{assets}swagger-ui-bundle.js"></script>'
        f'<script src="{assets}start.js"></script></body></html>\n'
    )
