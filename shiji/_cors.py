"""
Cross-origin resource sharing: which origins may call the APIs from a
browser, and the headers that tell the browser so.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, FrozenSet, Optional, Sequence, Union

if TYPE_CHECKING:
    from ._request import APIRequest

__all__ = ["CORSPolicy", "is_origin"]

# What Access-Control-Request-Headers may hold to be echoed: header names
# (RFC 9110 tokens) separated by commas and optional spaces.
_HEADER_NAMES = re.compile(
    rb"[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:[ \t]*,[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*[ \t]*"
)
#: The longest Access-Control-Request-Headers echoed, in bytes.
MAX_REQUEST_HEADERS = 2048

# scheme "://" host [":" port], in ASCII (RFC 6454 section 6.1).
_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9._~%!$&'()*+,;=:\[\]-]+/?")


def is_origin(text: str) -> bool:
    """
    Whether ``text`` is a serialised origin such as
    ``https://app.example.com:8443``. ``null``, the origin of sandboxed
    frames and ``file:`` pages, is not one: any page can claim it.
    """
    return _ORIGIN.fullmatch(text) is not None


class CORSPolicy:
    """
    Which origins may call the APIs from a browser, and how to tell them.
    """

    def __init__(
        self, any_origin: bool, origins: FrozenSet[bytes], version_header: str
    ):
        self.any_origin = any_origin
        self.origins = origins
        self.allow_headers = (
            f"Content-Type, Authorization, X-Requested-With, {version_header}"
        ).encode("ascii")

    @classmethod
    def build(
        cls, domains: Union[str, Sequence[str], None], version_header: str
    ) -> Optional[CORSPolicy]:
        if domains is None:
            return None
        if isinstance(domains, str):
            domains = domains.replace(",", " ").split()
        names = [d.strip() for d in domains if d.strip()]
        if not names:
            return None
        for name in names:
            if name != "*" and not is_origin(name):
                raise ValueError(
                    f"{name!r} is not an origin such as https://app.example.com (nor *)"
                )
        any_origin = "*" in names
        origins = frozenset(d.rstrip("/").encode("ascii") for d in names if d != "*")
        return cls(any_origin, origins, version_header)

    def apply(self, request: APIRequest) -> None:
        """Grant ``request``'s origin what it may do, in the answer's headers."""
        if self.any_origin:
            request.setHeader(b"access-control-allow-origin", b"*")
            return
        request.setHeader(b"vary", b"Origin")
        origin = request.header_values(b"origin")
        if origin and origin[0] in self.origins:
            request.setHeader(b"access-control-allow-origin", origin[0])
            request.setHeader(b"access-control-allow-credentials", b"true")

    def answer_preflight(self, request: APIRequest, allow: bytes) -> None:
        """
        Add the preflight's grant (``allow``: the methods) if the origin may
        call. The headers granted are those the browser asks for in
        ``Access-Control-Request-Headers``, as the original Shiji granted
        them (an origin allowed to call may send any header), or, when it
        asks for none or its list is not one of header names, Shiji's
        usual ones.
        """
        if self.any_origin:
            request.setHeader(b"vary", b"Access-Control-Request-Headers")
        else:
            request.setHeader(b"vary", b"Origin, Access-Control-Request-Headers")
        if request.response_header(b"access-control-allow-origin") is None:
            return
        request.setHeader(b"access-control-allow-methods", allow)
        request.setHeader(b"access-control-allow-headers", self._granted(request))
        request.setHeader(b"access-control-max-age", b"600")

    def _granted(self, request: APIRequest) -> bytes:
        asked = request.header_values(b"access-control-request-headers")
        if len(asked) == 1:
            names = asked[0].strip(b" \t")
            if (
                names
                and len(names) <= MAX_REQUEST_HEADERS
                and _HEADER_NAMES.fullmatch(names) is not None
            ):
                return names
        return self.allow_headers
