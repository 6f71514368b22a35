"""
The one place where handler results, errors and failures become responses.

A handler's outcome may be a value, a ``Deferred``, a coroutine or an
exception; :func:`render_call` resolves it and hands the final result to
:func:`write_result` or the failure to :func:`write_failure`, which turn it
into exactly one response.
"""

from __future__ import annotations

import secrets
from collections.abc import Coroutine
from typing import Any, Callable, Optional, Tuple

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET

from . import _json
from ._errors import (
    APIError,
    ErrorText,
    JSONEncodeError,
    RequestTimeoutError,
    UnexpectedServerError,
)
from ._reactor import global_reactor
from ._request import JSON_CONTENT_TYPE, APIRequest, has_body
from ._returns import check_response

__all__ = [
    "error_body",
    "prepare_error",
    "render_call",
    "wants_problem",
    "write_error",
    "write_failure",
    "write_json",
    "write_result",
]

log = Logger()

PROBLEM_CONTENT_TYPE = b"application/problem+json"


def _quality(accept: bytes, media_type: bytes) -> float:
    """The q-value ``accept`` gives ``media_type`` itself (0 if unlisted)."""
    best = 0.0
    for media_range in accept.split(b","):
        name, _, parameters = media_range.partition(b";")
        if name.strip().lower() != media_type:
            continue
        quality = 1.0
        for parameter in parameters.split(b";"):
            key, _, value = parameter.partition(b"=")
            if key.strip().lower() == b"q":
                try:
                    quality = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        best = max(best, quality)
    return best


def wants_problem(accept: Optional[bytes]) -> bool:
    """
    Whether an ``Accept`` header asks for RFC 9457 problem details: it
    names ``application/problem+json`` itself (wildcards don't count), at
    least as preferred as ``application/json``.
    """
    if not accept or b"problem+json" not in accept.lower():
        return False
    problem = _quality(accept, PROBLEM_CONTENT_TYPE)
    return problem > 0 and problem >= _quality(accept, b"application/json")


def error_body(error: APIError, accept: Optional[bytes]) -> Tuple[bytes, bytes]:
    """
    The content type and body answering with ``error``: problem details
    when the request's ``Accept`` (``accept``) asks for them (see
    :func:`wants_problem`), the Shiji envelope otherwise.
    """
    if wants_problem(accept):
        return PROBLEM_CONTENT_TYPE, _json.dumps(error.problem())
    # The standard envelope holds an int and strings: no float to check.
    kind = type(error)
    standard = (
        kind.envelope is APIError.envelope
        and kind.obj_err is APIError.obj_err
        and isinstance(error.exception_class, str)
        and isinstance(error.exception_text, str)
    )
    return JSON_CONTENT_TYPE, _json.dumps(error.envelope(), floatless=standard)


def _closed(request: APIRequest) -> bool:
    return request.finished or request.disconnected


def _send(request: APIRequest, body: bytes) -> None:
    if not has_body(request.code):
        # 204, 304 and interim answers have no body, and so no length.
        request.finish()
        return
    if request.response_header(b"content-type") is None:
        request.set_raw_header(b"content-type", JSON_CONTENT_TYPE)
    request.set_raw_header(b"content-length", b"%d" % len(body))
    request.write(body)
    request.finish()


def write_json(request: APIRequest, obj: Any) -> None:
    """
    Send ``obj`` encoded as JSON as the response, and finish the request.

    The status is left as the handler set it (200 unless changed). An object
    JSON cannot represent gives ``JSONEncodeError`` (HTTP 500) instead.
    Calling it on a request that is already finished, or whose client has
    gone, does nothing.
    """
    if _closed(request):
        return
    if request.response_check is not None:
        mismatch = check_response(request, obj)
        if mismatch is not None:
            write_error(request, mismatch)
            return
    try:
        body = _json.dumps(obj)
    except (TypeError, ValueError):
        log.failure(
            "Cannot JSON-encode the result of {method} {path}",
            method=_text(request.method),
            path=_text(request.path),
        )
        write_error(request, JSONEncodeError(request))
        return
    _send(request, body)


def prepare_error(request: APIRequest, error: APIError) -> bytes:
    """
    Set the status and headers of ``error`` on ``request`` and return the
    body to send: the JSON envelope, or problem details (see
    :func:`error_body`).
    """
    request.setResponseCode(error.http_status)
    for name, value in error.headers.items():
        request.setHeader(name, value)
    content_type, body = error_body(error, request.getHeader(b"accept"))
    request.set_raw_header(b"content-type", content_type)
    request.add_header(b"vary", b"Accept")
    # The site counts the error with the answer.
    request.error_class = error.exception_class
    return body


def write_error(request: APIRequest, error: APIError) -> None:
    """
    Send ``error`` as the JSON envelope with its HTTP status and headers.
    """
    if _closed(request):
        return
    if request.startedWriting:
        # The status and headers are sent and part of the body with them:
        # the error can no longer be answered, and the client must not
        # take what was sent for a whole answer.
        log.warn(
            "{method} {path}: {error} after the answer had begun; the "
            "connection is closed to cut the answer short",
            method=_text(request.method),
            path=_text(request.path),
            error=error.exception_class,
        )
        request.abort()
        return
    _send(request, prepare_error(request, error))


def write_failure(request: APIRequest, reason: Failure) -> None:
    """
    Answer a request whose handler failed.

    An ``APIError`` is sent as itself. Anything else is logged with its
    traceback under a fresh request id and answered with HTTP 500
    ``UnexpectedServerError`` carrying only that id.
    """
    if isinstance(reason.value, APIError):
        write_error(request, reason.value)
        return
    request_id = secrets.token_hex(8)
    request.request_id = request_id
    log.failure(
        "Unexpected error answering {method} {path} (request id {request_id})",
        reason,
        method=_text(request.method),
        path=_text(request.path),
        request_id=request_id,
    )
    error = UnexpectedServerError(request, f"request id {request_id}")
    error.headers["X-Request-Id"] = request_id
    write_error(request, error)


def write_result(request: APIRequest, result: object) -> None:
    """
    Send what a handler returned.

    - ``bytes`` and ``str`` are sent as they are (``str`` as UTF-8), with a
      JSON content type unless the handler set another;
    - ``str(error)`` of an ``APIError``, or the error itself, is sent as that
      error;
    - ``NOT_DONE_YET`` means the handler finishes the request itself;
    - ``None`` is fine once the handler has finished the request (e.g. with
      ``write_json``), and a server error otherwise;
    - anything else (dicts, lists, numbers...) is encoded as JSON.
    """
    if result is NOT_DONE_YET:
        return
    if _closed(request):
        if result is not None and not request.disconnected:
            log.warn(
                "{method} {path}: the handler returned a value after finishing "
                "the response; the value was dropped",
                method=_text(request.method),
                path=_text(request.path),
            )
        return
    if isinstance(result, ErrorText):
        write_error(request, result.error)
    elif isinstance(result, (bytes, str)):
        body = result.encode("utf-8") if isinstance(result, str) else result
        if request.response_check is not None:
            mismatch = _check_text(request, body)
            if mismatch is not None:
                write_error(request, mismatch)
                return
        _send(request, body)
    elif isinstance(result, APIError):
        write_error(request, result)
    elif result is None:
        raise RuntimeError(
            "the handler returned None without finishing the response; "
            "return the result, or call shiji.webapi.write_json"
        )
    else:
        write_json(request, result)


def _check_text(request: APIRequest, body: bytes) -> Optional[APIError]:
    """:func:`check_response` for a body the handler encoded itself."""
    try:
        value = _json.loads(body) if body else None
    except _json.JSONBodyError:
        value = _NOT_JSON
    return check_response(request, value)


#: What a body that is not JSON is checked as: no schema accepts it.
_NOT_JSON = object()


def render_call(
    request: APIRequest,
    handler: Callable[[APIRequest], object],
    timeout: Optional[float] = None,
) -> None:
    """
    Call ``handler`` with ``request`` and answer with whatever it produces,
    synchronously or once its ``Deferred`` or coroutine completes.

    A ``Deferred`` or coroutine still running after ``timeout`` seconds is
    cancelled and answered with ``RequestTimeoutError`` (HTTP 503).
    """
    try:
        result = handler(request)
        if result.__class__ is dict and not _closed(request):
            # The common answer, without asking what else it could be.
            write_json(request, result)
            return
        if isinstance(result, Coroutine):
            result = ensureDeferred(result)
        if not isinstance(result, Deferred):
            write_result(request, result)
            return
    except APIError as error:
        # The common refusal, answered without the cost of a Failure.
        write_error(request, error)
        return
    except Exception:
        write_failure(request, Failure())
        return
    if timeout is not None:

        def timed_out(value: object, seconds: float) -> Failure:
            return Failure(RequestTimeoutError(request, f"{seconds:g}"))

        clock = getattr(request.site, "clock", None) or global_reactor()
        result.addTimeout(timeout, clock, onTimeoutCancel=timed_out)
    result.addCallback(lambda value: write_result(request, value))
    result.addErrback(lambda reason: write_failure(request, reason))


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")
