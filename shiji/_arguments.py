"""
What the argument decorators share: the original Shiji's flags, how a
declaration error names its call, how a refusal becomes the ``ValueError``
clients receive, and the Content-Type check.

The decorators themselves: :mod:`shiji._body` (``json_arguments``),
:mod:`shiji._text_arguments` (``url_arguments``, ``path_arguments``,
``header_arguments``) and :mod:`shiji._paging` (``paged_results``). A
refusal is one ``ValueError`` (HTTP 409) naming the first failing field in
the original Shiji's words, with every failing field in its field list.
"""

from __future__ import annotations

import functools
from typing import (
    Any,
    Callable,
    Optional,
    Tuple,
)

from ._errors import (
    CharsetNotUTF8Error,
    ContentTypeError,
    ValueError,
)
from ._request import APIRequest
from ._schema import (
    Invalid,
)

__all__ = ["ARG_OPTIONAL", "ARG_REQUIRED", "check_content_type", "refuse", "where"]


#: Third item of a ``json_arguments`` entry: the argument may be left out
#: (``True``, as in the original Shiji, so a literal ``True`` works too).
ARG_OPTIONAL = True


#: Third item of a ``json_arguments`` entry: the argument must be present
#: (the default; ``False``).
ARG_REQUIRED = False


def where(handler: Callable[..., Any], decorator: str) -> str:
    """How a declaration error names the call and the decorator."""
    return f"{handler.__module__}.{handler.__qualname__}: {decorator}"


def refuse(
    request: APIRequest, invalid: Invalid, location: str, original: bool = False
) -> ValueError:
    """
    The ``ValueError`` answering ``invalid``: the first failing field in
    its text, every failing field in its field list.

    :param original: the declaration is in the original Shiji's form, whose
        envelope lists no fields unless the router's ``field_errors`` says
        so (problem details list them anyway).
    """
    errors = invalid.field_errors(location)
    first = errors[0]
    error = ValueError(request, first.field, first.sentence())
    # Made here, in the right shape: no need for the constructor's checks.
    error.fields = tuple(field.as_dict() for field in errors)
    if original:
        router = request.api_router
        error.fields_in_envelope = router is not None and router.settings.field_errors
    return error


@functools.lru_cache(maxsize=256)
def _media_type(header: Optional[bytes]) -> Tuple[str, Optional[str]]:
    """
    The media type (lower case) and charset (lower case, or None) of a
    Content-Type header value (clients send few distinct ones: cached).
    """
    if header is None:
        return "", None
    media, *params = header.decode("latin-1").split(";")
    charset = None
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return media.strip().lower(), charset


def check_content_type(request: APIRequest, expected_media: str) -> None:
    """
    Refuse ``request`` unless its Content-Type is ``expected_media`` (lower
    case) with a UTF-8 charset, or without one where the router's
    ``strict_charset`` is off.

    :raises ContentTypeError: no Content-Type, or another media type.
    :raises CharsetNotUTF8Error: a charset other than UTF-8, or none under
        ``strict_charset``.
    """
    media, charset = _media_type(request.getHeader(b"content-type"))
    if media != expected_media:
        raise ContentTypeError(request)
    if charset is None:
        router = request.api_router
        if router is not None and router.strict_charset:
            raise CharsetNotUTF8Error(request)
    elif charset not in ("utf-8", "utf8"):
        raise CharsetNotUTF8Error(request)
