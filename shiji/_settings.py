"""
How Shiji serves: one frozen object, made once (from shijid's configuration,
or from a test client's options), from which the router and the site are
built. Every default is written here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple, Union

from ._client_address import Network

__all__ = ["DEFAULT_REQUEST_TIMEOUT", "DEFAULT_SETTINGS", "Settings", "origin_list"]

_LOOPBACK: Tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.1/32"),
    ipaddress.ip_network("::1/128"),
)


#: Seconds a call may run, unless configured otherwise.
DEFAULT_REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class Settings:
    """Everything the router and the site are told."""

    # The router.

    #: The request header naming API, version and mode.
    version_header: str = "X-API-Version"
    #: Take the version from the query string when the header is absent.
    version_in_query: bool = False
    #: Refuse ``application/json`` bodies whose Content-Type names no charset.
    strict_charset: bool = False
    #: The ``Server`` response header; ``None`` for the process's
    #: (``Shiji API Server`` unless ``shiji.change_server_ident`` says
    #: otherwise).
    server_ident: Optional[str] = None
    #: Origins allowed to call from browsers; ``("*",)`` for any.
    cross_origin_domains: Tuple[str, ...] = ()
    #: Send ``Cache-Control: no-cache`` and ``Pragma: no-cache``.
    inhibit_http_caching: bool = False
    #: Seconds a call may run; ``None`` for no limit.
    request_timeout: Optional[float] = DEFAULT_REQUEST_TIMEOUT
    #: The secrets signing secure cookies (the first signs); ``None`` for none.
    cookie_secrets: Optional[Tuple[str, ...]] = None
    #: Secure cookies are ``Secure`` by default.
    cookie_secure: bool = False
    #: The envelope lists the failing fields (``fields``) for declarations
    #: in the original Shiji's form too, not only for the newer ones (and
    #: problem details, which always list them as ``errors``).
    field_errors: bool = False
    #: Check each answer against the call's ``webapi.returns``: a mismatch is
    #: logged and answered with HTTP 500 instead.
    validate_responses: bool = False
    #: The signed cookie holding ``request.session``'s id (``__Host-`` is
    #: put before it when :attr:`cookie_secure` is on).
    session_cookie: str = "session"
    #: Seconds a session lives unused; each use extends it.
    session_max_age: float = 14 * 86400.0

    # The site.

    #: Larger request bodies are refused with 413, unread.
    max_body_bytes: int = 1048576
    #: Seconds an idle keep-alive connection stays open.
    idle_timeout: float = 60.0
    #: Seconds a client has, from a request's first byte, to send its head...
    header_timeout: float = 10.0
    #: ...and seconds more to send its body.
    body_timeout: float = 30.0
    #: Believe ``X-Real-IP`` and ``X-Forwarded-For``...
    honor_x_realip: bool = False
    #: ...from these peers only.
    trusted_proxies: Tuple[Network, ...] = _LOOPBACK
    #: Log a line per request.
    access_log: bool = True
    #: Log the load balancers' ``/_health`` checks too.
    log_health: bool = False
    #: Warn about requests slower than this.
    slow_request_ms: int = 1000
    #: Query arguments whose names hold one of these words are logged as
    #: ``***``.
    redacted_arguments: Tuple[str, ...] = (
        "password",
        "passwd",
        "pwd",
        "token",
        "secret",
        "key",
        "auth",
    )
    #: Serve the documentation under ``/_docs/``.
    serve_docs: bool = True
    #: The header parser: ``"llhttp"``, ``"python"``, or ``None`` for the
    #: faster here.
    http_parser: Optional[str] = None
    #: How the answers' metrics are named: ``"v2"``, or ``"v1"``, the names
    #: before ``v2`` (see :mod:`shiji._answer_metrics`).
    metric_names: str = "v2"

    def replace(self, **changes: Any) -> Settings:
        """These settings with ``changes``; list-like values become tuples.

        :raises TypeError: a name that is not a setting.
        """
        for name in ("cross_origin_domains", "redacted_arguments", "cookie_secrets"):
            if name in changes and changes[name] is not None:
                value = changes[name]
                changes[name] = (
                    origin_list(value)
                    if name == "cross_origin_domains"
                    else tuple(value)
                )
        if "trusted_proxies" in changes:
            changes["trusted_proxies"] = tuple(
                ipaddress.ip_network(proxy, strict=False)
                for proxy in changes["trusted_proxies"]
            )
        return dataclasses.replace(self, **changes)


def origin_list(domains: Union[str, Sequence[str], None]) -> Tuple[str, ...]:
    """Origins given as a list, or as one string separated by commas or
    spaces."""
    if domains is None:
        return ()
    if isinstance(domains, str):
        domains = domains.replace(",", " ").split()
    return tuple(d.strip() for d in domains if d.strip())


#: The settings when nothing is said.
DEFAULT_SETTINGS = Settings()
