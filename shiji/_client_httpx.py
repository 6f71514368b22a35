"""
The blocking client of Shiji APIs, over httpx (``pip install
shiji[httpx]``): the Twisted client's calls, errors, retries and tokens,
for scripts, tests and threads; the I/O of each call's tries
(:class:`Tries` decides them) is blocking.
"""

from __future__ import annotations

import builtins
import threading
import time
from typing import Any, Callable, Mapping, Optional, Union

from ._client_answer import Answer, AnswerBody, Headers, Response, encoding_error
from ._client_base import ClientBase
from ._client_call import Call
from ._client_errors import (
    CLOSED_BEFORE_ANSWER,
    CONNECTION_REFUSED,
    BadAnswerError,
    ClientTimeoutError,
    ConnectionFailedError,
    ErrorSpec,
)
from ._client_tries import DEFAULT_RETRY, Again, Retry, Tries
from ._oauth import OAuth2ClientCredentials, Tokens

__all__ = ["SyncClient"]


def _refused(error: BaseException) -> bool:
    """Whether a connection refused is among the causes of ``error``."""
    found: Optional[BaseException] = error
    while found is not None:
        if isinstance(found, builtins.ConnectionRefusedError):
            return True
        found = found.__cause__ or found.__context__
    return False


class SyncClient(ClientBase[Response, Any]):
    """
    A blocking client of one version of a Shiji API, over httpx: each call
    returns its result (or raises) as :class:`Client`'s ``Deferred`` fires
    with it, with the same parameters and errors. One client may be used
    by several threads.

    :param timeout: seconds each try of a call may take, connecting and
        reading included, before :class:`ClientTimeoutError`; ``None``
        waits for ever.
    :param transport: an ``httpx.BaseTransport`` (``httpx.MockTransport``
        in tests), whose ``timeout`` bounds each read, the whole try being
        checked between them; by default, httpx's own over httpcore,
        whose every connect, read and write ends at the try's deadline.
    :param sleep: waits between tries (``time.sleep``).
    :param clock: the time token expiry is measured on
        (``time.monotonic``).
    """

    def __init__(
        self,
        url: str,
        api: str,
        version: str,
        mode: str = "prod",
        *,
        version_header: str = "X-API-Version",
        token: Union[str, OAuth2ClientCredentials, None] = None,
        errors: ErrorSpec = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = 30.0,
        retry: Optional[Retry] = DEFAULT_RETRY,
        problem_details: bool = False,
        max_answer_bytes: int = 16 * 1024 * 1024,
        transport: Any = None,
        sleep: Callable[[float], Any] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import httpx

        super().__init__(
            url,
            api,
            version,
            mode,
            version_header=version_header,
            token=token,
            errors=errors,
            headers=headers,
            timeout=timeout,
            retry=retry,
            problem_details=problem_details,
            max_answer_bytes=max_answer_bytes,
            now=clock,
        )
        from ._client_transport import Deadlines, DeadlineTransport

        self._httpx = httpx
        self._deadlines = Deadlines()
        if transport is None:
            transport = DeadlineTransport(self._deadlines)
        self._http = httpx.Client(transport=transport, trust_env=False)
        #: The cookies the API set (an ``httpx.Cookies``), sent back.
        self.cookies = self._http.cookies
        self._sleep = sleep
        self._token_lock = threading.Lock()

    def close(self) -> None:
        """Close the client's connections."""
        self._http.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _json(self, sent: Response) -> Any:
        return sent.json

    def _send(
        self, make_tries: Callable[[], Tries], timeout: Optional[float]
    ) -> Response:
        """The tries' I/O, blocking: tokens fetched, calls sent, waits slept."""
        tries = make_tries()
        while True:
            token = None
            if tries.tokens is not None:
                token = self._bearer(tries.tokens, timeout)
            step: Union[Response, Again]
            try:
                answer = self._exchange(tries.start(token), timeout)
            except ConnectionFailedError as e:
                step = tries.failed(e)
            else:
                step = tries.answered(*answer)
            if isinstance(step, Response):
                return step
            if step.wait is not None:
                self._sleep(step.wait)

    def _bearer(self, tokens: Tokens, timeout: Optional[float]) -> str:
        """The token to send, fetched first (by one thread) when due."""
        with self._token_lock:
            value = tokens.current()
            if value is None:
                value = tokens.fetched(*self._exchange(tokens.request(), timeout))
            return value

    def _exchange(self, call: Call, timeout: Optional[float]) -> Answer:
        """
        One try, within ``timeout`` seconds in all: httpx's timeout bounds
        each read, the deadline the whole (the transport's I/O stops at it,
        and it is checked between the body's parts).
        """
        httpx = self._httpx
        deadline = None
        if timeout is not None and timeout != float("inf"):
            deadline = time.monotonic() + timeout
        with self._deadlines.until(deadline):
            try:
                with self._http.stream(
                    call.method,
                    call.url,
                    headers=call.headers,
                    content=call.body,
                    timeout=timeout,
                ) as answer:
                    headers = Headers(answer.headers.multi_items())
                    unasked = encoding_error(
                        answer.status_code, headers, call.header("Accept-Encoding")
                    )
                    if unasked is not None:
                        raise unasked
                    body = AnswerBody(
                        self.max_answer_bytes, answer.status_code, headers
                    )
                    # Raw: an encoded body asked for is given as it came. An
                    # answer made in memory (httpx.MockTransport) is read already.
                    chunks = (
                        [answer.content]
                        if answer.is_stream_consumed
                        else answer.iter_raw()
                    )
                    try:
                        for chunk in chunks:
                            body.add(chunk)
                            if deadline is not None and time.monotonic() > deadline:
                                raise ClientTimeoutError(timeout or 0.0, call.url)
                    except httpx.RemoteProtocolError:
                        raise body.cut_off() from None
                    return body.answer()
            except httpx.TimeoutException:
                raise ClientTimeoutError(timeout or 0.0, call.url) from None
            except httpx.ConnectError as e:
                reason = CONNECTION_REFUSED if _refused(e) else f"cannot connect: {e}"
                raise ConnectionFailedError(call.url, reason) from e
            except httpx.RemoteProtocolError as e:
                if "without sending a response" in str(e):
                    raise ConnectionFailedError(call.url, CLOSED_BEFORE_ANSWER) from e
                raise BadAnswerError(f"the answer is not well-formed HTTP: {e}") from e
            except httpx.TransportError as e:
                raise ConnectionFailedError(call.url, str(e)) from e
            except httpx.DecodingError as e:
                raise BadAnswerError(f"the answer cannot be decoded: {e}") from e
