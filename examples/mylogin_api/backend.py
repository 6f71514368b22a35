"""
The session backend: who the caller is, from the server-side session that
login fills (``request.session``, see :mod:`shiji.sessions`).

Configure it in shijid's ``[auth]`` section::

    enable_auth: true
    auth_module: mylogin_api.backend
    auth_class: SessionBackend

The calls it guards declare ``sessions.session_filter`` among their filters.
"""

from twisted.internet import defer

from shiji import sessions

#: The store's list of each user's session ids (``.format(user_id)``),
#: which ``me/sessions`` reads.
USER_SESSIONS = "mylogin_api:user-sessions:{}"

#: Session ids kept per user: the newest logins.
MAX_LISTED = 100


def list_session(request, user_id):
    """
    A Deferred of ``request.session``'s id put on its user's list (which
    lives as long as a session does), after a login.
    """
    store = request.store
    max_age = request.api_router.settings.session_max_age
    return store.push(
        USER_SESSIONS.format(user_id),
        request.session.id,
        cap=MAX_LISTED,
        expires_in=max_age,
    )


class SessionBackend:
    """
    Grants ``{"roles": ["user"], "users": ["<id>"]}`` to a caller whose
    session holds a ``user_id`` (put there by login), and sets
    ``request.user`` to ``{"id", "email"}``.
    """

    def __init__(self, api="mylogin_api"):
        self.api = api

    @defer.inlineCallbacks
    def authenticate(self, request):
        session = request.session
        if "user_id" not in session:
            return None
        user_id = session["user_id"]
        request.user = {"id": user_id, "email": session.get("email")}
        if session.changed:
            # The session slides forward: so does its user's list, which
            # an idle user's sessions outlive otherwise.
            store = request.store
            max_age = request.api_router.settings.session_max_age
            listed = yield store.expire(USER_SESSIONS.format(user_id), max_age)
            if not listed:
                yield list_session(request, user_id)
        return {"roles": ["user"], "users": [str(user_id)]}

    def challenge(self, request):
        """
        The ``WWW-Authenticate`` challenge of every 401 answer: the Cookie
        scheme, naming the session cookie to obtain from ``POST login``
        (``Cookie realm="mylogin_api", cookie-name="session"``). The API's
        name and a cookie name are tokens: nothing in them needs escaping.
        """
        name = sessions.session_cookie_name(request)
        return f'Cookie realm="{self.api}", cookie-name="{name}"'
