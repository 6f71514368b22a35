"""
The ``APIError`` hierarchy: every error a client can receive from Shiji.

An error is a class with an ``error_code``, an ``exception_class`` (the
class's name unless set), an ``exception_text`` (a ``%`` template when the
class takes arguments) and an ``http_status``. Instances can be raised from a
handler, returned from it, or returned as ``str(error)``: all three give the
same response, the envelope::

    {"result": null,
     "error": {"error_code": 502, "exception_class": "ValueError",
               "exception_text": "Invalid value for argument 'x'. ..."}}
"""

from __future__ import annotations

import builtins
import functools
import re
from typing import Any, ClassVar, Dict, Optional, Sequence, Tuple

from . import _json
from ._status import REASON_PHRASES

__all__ = [
    "APIDefinitionError",
    "APIError",
    "APIVersionGoneError",
    "AccessDeniedError",
    "CharsetNotUTF8Error",
    "ContentTypeError",
    "ErrorText",
    "ExpiredSecureCookieError",
    "InvalidAuthenticationError",
    "InvalidField",
    "InvalidSecureCookieError",
    "JSONDecodeError",
    "JSONEncodeError",
    "MalformedRequestError",
    "MethodNotAllowedError",
    "RequestHeadersTooLargeError",
    "RequestNotHashError",
    "RequestReadTimeoutError",
    "RequestTimeoutError",
    "RequestTooLargeError",
    "RequestURITooLongError",
    "ServiceUnavailableError",
    "StorageUnavailableError",
    "UnexpectedServerError",
    "UnknownAPICallError",
    "UnknownAPIError",
    "UnknownAPIVersionError",
    "ValueError",
]

_ECHO_LIMIT = 200

# A conversion in a % template ("%s", "%(name)s", "%5d"), "%%" aside. The
# space flag ("% d") is left out: "50% done" is prose, not a template.
_CONVERSION = re.compile(
    r"%(?:\([^)]*\))?[-#0+]*[0-9*]*(?:\.[0-9*]+)?[diouxXeEfFgGcrsa]"
)


_FIELDS = ("error_code", "exception_class", "exception_text")


def _fields(args: Tuple[Any, ...], keywords: Tuple[Any, ...]) -> Tuple[Any, ...]:
    """
    The original's ``APIError(request, error_code, exception_class,
    exception_text)``: the fields from positional ``args`` and ``keywords``.
    """
    if len(args) > len(_FIELDS):
        raise TypeError(
            "APIError(request, error_code, exception_class, exception_text) "
            f"takes at most 3 values after the request, not {len(args)}"
        )
    fields = list(keywords)
    for index, value in enumerate(args):
        if fields[index] is not None:
            raise TypeError(f"APIError got two values for {_FIELDS[index]}")
        fields[index] = value
    return tuple(fields)


@functools.lru_cache(maxsize=512)
def _is_template(text: Optional[str]) -> bool:
    """Whether ``text`` has a ``%`` placeholder to fill."""
    return text is not None and _CONVERSION.search(text.replace("%%", "")) is not None


def status_phrase(status: int) -> str:
    """
    The reason phrase of an HTTP status in IANA's registry: ``Conflict`` for
    409; ``Error`` for a status the registry does not name.
    """
    return REASON_PHRASES.get(status, "Error")


def clip(text: str) -> str:
    """
    Shorten client-supplied text before it is echoed in an error message.
    """
    if len(text) <= _ECHO_LIMIT:
        return text
    return text[:_ECHO_LIMIT] + "..."


_FIELD_KEYS = ("field", "in", "reason", "expected")


def _field_dict(field: Any) -> Dict[str, str]:
    """A field error (a ``FieldError`` or a mapping) as clients receive it."""
    as_dict = getattr(field, "as_dict", None)
    found = dict(as_dict() if as_dict is not None else field)
    for key in _FIELD_KEYS:
        if not isinstance(found.get(key), str):
            raise TypeError(
                f"a field error needs {', '.join(_FIELD_KEYS)} as strings: {field!r}"
            )
    return found


class APIDefinitionError(Exception):
    """
    An API package, version map or call class is malformed.

    Raised while routers are built, so a broken API stops start-up with a
    message naming what is wrong instead of failing on its first request.
    """


class ErrorText(str):
    """
    The JSON envelope of an :class:`APIError`, as ``str(error)`` returns it.

    It is an ordinary string that also remembers its error, so that a handler
    returning ``str(error)`` gets the error's HTTP status and headers.
    """

    error: APIError


class APIError(Exception):
    """
    Base class of every error sent to a client as a JSON envelope.

    Subclass it to define an API's own errors::

        class SampleAdvancedError(APIError):
            error_code = 101
            exception_text = "A sample error. Extra Arg Value: %s"

    or build one on the spot, as the original Shiji allowed::

        APIError(request, 101, "SampleError", "Something went wrong.")

    :param request: the request being answered (kept as ``self.request``).
    :param args: when the class's ``exception_text`` is a ``%`` template,
        the values for its placeholders (``SampleAdvancedError(request,
        "x")``); otherwise, as in the original, the ``error_code``,
        ``exception_class`` and ``exception_text``, which may also be given
        by keyword.
    :param fields: the failing fields of the request, each a mapping (or a
        :class:`~shiji.webapi.FieldError`) with ``field``, ``in``,
        ``reason`` and ``expected``.
    :raises ValueError: (the built-in one) the error is left without a code,
        a class or a text ("Error code must be initialized." and the like),
        or its code is not an integer.
    """

    #: The error's number in the envelope; every concrete error has one.
    error_code: int = None  # type: ignore[assignment]
    #: The error's name in the envelope: a subclass's own name unless it
    #: says otherwise.
    exception_class: str = None  # type: ignore[assignment]
    #: What went wrong, for people; a ``%`` template where the class takes
    #: values.
    exception_text: str = None  # type: ignore[assignment]
    #: The HTTP status of the response; 409 (Conflict) unless a class says
    #: otherwise.
    http_status: ClassVar[int] = 409
    #: The failing fields of the request, as clients receive them
    #: (``{"field": "client.zip", "in": "body", "reason": "too short",
    #: "expected": "at least 5 characters"}``); sent as the envelope's
    #: ``fields`` and problem details' ``errors`` when there are any.
    fields: Tuple[Dict[str, str], ...] = ()
    #: Whether the envelope carries :attr:`fields` (problem details always
    #: do); the decorators' errors for the original Shiji's declarations
    #: leave them out, so that their answers stay the original's.
    fields_in_envelope: bool = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "exception_class" not in cls.__dict__:
            cls.exception_class = cls.__name__

    def __init__(
        self,
        request: Any = None,
        *args: Any,
        error_code: Optional[int] = None,
        exception_class: Optional[str] = None,
        exception_text: Optional[str] = None,
        fields: Optional[Sequence[Any]] = None,
    ) -> None:
        if args and _is_template(self.exception_text):
            self.exception_text = self.exception_text % args
        elif args:
            error_code, exception_class, exception_text = _fields(
                args, (error_code, exception_class, exception_text)
            )
        if error_code is not None:
            if isinstance(error_code, bool):
                raise builtins.ValueError("Error code must be an integer.")
            try:
                self.error_code = int(error_code)
            except (TypeError, builtins.ValueError):
                raise builtins.ValueError("Error code must be an integer.") from None
        if exception_class is not None:
            self.exception_class = exception_class
        if exception_text is not None:
            self.exception_text = exception_text
        for name, value in (
            ("Error code", self.error_code),
            ("Exception class", self.exception_class),
            ("Exception text", self.exception_text),
        ):
            if value is None:
                raise builtins.ValueError(f"{name} must be initialized.")
        self.request = request
        #: Extra response headers sent with this error (e.g. ``Allow``).
        self.headers: Dict[str, str] = {}
        if fields:
            self.fields = tuple(_field_dict(field) for field in fields)
        super().__init__(self.exception_text)

    def obj_err(self) -> Dict[str, Any]:
        """
        The error as the JSON-ready envelope sent to clients (the original
        Shiji's name; :meth:`envelope` is what is sent, and by default it is
        this).
        """
        error: Dict[str, Any] = {
            "error_code": self.error_code,
            "exception_class": self.exception_class,
            "exception_text": self.exception_text,
        }
        if self.fields and self.fields_in_envelope:
            error["fields"] = list(self.fields)
        return {"result": None, "error": error}

    def json_err(self) -> str:
        """The envelope as JSON text (``str(error)`` is the same text)."""
        return _json.dumps(self.envelope()).decode("utf-8")

    def envelope(self) -> Dict[str, Any]:
        """
        The error as the JSON-ready envelope sent to clients: what
        :meth:`obj_err` gives, unless a subclass answers otherwise.
        """
        return self.obj_err()

    def problem(self) -> Dict[str, Any]:
        """
        The error as an RFC 9457 problem details object, sent as
        ``application/problem+json`` to clients whose ``Accept`` asks for
        it: ``error_code`` and ``exception_class`` are extension members.
        """
        problem: Dict[str, Any] = {
            "type": "about:blank",
            "title": status_phrase(self.http_status),
            "status": self.http_status,
            "detail": self.exception_text,
            "error_code": self.error_code,
            "exception_class": self.exception_class,
        }
        if self.fields:
            problem["errors"] = list(self.fields)
        return problem

    def __str__(self) -> str:
        text = ErrorText(self.json_err())
        text.error = self
        return text

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.error_code} "
            f"http={self.http_status} {self.exception_text!r}>"
        )


class UnknownAPICallError(APIError):
    """
    No call of the requested version matches the path (HTTP 404).
    """

    error_code = 203
    exception_text = "The requested API call '%s' is unknown."
    http_status = 404


class JSONEncodeError(APIError):
    """
    A handler's result cannot be encoded as JSON (HTTP 500).
    """

    error_code = 204
    exception_text = (
        "An unrecoverable error has occurred JSON-encoding the API call result."
    )
    http_status = 500


class JSONDecodeError(APIError):
    """
    The request body is not UTF-8 JSON (HTTP 409).
    """

    error_code = 205
    exception_text = "Arguments passed in API call request are not validly formed JSON."


class RequestNotHashError(APIError):
    """
    The request body is JSON but not an object (HTTP 409).
    """

    error_code = 206
    exception_text = "Request body must be a JSON-encoded hash table/dictionary."


class UnknownAPIVersionError(APIError):
    """
    The version header is missing, malformed, names another API, an unknown
    version or a mode other than ``prod`` and ``test`` (HTTP 406).
    """

    error_code = 207
    exception_text = (
        "API version '%s' is invalid or specifies an API/version that does not exist."
    )
    http_status = 406


class UnknownAPIError(APIError):
    """
    No API's URL regex matches the first path segment (HTTP 404).
    """

    error_code = 208
    exception_text = "The requested API '%s' is unknown."
    http_status = 404


class MethodNotAllowedError(APIError):
    """
    The call has no handler for the request's method (HTTP 405, with
    ``Allow``).
    """

    error_code = 209
    exception_text = "The HTTP method '%s' is not allowed for this API call."
    http_status = 405


class RequestTooLargeError(APIError):
    """
    The request body is larger than the server accepts (HTTP 413); the
    connection is closed without reading the rest.
    """

    error_code = 210
    exception_text = "The request body is larger than the %s bytes this server accepts."
    http_status = 413


class MalformedRequestError(APIError):
    """
    The request is not HTTP/1.1 the server can read: a malformed request
    line or header, both ``Content-Length`` and ``Transfer-Encoding``, or a
    bad chunk (HTTP 400). The connection is closed.
    """

    error_code = 213
    exception_text = "The request is not well-formed HTTP/1.1."
    http_status = 400


class RequestURITooLongError(APIError):
    """
    The request line is longer than the server reads (HTTP 414). The
    connection is closed.
    """

    error_code = 214
    exception_text = "The request line is longer than the %s bytes this server reads."
    http_status = 414


class RequestHeadersTooLargeError(APIError):
    """
    A header line, or the headers together, are larger than the server
    reads, or there are too many of them (HTTP 431). The connection is
    closed.
    """

    error_code = 215
    exception_text = "The request headers are larger than this server reads."
    http_status = 431


class RequestReadTimeoutError(APIError):
    """
    The client did not send a whole request (headers within
    ``header_timeout``, then the body within ``body_timeout`` more) in time
    (HTTP 408). The connection is closed.
    """

    error_code = 216
    exception_text = "The request was not received within %s seconds."
    http_status = 408


class RequestTimeoutError(APIError):
    """
    The call did not answer within the server's request timeout and was
    cancelled (HTTP 503).
    """

    error_code = 211
    exception_text = "The API call did not complete within %s seconds."
    http_status = 503


class APIVersionGoneError(APIError):
    """
    The requested version is past its sunset and no longer served (HTTP 410).
    """

    error_code = 212
    exception_text = "API version '%s' was retired on %s."
    http_status = 410


class ServiceUnavailableError(APIError):
    """
    Something the call needs (such as the authentication backend) is not
    ready yet (HTTP 503, with ``Retry-After``).
    """

    error_code = 217
    exception_text = "The service is not ready to answer this call; try again shortly."
    http_status = 503

    def __init__(self, request: Any = None, *args: Any, **fields: Any) -> None:
        super().__init__(request, *args, **fields)
        self.headers["Retry-After"] = "1"


class StorageUnavailableError(APIError):
    """
    The shared store (``[storage]``: SQLite, Redis) cannot be reached, so a
    call that keeps its state there cannot be answered (HTTP 503, with
    ``Retry-After``); nothing was half-written. Raised by
    :mod:`shiji.storage`'s operations.
    """

    error_code = 218
    exception_text = "The shared store cannot be reached; try again shortly."
    http_status = 503

    def __init__(self, request: Any = None, *args: Any, **fields: Any) -> None:
        super().__init__(request, *args, **fields)
        self.headers["Retry-After"] = "1"


class AccessDeniedError(APIError):
    """
    The caller lacks the permission the call requires (HTTP 403).
    """

    error_code = 501
    exception_text = "Insufficient permission to perform the requested action."
    http_status = 403


class ValueError(APIError):
    """
    An argument is missing or has an invalid value (HTTP 409). It shadows the
    built-in ``ValueError`` on purpose: the name is part of every client's
    error contract.
    """

    error_code = 502
    exception_text = "Invalid value for argument '%s'. %s"


class InvalidField(ValueError):
    """
    A field the handler found wrong, answered as the ``ValueError`` (HTTP
    409) the decorators answer with, field list included::

        raise webapi.InvalidField(request, "id", "No such user.",
                                  expected="the id of a user")

    :param field: the field's name or path (``client.address.zip``).
    :param message: the sentence after ``Invalid value for argument
        'id'.``; ``Must be <expected>.`` unless given.
    :param reason: why, for programs: ``invalid`` unless said.
    :param expected: what would have been accepted, in words.
    :param location: where the field was sent: ``body`` (the default),
        ``query``, ``path`` or ``header``.
    """

    exception_class = "ValueError"

    def __init__(
        self,
        request: Any,
        field: str,
        message: str = "",
        *,
        reason: str = "invalid",
        expected: str = "",
        location: str = "body",
    ) -> None:
        if not message and not expected:
            raise TypeError("InvalidField needs a message or what is expected")
        sentence = message or f"Must be {expected}."
        super().__init__(
            request,
            field,
            sentence,
            fields=[
                {
                    "field": field,
                    "in": location,
                    "reason": reason,
                    "expected": expected or sentence,
                }
            ],
        )


class ContentTypeError(APIError):
    """
    The request body is not of the media type the call expects (HTTP 406).
    """

    error_code = 503
    exception_text = (
        "The Content-Type of the API request was not of the expected "
        "format...or the API/version requested does not exist."
    )
    http_status = 406


class CharsetNotUTF8Error(APIError):
    """
    The Content-Type names a charset other than UTF-8, or none where one is
    required (HTTP 409).
    """

    error_code = 504
    exception_text = (
        "The Content-Type of the API request did not specify a charset, or "
        "the charset specified was not UTF-8."
    )


class UnexpectedServerError(APIError):
    """
    A handler failed unexpectedly; the text carries only a request id, under
    which the traceback is logged (HTTP 500).
    """

    error_code = 505
    exception_text = (
        "An unexpected error has occurred processing the request. Error: '%s'"
    )
    http_status = 500


class InvalidAuthenticationError(APIError):
    """
    Credentials are missing, malformed or refused (HTTP 401).
    """

    error_code = 506
    exception_text = (
        "Authentication information is invalidly formed and/or missing "
        "required elements."
    )
    http_status = 401


class InvalidSecureCookieError(APIError):
    """
    A secure cookie's signature does not verify (HTTP 409).
    """

    error_code = 507
    exception_text = "Secure cookie '%s' signature '%s' is invalid."


class ExpiredSecureCookieError(APIError):
    """
    A secure cookie is past its expiry (HTTP 409).
    """

    error_code = 508
    exception_text = "Secure cookie '%s' is expired."
