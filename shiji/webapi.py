"""
Decorators that validate a call's arguments, the errors they answer with, and
:func:`write_json`.

Decorate ``render_<METHOD>`` methods; they stack in any order, with each
other and with ``defer.inlineCallbacks`` or ``async def``::

    @webapi.json_arguments([("client_tz", int),
                            ("client_id", str),
                            ("new_client", bool, webapi.ARG_OPTIONAL)])
    @webapi.url_arguments(["simple_auth_key"])
    def render_POST(self, request): ...

A decorator that finds a problem raises the matching ``APIError``, so the
client gets the JSON error envelope and the handler is never called. What
each decorator declares is kept on the function (see :func:`declarations`)
for the documentation generator.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Coroutine
from typing import (
    Any,
    Callable,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from twisted.internet.defer import Deferred, ensureDeferred, maybeDeferred

from . import _json
from ._declarations import (
    CallDeclarations,
    Handler,
    JSONArgument,
    NamespaceDeclaration,
    PagingDeclaration,
    declarations,
    declare,
)
from ._errors import (
    AccessDeniedError,
    APIError,
    APIVersionGoneError,
    CharsetNotUTF8Error,
    ContentTypeError,
    ExpiredSecureCookieError,
    InvalidAuthenticationError,
    InvalidSecureCookieError,
    JSONDecodeError,
    JSONEncodeError,
    MalformedRequestError,
    MethodNotAllowedError,
    RequestHeadersTooLargeError,
    RequestNotHashError,
    RequestReadTimeoutError,
    RequestTimeoutError,
    RequestTooLargeError,
    RequestURITooLongError,
    ServiceUnavailableError,
    UnexpectedServerError,
    UnknownAPICallError,
    UnknownAPIError,
    UnknownAPIVersionError,
    ValueError,
)
from ._request import APIRequest
from ._response import write_json

__all__ = [
    "ARG_OPTIONAL",
    "ARG_REQUIRED",
    "APIError",
    "APIVersionGoneError",
    "AccessDeniedError",
    "CallDeclarations",
    "CharsetNotUTF8Error",
    "ContentTypeError",
    "ExpiredSecureCookieError",
    "InvalidAuthenticationError",
    "InvalidSecureCookieError",
    "JSONArgument",
    "JSONDecodeError",
    "JSONEncodeError",
    "MalformedRequestError",
    "MethodNotAllowedError",
    "NamespaceDeclaration",
    "PagingDeclaration",
    "RequestHeadersTooLargeError",
    "RequestNotHashError",
    "RequestReadTimeoutError",
    "RequestTimeoutError",
    "RequestTooLargeError",
    "RequestURITooLongError",
    "ServiceUnavailableError",
    "UnexpectedServerError",
    "UnknownAPICallError",
    "UnknownAPIError",
    "UnknownAPIVersionError",
    "ValueError",
    "auth_http_basic",
    "declarations",
    "json_arguments",
    "paged_results",
    "url_arguments",
    "write_json",
]

#: Third item of a ``json_arguments`` entry: the argument may be left out
#: (``True``, as in the original Shiji, so a literal ``True`` works too).
ARG_OPTIONAL = True
#: Third item of a ``json_arguments`` entry: the argument must be present
#: (the default; ``False``).
ARG_REQUIRED = False

TypeSpec = Union[type, Tuple[type, ...]]


def _normalise_json_argument(entry: Sequence[Any]) -> JSONArgument:
    if not isinstance(entry, (tuple, list)) or len(entry) not in (2, 3):
        raise TypeError(
            f"json_arguments entries are (name, type[, ARG_OPTIONAL]), not {entry!r}"
        )
    name, types = entry[0], entry[1]
    flag = entry[2] if len(entry) == 3 else ARG_REQUIRED
    if not isinstance(name, str):
        raise TypeError(f"json_arguments: argument name {name!r} is not a string")
    if isinstance(types, type):
        types = (types,)
    if not (
        isinstance(types, tuple) and types and all(isinstance(t, type) for t in types)
    ):
        raise TypeError(
            f"json_arguments: the type of {name!r} must be a type or a tuple of types"
        )
    if not isinstance(flag, int) or flag not in (ARG_OPTIONAL, ARG_REQUIRED):
        raise TypeError(
            f"json_arguments: the flag of {name!r} must be ARG_OPTIONAL (True) "
            "or ARG_REQUIRED (False)"
        )
    return JSONArgument(name, types, bool(flag))


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


def _check_content_type(request: APIRequest, expected_media: str) -> None:
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


def _check_value(request: APIRequest, argument: JSONArgument, value: Any) -> Any:
    """
    ``value`` as ``argument`` accepts it: booleans are not numbers, and an
    integer is accepted (as a float) where a float is asked for.
    """
    types = argument.types
    if isinstance(value, bool):
        if bool in types:
            return value
    elif isinstance(value, types):
        return value
    elif isinstance(value, int) and float in types:
        try:
            return float(value)
        except OverflowError:
            pass
    raise ValueError(request, argument.name, f"Must be of type {argument.type_names}")


def json_arguments(
    arguments: Sequence[Sequence[Any]], content_type: str = "application/json"
) -> Callable[[Handler], Handler]:
    """
    Require a JSON object body holding the declared arguments.

    :param arguments: ``(name, type)`` or ``(name, type, ARG_OPTIONAL)``
        entries; ``type`` may be a tuple of types. Required arguments must be
        present; every argument present must be of its type.
    :param content_type: the media type the body must be sent with. A charset
        parameter, if given, must be UTF-8 (and must be given at all when the
        router's ``strict_charset`` is on).

    The parsed object (with integers given for float arguments converted)
    becomes ``request.jsonArgs``. Errors: ``ContentTypeError`` (HTTP 406),
    ``CharsetNotUTF8Error`` (409), ``JSONDecodeError`` (409) for a body that
    is not UTF-8 JSON, ``RequestNotHashError`` (409) for JSON that is not an
    object, and ``ValueError`` (409) for a missing or mistyped argument.
    """
    declared = tuple(_normalise_json_argument(entry) for entry in arguments)
    expected_media = content_type.lower()

    def decorator(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def wrapper(self: Any, request: APIRequest, *args: Any, **kwargs: Any) -> Any:
            _check_content_type(request, expected_media)
            content = request.content
            if content is None:  # the connection is gone
                raise JSONDecodeError(request)
            content.seek(0)
            try:
                body = _json.loads(content.read())
            except _json.JSONBodyError:
                raise JSONDecodeError(request) from None
            if not isinstance(body, dict):
                raise RequestNotHashError(request)
            for argument in declared:
                if argument.name in body:
                    body[argument.name] = _check_value(
                        request, argument, body[argument.name]
                    )
                elif not argument.optional:
                    raise ValueError(request, argument.name, "Argument is missing.")
            request.jsonArgs = body
            return handler(self, request, *args, **kwargs)

        return declare(
            wrapper,
            handler,
            json_arguments=declared,
            json_content_type=content_type,
        )

    return decorator


def url_arguments(
    names: Sequence[str], content_type: str = ""
) -> Callable[[Handler], Handler]:
    """
    Require the named query-string arguments to be present (their values are
    not checked). A missing one gives ``ValueError`` (HTTP 409): ``Invalid
    value for argument 'name'. Argument is missing.``

    :param names: the argument names, each a string.
    :param content_type: if given, the media type the request must be sent
        with, checked as :func:`json_arguments` checks it
        (``ContentTypeError``, HTTP 406; ``CharsetNotUTF8Error``, 409).
    :raises TypeError: (when applied) ``names`` is a string, or holds
        something other than strings.
    """
    if isinstance(names, str):
        raise TypeError("url_arguments takes a list of names, not a string")
    declared = tuple(names)
    for name in declared:
        if not isinstance(name, str):
            raise TypeError(f"url_arguments: argument names are strings, not {name!r}")
    expected_media = content_type.lower()

    def decorator(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def wrapper(self: Any, request: APIRequest, *args: Any, **kwargs: Any) -> Any:
            if expected_media:
                _check_content_type(request, expected_media)
            for name in declared:
                if name not in request.args:
                    raise ValueError(request, name, "Argument is missing.")
            return handler(self, request, *args, **kwargs)

        return declare(wrapper, handler, url_arguments=declared)

    return decorator


_NOT_AN_INTEGER = "Argument must be an integer."
#: Paging numbers beyond this are refused before they are converted (a
#: 5,000-digit number is no page, and converting it is work).
_MAX_PAGE_NUMBER = 10**18 - 1


def _page_number(request: APIRequest, name: str, default: int, most: int) -> int:
    values = request.args.get(name)
    if not values:
        return default
    text = values[0]
    sign = text[:1] if text[:1] in ("-", "+") else ""
    digits = text[len(sign) :]
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(request, name, _NOT_AN_INTEGER)
    if len(digits.lstrip("0")) > len(str(_MAX_PAGE_NUMBER)):
        if sign == "-":
            raise ValueError(request, name, "Argument must be 0 or greater.")
        raise ValueError(request, name, f"Argument must be {most} or less.")
    return int(text)


def paged_results(
    default_page: int = 0, default_page_len: int = 50, max_page_len: int = 100
) -> Callable[[Handler], Handler]:
    """
    Validate the paging arguments ``page`` and ``page_len`` of the query
    string, filling in defaults.

    ``page_len`` must be an integer from 0 to ``max_page_len`` and ``page``
    an integer ≥ 0 (checked in that order); otherwise ``ValueError`` (HTTP
    409) with the original Shiji's texts: ``Argument must be an integer.``,
    ``Argument must be 0 or greater.``, ``Argument must be N or less.``
    The handler then finds both as ints in ``request.args["page"][0]`` and
    ``request.args["page_len"][0]``. A ``page_len`` of 0 asks for no items
    (a count, say); what that means is the handler's to decide.

    :raises TypeError: (when applied) a default below 0, or
        ``default_page_len`` above ``max_page_len``.
    """
    if default_page < 0:
        raise TypeError(f"paged_results: default_page ({default_page}) cannot be < 0")
    if not 0 <= default_page_len <= max_page_len:
        raise TypeError(
            f"paged_results: default_page_len ({default_page_len}) must be "
            f"between 0 and max_page_len ({max_page_len})"
        )
    paging = PagingDeclaration(default_page, default_page_len, max_page_len)
    too_long = f"Argument must be {max_page_len} or less."

    def decorator(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def wrapper(self: Any, request: APIRequest, *args: Any, **kwargs: Any) -> Any:
            page_len = _page_number(request, "page_len", default_page_len, max_page_len)
            if page_len < 0:
                raise ValueError(request, "page_len", "Argument must be 0 or greater.")
            if page_len > max_page_len:
                raise ValueError(request, "page_len", too_long)
            page = _page_number(request, "page", default_page, _MAX_PAGE_NUMBER)
            if page < 0:
                raise ValueError(request, "page", "Argument must be 0 or greater.")
            request.args["page"] = [page]
            request.args["page_len"] = [page_len]
            return handler(self, request, *args, **kwargs)

        return declare(wrapper, handler, paged_results=paging)

    return decorator


# Strict base64 (RFC 4648 section 4): interpreters differ on excess padding.
_BASE64 = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def _basic_credentials(request: APIRequest) -> Optional[Tuple[str, str]]:
    header = request.getHeader(b"authorization")
    if header is None:
        return None
    scheme, _, encoded = header.partition(b" ")
    encoded = encoded.strip()
    if scheme.lower() != b"basic" or _BASE64.fullmatch(encoded) is None:
        return None
    try:
        # The pattern above admits canonical base64 only.
        decoded = base64.b64decode(encoded).decode()
    except UnicodeDecodeError:
        return None
    username, colon, password = decoded.partition(":")
    if not colon:
        return None
    return username, password


AuthFunc = Callable[[str, str], Union[bool, "Deferred[bool]"]]


def auth_http_basic(
    auth_func: AuthFunc, realm: str = "Shiji"
) -> Callable[[Handler], Handler]:
    """
    Require HTTP Basic credentials that ``auth_func(username, password)``
    accepts; it returns a bool, or a ``Deferred`` or coroutine of one.

    Missing, malformed or refused credentials give
    ``InvalidAuthenticationError`` (HTTP 401) with a ``WWW-Authenticate``
    challenge for ``realm``. On success the user name is
    ``request.auth_user``.
    """
    quoted_realm = realm.replace("\\", "\\\\").replace('"', '\\"')
    challenge = f'Basic realm="{quoted_realm}", charset="UTF-8"'

    def refuse(request: APIRequest) -> InvalidAuthenticationError:
        error = InvalidAuthenticationError(request)
        error.headers["WWW-Authenticate"] = challenge
        return error

    def decorator(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def wrapper(self: Any, request: APIRequest, *args: Any, **kwargs: Any) -> Any:
            credentials = _basic_credentials(request)
            if credentials is None:
                raise refuse(request)

            def proceed(accepted: object) -> Any:
                if not accepted:
                    raise refuse(request)
                request.auth_user = credentials[0]
                return handler(self, request, *args, **kwargs)

            verdict = auth_func(*credentials)
            if isinstance(verdict, Coroutine):
                verdict = ensureDeferred(verdict)
            if isinstance(verdict, Deferred):
                return verdict.addCallback(
                    lambda accepted: maybeDeferred(proceed, accepted)
                )
            return proceed(verdict)

        return declare(wrapper, handler, http_basic_realm=realm)

    return decorator
