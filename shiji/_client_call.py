"""
What a call of :mod:`shiji.client` sends, with no I/O: the URL with its
query, the version header and the client's own headers, the body.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import quote, urlencode, urlsplit

from . import _json
from ._version_header import API_MODES, VersionHeader

__all__ = ["Call", "CallMaker", "Params", "QueryValue"]

#: A query argument's value: repeated for a list (``?id=1&id=2``).
QueryValue = Union[str, int, float, bool, Sequence[Union[str, int, float, bool]]]
Params = Union[Mapping[str, QueryValue], Sequence[Tuple[str, QueryValue]], None]


@dataclass(frozen=True)
class Call:
    """One call, ready to send."""

    method: str
    url: str
    headers: Dict[str, str]
    body: Optional[bytes]

    def has_header(self, name: str) -> bool:
        """Whether the call sends header ``name`` (in any case)."""
        return self.header(name) is not None

    def header(self, name: str) -> Optional[str]:
        """The value of header ``name`` (in any case), or ``None``."""
        for found, value in self.headers.items():
            if found.lower() == name.lower():
                return value
        return None

    def with_bearer(self, token: str) -> Call:
        """The call sending ``token`` as ``Authorization: Bearer ...``."""
        return replace(
            self, headers={**self.headers, "Authorization": f"Bearer {token}"}
        )


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise TypeError(f"a query argument must be str, int, float or bool: {value!r}")


def _query(params: Params) -> str:
    items = params.items() if isinstance(params, Mapping) else params or ()
    pairs: List[Tuple[str, str]] = []
    for name, value in items:
        values = value if isinstance(value, (list, tuple)) else [value]
        pairs.extend((name, _query_text(one)) for one in values)
    return urlencode(pairs, quote_via=quote)


def _check_text(what: str, text: str) -> None:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a string, not {text!r}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise builtins.ValueError(f"{what} holds a control character: {text!r}")


def _set_header(headers: Dict[str, str], name: str, value: str) -> None:
    """Set header ``name`` in ``headers``, replacing it in any case."""
    _check_text("a header name", name)
    _check_text(f"header {name}", value)
    if not name or ":" in name or " " in name:
        raise builtins.ValueError(f"not a header name: {name!r}")
    for found in [found for found in headers if found.lower() == name.lower()]:
        del headers[found]
    headers[name] = value


@dataclass
class CallMaker:
    """
    Makes the :class:`Call` of each request for one API version at one
    base URL: the version header, ``Accept``, the client's own headers.
    """

    url: str
    version: VersionHeader
    version_header: str = "X-API-Version"
    problem_details: bool = False
    headers: Dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise builtins.ValueError(f"not an http or https URL: {self.url!r}")
        if parts.query or parts.fragment:
            raise builtins.ValueError(
                f"the base URL takes no query or fragment: {self.url!r}"
            )
        if self.version.mode not in API_MODES:
            raise builtins.ValueError(
                f"mode must be one of {sorted(API_MODES)}, not {self.version.mode!r}"
            )
        _check_text("the version header's value", str(self.version))
        accept = (
            "application/problem+json, application/json;q=0.9"
            if self.problem_details
            else "application/json"
        )
        own = {
            self.version_header: str(self.version),
            "Accept": accept,
            # Bodies as sent: decoded, a compressed one could be far larger
            # than max_answer_bytes.
            "Accept-Encoding": "identity",
            "User-Agent": "Shiji client",
        }
        for name, value in self.headers.items():
            _set_header(own, name, value)
        self.headers = own

    def make(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        json: Any = None,
        data: Optional[bytes] = None,
        content_type: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Call:
        """
        The call of ``method`` on ``path`` (under the base URL, sent as
        written: quote what needs quoting), with ``params`` as the query
        and ``json`` (or the bytes ``data``, sent as ``content_type``) as
        the body.

        :raises TypeError: ``json`` cannot be encoded, or a query argument
            is of another type.
        :raises ValueError: (the built-in one) ``path`` or a header holds a
            control character or a space, or ``json`` holds NaN or an
            infinity.
        """
        _check_text("the method", method)
        _check_text("the path", path)
        if " " in path or not path.isascii():
            raise builtins.ValueError(
                f"quote the path's spaces and non-ASCII: {path!r}"
            )
        url = self.url.rstrip("/") + "/" + path.lstrip("/")
        query = _query(params)
        if query:
            url += ("&" if "?" in url else "?") + query
        sent = dict(self.headers)
        body = None
        if json is not None and data is not None:
            raise TypeError("give json or data, not both")
        if json is not None:
            body = _json.dumps(json)
            _set_header(sent, "Content-Type", "application/json; charset=utf-8")
        elif data is not None:
            body = bytes(data)
            _set_header(
                sent, "Content-Type", content_type or "application/octet-stream"
            )
        for name, value in (headers or {}).items():
            _set_header(sent, name, value)
        return Call(method.upper(), url, sent, body)
