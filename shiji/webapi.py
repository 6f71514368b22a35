"""
Decorators that validate a call's arguments and declare its answers, the
errors they answer with, and :func:`write_json`.

Decorate ``render_<METHOD>`` methods; they stack in any order, with each
other and with ``defer.inlineCallbacks`` or ``async def``::

    @webapi.json_arguments([("client_tz", int),
                            ("client_id", str),
                            ("new_client", bool, webapi.ARG_OPTIONAL)])
    @webapi.url_arguments(["simple_auth_key"])
    def render_POST(self, request): ...

Entries may also be :class:`Arg` with rules (``Arg("zip", str,
min_length=5)``), nested objects, typed lists and whole-body models;
:func:`url_arguments`, :func:`path_arguments` and :func:`header_arguments`
convert text to declared types; :func:`returns` declares an answer's status
and schema. A decorator that finds a problem raises the matching
``APIError`` (a ``ValueError`` listing every failing field, for arguments),
so the client gets the JSON error envelope and the handler is never called.
Each decorator describes what it declares (see :func:`declarations` and
:class:`Described`) for the documentation.
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
    Tuple,
    Union,
)

from twisted.internet.defer import Deferred, ensureDeferred, maybeDeferred

from ._arguments import ARG_OPTIONAL, ARG_REQUIRED
from ._body import json_arguments
from ._declarations import (
    CallDeclarations,
    Described,
    Handler,
    JSONArgument,
    NamespaceDeclaration,
    PagingDeclaration,
    Parameter,
    RequestBody,
    Response,
    declarations,
    declare,
    raises,
)
from ._errors import (
    AccessDeniedError,
    APIError,
    APIVersionGoneError,
    CharsetNotUTF8Error,
    ContentTypeError,
    ExpiredSecureCookieError,
    InvalidAuthenticationError,
    InvalidField,
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
    StorageUnavailableError,
    UnexpectedServerError,
    UnknownAPICallError,
    UnknownAPIError,
    UnknownAPIVersionError,
    ValueError,
)
from ._paging import paged_results
from ._request import APIRequest
from ._response import write_json
from ._returns import returns
from ._schema import MISSING, Arg, Constraints, FieldError, Object
from ._text_arguments import header_arguments, path_arguments, url_arguments
from .auth._challenge import quoted_string

__all__ = [
    "ARG_OPTIONAL",
    "ARG_REQUIRED",
    "MISSING",
    "APIError",
    "APIVersionGoneError",
    "AccessDeniedError",
    "Arg",
    "CallDeclarations",
    "CharsetNotUTF8Error",
    "Constraints",
    "ContentTypeError",
    "Described",
    "ExpiredSecureCookieError",
    "FieldError",
    "InvalidAuthenticationError",
    "InvalidField",
    "InvalidSecureCookieError",
    "JSONArgument",
    "JSONDecodeError",
    "JSONEncodeError",
    "MalformedRequestError",
    "MethodNotAllowedError",
    "NamespaceDeclaration",
    "Object",
    "PagingDeclaration",
    "Parameter",
    "RequestBody",
    "RequestHeadersTooLargeError",
    "RequestNotHashError",
    "RequestReadTimeoutError",
    "RequestTimeoutError",
    "RequestTooLargeError",
    "RequestURITooLongError",
    "Response",
    "ServiceUnavailableError",
    "StorageUnavailableError",
    "UnexpectedServerError",
    "UnknownAPICallError",
    "UnknownAPIError",
    "UnknownAPIVersionError",
    "ValueError",
    "auth_http_basic",
    "declarations",
    "declare",
    "header_arguments",
    "json_arguments",
    "paged_results",
    "path_arguments",
    "raises",
    "returns",
    "url_arguments",
    "write_json",
]

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
    challenge = f'Basic realm={quoted_string(realm)}, charset="UTF-8"'

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

        return declare(
            wrapper,
            handler,
            described=Described(
                parameters=(
                    Parameter(
                        "Authorization",
                        "header",
                        {"type": "string"},
                        True,
                        f"HTTP Basic credentials (realm {realm!r})",
                    ),
                ),
                errors=(InvalidAuthenticationError,),
                security=("basic",),
            ),
            http_basic_realm=realm,
        )

    return decorator
