"""
The request as Shiji's handlers see it.
"""

from __future__ import annotations

from http import HTTPStatus
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional

from twisted.python.failure import Failure
from twisted.web import server

from ._client_address import PEER_ONLY, ClientAddresses
from ._response import write_failure
from .metrics import Metrics, NullMetrics

if TYPE_CHECKING:
    from .urldispatch import APIRouter, VersionRouter

__all__ = ["APIRequest"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_REASON_PHRASES = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}


class APIRequest(server.Request):
    """
    A ``twisted.web`` request with the attributes :class:`APIRouter` sets.

    ``APIRouter`` sets these attributes on whatever request class a site
    uses; this class declares them (for type checkers and readers) and gives
    them defaults. The Shiji daemon and ``shiji.testing`` use it as their
    ``requestFactory``.
    """

    #: The ``api_name`` of the API package serving the request.
    api_name: str = ""
    #: The version asked for in the version header, e.g. ``"1.0"``.
    api_version: str = ""
    #: The mode asked for in the version header: ``"prod"`` or ``"test"``.
    api_mode: str = ""
    #: Every API's validated configuration, keyed by API name.
    api_config: Mapping[str, Any] = _EMPTY
    #: Where handlers ship metrics; see :mod:`shiji.metrics`.
    metrics: Metrics = NullMetrics()
    #: Named groups of the call route, percent-decoded.
    url_matches: Mapping[str, str] = _EMPTY
    #: The router that dispatched the request.
    api_router: Optional[APIRouter] = None
    #: The version router of the API serving the request.
    version_router: Optional[VersionRouter] = None
    #: Query arguments, ``str`` names to lists of ``str`` values (``page`` and
    #: ``page_len`` hold ints after ``paged_results``).
    args: Dict[str, List[Any]]
    #: The JSON body's arguments, set by ``json_arguments``.
    jsonArgs: Dict[str, Any]
    #: The class name of the call that answers the request.
    api_call: str = ""
    #: The id under which an unexpected error was logged, if any.
    request_id: Optional[str] = None
    #: The caller's permissions by namespace, set by ``auth.access`` and
    #: ``auth.login_required``.
    permissions: Optional[Dict[str, List[str]]] = None
    #: The namespace ``auth.access`` checked.
    auth_namespace: Optional[str] = None
    #: The user name that ``auth_http_basic`` authenticated.
    auth_user: Optional[str] = None

    #: How :attr:`client_ip` is found; the peer's address unless the site
    #: trusts proxies (``honor_x_realip`` and ``trusted_proxies``).
    client_addresses: ClientAddresses = PEER_ONLY
    _client_ip: Optional[str] = None

    @property
    def client_ip(self) -> str:
        """
        The client's address: the peer's, or the one a trusted proxy names
        in ``X-Real-IP`` or ``X-Forwarded-For`` (see
        :attr:`client_addresses`); ``"-"`` once the connection is gone.
        Limits per client should key on it.
        """
        if self._client_ip is None:
            if self.channel is None:
                return "-"
            peer = getattr(self.getClientAddress(), "host", "-")
            self._client_ip = self.client_addresses.client_ip(
                peer, self.getHeader(b"x-real-ip"), self.getHeader(b"x-forwarded-for")
            )
        return self._client_ip

    def setResponseCode(self, code: int, message: Optional[bytes] = None) -> None:
        """
        Set the status, with its reason phrase from the HTTP registry when
        none is given (Twisted's table lacks some, such as 429's).
        """
        if message is None:
            message = _REASON_PHRASES.get(code)
        super().setResponseCode(code, message)

    def processingFailed(self, reason: Failure) -> None:
        """
        Answer a failure that escaped the resource with a JSON
        ``UnexpectedServerError`` instead of Twisted's HTML error page.
        """
        write_failure(self, reason)
