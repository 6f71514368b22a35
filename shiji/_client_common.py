"""
What every flavour of :mod:`shiji.client` shares, with no I/O: the request
a call makes (URL, headers, body), reading the answer into a result or an
error, and the retry policy with its reading of ``Retry-After``.
"""

from __future__ import annotations

import builtins
import email.utils
import time
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    Union,
)
from urllib.parse import quote, urlencode, urlsplit

from . import _json
from ._client_errors import APIError, BadAnswerError, ErrorClasses, ErrorSpec
from ._version_header import API_MODES, VersionHeader

__all__ = [
    "DEFAULT_RETRY",
    "IDEMPOTENT_METHODS",
    "Call",
    "CallMaker",
    "ClientBase",
    "Headers",
    "Response",
    "Retry",
    "error_of",
    "read_answer",
    "retry_after",
]

#: The methods RFC 9110 (section 9.2.2) calls idempotent: repeating one has
#: the effect of sending it once, so these are retried by default.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})

#: A query argument's value: repeated for a list (``?id=1&id=2``).
QueryValue = Union[str, int, float, bool, Sequence[Union[str, int, float, bool]]]
Params = Union[Mapping[str, QueryValue], Sequence[Tuple[str, QueryValue]], None]

# Nothing sent as JSON: ``json=None`` sends no body.
_JSON_TYPES = ("application/json", "application/problem+json")


class Headers(Mapping[str, str]):
    """
    An answer's headers: a read-only mapping whose names match in any
    case; a header sent several times is its values joined with ``", "``
    (:meth:`get_all` gives each).
    """

    def __init__(self, pairs: Iterable[Tuple[str, str]] = ()) -> None:
        self._pairs = list(pairs)
        self._joined: Dict[str, str] = {}
        for name, value in self._pairs:
            key = name.lower()
            found = self._joined.get(key)
            self._joined[key] = value if found is None else f"{found}, {value}"

    def __getitem__(self, name: str) -> str:
        return self._joined[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._joined

    def __iter__(self) -> Iterator[str]:
        return iter(self._joined)

    def __len__(self) -> int:
        return len(self._joined)

    def get_all(self, name: str) -> List[str]:
        """Every value of header ``name``, in the order received."""
        key = name.lower()
        return [value for found, value in self._pairs if found.lower() == key]

    def __repr__(self) -> str:
        return f"Headers({self._pairs!r})"


def _media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").partition(";")[0].strip().lower()


class Response:
    """
    A successful (2xx) answer.

    :ivar status: the HTTP status.
    :ivar headers: the headers (:class:`Headers`: names in any case).
    :ivar body: the body as received.
    """

    def __init__(self, status: int, headers: Headers, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self) -> Any:
        """
        The body decoded: ``None`` for an empty one.

        :raises BadAnswerError: the body is not JSON (by its ``Content-Type``
            or its bytes).
        """
        if not self.body:
            return None
        media = _media_type(self.headers)
        if media and media not in _JSON_TYPES and not media.endswith("+json"):
            raise BadAnswerError(
                f"the answer is {media}, not JSON", self.status, self.headers, self.body
            )
        try:
            return _json.loads(self.body)
        except _json.JSONBodyError as e:
            raise BadAnswerError(
                f"the answer is not valid JSON: {e}",
                self.status,
                self.headers,
                self.body,
            ) from None

    def __repr__(self) -> str:
        return f"<Response {self.status} {len(self.body)} bytes>"


def _fields(found: Any) -> Tuple[Dict[str, Any], ...]:
    if not isinstance(found, list):
        return ()
    return tuple(dict(item) for item in found if isinstance(item, dict))


def error_of(
    status: int, headers: Headers, body: bytes, errors: ErrorClasses
) -> Union[APIError, BadAnswerError]:
    """
    The exception for an error answer (status 400 or more): the
    :class:`APIError` subclass of its ``exception_class``, or
    :class:`BadAnswerError` when it is not a Shiji error.
    """
    media = _media_type(headers)
    if media not in _JSON_TYPES:
        return BadAnswerError(
            f"an error answered as {media or 'no media type'}, not JSON",
            status,
            headers,
            body,
        )
    try:
        value = _json.loads(body)
    except _json.JSONBodyError as e:
        return BadAnswerError(
            f"an error answer that is not valid JSON: {e}", status, headers, body
        )
    problem = media == "application/problem+json"
    if problem:
        error = value
        text_member, fields_member = "detail", "errors"
    else:
        error = value.get("error") if isinstance(value, dict) else None
        text_member, fields_member = "exception_text", "fields"
    if not isinstance(error, dict) or not isinstance(error.get("exception_class"), str):
        return BadAnswerError(
            "an error answer without Shiji's exception_class", status, headers, body
        )
    code = error.get("error_code")
    text = error.get(text_member)
    return errors.error(
        status,
        code if isinstance(code, int) and not isinstance(code, bool) else None,
        error["exception_class"],
        text if isinstance(text, str) else "",
        fields=_fields(error.get(fields_member)),
        body=value,
        headers=headers,
        problem=problem,
    )


def read_answer(
    status: int, headers: Headers, body: bytes, errors: ErrorClasses
) -> Response:
    """
    The answer as a :class:`Response` when it succeeded (2xx).

    :raises APIError: an error answer, as its class.
    :raises BadAnswerError: any other answer.
    """
    if 200 <= status < 300:
        return Response(status, headers, body)
    if status >= 400:
        raise error_of(status, headers, body, errors)
    raise BadAnswerError(
        "a status that is neither success nor error", status, headers, body
    )


# delay-seconds is 1*DIGIT; more digits than this are longer than any wait.
_MAX_DELAY_DIGITS = 10


def retry_after(
    headers: Mapping[str, str], now: Callable[[], float] = time.time
) -> Optional[float]:
    """
    The seconds ``Retry-After`` asks to wait (RFC 9110 section 10.2.3):
    ``delay-seconds`` or an HTTP-date, measured from the answer's ``Date``
    when it has a readable one (so clocks that disagree do not matter),
    else from ``now()``. A date in the past is 0; a value that is neither
    is ``None``.
    """
    value = headers.get("retry-after", "").strip()
    if value.isdigit() and value.isascii():
        return float(value) if len(value) <= _MAX_DELAY_DIGITS else float("inf")
    asked = _http_date(value)
    if asked is None:
        return None
    reference = _http_date(headers.get("date", ""))
    return max(asked - (reference if reference is not None else now()), 0.0)


def _http_date(value: str) -> Optional[float]:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    # Python 3.9 answers a date it cannot read with TypeError, later ones
    # with ValueError; a year out of range is OverflowError.
    except (TypeError, builtins.ValueError, OverflowError, IndexError):
        return None


@dataclass(frozen=True)
class Retry:
    """
    When a call is sent again, and how long to wait first.

    An answer whose status is in ``statuses`` (429 Too Many Requests and
    503 Service Unavailable) is tried again, up to ``attempts`` tries in
    all, for the ``methods`` given (the idempotent ones: a POST might have
    done its work before the answer was lost) and for calls made with
    ``idempotent=True``. The wait is what ``Retry-After`` asks, or else
    ``backoff`` seconds doubled after each try; a wait longer than
    ``max_wait`` is not waited: the error is raised at once. With
    ``connection_refused``, a refused connection is tried again after the
    same back-off, whatever the method (the request was never sent).

    ``Retry(attempts=1)`` never retries.
    """

    attempts: int = 3
    backoff: float = 0.5
    max_wait: float = 10.0
    statuses: FrozenSet[int] = frozenset({429, 503})
    methods: FrozenSet[str] = IDEMPOTENT_METHODS
    connection_refused: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise TypeError("attempts must be an integer")
        if self.attempts < 1:
            raise builtins.ValueError("attempts must be 1 or more")
        if not (self.backoff >= 0 and self.max_wait >= 0):
            raise builtins.ValueError("backoff and max_wait must be 0 or more")
        object.__setattr__(self, "statuses", frozenset(self.statuses))
        object.__setattr__(self, "methods", frozenset(m.upper() for m in self.methods))

    def applies(self, method: str, idempotent: Optional[bool]) -> bool:
        """Whether a call of ``method`` is retried on ``statuses``."""
        return idempotent if idempotent is not None else method in self.methods

    def back_off(self, attempt: int) -> float:
        """The wait after try number ``attempt`` (1 for the first)."""
        return float(min(self.backoff * 2 ** (attempt - 1), self.max_wait))

    def wait(
        self, attempt: int, headers: Mapping[str, str], now: Callable[[], float]
    ) -> Optional[float]:
        """
        The seconds to wait before trying again after try number
        ``attempt`` answered a retried status, or ``None`` to give up.
        """
        if attempt >= self.attempts:
            return None
        asked = retry_after(headers, now)
        if asked is None:
            return self.back_off(attempt)
        return asked if asked <= self.max_wait else None


@dataclass(frozen=True)
class Call:
    """One call, ready to send."""

    method: str
    url: str
    headers: Dict[str, str]
    body: Optional[bytes]


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


DEFAULT_RETRY = Retry()


class ClientBase:
    """What every flavour of client is made of: the calls' making, the
    error classes, the timeout and the retry policy."""

    def __init__(
        self,
        url: str,
        api: str,
        version: str,
        mode: str,
        *,
        version_header: str,
        token: Optional[str],
        errors: ErrorSpec,
        headers: Optional[Mapping[str, str]],
        timeout: Optional[float],
        retry: Optional[Retry],
        problem_details: bool,
        max_answer_bytes: int,
    ) -> None:
        own = dict(headers or {})
        if token is not None:
            own["Authorization"] = f"Bearer {token}"
        self._calls = CallMaker(
            url, VersionHeader(api, version, mode), version_header, problem_details, own
        )
        self._errors = ErrorClasses(errors)
        #: Seconds each try of a call may take (``None``: no limit).
        self.timeout = timeout
        #: When calls are sent again.
        self.retry = retry if retry is not None else Retry(attempts=1)
        #: A longer answer raises :class:`BadAnswerError`.
        self.max_answer_bytes = max_answer_bytes

    @property
    def version_header(self) -> Tuple[str, str]:
        """The version header sent with every call: its name and value."""
        name = self._calls.version_header
        return name, self._calls.headers[name]

    def error(self, name: Union[str, type]) -> Type[APIError]:
        """
        The exception class raised for the errors named ``name`` (or of
        the server error class ``name``)::

            try:
                await client.post("/login", json=credentials)
            except client.error("LoginFailedError") as e:
                print(e.status, e.code, e.text)

        Shiji's errors and those given as ``errors`` are subclasses as on
        the server (``except client.error("ValueError")`` also catches
        an API's subclass of it); any other name gets a class of its own,
        the same for every call of this client.
        """
        return self._errors.get(name)
