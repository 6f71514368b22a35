"""
The Twisted client of Shiji APIs, over ``twisted.web.client.Agent``: one
connection pool, one cookie jar, and the I/O of each call's tries
(:class:`Tries` decides them), with timeouts and waits on an injectable
clock.
"""

from __future__ import annotations

from http.cookiejar import CookieJar
from typing import Any, Awaitable, Callable, List, Mapping, Optional, Union

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
    """
    Collects an answer's body into ``body``; ``done`` fires with it. With
    ``refused`` (an error its headers show), ``done`` fails with that
    instead, once the body has been read (so that the connection may serve
    another call) or has passed ``body``'s limit.
    """

    def __init__(
        self, body: AnswerBody, refused: Optional[BadAnswerError] = None
    ) -> None:
        self.body = body
        self.refused = refused
        self.done: Deferred[Answer] = Deferred(self._stop)

    def _stop(self, _: Deferred[Answer]) -> None:
        if self.transport is not None:
            self.transport.stopProducing()

    def dataReceived(self, data: bytes) -> None:
        if self.done.called:
            return
        try:
            self.body.add(data)
        except BadAnswerError as e:
            self.done.errback(self.refused or e)
            self._stop(self.done)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.done.called:
            return
        if self.refused is not None:
            self.done.errback(self.refused)
        # PotentialDataLoss: a body without a length, ended by closing.
        elif reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(self.body.answer())
        else:
            self.done.errback(self.body.cut_off())


class _TokenFetch:
    """
    Fetches a client's OAuth 2 tokens one at a time: the calls that need a
    token while one is being fetched wait for that one.

    :param fetch: sends the token request, giving the answer.
    """

    def __init__(self, fetch: Callable[[Call], Awaitable[Answer]]) -> None:
        self._fetch = fetch
        self._waiting: Optional[List[Deferred[str]]] = None

    def token(self, tokens: Tokens) -> Deferred[str]:
        """The token of ``tokens`` to send, fetched first if none is fresh."""
        value = tokens.current()
        if value is not None:
            return succeed(value)
        waiting = self._waiting
        start = waiting is None
        if waiting is None:
            waiting = self._waiting = []

        def forget(waiter: Deferred[str]) -> None:
            if waiter in waiting:
                waiting.remove(waiter)

        waiter: Deferred[str] = Deferred(forget)
        waiting.append(waiter)
        if start:
            Deferred.fromCoroutine(self._refresh(tokens, waiting))
        return waiter

    async def _refresh(self, tokens: Tokens, waiting: List[Deferred[str]]) -> None:
        try:
            value = tokens.fetched(*await self._fetch(tokens.request()))
        except Exception:
            failure = Failure()
            self._waiting = None
            for waiter in list(waiting):
                waiter.errback(failure)
            return
        self._waiting = None
        for waiter in list(waiting):
            waiter.callback(value)


def _cancelled(failure: BaseException) -> bool:
    """Whether ``failure`` is a cancellation, perhaps wrapped by the agent."""
    if isinstance(failure, CancelledError):
        return True
    reasons = getattr(failure, "reasons", None) or ()
    return any(
        isinstance(reason, Failure) and reason.check(CancelledError)
        for reason in reasons
    )


class Client(ClientBase[Deferred[Response], Deferred[Any]]):
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
            token=token,
            errors=errors,
            headers=headers,
            timeout=timeout,
            retry=retry,
            problem_details=problem_details,
            max_answer_bytes=max_answer_bytes,
            # The clock is set below; tokens ask it the time only later.
            now=lambda: self._clock.seconds(),
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
        self._token_fetch = _TokenFetch(self._fetch_token)

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

    def _send(
        self, make_tries: Callable[[], Tries], timeout: Optional[float]
    ) -> Deferred[Response]:
        return Deferred.fromCoroutine(self._run(make_tries, timeout))

    def _json(self, sent: Deferred[Response]) -> Deferred[Any]:
        return sent.addCallback(lambda response: response.json)

    async def _run(
        self, make_tries: Callable[[], Tries], timeout: Optional[float]
    ) -> Response:
        """The tries' I/O: tokens fetched, calls sent, waits on the clock."""
        tries = make_tries()
        while True:
            token = None
            if tries.tokens is not None:
                token = await self._token_fetch.token(tries.tokens)
            step: Union[Response, Again]
            try:
                answer = await self._exchange(
                    tries.start(token), timeout, self._with_cookies
                )
            except ConnectionFailedError as e:
                step = tries.failed(e)
            else:
                step = tries.answered(*answer)
            if isinstance(step, Response):
                return step
            if step.wait is not None:
                await deferLater(self._clock, step.wait, lambda: None)

    async def _fetch_token(self, call: Call) -> Answer:
        return await self._exchange(call, self.timeout, self._agent)

    async def _exchange(
        self, call: Call, timeout: Optional[float], agent: Any
    ) -> Answer:
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

    async def _transfer(self, call: Call, agent: Any) -> Answer:
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
            raise ConnectionFailedError(call.url, CONNECTION_REFUSED) from e
        except (internet_error.ConnectError, internet_error.DNSLookupError) as e:
            raise ConnectionFailedError(call.url, f"cannot connect: {e}") from e
        except (ResponseNeverReceived, RequestTransmissionFailed) as e:
            if _cancelled(e):
                raise
            raise ConnectionFailedError(call.url, CLOSED_BEFORE_ANSWER) from e
        except ResponseFailed as e:
            if _cancelled(e):
                raise
            raise BadAnswerError("the answer is not well-formed HTTP") from e
        headers = Headers(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, values in response.headers.getAllRawHeaders()
            for value in values
        )
        reader = _BodyReader(
            AnswerBody(self.max_answer_bytes, response.code, headers),
            encoding_error(response.code, headers, call.header("Accept-Encoding")),
        )
        response.deliverBody(reader)
        return await reader.done
