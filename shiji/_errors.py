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
from http import HTTPStatus
from typing import Any, ClassVar, Dict

from . import _json

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
    "UnexpectedServerError",
    "UnknownAPICallError",
    "UnknownAPIError",
    "UnknownAPIVersionError",
    "ValueError",
]

_ECHO_LIMIT = 200


def status_phrase(status: int) -> str:
    """The reason phrase of an HTTP status: ``Conflict`` for 409."""
    try:
        return HTTPStatus(status).phrase
    except builtins.ValueError:  # this module's ValueError is an APIError
        return "Error"


def clip(text: str) -> str:
    """
    Shorten client-supplied text before it is echoed in an error message.
    """
    if len(text) <= _ECHO_LIMIT:
        return text
    return text[:_ECHO_LIMIT] + "..."


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

    :param request: the request being answered (kept as ``self.request``).
    :param text_args: values for the ``%s`` placeholders of
        ``exception_text``; without them the text is used as it stands.
    """

    error_code: ClassVar[int] = 500
    exception_class: ClassVar[str] = "APIError"
    exception_text: str = "An error has occurred processing the API call."
    #: The HTTP status of the response; 409 (Conflict) unless a class says
    #: otherwise.
    http_status: ClassVar[int] = 409

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "exception_class" not in cls.__dict__:
            cls.exception_class = cls.__name__

    def __init__(self, request: Any = None, *text_args: object) -> None:
        if text_args:
            self.exception_text = type(self).exception_text % text_args
        self.request = request
        #: Extra response headers sent with this error (e.g. ``Allow``).
        self.headers: Dict[str, str] = {}
        super().__init__(self.exception_text)

    def envelope(self) -> Dict[str, Any]:
        """
        The error as the JSON-ready envelope sent to clients.
        """
        return {
            "result": None,
            "error": {
                "error_code": self.error_code,
                "exception_class": self.exception_class,
                "exception_text": self.exception_text,
            },
        }

    def problem(self) -> Dict[str, Any]:
        """
        The error as an RFC 9457 problem details object, sent as
        ``application/problem+json`` to clients whose ``Accept`` asks for
        it: ``error_code`` and ``exception_class`` are extension members.
        """
        return {
            "type": "about:blank",
            "title": status_phrase(self.http_status),
            "status": self.http_status,
            "detail": self.exception_text,
            "error_code": self.error_code,
            "exception_class": self.exception_class,
        }

    def __str__(self) -> str:
        text = ErrorText(_json.dumps(self.envelope()).decode("utf-8"))
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
    required (HTTP 406).
    """

    error_code = 504
    exception_text = (
        "The Content-Type of the API request did not specify a charset, or "
        "the charset specified was not UTF-8."
    )
    http_status = 406


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
