"""
A client of Shiji APIs: the version header on every call, JSON in and out,
Shiji's errors raised as exceptions, cookies kept, bearer tokens and OAuth 2
client credentials, retries with back-off and timeouts.

:class:`Client` is for Twisted code and for handlers running in shijid
(each call answers a ``Deferred``, which ``await`` takes)::

    from shiji.client import Client

    client = Client("http://127.0.0.1:9990/myloginapi", "mylogin_api", "1.0")
    await client.post("/login", json={"email": email, "password": password})
    me = await client.get("/me")  # {"result": {"id": 1, "email": ...}}

An error answer raises :class:`APIError`, as a subclass named as the
server's error class: ``except client.error("LoginFailedError")``.

:class:`SyncClient` is the same client for blocking code, over httpx
(``pip install shiji[httpx]``).
"""

from ._client import Client
from ._client_answer import Headers, Response
from ._client_errors import (
    APIError,
    BadAnswerError,
    ClientError,
    ClientTimeoutError,
    ConnectionFailedError,
    TokenError,
)
from ._client_httpx import SyncClient
from ._client_tries import IDEMPOTENT_METHODS, Retry
from ._oauth import OAuth2ClientCredentials

__all__ = [
    "IDEMPOTENT_METHODS",
    "APIError",
    "BadAnswerError",
    "Client",
    "ClientError",
    "ClientTimeoutError",
    "ConnectionFailedError",
    "Headers",
    "OAuth2ClientCredentials",
    "Response",
    "Retry",
    "SyncClient",
    "TokenError",
]
