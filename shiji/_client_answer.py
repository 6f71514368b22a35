"""
What an answer to a call of :mod:`shiji.client` means, with no I/O: its
body gathered up to a limit, then a :class:`Response` for a success, or
the exception of an error (an :class:`APIError` subclass named as the
server's class) or of an answer that is not Shiji's.
"""

from __future__ import annotations

from typing import (
    Any,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Tuple,
    Union,
)

from . import _json
from ._client_errors import APIError, BadAnswerError, ErrorClasses

__all__ = [
    "Answer",
    "AnswerBody",
    "Headers",
    "Response",
    "encoding_error",
    "error_of",
    "read_answer",
]

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


#: One try's answer, as received: its status, headers and whole body.
Answer = Tuple[int, Headers, bytes]


class AnswerBody:
    """
    An answer's body as it arrives, kept up to ``limit`` bytes.

    :param limit: the most bytes accepted (``max_answer_bytes``).
    :param status: the answer's status, for the errors.
    :param headers: the answer's headers, for the errors.
    """

    def __init__(self, limit: int, status: int, headers: Headers) -> None:
        self.limit = limit
        self.status = status
        self.headers = headers
        self._chunks: List[bytes] = []
        self._size = 0

    def add(self, data: bytes) -> None:
        """
        Keep ``data``, the next bytes received.

        :raises BadAnswerError: the body is now longer than ``limit``.
        """
        self._size += len(data)
        if self._size > self.limit:
            raise BadAnswerError(
                f"the answer is larger than {self.limit} bytes",
                self.status,
                self.headers,
                self.received(),
            )
        self._chunks.append(data)

    def received(self) -> bytes:
        """The bytes kept so far."""
        return b"".join(self._chunks)

    def answer(self) -> Answer:
        """The whole answer, once its body has ended."""
        return self.status, self.headers, self.received()

    def cut_off(self) -> BadAnswerError:
        """The error of an answer whose connection ended before its body."""
        return BadAnswerError(
            "the answer was cut off", self.status, self.headers, self.received()
        )


def _codings(value: str) -> List[str]:
    """The content codings a header lists, in lower case, without weights."""
    found = (part.partition(";")[0].strip().lower() for part in value.split(","))
    return [coding for coding in found if coding]


def encoding_error(
    status: int, headers: Mapping[str, str], accepted: Optional[str]
) -> Optional[BadAnswerError]:
    """
    The error of an answer encoded (``Content-Encoding``) otherwise than
    the call asked: the clients send ``Accept-Encoding: identity`` and
    decode nothing, since a compressed body could grow far past
    ``max_answer_bytes`` once decoded. ``None`` for an answer as asked.

    :param accepted: the call's ``Accept-Encoding``.
    """
    asked = _codings(accepted or "identity")
    unasked = [
        coding
        for coding in _codings(headers.get("content-encoding", ""))
        if coding != "identity" and coding not in asked and "*" not in asked
    ]
    if not unasked:
        return None
    return BadAnswerError(
        f"the answer is encoded as {', '.join(unasked)}, which was not asked for",
        status,
        headers,
    )


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
