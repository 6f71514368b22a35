"""
The challenge of a 401 answer: RFC 9110 (section 11.6.1) makes every 401
carry a ``WWW-Authenticate`` header, and the site adds the one the router
decides (:meth:`shiji.urldispatch.APIRouter.challenge`, through
:func:`challenge`) to any 401 whose handler, error or decorator set none.

HTTP Basic (``auth_http_basic``) sends its own,
``Basic realm="...", charset="UTF-8"`` (RFC 7617). Shiji's other way to
authenticate is a signed session cookie, for which no scheme is registered:
Shiji answers with the ``Cookie`` scheme of the Internet-Draft "Cookie-based
HTTP Authentication" (draft-broyer-http-cookie-auth), which says that the
credentials are a cookie obtained elsewhere (a login call)::

    WWW-Authenticate: Cookie realm="<api_name>"

An auth backend with a ``challenge(request)`` method decides instead (the
example's session backend adds ``cookie-name="session"``, the draft's
parameter naming the cookie); what it returns is sent as it is, unless it
cannot be a header value.
"""

from __future__ import annotations

import re
from typing import Any

from twisted.logger import Logger

__all__ = ["challenge", "cookie_challenge", "quoted_string"]

log = Logger(namespace="shiji.auth")

#: The realm of a 401 answered outside any API.
DEFAULT_REALM = "Shiji"

# Control characters: C0 (tab, CR and LF included), DEL and, in text, C1.
_TEXT_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_BYTE_CONTROLS = re.compile(rb"[\x00-\x1f\x7f]")


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


def _header_value(value: Any) -> bytes:
    """
    What a backend's ``challenge`` returned, as the header's value: ``bytes``
    as they are, text as ISO-8859-1.

    :raises TypeError: ``value`` is not a non-blank ``str`` or ``bytes``.
    :raises ValueError: it holds a control character, or text that is not
        ISO-8859-1.
    """
    if isinstance(value, str):
        if _TEXT_CONTROLS.search(value) is not None:
            raise ValueError(f"challenge() returned {value!r}: a control character")
        # UnicodeEncodeError, a ValueError, for text beyond ISO-8859-1.
        encoded = value.encode("latin-1")
    elif isinstance(value, bytes):
        if _BYTE_CONTROLS.search(value) is not None:
            raise ValueError(f"challenge() returned {value!r}: a control character")
        encoded = value
    else:
        raise TypeError(f"challenge() returned {value!r}, not a challenge")
    if not encoded.strip():
        raise TypeError(f"challenge() returned {value!r}, not a challenge")
    return encoded


def challenge(request: Any, backend: Any) -> bytes:
    """
    The ``WWW-Authenticate`` value of a 401 answer to ``request`` that has
    none: ``backend``'s ``challenge(request)`` when it has one,
    ``Cookie realm="<api_name>"`` otherwise. A ``challenge`` that fails,
    answers nothing, or answers what cannot be a header value (a control
    character, CR and LF included, or text that is not ISO-8859-1) is
    logged and the default sent: the answer must go out.

    :param backend: the auth backend of the router answering, or ``None``.
    """
    realm = getattr(request, "api_name", "") or DEFAULT_REALM
    method = getattr(backend, "challenge", None)
    if callable(method):
        try:
            return _header_value(method(request))
        except Exception:
            log.failure(
                "The auth backend's challenge failed; answering with the "
                "default challenge"
            )
    return cookie_challenge(realm).encode("utf-8")
