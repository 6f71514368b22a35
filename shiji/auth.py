"""
Signed ("secure") cookies, authentication backends and access control.

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
import functools
import hashlib
import hmac
import json
import time
from collections.abc import Coroutine
from email.utils import formatdate
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    TypeVar,
    Union,
    cast,
)

from twisted.internet.defer import Deferred, ensureDeferred, maybeDeferred

from . import _json
from ._errors import (
    AccessDeniedError,
    ExpiredSecureCookieError,
    InvalidAuthenticationError,
    InvalidSecureCookieError,
    clip,
)
from .webapi import _declare

__all__ = [
    "MIN_SECRET_LENGTH",
    "ROLES_NAMESPACE",
    "AuthBackend",
    "CookieSigner",
    "access",
    "get_secure_cookie",
    "login_required",
    "set_secure_cookie",
]

#: The shortest secret accepted, in characters.
MIN_SECRET_LENGTH = 32

_DOMAIN = "shiji-cookie-v1"
_B64_ALPHABET = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not text or len(text) % 4 == 1 or not all(c in _B64_ALPHABET for c in text):
        raise ValueError("not URL-safe base64")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    # The last character's spare bits could be anything: accept only the one
    # encoding of the bytes, so no altered cookie passes as the original.
    if _b64encode(data) != text:
        raise ValueError("not canonical base64")
    return data


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
        self._keys = [secret.encode("utf-8") for secret in secrets]

    def _mac(self, key: bytes, name: str, value: str, expires: int) -> bytes:
        message = json.dumps([_DOMAIN, name, value, expires], separators=(",", ":"))
        return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()

    def sign(self, name: str, value: str, expires: int) -> str:
        """The cookie value carrying ``value`` until ``expires`` (epoch seconds)."""
        mac = self._mac(self._keys[0], name, value, expires)
        return f"{_b64encode(value.encode('utf-8'))}.{expires}.{_b64encode(mac)}"

    def verify(self, name: str, cookie: str, now: float) -> str:
        """
        The value inside ``cookie``.

        :raises InvalidSecureCookieError: malformed, or signed by none of the
            secrets.
        :raises ExpiredSecureCookieError: correctly signed, but expired.
        """
        parts = cookie.split(".")
        signature = parts[-1] if parts else ""
        try:
            encoded, expiry, signature = parts
            value = _b64decode(encoded).decode("utf-8")
            # Only the one way of writing the number: ASCII digits, no
            # leading zeros, so no altered cookie passes as the original.
            if not (expiry.isascii() and expiry.isdigit()) or len(expiry) > 12:
                raise ValueError("bad expiry")
            expires = int(expiry)
            if str(expires) != expiry:
                raise ValueError("bad expiry")
            presented = _b64decode(signature)
        except (ValueError, UnicodeDecodeError, binascii.Error):
            raise InvalidSecureCookieError(None, clip(name), clip(signature)) from None
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


def _configured(request: Any, attribute: str, missing: str) -> Any:
    """The router's ``attribute``; a server error saying ``missing`` without."""
    value = getattr(getattr(request, "api_router", None), attribute, None)
    if value is None:
        raise RuntimeError(missing)
    return value


def _signer(request: Any) -> CookieSigner:
    signer: CookieSigner = _configured(
        request,
        "cookie_signer",
        "secure cookies need secrets: set [auth] secure_cookies_secrets "
        "(or APIRouter(cookie_secrets=...))",
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
    if secure is None:
        secure = bool(
            getattr(getattr(request, "api_router", None), "cookie_secure", False)
        )
    if name.startswith("__Host-"):
        if path != "/" or domain is not None:
            raise ValueError("a __Host- cookie has Path=/ and no Domain")
        secure = True
    elif name.startswith("__Secure-"):
        secure = True
    if same_site.lower() not in ("lax", "strict"):
        raise ValueError("same_site is Lax or Strict")
    seconds = int(expires_days * 86400)
    expires = int(time.time()) + seconds
    request.addCookie(
        name.encode("utf-8"),
        _signer(request).sign(name, value, expires).encode("ascii"),
        expires=formatdate(expires, usegmt=True).encode("ascii"),
        max_age=str(seconds).encode("ascii"),
        path=path.encode("utf-8"),
        domain=domain.encode("utf-8") if domain else None,
        secure=secure,
        httpOnly=http_only,
        sameSite=same_site.lower(),
    )


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
    """
    raw = request.getCookie(cookie_name.encode("utf-8"))
    if raw is None:
        return None
    try:
        return _signer(request).verify(cookie_name, raw.decode("latin-1"), time.time())
    except (InvalidSecureCookieError, ExpiredSecureCookieError) as error:
        error.request = request
        return error


#: The namespace whose permissions :func:`login_required` reads as roles.
ROLES_NAMESPACE = "roles"

Permissions = Mapping[str, Sequence[str]]
Handler = TypeVar("Handler", bound=Callable[..., Any])


class AuthBackend(Protocol):
    """
    Who is calling, and what they may do.

    ``authenticate`` returns (or returns a ``Deferred`` or coroutine of)
    ``{namespace: [permission, ...]}``, or ``None`` when the request carries
    no valid credentials; raising ``webapi.InvalidAuthenticationError`` means
    the same. Any other failure is a server error, never a pass. shijid makes
    one from ``[auth] auth_module``, ``auth_class`` and ``auth_args``.
    """

    def authenticate(self, request: Any) -> Any:
        """The permissions of the request's caller, by namespace."""


def _backend(request: Any) -> AuthBackend:
    backend: AuthBackend = _configured(
        request,
        "auth_backend",
        "access control needs an auth backend: set [auth] enable_auth, "
        "auth_module and auth_class (or APIRouter(auth_backend=...))",
    )
    return backend


def _namespace(handler_self: Any, request: Any, name: str) -> Optional[str]:
    """
    The value of ``name`` from the URL matches, the query string or the JSON
    body, whichever has it first; the body is read here if ``json_arguments``
    has not run yet.
    """
    matches = getattr(handler_self, "url_matches", None) or {}
    if name in matches:
        return str(matches[name])
    if name in request.args:
        return str(request.args[name][0])
    body = getattr(request, "jsonArgs", None)
    if body is None and request.content is not None:
        request.content.seek(0)
        try:
            body = _json.loads(request.content.read())
        except _json.JSONBodyError:
            body = None
        request.content.seek(0)
    if isinstance(body, dict) and isinstance(body.get(name), (str, int)):
        return str(body[name])
    return None


def _authorize(
    handler: Callable[..., Any],
    check: Callable[[Any, Any, Dict[str, List[str]]], None],
) -> Callable[..., Any]:
    """
    Wrap ``handler``: authenticate with the backend, let ``check`` refuse
    (by raising), then call the handler.
    """

    @functools.wraps(handler)
    def wrapper(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        verdict = _backend(request).authenticate(request)
        if isinstance(verdict, Coroutine):
            verdict = ensureDeferred(verdict)

        def proceed(permissions: Optional[Permissions]) -> Any:
            if permissions is None:
                raise InvalidAuthenticationError(request)
            granted = {ns: list(perms) for ns, perms in permissions.items()}
            request.permissions = granted
            check(self, request, granted)
            return handler(self, request, *args, **kwargs)

        if isinstance(verdict, Deferred):
            return verdict.addCallback(lambda result: maybeDeferred(proceed, result))
        return proceed(verdict)

    return wrapper


def access(
    auth_ns_var: str, all_required: bool = False, *permissions: str
) -> Callable[[Handler], Handler]:
    """
    Let the handler run only for callers the auth backend grants
    ``permissions`` (any of them, or all with ``all_required``) in the
    namespace named by the request's ``auth_ns_var`` argument (from the URL
    matches, the query string or the JSON body)::

        @auth.access("account_id", False, "read", "admin")
        def render_GET(self, request): ...

    Sets ``request.permissions`` (every namespace's) and
    ``request.auth_namespace``. No credentials, or no ``auth_ns_var`` in the
    request: ``InvalidAuthenticationError`` (HTTP 401); not permitted:
    ``AccessDeniedError`` (HTTP 403).
    """

    if not isinstance(all_required, bool):
        raise TypeError(
            "access(auth_ns_var, all_required, *permissions): all_required is "
            f"True or False, not {all_required!r}"
        )

    def check(handler_self: Any, request: Any, granted: Dict[str, List[str]]) -> None:
        namespace = _namespace(handler_self, request, auth_ns_var)
        if namespace is None:
            raise InvalidAuthenticationError(request)
        request.auth_namespace = namespace
        held = granted.get(namespace)
        if held is None:
            raise AccessDeniedError(request)
        if permissions:
            test = all if all_required else any
            if not test(permission in held for permission in permissions):
                raise AccessDeniedError(request)

    joined = (" and " if all_required else " or ").join(permissions)
    rule = (
        f"a caller granted {joined or 'any permission'} in the namespace "
        f"named by {auth_ns_var}"
    )

    def decorator(handler: Handler) -> Handler:
        wrapper = cast(Handler, _authorize(handler, check))
        return _declare(wrapper, handler, access_rule=rule, may_deny=True)

    return decorator


def login_required(role: Optional[str] = None) -> Callable[[Handler], Handler]:
    """
    Let the handler run only for authenticated callers, and with ``role``
    only for those whose ``"roles"`` namespace (:data:`ROLES_NAMESPACE`)
    holds it. No credentials: ``InvalidAuthenticationError`` (401); missing
    role: ``AccessDeniedError`` (403).
    """

    def check(handler_self: Any, request: Any, granted: Dict[str, List[str]]) -> None:
        if role is not None and role not in granted.get(ROLES_NAMESPACE, []):
            raise AccessDeniedError(request)

    rule = "a logged-in caller" + (f" with the role {role}" if role else "")

    def decorator(handler: Handler) -> Handler:
        wrapper = cast(Handler, _authorize(handler, check))
        return _declare(wrapper, handler, access_rule=rule, may_deny=role is not None)

    return decorator
