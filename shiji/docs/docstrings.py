"""
Docstrings to HTML: Markdown (with the ``markdown`` package) or
reStructuredText (with ``docutils``).
"""

from __future__ import annotations

import re

import markdown

__all__ = ["FORMATS", "as_markdown", "detect_format", "to_html"]

#: The docstring formats an API may declare as ``docstring_format``.
FORMATS = ("markdown", "restructuredtext", "auto")

# Constructs only reStructuredText has: directives, field lists and literal
# block markers.
_RST_SIGNS = re.compile(r"^\s*\.\. [a-z-]+::|^\s*:[A-Za-z][\w ]*:( |$)|::$", re.M)


def detect_format(docstring: str) -> str:
    """``"restructuredtext"`` if ``docstring`` uses reST-only syntax, else
    ``"markdown"``."""
    return "restructuredtext" if _RST_SIGNS.search(docstring) else "markdown"


def _rst_to_html(text: str) -> str:
    from docutils.core import publish_parts
    from docutils.writers.html5_polyglot import Writer

    parts = publish_parts(
        text,
        writer=Writer(),
        settings_overrides={
            "report_level": 5,  # never print warnings
            "halt_level": 5,
            "doctitle_xform": False,
            "initial_header_level": 4,
            "raw_enabled": False,
            "file_insertion_enabled": False,
        },
    )
    return str(parts["body"]).strip()


def to_html(docstring: str, docstring_format: str = "auto") -> str:
    """
    ``docstring`` as an HTML fragment; raw HTML in a Markdown docstring is
    escaped, and reST's raw and include directives are disabled.
    """
    if not docstring:
        return ""
    if docstring_format == "auto":
        docstring_format = detect_format(docstring)
    if docstring_format == "restructuredtext":
        return _rst_to_html(docstring)
    md = markdown.Markdown(extensions=["fenced_code", "tables", "sane_lists"])
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    return str(md.convert(docstring)).strip()


def as_markdown(docstring: str, docstring_format: str = "auto") -> str:
    """
    ``docstring`` for a Markdown reader (a Markdown document, an OpenAPI
    description): as it is if it is Markdown, rendered to HTML if it is
    reStructuredText.
    """
    if docstring_format == "auto":
        docstring_format = detect_format(docstring)
    if docstring_format == "restructuredtext":
        return to_html(docstring, "restructuredtext")
    return docstring
