"""
The look of the documentation pages: one stylesheet, inline in every page
(the pages shijid serves allow inline styles and nothing else), readable
from 360 pixels wide. Wide tables and code scroll inside their own box,
never the page.
"""

from __future__ import annotations

from html import escape
from typing import Optional

__all__ = ["STYLE", "html_page"]

STYLE = """
:root { --ink: #1d2430; --muted: #5b6576; --line: #dde3ea; --paper: #fbfcfd;
  --accent: #2457c5; --code: #eef2f8; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0; font: 15px/1.55 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--ink); background: var(--paper); display: flex; align-items: flex-start; }
a { color: var(--accent); }
nav { width: 260px; flex: none; height: 100vh; position: sticky; top: 0;
  overflow-y: auto; padding: 24px 18px; border-right: 1px solid var(--line);
  background: #fff; }
nav h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .06em;
  color: var(--muted); margin: 18px 0 6px; border: 0; padding: 0; }
nav a { display: block; color: var(--ink); text-decoration: none; padding: 3px 6px;
  border-radius: 4px; font-size: 14px; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; }
nav a:hover { background: var(--code); }
nav .home { color: var(--accent); margin-bottom: 10px; }
nav strong { display: block; padding: 0 6px; }
main { flex: 1 1 auto; min-width: 0; max-width: 980px; padding: 32px 48px 80px; }
body.index main { margin: 0 auto; }
h1 { margin-top: 0; }
h2 { border-bottom: 1px solid var(--line); padding-bottom: 6px; margin-top: 48px; }
h1, h2, h3, h4, p, li, td { overflow-wrap: anywhere; }
.call, .card { background: #fff; border: 1px solid var(--line); border-radius: 8px;
  padding: 4px 22px 14px; margin: 22px 0; }
.card h2 { border: 0; margin: 14px 0 4px; padding: 0; }
.route { font: 600 16px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
.route span { display: block; }
h4 { font: 600 15px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace;
  margin: 26px 0 10px; }
h5 { font-size: 14px; margin: 16px 0 4px; color: var(--muted); }
.badge { display: inline-block; min-width: 64px; text-align: center; color: #fff;
  font: 700 12px/22px ui-monospace, monospace; border-radius: 4px; margin-right: 10px;
  padding: 0 6px; }
.GET { background: #1f8a4c; } .POST { background: #2457c5; } .PUT { background: #b26a00; }
.PATCH { background: #7a4fc4; } .DELETE { background: #c23b3b; } .other { background: #596273; }
.scroll { overflow-x: auto; max-width: 100%; margin: 10px 0 18px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
.scroll td { overflow-wrap: normal; min-width: 4em; }
th { color: var(--muted); font-weight: 600; white-space: nowrap; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 90%;
  background: var(--code); padding: 1px 4px; border-radius: 3px; }
pre { overflow-x: auto; max-width: 100%; background: var(--code); border-radius: 6px;
  padding: 10px 12px; margin: 8px 0 16px; }
pre code { background: none; padding: 0; white-space: pre; }
.muted { color: var(--muted); }
.deprecated { border-left: 4px solid #c23b3b; background: #fdf1f1; padding: 8px 12px; }
.links a { margin-right: 12px; }
ul.versions { list-style: none; padding: 0; margin: 10px 0; }
ul.versions li { padding: 8px 0; border-top: 1px solid var(--line); }
ul.versions .version { font-weight: 600; margin-right: 10px; }
@media (max-width: 760px) {
  body { display: block; }
  nav { width: auto; height: auto; position: static; border-right: 0;
    border-bottom: 1px solid var(--line); padding: 12px 14px; }
  nav a { display: inline-block; max-width: 100%; }
  nav h2 { margin: 8px 0 2px; }
  main { padding: 20px 14px 60px; }
  .scroll table { min-width: 40em; }
  .call, .card { padding: 2px 12px 10px; }
  h1 { font-size: 26px; }
  h2 { margin-top: 32px; }
}
"""


def html_page(
    title: str, body: str, nav: Optional[str] = None, page_class: str = ""
) -> str:
    """
    A whole page: ``title`` (text), ``body`` and ``nav`` (HTML), with the
    stylesheet; ``page_class`` names the kind of page for the stylesheet.
    """
    opening = f'<body class="{escape(page_class)}">' if page_class else "<body>"
    navigation = f"<nav>{nav}</nav>" if nav is not None else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"{opening}{navigation}<main>{body}</main></body></html>\n"
    )
