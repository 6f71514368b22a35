"""
What an authentication backend raises, as the original Shiji named it.

A backend's ``authenticate`` may fail (raise, or fail its ``Deferred``) with
:class:`InvalidAuthentication` (the caller is answered
``InvalidAuthenticationError``, HTTP 401), :class:`NotAuthorized`
(``AccessDeniedError``, 403) or :class:`BackendWarmingUp`
(``ServiceUnavailableError``, 503, with ``Retry-After``). Anything else it
raises is a server error (500), never a pass.
"""

from __future__ import annotations

__all__ = [
    "AuthBadBackend",
    "AuthBaseException",
    "AuthNoBackend",
    "BackendWarmingUp",
    "InvalidAuthentication",
    "NotAuthorized",
]


class AuthBaseException(Exception):
    """
    Base of the authentication exceptions; ``str()`` of one is its value.
    """

    def __init__(self, value: object) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return str(self.value)


class AuthBadBackend(AuthBaseException):
    """What was installed as a backend cannot authenticate."""


class AuthNoBackend(AuthBaseException):
    """No authentication backend is configured."""


class InvalidAuthentication(AuthBaseException):
    """The credentials are malformed, missing or wrong."""


class NotAuthorized(AuthBaseException):
    """The caller may not do what the request asks."""


class BackendWarmingUp(AuthBaseException):
    """The backend is not ready to answer yet."""
