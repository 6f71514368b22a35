"""
The blocking client of Shiji APIs, over httpx (``pip install
shiji[httpx]``): the Twisted client's calls, errors, retries and tokens,
for scripts, tests and threads.
"""

from __future__ import annotations

import builtins
import threading
import time
from typing import Any, Callable, List, Mapping, Optional, Tuple, Union

from ._client_common import (
    DEFAULT_RETRY,
    Call,
    ClientBase,
    Headers,
    Params,
    Response,
    Retry,
    read_answer,
)
from ._client_errors import (
    BadAnswerError,
    ClientTimeoutError,
    ConnectionFailedError,
    ErrorSpec,
)
from ._oauth import OAuth2ClientCredentials, Token

__all__ = ["SyncClient"]


def _refused(error: BaseException) -> bool:
    """Whether a connection refused is among the causes of ``error``."""
    found: Optional[BaseException] = error
    while found is not None:
        if isinstance(found, builtins.ConnectionRefusedError):
            return True
        found = found.__cause__ or found.__context__
    return False


class SyncClient(ClientBase):
    """
    A blocking client of one version of a Shiji API, over httpx: each call
    returns its result (or raises) as :class:`Client`'s ``Deferred`` fires
    with it, with the same parameters and errors. One client may be used
    by several threads.

    :param transport: an ``httpx.BaseTransport`` (``httpx.MockTransport``
        in tests); httpx's own by default.
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
            token=token if isinstance(token, str) else None,
            errors=errors,
            headers=headers,
            timeout=timeout,
            retry=retry,
            problem_details=problem_details,
            max_answer_bytes=max_answer_bytes,
        )
        self._httpx = httpx
        self._http = httpx.Client(transport=transport, trust_env=False)
        #: The cookies the API set (an ``httpx.Cookies``), sent back.
        self.cookies = self._http.cookies
        self._sleep = sleep
        self._clock = clock
        self._credentials = (
            token if isinstance(token, OAuth2ClientCredentials) else None
        )
        self._token: Optional[Token] = None
        self._token_lock = threading.Lock()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        json: Any = None,
        data: Optional[bytes] = None,
        content_type: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
        idempotent: Optional[bool] = None,
    ) -> Any:
        """Call ``method`` on ``path``: the decoded JSON body (see
        :meth:`Client.request`)."""
        return self.send(
            method,
            path,
            params=params,
            json=json,
            data=data,
            content_type=content_type,
            headers=headers,
            timeout=timeout,
            idempotent=idempotent,
        ).json

    def get(self, path: str, **options: Any) -> Any:
        """:meth:`request` with ``GET``."""
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Any) -> Any:
        """:meth:`request` with ``POST``."""
        return self.request("POST", path, **options)

    def put(self, path: str, **options: Any) -> Any:
        """:meth:`request` with ``PUT``."""
        return self.request("PUT", path, **options)

    def patch(self, path: str, **options: Any) -> Any:
        """:meth:`request` with ``PATCH``."""
        return self.request("PATCH", path, **options)

    def delete(self, path: str, **options: Any) -> Any:
        """:meth:`request` with ``DELETE``."""
        return self.request("DELETE", path, **options)

    def close(self) -> None:
        """Close the client's connections."""
        self._http.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        timeout: Optional[float] = None,
        idempotent: Optional[bool] = None,
        **options: Any,
    ) -> Response:
        """As :meth:`request`, but the whole :class:`Response`."""
        call = self._calls.make(method, path, **options)
        limit = self.timeout if timeout is None else timeout
        retry = self.retry
        repeat = retry.applies(call.method, idempotent)
        credentials = self._credentials
        if any(name.lower() == "authorization" for name in call.headers):
            credentials = None  # the caller's own credentials
        attempt, refreshed = 0, False
        while True:
            attempt += 1
            sent, token = call, None
            if credentials is not None:
                token = self._bearer(credentials, limit)
                sent = Call(
                    call.method,
                    call.url,
                    {**call.headers, "Authorization": f"Bearer {token}"},
                    call.body,
                )
            try:
                status, headers, body = self._exchange(sent, limit)
            except ConnectionFailedError as e:
                if not (
                    retry.connection_refused
                    and _refused(e)
                    and attempt < retry.attempts
                ):
                    raise
                self._sleep(retry.back_off(attempt))
                continue
            if status == 401 and token is not None and not refreshed:
                with self._token_lock:
                    if self._token is not None and self._token.value == token:
                        self._token = None
                refreshed = True
                attempt -= 1
                continue
            if repeat and status in retry.statuses:
                wait = retry.wait(attempt, headers, time.time)
                if wait is not None:
                    self._sleep(wait)
                    continue
            return read_answer(status, headers, body, self._errors)

    def _bearer(
        self, credentials: OAuth2ClientCredentials, timeout: Optional[float]
    ) -> str:
        """The current token, fetched first (by one thread) when due."""
        with self._token_lock:
            token = self._token
            if token is None or not token.fresh(self._clock()):
                status, headers, body = self._exchange(
                    credentials.token_call(), timeout
                )
                token = self._token = credentials.read_token(
                    status, headers, body, self._clock()
                )
            return token.value

    def _exchange(
        self, call: Call, timeout: Optional[float]
    ) -> Tuple[int, Headers, bytes]:
        """One try; httpx's timeout is per read, so the whole is checked too."""
        httpx = self._httpx
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            with self._http.stream(
                call.method,
                call.url,
                headers=call.headers,
                content=call.body,
                timeout=timeout,
            ) as answer:
                status = answer.status_code
                headers = Headers(answer.headers.multi_items())
                chunks: List[bytes] = []
                size = 0
                try:
                    for chunk in answer.iter_bytes():
                        size += len(chunk)
                        if size > self.max_answer_bytes:
                            raise BadAnswerError(
                                f"the answer is larger than {self.max_answer_bytes} bytes",
                                status,
                                headers,
                                b"".join(chunks),
                            )
                        chunks.append(chunk)
                        if deadline is not None and time.monotonic() > deadline:
                            raise ClientTimeoutError(timeout or 0.0, call.url)
                except httpx.RemoteProtocolError:
                    raise BadAnswerError(
                        "the answer was cut off", status, headers, b"".join(chunks)
                    ) from None
                return status, headers, b"".join(chunks)
        except httpx.TimeoutException:
            raise ClientTimeoutError(timeout or 0.0, call.url) from None
        except httpx.ConnectError as e:
            reason = "connection refused" if _refused(e) else f"cannot connect: {e}"
            raise ConnectionFailedError(call.url, reason) from e
        except httpx.RemoteProtocolError as e:
            if "without sending a response" in str(e):
                raise ConnectionFailedError(
                    call.url, "the connection closed before an answer"
                ) from e
            raise BadAnswerError(f"the answer is not well-formed HTTP: {e}") from e
        except httpx.TransportError as e:
            raise ConnectionFailedError(call.url, str(e)) from e
