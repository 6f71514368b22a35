"""
Signed ("secure") cookies (:mod:`shiji.auth._cookies`), authentication
backends and access control (:mod:`shiji.auth._access`).

:mod:`shiji.auth.errors` and :mod:`shiji.auth.base_backend` are the original
Shiji's modules for backends, and ``auth_backend`` and ``cookie_secrets``
show what :func:`install_auth` and :func:`install_secure_cookies` installed,
as the original's module attributes did.
"""

from __future__ import annotations

from typing import Any

from . import _access, _cookies, base_backend, errors
from ._access import (
    NAMESPACE_SOURCES,
    ROLES_NAMESPACE,
    AuthBackend,
    access,
    install_auth,
    login_required,
    namespace_source,
)
from ._cookies import (
    MIN_SECRET_LENGTH,
    CookieSigner,
    get_secure_cookie,
    install_secure_cookies,
    set_secure_cookie,
)

__all__ = [
    "MIN_SECRET_LENGTH",
    "NAMESPACE_SOURCES",
    "ROLES_NAMESPACE",
    "AuthBackend",
    "CookieSigner",
    "access",
    "base_backend",
    "errors",
    "get_secure_cookie",
    "install_auth",
    "install_secure_cookies",
    "login_required",
    "namespace_source",
    "set_secure_cookie",
]


def __getattr__(name: str) -> Any:
    """``auth_backend`` and ``cookie_secrets``: what was installed."""
    if name == "auth_backend":
        return _access.installed_backend
    if name == "cookie_secrets":
        return _cookies.installed_secrets
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
