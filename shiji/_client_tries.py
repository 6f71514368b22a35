"""
The course of one call of :mod:`shiji.client` over its tries, with no I/O:
the retry policy (:class:`Retry`, reading ``Retry-After``) and
:class:`Tries`, which says what each try sends and what its outcome
means: the result, the exception to raise, or another try, at once or
after a wait. Each client only does the I/O: it sends, fetches tokens and
waits.
"""

from __future__ import annotations

import builtins
import email.utils
import time
from dataclasses import dataclass
from typing import Callable, FrozenSet, Mapping, NamedTuple, Optional, Union

from ._client_answer import Headers, Response, read_answer
from ._client_call import Call
from ._client_errors import CONNECTION_REFUSED, ConnectionFailedError, ErrorClasses
from ._oauth import Tokens, token_refused

__all__ = [
    "DEFAULT_RETRY",
    "IDEMPOTENT_METHODS",
    "Again",
    "Retry",
    "Tries",
    "retry_after",
]

#: The methods RFC 9110 (section 9.2.2) calls idempotent: repeating one has
#: the effect of sending it once, so these are retried by default.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})

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


DEFAULT_RETRY = Retry()


class Again(NamedTuple):
    """Try the call again, after ``wait`` seconds (``None``: at once)."""

    wait: Optional[float] = None


class Tries:
    """
    The tries of one call, with no I/O. A client makes one for each call
    and loops: it sends the call that :meth:`start` gives (with a token of
    :attr:`tokens`, when set), passes a failed connection to :meth:`failed`
    or the answer to :meth:`answered`, and gets back the call's
    :class:`Response`, or an :class:`Again` saying how long to wait before
    the next try; those two raise the call's errors.

    :param call: the call, as made.
    :param retry: when the call is tried again.
    :param idempotent: whether the call may be sent again on a retried
        status (``None``: when its method is in ``retry.methods``).
    :param errors: the error classes answers are raised as.
    :param tokens: the client's OAuth 2 tokens, if it has credentials.
    :param now: the time ``Retry-After`` dates are measured from, when an
        answer has no ``Date``.
    """

    def __init__(
        self,
        call: Call,
        retry: Retry,
        idempotent: Optional[bool],
        errors: ErrorClasses,
        tokens: Optional[Tokens] = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.call = call
        self.retry = retry
        #: Whose tokens each try sends: ``None`` without credentials, or
        #: when the call sends its own ``Authorization``.
        self.tokens = None if call.has_header("Authorization") else tokens
        self._repeat = retry.applies(call.method, idempotent)
        self._errors = errors
        self._now = now
        self._attempt = 0
        self._token: Optional[str] = None
        self._refreshed = False

    def start(self, token: Optional[str] = None) -> Call:
        """
        Start the next try: the call to send, with ``token`` (the current
        one of :attr:`tokens`) as its bearer.
        """
        self._attempt += 1
        self._token = token
        return self.call if token is None else self.call.with_bearer(token)

    def failed(self, error: ConnectionFailedError) -> Again:
        """
        The try did not reach the server: when to try again.

        :raises ConnectionFailedError: ``error``, unless it is a refused
            connection that ``retry`` tries again.
        """
        retry = self.retry
        if not (
            retry.connection_refused
            and error.reason == CONNECTION_REFUSED
            and self._attempt < retry.attempts
        ):
            raise error
        return Again(retry.back_off(self._attempt))

    def answered(
        self, status: int, headers: Headers, body: bytes
    ) -> Union[Response, Again]:
        """
        The try was answered: the call's :class:`Response`, or when to try
        again (at once with a new token, the first time the token sent is
        refused: a 401 with a ``Bearer`` challenge; after a wait, for a
        retried status).

        :raises APIError: the API answered with an error.
        :raises BadAnswerError: the answer is not Shiji's.
        """
        token = self._token
        if (
            status == 401
            and self.tokens is not None
            and token is not None
            and not self._refreshed
            and token_refused(headers)
        ):
            # Sent again once, with a new token; not counted as a try.
            self.tokens.refused(token)
            self._refreshed = True
            self._attempt -= 1
            return Again()
        if self._repeat and status in self.retry.statuses:
            wait = self.retry.wait(self._attempt, headers, self._now)
            if wait is not None:
                return Again(wait)
        return read_answer(status, headers, body, self._errors)
