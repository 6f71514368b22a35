"""
Calls of mylogin_api 1.0.
"""

import re
import time
from dataclasses import dataclass
from typing import List

from twisted.internet import defer, task, threads

from shiji import auth, sessions, urldispatch, webapi
from shiji.webapi import Arg, StorageUnavailableError

from .. import backend, limits, passwords, store
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
        "The signed cookie holding the id of the server-side session that "
        "login fills: `session` (shijid's [sessions] cookie_name), or "
        "`__Host-session` when cookies are sent over HTTPS only ([auth] "
        "cookie_secure)."
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


def _now(request):
    """The time (UNIX) of the router's clock, which the store's follows."""
    return request.api_router.clock.seconds()


class SignupCall(urldispatch.URLMatchJSONResource):
    """
    Create an account.
    """

    routes = r"users"

    @webapi.json_arguments(CREDENTIALS)
    @webapi.returns(201, AccountResult, description="The new account.")
    @webapi.raises(EmailTakenError, TooManyAttemptsError, StorageUnavailableError)
    @defer.inlineCallbacks
    def render_POST(self, request):
        """
        Create an account; the email must be unused, the password 8 to 1024
        characters long. Answers 201 with `{"result": {"id": ..., "email":
        ...}}`. Signups are limited per client address (HTTP 429 with
        `Retry-After` past the limit, counted by every server together),
        which also makes finding out which emails have accounts slow.
        """
        email, password = request.jsonArgs["email"], request.jsonArgs["password"]
        try:
            yield _settings(request)["limits"].start_signup(
                request.store, request.client_ip, _now(request)
            )
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
    filters = [sessions.session_filter]

    @webapi.json_arguments(CREDENTIALS)
    @webapi.returns(200, AccountResult, description="The account logged in to.")
    @webapi.raises(LoginFailedError, TooManyAttemptsError)
    @defer.inlineCallbacks
    def render_POST(self, request):
        """
        Check the email and password and start a session: its id comes in
        a new signed session cookie, even if the caller had one. Failed
        attempts are limited per account and client address, and per
        client address (HTTP 429 with `Retry-After` past a limit); logins
        to an account that many addresses failed to log in to are slowed
        down. An unknown email takes as long to refuse as a wrong password.
        """
        settings = _settings(request)
        email, password = request.jsonArgs["email"], request.jsonArgs["password"]
        try:
            attempt = yield settings["limits"].start_login(
                request.store, email, request.client_ip, _now(request)
            )
        except limits.TooMany as refused:
            raise TooManyAttemptsError(request, refused.retry_after) from None
        if attempt.slowdown:
            clock = request.api_router.clock
            yield task.deferLater(clock, attempt.slowdown, lambda: None)
        user = yield settings["users"].user_by_email(email)
        # An unknown email is checked against a hash no password matches,
        # so that it takes as long as a known one.
        stored = user[2] if user is not None else passwords.UNMATCHABLE
        accepted = yield passwords.check_password(password, stored)
        if not (accepted and user is not None):
            raise LoginFailedError(request)
        yield attempt.succeeded()
        session = request.session
        # A new id: one planted in the browser, or seen before the login,
        # is worth nothing after it.
        session.regenerate()
        session["user_id"], session["email"] = user[0], user[1]
        yield backend.list_session(request, user[0])
        return {"result": {"id": user[0], "email": user[1]}}


class LogoutCall(urldispatch.URLMatchJSONResource):
    """
    Log out: the session ends and the cookie is cleared.
    """

    routes = r"logout"
    filters = [sessions.session_filter]

    @auth.login_required()
    @webapi.returns(200, Message)
    @webapi.raises()
    def render_POST(self, request):
        """End the caller's session: it is deleted, and its cookie cleared."""
        request.session.destroy()
        return {"result": "logged out"}


class MeCall(urldispatch.URLMatchJSONResource):
    """
    The logged-in user.
    """

    routes = r"me"
    filters = [sessions.session_filter]

    @auth.login_required()
    @webapi.returns(200, AccountResult)
    @webapi.raises()
    def render_GET(self, request):
        """Answer `{"result": {"id": ..., "email": ...}}` for the session's user."""
        return {"result": request.user}


def _first_failure(failure):
    """What failed first of a ``gatherResults``: answered as itself (a
    ``StorageUnavailableError`` as HTTP 503)."""
    failure.trap(defer.FirstError)
    return failure.value.subFailure


class SessionsCall(urldispatch.URLMatchJSONResource):
    """
    The caller's live sessions, a page at a time.
    """

    routes = r"me/sessions"
    filters = [sessions.session_filter]

    @auth.login_required()
    @webapi.paged_results(default_page_len=20, max_page_len=100)
    @webapi.returns(200, SessionsResult)
    @webapi.raises()
    @defer.inlineCallbacks
    def render_GET(self, request):
        """
        When each of the caller's live sessions expires unless used again,
        soonest first: `page_len` of them from page `page` (of the 100
        newest logins at most).
        """
        page = request.args["page"][0]
        page_len = request.args["page_len"][0]
        offset = page * page_len
        expires = []
        if page_len and offset < backend.MAX_LISTED:
            store = request.store
            max_age = request.api_router.settings.session_max_age
            ids = yield store.items(backend.USER_SESSIONS.format(request.user["id"]))
            found = yield defer.gatherResults(
                [sessions.expiry_of(store, id_, max_age) for id_ in set(ids)],
                consumeErrors=True,
            ).addErrback(_first_failure)
            live = sorted(expiry for expiry in found if expiry is not None)
            expires = live[offset : offset + page_len]
        return {"result": {"expires": expires, "page": page, "page_len": page_len}}
