"""
The ``Server`` header: what this process's sites say they are.

A site built with a ``server_ident`` setting says that; one built without it
says the process's ident, ``Shiji API Server`` unless
:func:`change_server_ident` (the original Shiji's process-wide switch) has
changed it. A later :func:`change_server_ident` changes every site of the
process, whatever it was built with: the last word wins.
"""

from __future__ import annotations

import re
import weakref
from typing import Dict, Optional, Protocol

__all__ = [
    "DEFAULT_SERVER_IDENT",
    "change_server_ident",
    "current",
    "follow",
    "server_ident",
]

#: The ident of a process that never changed it.
DEFAULT_SERVER_IDENT = "Shiji API Server"

# Printable ASCII but the controls: what a header value may hold.
_PRINTABLE = re.compile(r"[\x20-\x7e]+")


class _Identified(Protocol):
    server_ident: bytes


_current = DEFAULT_SERVER_IDENT.encode("ascii")
_sites: weakref.WeakSet[_Identified] = weakref.WeakSet()

#: The process's ident as the original Shiji showed it: its
#: ``server_name`` and ``server_version`` (``""`` for none). Read it;
#: :func:`change_server_ident` changes it.
server_ident: Dict[str, str] = {
    "server_name": DEFAULT_SERVER_IDENT,
    "server_version": "",
}


def change_server_ident(name: str, version: Optional[str] = None) -> None:
    """
    Change the ``Server`` header of every answer this process sends from
    now on, as ``name`` or ``name/version``.

    :raises ValueError: ``name`` is empty, or ``name`` or ``version`` holds
        a character other than printable ASCII (a header could be forged
        with a line break).
    """
    ident = name if not version else f"{name}/{version}"
    if not name or _PRINTABLE.fullmatch(ident) is None:
        raise ValueError(
            f"a server ident is printable ASCII, without line breaks: {ident!r}"
        )
    global _current
    _current = ident.encode("ascii")
    server_ident["server_name"] = name
    server_ident["server_version"] = version or ""
    for site in list(_sites):
        site.server_ident = _current


def current() -> bytes:
    """The process's ident, as the ``Server`` header's value."""
    return _current


def follow(site: _Identified) -> None:
    """Let :func:`change_server_ident` change ``site``'s ident too."""
    _sites.add(site)
