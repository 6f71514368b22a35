"""
The challenge of a 401 answer: RFC 9110 (section 11.6.1) makes every 401
carry a ``WWW-Authenticate`` header, and :class:`~shiji._site.Site` adds
this one to any 401 whose handler, error or decorator set none.

HTTP Basic (``auth_http_basic``) sends its own,
``Basic realm="...", charset="UTF-8"`` (RFC 7617). Shiji's other way to
authenticate is a signed session cookie, for which no scheme is registered:
Shiji answers with the ``Cookie`` scheme of the Internet-Draft "Cookie-based
HTTP Authentication" (draft-broyer-http-cookie-auth), which says that the
credentials are a cookie obtained elsewhere (a login call)::

    WWW-Authenticate: Cookie realm="<api_name>"

An auth backend with a ``challenge(request)`` method decides instead (the
example's session backend adds ``cookie-name="session"``, the draft's
parameter naming the cookie); what it returns is sent as it is.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

from . import _access

__all__ = ["challenge", "cookie_challenge", "quoted_string"]

log = Logger(namespace="shiji.auth")

#: The realm of a 401 answered outside any API.
DEFAULT_REALM = "Shiji"


def quoted_string(text: str) -> str:
    """
    ``text`` as an RFC 9110 quoted-string: in double quotes, with ``"`` and
    ``\\`` escaped, and control characters (which no quoted-string may
    hold) as spaces.
    """
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    if not escaped.isprintable():
        escaped = "".join(c if c.isprintable() else " " for c in escaped)
    return f'"{escaped}"'


def cookie_challenge(realm: str) -> str:
    """The ``Cookie`` challenge for ``realm``: ``Cookie realm="shop"``."""
    return f"Cookie realm={quoted_string(realm)}"


def challenge(request: Any) -> bytes:
    """
    The ``WWW-Authenticate`` value of a 401 answer to ``request`` that has
    none: the auth backend's ``challenge(request)`` when it has one (the
    router's backend, else the installed one), ``Cookie realm="<api_name>"``
    otherwise. A backend whose ``challenge`` fails or answers nothing is
    logged and the default sent: the answer must go out.
    """
    router = getattr(request, "api_router", None)
    backend = getattr(router, "auth_backend", None)
    if backend is None:
        backend = _access.installed_backend
    realm = getattr(request, "api_name", "") or DEFAULT_REALM
    method = getattr(backend, "challenge", None)
    if callable(method):
        try:
            value = method(request)
            if isinstance(value, str):
                value = value.encode("utf-8")
            if isinstance(value, bytes) and value.strip():
                return b" ".join(value.splitlines())
            raise TypeError(f"challenge() returned {value!r}, not a challenge")
        except Exception:
            log.failure(
                "The auth backend's challenge failed; answering with the "
                "default challenge"
            )
    return cookie_challenge(realm).encode("utf-8")
