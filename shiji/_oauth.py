"""
OAuth 2 client credentials (RFC 6749 section 4.4), with no I/O: the token
request, the reading of the token endpoint's answer, and :class:`Tokens`,
a client's current token: whether it is fresh, and forgetting it once it
is refused. Each client fetches tokens with its own I/O.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple
from urllib.parse import quote_plus, urlencode, urlsplit

from . import _json
from ._client_answer import Headers
from ._client_call import Call
from ._client_errors import TokenError

__all__ = [
    "OAuth2ClientCredentials",
    "Token",
    "Tokens",
    "challenges",
    "token_refused",
]

# RFC 6750 section 2.1's b64token: what an access token may hold to be sent
# as "Authorization: Bearer <token>".
_TOKEN_CHARACTERS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/="
)


# RFC 9110 section 11: a challenge is a scheme, then a token68 or
# comma-separated auth-params (name = token or quoted-string).
_OWS = re.compile(r"[ \t]*")
_SCHEME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_PARAM = re.compile(
    r"([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*=[ \t]*"
    r"(?:([!#$%&'*+.^_`|~0-9A-Za-z-]+)|\"((?:[^\"\\]|\\.)*)\")"
    r"[ \t]*(?=,|\Z)"
)
_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*[ \t]*(?=,|\Z)")
_ESCAPE = re.compile(r"\\(.)")

# expires_in as a string of digits, as some token endpoints send it.
_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")

_LOOPBACK_NAMES = frozenset({"localhost"})


def challenges(values: List[str]) -> List[Tuple[str, Dict[str, str]]]:
    """
    The challenges of ``WWW-Authenticate`` header values (RFC 9110 section
    11.6.1): each one's scheme in lower case and its auth-params (names in
    lower case, quoted values unquoted). Reading stops where a value is
    not well-formed.
    """
    found: List[Tuple[str, Dict[str, str]]] = []
    for value in values:
        at, end = 0, len(value)
        while at < end:
            at = _OWS.match(value, at).end()  # type: ignore[union-attr]
            if at < end and value[at] == ",":
                at += 1
                continue
            scheme = _SCHEME.match(value, at)
            if scheme is None:
                break
            params: Dict[str, str] = {}
            found.append((scheme.group().lower(), params))
            at = scheme.end()
            spaced = _OWS.match(value, at).end()  # type: ignore[union-attr]
            if spaced in (at, end) or value[spaced] == ",":
                at = spaced
                continue
            at = spaced
            token68 = _TOKEN68.match(value, at)
            param = _PARAM.match(value, at)
            if param is None and token68 is not None:
                at = token68.end()
                continue
            while param is not None:
                name, plain, quoted = param.groups()
                params.setdefault(
                    name.lower(),
                    plain if plain is not None else _ESCAPE.sub(r"\1", quoted),
                )
                at = param.end()
                # Another auth-param of this challenge, or the next challenge.
                after = _OWS.match(value, at + 1).end()  # type: ignore[union-attr]
                param = _PARAM.match(value, after) if at < end else None
                if param is not None:
                    at = after
            if at < end and value[at] != ",":
                break
    return found


def token_refused(headers: Headers) -> bool:
    """
    Whether a 401 answer says that the bearer token sent was refused, so
    that another one may be fetched: its ``WWW-Authenticate`` holds a
    ``Bearer`` challenge, with ``error="invalid_token"`` or no ``error``
    (RFC 6750 section 3). Any other 401 (a login refused, say) is the
    API's answer, whatever the token.

    :param headers: the answer's :class:`Headers`.
    """
    for scheme, params in challenges(headers.get_all("WWW-Authenticate")):
        if scheme == "bearer" and params.get("error", "invalid_token") == (
            "invalid_token"
        ):
            return True
    return False


def _loopback(host: Optional[str]) -> bool:
    if not host:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Token(NamedTuple):
    """An access token and when to stop using it (``None``: until refused)."""

    value: str
    refresh_at: Optional[float]

    def fresh(self, now: float) -> bool:
        """Whether the token may still be used at time ``now``."""
        return self.refresh_at is None or now < self.refresh_at


@dataclass(frozen=True)
class OAuth2ClientCredentials:
    """
    Where and how a client gets its access tokens: the client credentials
    grant of OAuth 2 (RFC 6749 section 4.4).

    The client POSTs ``grant_type=client_credentials`` (and ``scope``) to
    ``token_url``, authenticating with HTTP Basic (RFC 6749 section 2.3.1),
    or with ``client_id`` and ``client_secret`` in the form when
    ``credentials_in_body`` is set, and sends the ``access_token`` it gets
    as ``Authorization: Bearer ...``. A token is used until ``leeway``
    seconds (at most half its life) before its ``expires_in`` (a number,
    or a string of digits) runs out, then fetched again; a call answered
    401 with a ``Bearer`` challenge (RFC 6750 section 3) fetches a new
    token and is sent once more, any other 401 is raised. Calls that need
    a token while one is being fetched wait for that one.

    ``token_url`` is https, or http only to a loopback host (127.0.0.0/8,
    ``::1``, ``localhost``): the client secret is sent to it.
    """

    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: Optional[str] = None
    leeway: float = 30.0
    credentials_in_body: bool = False

    def __post_init__(self) -> None:
        parts = urlsplit(self.token_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http or https URL: {self.token_url!r}")
        if parts.scheme == "http" and not _loopback(parts.hostname):
            raise ValueError(
                f"the token_url must be https, or http to a loopback host: over "
                f"http the client secret would travel in clear: {self.token_url!r}"
            )
        if not self.leeway >= 0:
            raise ValueError("leeway must be 0 or more")

    def token_call(self) -> Call:
        """The token request."""
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        headers = {
            "Accept": "application/json",
            "Accept-Encoding": "identity",
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "Shiji client",
        }
        if self.credentials_in_body:
            form["client_id"] = self.client_id
            form["client_secret"] = self.client_secret
        else:
            # Both are form-encoded before they are joined (section 2.3.1).
            pair = f"{quote_plus(self.client_id)}:{quote_plus(self.client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(
                pair.encode("utf-8")
            ).decode("ascii")
        return Call("POST", self.token_url, headers, urlencode(form).encode("ascii"))

    def read_token(
        self, status: int, headers: Mapping[str, str], body: bytes, now: float
    ) -> Token:
        """
        The token in the token endpoint's answer (RFC 6749 section 5.1).

        :raises TokenError: the endpoint refused (section 5.2), or its
            answer holds no usable bearer token.
        """
        try:
            answer: Any = _json.loads(body)
        except _json.JSONBodyError:
            answer = None
        if not isinstance(answer, dict):
            raise TokenError(status, None, "the answer is not a JSON object")
        if status != 200:
            error, description = answer.get("error"), answer.get("error_description")
            raise TokenError(
                status,
                error if isinstance(error, str) else None,
                description if isinstance(description, str) else "refused",
            )
        value, kind = answer.get("access_token"), answer.get("token_type")
        if not isinstance(value, str) or not value:
            raise TokenError(status, None, "the answer has no access_token")
        if not set(value) <= _TOKEN_CHARACTERS:
            raise TokenError(
                status, None, "the access_token cannot be sent as a header"
            )
        if not isinstance(kind, str) or kind.lower() != "bearer":
            raise TokenError(status, None, f"token_type {kind!r} is not Bearer")
        lifetime = answer.get("expires_in")
        if lifetime is None:
            return Token(value, None)
        if isinstance(lifetime, str) and _SECONDS.fullmatch(lifetime):
            lifetime = float(lifetime)
        if (
            isinstance(lifetime, bool)
            or not isinstance(lifetime, (int, float))
            or not lifetime >= 0
        ):
            raise TokenError(status, None, f"expires_in {lifetime!r} is not a number")
        return Token(value, now + lifetime - min(self.leeway, lifetime / 2))


class Tokens:
    """
    One client's current token, with no I/O: the one to send while it is
    fresh, the request that fetches another, and what the token endpoint's
    answer and the API's refusal of a token do. Threads may share it; the
    client fetches, and decides whether calls share one fetch.

    :param now: the current time, in seconds on the client's clock.
    """

    def __init__(
        self, credentials: OAuth2ClientCredentials, now: Callable[[], float]
    ) -> None:
        self.credentials = credentials
        self._now = now
        self._token: Optional[Token] = None
        self._lock = threading.Lock()

    def current(self) -> Optional[str]:
        """The token to send, or ``None`` when one must be fetched first."""
        token = self._token
        return token.value if token is not None and token.fresh(self._now()) else None

    def request(self) -> Call:
        """The token request."""
        return self.credentials.token_call()

    def fetched(self, status: int, headers: Mapping[str, str], body: bytes) -> str:
        """
        Keep the token of the token endpoint's answer, and give it.

        :raises TokenError: the endpoint refused, or answered no usable
            bearer token; the next call that needs one asks again.
        """
        token = self.credentials.read_token(status, headers, body, self._now())
        with self._lock:
            self._token = token
        return token.value

    def refused(self, value: str) -> None:
        """The API answered 401 to token ``value``: fetch another next time."""
        with self._lock:
            if self._token is not None and self._token.value == value:
                self._token = None
