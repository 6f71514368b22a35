"""
The Twisted client of Shiji APIs, over ``twisted.web.client.Agent``: one
connection pool, one cookie jar, the version header on every call, errors
raised as exceptions, retries and timeouts on an injectable clock.
"""

from __future__ import annotations

import time
from http.cookiejar import CookieJar
from typing import Any, List, Mapping, Optional, Tuple, Union

from twisted.internet import error as internet_error
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.web.client import (
    Agent,
    CookieAgent,
    HTTPConnectionPool,
    RequestTransmissionFailed,
    ResponseDone,
    ResponseFailed,
    ResponseNeverReceived,
)
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers as TwistedHeaders
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

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
from ._oauth import OAuth2ClientCredentials, TokenCache
from ._reactor import global_reactor

__all__ = ["Client"]

# Seconds an idle connection is kept for the next call: under shijid's
# default idle_timeout (60), so that the server rarely closes one first.
_KEEP_IDLE = 50


@implementer(IBodyProducer)
class _Body:
    """A request body held in memory."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.length = len(body)

    def startProducing(self, consumer: Any) -> Deferred[None]:
        consumer.write(self.body)
        return succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


class _BodyReader(Protocol):
    """Collects an answer's body, up to ``limit`` bytes."""

    def __init__(self, limit: int, status: int, headers: Headers) -> None:
        self.limit = limit
        self.status = status
        self.headers = headers
        self.chunks: List[bytes] = []
        self.size = 0
        self.done: Deferred[bytes] = Deferred(self._stop)

    def _stop(self, _: Deferred[bytes]) -> None:
        if self.transport is not None:
            self.transport.stopProducing()

    def dataReceived(self, data: bytes) -> None:
        if self.done.called:
            return
        self.size += len(data)
        if self.size > self.limit:
            self.done.errback(
                BadAnswerError(
                    f"the answer is larger than {self.limit} bytes",
                    self.status,
                    self.headers,
                    b"".join(self.chunks),
                )
            )
            self._stop(self.done)
            return
        self.chunks.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.done.called:
            return
        # PotentialDataLoss: a body without a length, ended by closing.
        if reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self.chunks))
        else:
            self.done.errback(
                BadAnswerError(
                    "the answer was cut off",
                    self.status,
                    self.headers,
                    b"".join(self.chunks),
                )
            )


def _cancelled(failure: BaseException) -> bool:
    """Whether ``failure`` is a cancellation, perhaps wrapped by the agent."""
    if isinstance(failure, CancelledError):
        return True
    reasons = getattr(failure, "reasons", None) or ()
    return any(
        isinstance(reason, Failure) and reason.check(CancelledError)
        for reason in reasons
    )


class Client(ClientBase):
    """
    A client of one version of a Shiji API, for Twisted code.

    ::

        client = Client("http://127.0.0.1:9990/myloginapi", "mylogin_api", "1.0")
        account = await client.post("/login", json={"email": ..., "password": ...})
        me = await client.get("/me")  # {"result": {"id": 1, "email": ...}}

    Every call sends the version header (``X-API-Version:
    mylogin_api-1.0+prod``) and answers a ``Deferred`` (which ``await``
    and ``inlineCallbacks`` take) of the decoded JSON body, as the handler
    returned it: Shiji wraps nothing around a success. Cookies the API sets
    are kept and sent back. An error answer raises :class:`APIError` (a
    subclass named as the server's ``exception_class``, see :meth:`error`);
    an answer that is not Shiji's raises :class:`BadAnswerError`.

    :param url: where the API is mounted, ``http://host:port/myloginapi``;
        call paths are appended to it.
    :param api: the API's name, as the version header names it.
    :param version: the version asked for.
    :param mode: ``prod`` or ``test``.
    :param version_header: the header's name (shijid's ``version_header``).
    :param token: a bearer token, sent as ``Authorization: Bearer ...``,
        or :class:`OAuth2ClientCredentials` to fetch and refresh one.
    :param errors: the API's error classes: a module (its ``errors.py``),
        classes, or a list of either. Shiji's own are always known.
    :param headers: headers sent with every call.
    :param timeout: seconds each try of a call may take, connecting and
        reading included, before :class:`ClientTimeoutError`; ``None``
        waits for ever.
    :param retry: when calls are sent again (:class:`Retry`); ``None``
        never.
    :param problem_details: ask for RFC 9457 problem details rather than
        the envelope (errors are raised the same way).
    :param cookies: the cookie jar (a new, empty one by default).
    :param max_answer_bytes: a longer answer raises :class:`BadAnswerError`.
    :param agent: the ``IAgent`` to send through (one over ``reactor``
        with a connection pool by default); cookies are handled around it.
    :param reactor: the reactor to connect with (the global one by
        default).
    :param clock: the ``IReactorTime`` timeouts, back-off waits and token
        expiry run on (``reactor`` by default).
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
        cookies: Optional[CookieJar] = None,
        max_answer_bytes: int = 16 * 1024 * 1024,
        agent: Any = None,
        reactor: Any = None,
        clock: Any = None,
    ) -> None:
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
        #: The cookie jar: what the API set, sent back with each call.
        self.cookies = cookies if cookies is not None else CookieJar()
        self._reactor = reactor if reactor is not None else global_reactor()
        self._clock = clock if clock is not None else self._reactor
        self._pool: Optional[HTTPConnectionPool] = None
        if agent is None:
            self._pool = HTTPConnectionPool(self._reactor, persistent=True)
            self._pool.cachedConnectionTimeout = _KEEP_IDLE
            agent = Agent(self._reactor, pool=self._pool)
        # Agents are typed loosely: zope interfaces are beyond type checkers.
        self._agent: Any = agent
        self._with_cookies: Any = CookieAgent(agent, self.cookies)
        self._tokens = (
            TokenCache(token, self._fetch_token, lambda: self._clock.seconds())
            if isinstance(token, OAuth2ClientCredentials)
            else None
        )

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
    ) -> Deferred[Any]:
        """
        Call ``method`` on ``path``; fires with the decoded JSON body
        (``None`` for an empty one).

        :param path: appended to the client's URL as written (quote what
            needs quoting); it may hold a query string.
        :param params: the query arguments, a mapping or pairs; a list
            value repeats its name, booleans are ``true`` and ``false``.
        :param json: the body, encoded as JSON (``None``: no body).
        :param data: a body of bytes, sent as ``content_type``.
        :param headers: more headers, replacing the client's of the same
            name.
        :param timeout: this call's timeout, instead of the client's.
        :param idempotent: whether the call may be sent again on 429 and
            503 (by default, when its method is in ``retry.methods``).
        :raises APIError: the API answered with an error.
        :raises BadAnswerError: the answer is not Shiji's (not JSON, cut
            off, an HTML page from a proxy).
        :raises ClientTimeoutError: no answer in time.
        :raises ConnectionFailedError: the server could not be reached.
        :raises TokenError: no OAuth 2 token could be had.
        """
        return Deferred.fromCoroutine(
            self._json(
                method,
                path,
                params=params,
                json=json,
                data=data,
                content_type=content_type,
                headers=headers,
                timeout=timeout,
                idempotent=idempotent,
            )
        )

    def send(
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
    ) -> Deferred[Response]:
        """
        As :meth:`request`, but fires with the whole :class:`Response`
        (status, headers, body; ``.json`` decodes it), whatever its media
        type. Errors are raised as :meth:`request` raises them.
        """
        return Deferred.fromCoroutine(
            self._send(
                method,
                path,
                params=params,
                json=json,
                data=data,
                content_type=content_type,
                headers=headers,
                timeout=timeout,
                idempotent=idempotent,
            )
        )

    def get(self, path: str, **options: Any) -> Deferred[Any]:
        """:meth:`request` with ``GET``."""
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Any) -> Deferred[Any]:
        """:meth:`request` with ``POST``."""
        return self.request("POST", path, **options)

    def put(self, path: str, **options: Any) -> Deferred[Any]:
        """:meth:`request` with ``PUT``."""
        return self.request("PUT", path, **options)

    def patch(self, path: str, **options: Any) -> Deferred[Any]:
        """:meth:`request` with ``PATCH``."""
        return self.request("PATCH", path, **options)

    def delete(self, path: str, **options: Any) -> Deferred[Any]:
        """:meth:`request` with ``DELETE``."""
        return self.request("DELETE", path, **options)

    def close(self) -> Deferred[None]:
        """Close the idle connections of the client's own pool."""
        if self._pool is None:
            return succeed(None)
        closed: Deferred[None] = self._pool.closeCachedConnections()
        return closed

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _json(self, method: str, path: str, **options: Any) -> Any:
        response = await self._send(method, path, **options)
        return response.json

    async def _send(
        self,
        method: str,
        path: str,
        *,
        timeout: Optional[float],
        idempotent: Optional[bool],
        **options: Any,
    ) -> Response:
        call = self._calls.make(method, path, **options)
        limit = self.timeout if timeout is None else timeout
        retry = self.retry
        repeat = retry.applies(call.method, idempotent)
        tokens = self._tokens
        if any(name.lower() == "authorization" for name in call.headers):
            tokens = None  # the caller's own credentials
        attempt, refreshed = 0, False
        while True:
            attempt += 1
            sent, token = call, None
            if tokens is not None:
                token = await tokens.token()
                sent = Call(
                    call.method,
                    call.url,
                    {**call.headers, "Authorization": f"Bearer {token}"},
                    call.body,
                )
            try:
                status, headers, body = await self._exchange(
                    sent, limit, self._with_cookies
                )
            except ConnectionFailedError as e:
                if not (
                    retry.connection_refused
                    and isinstance(e.__cause__, internet_error.ConnectionRefusedError)
                    and attempt < retry.attempts
                ):
                    raise
                await self._sleep(retry.back_off(attempt))
                continue
            if status == 401 and tokens is not None and token and not refreshed:
                # Sent again once, with a new token; not counted as a try.
                tokens.refused(token)
                refreshed = True
                attempt -= 1
                continue
            if repeat and status in retry.statuses:
                wait = retry.wait(attempt, headers, time.time)
                if wait is not None:
                    await self._sleep(wait)
                    continue
            return read_answer(status, headers, body, self._errors)

    def _sleep(self, seconds: float) -> Deferred[None]:
        waited: Deferred[None] = deferLater(self._clock, seconds, lambda: None)
        return waited

    async def _fetch_token(self, call: Call) -> Tuple[int, Headers, bytes]:
        return await self._exchange(call, self.timeout, self._agent)

    async def _exchange(
        self, call: Call, timeout: Optional[float], agent: Any
    ) -> Tuple[int, Headers, bytes]:
        """One try: send ``call``, read the whole answer within ``timeout``."""
        transfer = Deferred.fromCoroutine(self._transfer(call, agent))
        expired: List[float] = []
        timer = None
        if timeout is not None and timeout != float("inf"):

            def expire(seconds: float) -> None:
                expired.append(seconds)
                transfer.cancel()

            timer = self._clock.callLater(timeout, expire, timeout)
        try:
            return await transfer
        except Exception as e:
            if expired:
                raise ClientTimeoutError(expired[0], call.url) from None
            if _cancelled(e):
                raise CancelledError() from None
            raise
        finally:
            if timer is not None and timer.active():
                timer.cancel()

    async def _transfer(self, call: Call, agent: Any) -> Tuple[int, Headers, bytes]:
        sent = TwistedHeaders()
        for name, value in call.headers.items():
            sent.addRawHeader(name.encode("ascii"), value.encode("utf-8"))
        try:
            response: Any = await agent.request(
                call.method.encode("ascii"),
                call.url.encode("ascii"),
                sent,
                _Body(call.body) if call.body is not None else None,
            )
        except internet_error.ConnectionRefusedError as e:
            raise ConnectionFailedError(call.url, "connection refused") from e
        except (internet_error.ConnectError, internet_error.DNSLookupError) as e:
            raise ConnectionFailedError(call.url, f"cannot connect: {e}") from e
        except (ResponseNeverReceived, RequestTransmissionFailed) as e:
            if _cancelled(e):
                raise
            raise ConnectionFailedError(
                call.url, "the connection closed before an answer"
            ) from e
        except ResponseFailed as e:
            if _cancelled(e):
                raise
            raise BadAnswerError("the answer is not well-formed HTTP") from e
        headers = Headers(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, values in response.headers.getAllRawHeaders()
            for value in values
        )
        reader = _BodyReader(self.max_answer_bytes, response.code, headers)
        response.deliverBody(reader)
        body = await reader.done
        return response.code, headers, body
