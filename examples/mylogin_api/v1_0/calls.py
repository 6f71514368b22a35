"""
Calls of mylogin_api 1.0.
"""

import re
import secrets
import time
from dataclasses import dataclass
from typing import List

from twisted.internet import defer, reactor, task, threads

from shiji import auth, urldispatch, webapi
from shiji.webapi import Arg

from .. import limits, passwords, store
from ..backend import session_cookie
from .errors import (
    EmailTakenError,
    LoginFailedError,
    SampleAdvancedError,
    SampleNormalError,
    TooManyAttemptsError,
)

#: How callers of the calls ``auth.login_required`` guards authenticate, for
#: the documentation: the session cookie that login sets and
#: ``backend.SessionBackend`` reads.
auth_scheme = {
    "type": "apiKey",
    "in": "cookie",
    "name": "session",
    "description": (
        "The signed session cookie that login sets: `session` (the "
        "`cookie_name` option), or `__Host-session` when cookies are sent "
        "over HTTPS only ([auth] cookie_secure)."
    ),
}


@dataclass
class Latency:
    """A round trip's latency, and the arguments echoed."""

    latency: float
    client_tz: int
    client_id: str
    new_client: bool


@dataclass
class PingResult:
    result: Latency


@dataclass
class Account:
    """A user's account."""

    id: int
    email: str


@dataclass
class AccountResult:
    result: Account


@dataclass
class Sessions:
    """A page of the caller's live sessions."""

    #: When each session expires (UNIX time), soonest first.
    expires: List[float]
    page: int
    page_len: int


@dataclass
class SessionsResult:
    result: Sessions


@dataclass
class Message:
    result: str


class PingCall(urldispatch.URLMatchJSONResource):
    """
    Echoes back at the caller.
    """

    routes = [r"ping/(?P<timestamp>[0-9]+)", r"ping"]

    @webapi.path_arguments(
        [Arg("timestamp", int, description="A client-supplied UNIX timestamp.")]
    )
    @webapi.returns(200, str, description="Names the API, version and mode.")
    @webapi.raises()
    def render_GET(self, request):
        """
        Simple PING call, that echoes back the client's supplied timestamp.

        Returns a string naming the API, version and mode that answered.
        """
        if request.api_mode == "prod":
            mode_string = "I'm production baby!"
        elif request.api_mode == "test":
            mode_string = "I'm in testing mode. :("
        else:
            mode_string = "I have no clue what mode I'm in."

        response = f"PONG! Right back at ya. {mode_string} "
        if "timestamp" in self.url_matches:
            response += f"(Timestamp Val: {self.url_matches['timestamp']}) "
        response += (
            f"(API: {request.api_name}, Version: {request.api_version}, "
            f"Mode: {request.api_mode})"
        )
        webapi.write_json(request, response)

    @webapi.json_arguments(
        [
            ("client_tz", int),
            ("client_id", str),
            ("new_client", bool, webapi.ARG_OPTIONAL),
        ]
    )
    @webapi.url_arguments(["simple_auth_key"])
    @webapi.returns(200, PingResult)
    @webapi.raises()
    @defer.inlineCallbacks
    def render_POST(self, request):
        """
        Measure how long a round trip through the server's thread pool takes
        (where blocking work such as database queries runs).

        URL query arguments:

        - `simple_auth_key` (str): must be `abc`.

        JSON body arguments:

        - `client_tz` (int): the client's timezone offset from GMT.
        - `client_id` (str): the client's unique ID.
        - `new_client` (bool, optional): does magic if true.

        Returns `{"result": {"latency": seconds, "client_tz": ...,
        "client_id": ..., "new_client": ...}}`.
        """
        auth_key = request.args["simple_auth_key"][0]
        if auth_key != "abc":
            return str(
                webapi.ValueError(request, "simple_auth_key", "Key isn't valid!")
            )

        start_time = time.monotonic()
        yield threads.deferToThread(time.monotonic)
        latency = time.monotonic() - start_time

        new_client = False
        if "new_client" in request.jsonArgs:
            new_client = request.jsonArgs["new_client"]

        return {
            "result": {
                "latency": latency,
                "client_tz": request.jsonArgs["client_tz"],
                "client_id": request.jsonArgs["client_id"],
                "new_client": new_client,
            }
        }


class SampleErrorsCall(urldispatch.URLMatchJSONResource):
    """
    Answers with the API's own errors, to show how they reach clients.
    """

    routes = r"sample_error/(?P<kind>normal|advanced)"

    @webapi.raises(SampleNormalError, SampleAdvancedError)
    def render_GET(self, request):
        """
        Answer with `SampleNormalError` (raised) or `SampleAdvancedError`
        (returned as a string), by the `kind` in the path.
        """
        if self.url_matches["kind"] == "normal":
            raise SampleNormalError(request)
        return str(SampleAdvancedError(request, "extra argument"))


# No control characters (NUL included), no spaces, one @, a dot after it.
_EMAIL_CHARACTER = r"[^@\s\x00-\x1f\x7f-\x9f]"
EMAIL = re.compile(rf"{_EMAIL_CHARACTER}+@{_EMAIL_CHARACTER}+\.{_EMAIL_CHARACTER}+")


def normalised_email(text):
    """The email as accounts are keyed: trimmed, lower case."""
    email = text.strip().lower()
    if len(email) > 254 or not EMAIL.fullmatch(email):
        raise ValueError("not an email address")
    return email


#: What signup and login take: an email and a password.
CREDENTIALS = [
    Arg(
        "email",
        str,
        max_length=320,
        convert=normalised_email,
        expected="an email address",
        description="The account's email; case and surrounding spaces are ignored.",
    ),
    Arg(
        "password",
        str,
        min_length=8,
        max_length=1024,
        description="The account's password.",
    ),
]


def _settings(request):
    return request.api_config["mylogin_api"]


class SignupCall(urldispatch.URLMatchJSONResource):
    """
    Create an account.
    """

    routes = r"users"

    @webapi.json_arguments(CREDENTIALS)
    @webapi.returns(201, AccountResult, description="The new account.")
    @webapi.raises(EmailTakenError, TooManyAttemptsError)
    @defer.inlineCallbacks
    def render_POST(self, request):
        """
        Create an account; the email must be unused, the password 8 to 1024
        characters long. Answers 201 with `{"result": {"id": ..., "email":
        ...}}`. Signups are limited per client address (HTTP 429 with
        `Retry-After` past the limit), which also makes finding out which
        emails have accounts slow.
        """
        email, password = request.jsonArgs["email"], request.jsonArgs["password"]
        try:
            _settings(request)["limits"].start_signup(request.client_ip)
        except limits.TooMany as refused:
            raise TooManyAttemptsError(request, refused.retry_after) from None
        password_hash = yield passwords.hash_password(password)
        try:
            user_id = yield _settings(request)["users"].create_user(
                email, password_hash
            )
        except store.EmailTaken:
            raise EmailTakenError(request, email) from None
        return {"result": {"id": user_id, "email": email}}


class LoginCall(urldispatch.URLMatchJSONResource):
    """
    Log in: the session cookie comes with the answer.
    """

    routes = r"login"

    @webapi.json_arguments(CREDENTIALS)
    @webapi.returns(200, AccountResult, description="The account logged in to.")
    @webapi.raises(LoginFailedError, TooManyAttemptsError)
    @defer.inlineCallbacks
    def render_POST(self, request):
        """
        Check the email and password and set the signed session cookie.
        Failed attempts are limited per account and client address, and
        per client address (HTTP 429 with `Retry-After` past a limit);
        logins to an account that many addresses failed to log in to are
        slowed down. An unknown email takes as long to refuse as a wrong
        password.
        """
        settings = _settings(request)
        email, password = request.jsonArgs["email"], request.jsonArgs["password"]
        try:
            attempt = settings["limits"].start_login(email, request.client_ip)
        except limits.TooMany as refused:
            raise TooManyAttemptsError(request, refused.retry_after) from None
        if attempt.slowdown:
            yield task.deferLater(reactor, attempt.slowdown, lambda: None)
        user = yield settings["users"].user_by_email(email)
        # An unknown email is checked against a hash no password matches,
        # so that it takes as long as a known one.
        stored = user[2] if user is not None else passwords.UNMATCHABLE
        accepted = yield passwords.check_password(password, stored)
        if not (accepted and user is not None):
            raise LoginFailedError(request)
        attempt.succeeded()
        token = secrets.token_urlsafe(32)
        days = settings["session_days"]
        yield settings["users"].create_session(
            token, user[0], time.time() + days * 86400
        )
        auth.set_secure_cookie(
            request, session_cookie(request), token, expires_days=days
        )
        return {"result": {"id": user[0], "email": user[1]}}


class LogoutCall(urldispatch.URLMatchJSONResource):
    """
    Log out: the session ends and the cookie is cleared.
    """

    routes = r"logout"

    @auth.login_required()
    @webapi.returns(200, Message)
    @webapi.raises()
    @defer.inlineCallbacks
    def render_POST(self, request):
        """End the caller's session."""
        settings = _settings(request)
        name = session_cookie(request)
        token = auth.get_secure_cookie(request, name)
        yield settings["users"].delete_session(token)
        auth.set_secure_cookie(request, name, "", expires_days=0)
        return {"result": "logged out"}


class MeCall(urldispatch.URLMatchJSONResource):
    """
    The logged-in user.
    """

    routes = r"me"

    @auth.login_required()
    @webapi.returns(200, AccountResult)
    @webapi.raises()
    def render_GET(self, request):
        """Answer `{"result": {"id": ..., "email": ...}}` for the session's user."""
        return {"result": request.user}


class SessionsCall(urldispatch.URLMatchJSONResource):
    """
    The caller's live sessions, a page at a time.
    """

    routes = r"me/sessions"

    @auth.login_required()
    @webapi.paged_results(default_page_len=20, max_page_len=100)
    @webapi.returns(200, SessionsResult)
    @webapi.raises()
    @defer.inlineCallbacks
    def render_GET(self, request):
        """
        When each of the caller's live sessions expires, soonest first:
        `page_len` of them from page `page`.
        """
        page = request.args["page"][0]
        page_len = request.args["page_len"][0]
        offset = page * page_len
        expires = []
        if page_len and offset < 2**62:  # beyond, no database has rows
            expires = yield _settings(request)["users"].sessions_of(
                request.user["id"], offset, page_len
            )
        return {"result": {"expires": expires, "page": page, "page_len": page_len}}
