"""
Signed ("secure") cookies.

``set_secure_cookie`` signs a value with the first of the configured secrets
(``[auth] secure_cookies_secrets``); ``get_secure_cookie`` accepts a
signature by any of them, so secrets can be rotated: put the new one first
and drop the old one once its cookies have expired.

A cookie's value is ``<value>.<expiry>.<signature>``: the value in URL-safe
base64, the expiry in seconds since the epoch, and an HMAC-SHA256 over the
cookie's name, value and expiry, encoded unambiguously (a JSON array), so a
signature for one cookie never fits another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from email.utils import formatdate
from typing import Any, List, Optional, Sequence, Tuple, Union

from .._errors import ExpiredSecureCookieError, InvalidSecureCookieError, clip

__all__ = [
    "MIN_SECRET_LENGTH",
    "CookieSigner",
    "get_secure_cookie",
    "install_secure_cookies",
    "set_secure_cookie",
]

#: The shortest secret accepted, in characters.
MIN_SECRET_LENGTH = 32

_DOMAIN = "shiji-cookie-v1"
# An expiry as sign() writes it: seconds since the epoch, without leading
# zeros, and short enough that parsing it costs nothing (12 digits last
# until the year 33658).
_EXPIRY = re.compile(r"[1-9][0-9]{0,11}")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> Optional[bytes]:
    """
    The bytes that unpadded URL-safe base64 ``text`` encodes, or ``None`` if
    ``text`` is not how :func:`_b64encode` writes them (the decoder forgives
    stray characters and spare bits, so the bytes are encoded again and
    compared: no altered cookie passes as the original).
    """
    try:
        data = base64.urlsafe_b64decode(text + "==")
    except binascii.Error:
        return None
    return data if _b64encode(data) == text else None


def _parse_cookie(cookie: str) -> Optional[Tuple[str, int, bytes]]:
    """The value, expiry and MAC of a cookie as :meth:`CookieSigner.sign`
    writes it, or ``None`` if it is not one."""
    parts = cookie.split(".")
    if len(parts) != 3 or _EXPIRY.fullmatch(parts[1]) is None:
        return None
    value, mac = _b64decode(parts[0]), _b64decode(parts[2])
    if value is None or mac is None:
        return None
    try:
        return value.decode(), int(parts[1]), mac
    except UnicodeDecodeError:
        return None


class CookieSigner:
    """
    Signs cookie values with the first secret and verifies them with any.

    :raises ValueError: there is no secret, or one is shorter than
        :data:`MIN_SECRET_LENGTH` characters.
    """

    def __init__(self, secrets: Sequence[str]) -> None:
        if isinstance(secrets, str) or not secrets:
            raise ValueError("list at least one secret")
        for index, secret in enumerate(secrets):
            if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"secret {index + 1} is shorter than {MIN_SECRET_LENGTH} characters"
                )
        self._keys = [secret.encode() for secret in secrets]

    def _mac(self, key: bytes, name: str, value: str, expires: int) -> bytes:
        # A JSON array writes the fields unambiguously (the key separator is
        # never used: there is no object).
        message = json.dumps([_DOMAIN, name, value, expires], separators=(",", ":"))
        return hmac.new(key, message.encode(), hashlib.sha256).digest()

    def sign(self, name: str, value: str, expires: int) -> str:
        """The cookie value carrying ``value`` until ``expires`` (epoch seconds)."""
        mac = self._mac(self._keys[0], name, value, expires)
        return f"{_b64encode(value.encode())}.{expires}.{_b64encode(mac)}"

    def verify(self, name: str, cookie: str, now: float) -> str:
        """
        The value inside ``cookie``.

        :raises InvalidSecureCookieError: malformed, or signed by none of the
            secrets.
        :raises ExpiredSecureCookieError: correctly signed, but expired.
        """
        signature = cookie.rpartition(".")[2]
        parsed = _parse_cookie(cookie)
        if parsed is None:
            raise InvalidSecureCookieError(None, clip(name), clip(signature))
        value, expires, presented = parsed
        # Compare with every secret, not stopping at a match, so the time
        # taken says nothing about which one signed.
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(
                self._mac(key, name, value, expires), presented
            )
        if not matched:
            raise InvalidSecureCookieError(None, clip(name), clip(signature))
        if now >= expires:
            raise ExpiredSecureCookieError(None, clip(name))
        return value


#: The secrets :func:`install_secure_cookies` installed, for routers
#: without any.
installed_secrets: Optional[List[str]] = None
_installed_signer: Optional[CookieSigner] = None


def install_secure_cookies(secrets: Sequence[str]) -> None:
    """
    Install the secrets signing secure cookies for every router of the
    process that has none of its own (the original Shiji's way; a router's
    ``cookie_secrets``, or shijid's ``[auth] secure_cookies_secrets``, is the
    usual one). The first signs; any verifies.

    :raises ValueError: ``secrets`` is not a list of strings of at least
        :data:`MIN_SECRET_LENGTH` characters.
    """
    if isinstance(secrets, (str, bytes)):
        raise ValueError("secure cookie secrets are a list of strings")
    global installed_secrets, _installed_signer
    _installed_signer = CookieSigner(secrets)
    installed_secrets = list(secrets)


def _signer(request: Any) -> CookieSigner:
    """The router's signer, or the installed one; a server error without."""
    signer: Optional[CookieSigner] = request.api_router.cookie_signer
    if signer is None:
        signer = _installed_signer
    if signer is None:
        raise RuntimeError(
            "secure cookies need secrets: set [auth] secure_cookies_secrets "
            "(or APIRouter(cookie_secrets=...))"
        )
    return signer


def set_secure_cookie(
    request: Any,
    name: str,
    value: str,
    expires_days: float = 30,
    path: str = "/",
    *,
    domain: Optional[str] = None,
    secure: Optional[bool] = None,
    http_only: bool = True,
    same_site: str = "Lax",
) -> None:
    """
    Sign ``value`` and set it as the cookie ``name`` on the response.

    The cookie is ``HttpOnly`` and ``SameSite=Lax`` unless told otherwise,
    carries ``Max-Age`` and ``Expires``, and is ``Secure`` when ``secure`` is
    true or, by default, when the router's ``cookie_secure`` is. A
    ``__Host-`` name forces ``Secure`` and ``Path=/`` and forbids a domain;
    a ``__Secure-`` name forces ``Secure``.

    :raises ValueError: a ``__Host-`` cookie with another path or a domain,
        or a ``same_site`` other than ``Lax`` or ``Strict``.
    """
    if name.startswith("__Host-"):
        if path != "/" or domain is not None:
            raise ValueError("a __Host- cookie has Path=/ and no Domain")
        secure = True
    elif name.startswith("__Secure-"):
        secure = True
    if same_site.lower() not in ("lax", "strict"):
        raise ValueError("same_site is Lax or Strict")
    signer = _signer(request)
    if secure is None:
        secure = request.api_router.cookie_secure
    seconds = int(expires_days * 86400)
    expires = int(time.time()) + seconds
    # Twisted encodes text as UTF-8 and writes SameSite in lower case.
    request.addCookie(
        name,
        signer.sign(name, value, expires),
        expires=formatdate(expires, usegmt=True),
        max_age=str(seconds),
        path=path,
        domain=domain,
        secure=secure,
        httpOnly=http_only,
        sameSite=same_site,
    )


def _cookie_values(request: Any, name: bytes) -> List[bytes]:
    """Every value the request's ``Cookie`` headers give cookie ``name``."""
    values = []
    for header in request.header_values(b"cookie"):
        for pair in header.split(b";"):
            key, equals, value = pair.partition(b"=")
            if equals and key.strip() == name:
                values.append(value.strip())
    return values


def get_secure_cookie(
    request: Any, cookie_name: str
) -> Union[str, InvalidSecureCookieError, ExpiredSecureCookieError, None]:
    """
    The value of the secure cookie ``cookie_name``: ``None`` if the request
    has no such cookie, and otherwise, as the original Shiji did, the value
    or the error (returned, not raised) that a handler can return or raise::

        user = auth.get_secure_cookie(request, "session")
        if isinstance(user, webapi.APIError):
            raise user

    A request may carry two cookies of one name (set for different paths or
    by a sibling subdomain): each is verified, and if two correctly signed
    ones disagree, which to believe is unknown, so the answer is
    ``InvalidSecureCookieError``.
    """
    raw_values = _cookie_values(request, cookie_name.encode("utf-8"))
    if not raw_values:
        return None
    signer = _signer(request)
    now = time.time()
    accepted = set()
    refusals: List[Union[InvalidSecureCookieError, ExpiredSecureCookieError]] = []
    for raw in raw_values:
        try:
            accepted.add(signer.verify(cookie_name, raw.decode("latin-1"), now))
        except (InvalidSecureCookieError, ExpiredSecureCookieError) as error:
            error.request = request
            refusals.append(error)
    if len(accepted) == 1:
        return accepted.pop()
    if accepted:
        return InvalidSecureCookieError(request, clip(cookie_name), "(ambiguous)")
    expired = [e for e in refusals if isinstance(e, ExpiredSecureCookieError)]
    return (expired or refusals)[-1]
