"""
``AuthBackend``, the base class of the original Shiji's authentication
backends, for backends written for it.

A backend need not subclass it: anything with an ``authenticate(request)``
method is one (see :class:`shiji.auth.AuthBackend`).
"""

from __future__ import annotations

from typing import Any, List

from twisted.internet import defer

from .errors import AuthNoBackend

__all__ = ["AuthBackend"]

_NOT_CONFIGURED = "No authentication backend configured."


class AuthBackend:
    """
    Base class of authentication backends: a subclass overrides
    ``__init__`` (which here refuses, as this class is no backend itself),
    ``perm_list`` and ``authenticate``.
    """

    def __init__(self) -> None:
        raise AuthNoBackend(_NOT_CONFIGURED)

    def perm_list(self) -> List[str]:
        """The permissions the backend knows."""
        raise AuthNoBackend(_NOT_CONFIGURED)

    def authenticate(self, request: Any) -> defer.Deferred[Any]:
        """
        A ``Deferred`` firing with the caller's permissions,
        ``{namespace: [permission, ...]}``, or failing with one of
        :mod:`shiji.auth.errors`.
        """
        return defer.fail(AuthNoBackend(_NOT_CONFIGURED))
