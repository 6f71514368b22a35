"""
Shiji's documentation, generated from an API package's code and docstrings.

Imported only when documentation is generated (``shiji_admin -D``) or served
(``[general] serve_docs = true``): a server without docs loads none of it.

- :func:`describe_api` reads an API package into an :class:`APIDoc`;
- :func:`json_document`, :func:`markdown_document`, :func:`html_document` and
  :func:`openapi_document` render it;
- :class:`DocsResource` serves the rendered pages under ``/_docs/``.
"""

from .html import html_document
from .model import APIDoc, describe_api
from .openapi import openapi_document, openapi_index
from .render import json_document, markdown_document
from .serve import DOCS_PREFIX, DocsResource

__all__ = [
    "DOCS_PREFIX",
    "APIDoc",
    "DocsResource",
    "describe_api",
    "html_document",
    "json_document",
    "markdown_document",
    "openapi_document",
    "openapi_index",
]
