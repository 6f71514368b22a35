"""
What both clients of :mod:`shiji.client` are: the calls they take
(``request``, ``send``, ``get`` and the other methods), the version header,
the error classes, the timeout, the retry policy and the OAuth 2 tokens.
Each client adds its I/O: running a call's :class:`Tries` (sending,
fetching tokens, waiting) and decoding what that gives.
"""

from __future__ import annotations

from typing import (
    Any,
    Callable,
    Generic,
    Mapping,
    Optional,
    Tuple,
    Type,
    TypeVar,
    Union,
)

from ._client_call import CallMaker, Params
from ._client_errors import APIError, ErrorClasses, ErrorSpec
from ._client_tries import Retry, Tries
from ._oauth import OAuth2ClientCredentials, Tokens
from ._version_header import VersionHeader

__all__ = ["ClientBase"]

#: What ``send`` gives: a :class:`Response`, or a ``Deferred`` of one.
SentT = TypeVar("SentT")
#: What ``request`` gives: the decoded body, or a ``Deferred`` of it.
JsonT = TypeVar("JsonT")


class ClientBase(Generic[SentT, JsonT]):
    """
    A client of one version of a Shiji API, without its I/O: a subclass
    runs each call's tries (:meth:`_send`) and decodes the result
    (:meth:`_json`).

    :param now: the time OAuth 2 tokens expire on, in seconds.
    """

    def __init__(
        self,
        url: str,
        api: str,
        version: str,
        mode: str,
        *,
        version_header: str,
        token: Union[str, OAuth2ClientCredentials, None],
        errors: ErrorSpec,
        headers: Optional[Mapping[str, str]],
        timeout: Optional[float],
        retry: Optional[Retry],
        problem_details: bool,
        max_answer_bytes: int,
        now: Callable[[], float],
    ) -> None:
        own = dict(headers or {})
        if isinstance(token, str):
            own["Authorization"] = f"Bearer {token}"
        self._calls = CallMaker(
            url, VersionHeader(api, version, mode), version_header, problem_details, own
        )
        self._errors = ErrorClasses(errors)
        self._tokens = (
            Tokens(token, now) if isinstance(token, OAuth2ClientCredentials) else None
        )
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
    ) -> JsonT:
        """
        Call ``method`` on ``path``: the decoded JSON body (``None`` for an
        empty one), which :class:`Client`'s ``Deferred`` fires with and
        :class:`SyncClient` returns.

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
        return self._json(
            self.send(
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
        timeout: Optional[float] = None,
        idempotent: Optional[bool] = None,
        **options: Any,
    ) -> SentT:
        """
        As :meth:`request` (with the same options), but the whole
        :class:`Response` (status, headers, body; ``.json`` decodes it),
        whatever its media type. Errors are raised as :meth:`request`
        raises them.
        """

        def make_tries() -> Tries:
            call = self._calls.make(method, path, **options)
            return Tries(call, self.retry, idempotent, self._errors, self._tokens)

        return self._send(make_tries, self.timeout if timeout is None else timeout)

    def get(self, path: str, **options: Any) -> JsonT:
        """:meth:`request` with ``GET``."""
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Any) -> JsonT:
        """:meth:`request` with ``POST``."""
        return self.request("POST", path, **options)

    def put(self, path: str, **options: Any) -> JsonT:
        """:meth:`request` with ``PUT``."""
        return self.request("PUT", path, **options)

    def patch(self, path: str, **options: Any) -> JsonT:
        """:meth:`request` with ``PATCH``."""
        return self.request("PATCH", path, **options)

    def delete(self, path: str, **options: Any) -> JsonT:
        """:meth:`request` with ``DELETE``."""
        return self.request("DELETE", path, **options)

    def _send(self, make_tries: Callable[[], Tries], timeout: Optional[float]) -> SentT:
        """
        Send the call of the :class:`Tries` that ``make_tries()`` gives (it
        raises for a call that cannot be made) until they have its
        :class:`Response`, each try within ``timeout`` seconds.
        """
        raise NotImplementedError

    def _json(self, sent: SentT) -> JsonT:
        """What :meth:`request` gives for what :meth:`send` gave."""
        raise NotImplementedError
