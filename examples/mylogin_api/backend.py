"""
The session backend: who the caller is, from the signed session cookie.

Configure it in shijid's ``[auth]`` section::

    enable_auth: true
    auth_module: mylogin_api.backend
    auth_class: SessionBackend
"""

from twisted.internet import defer

from shiji import auth, webapi


def session_cookie(request, api="mylogin_api"):
    """
    The session cookie's name: ``cookie_name``, with the ``__Host-`` prefix
    when cookies are sent over HTTPS only (``[auth] cookie_secure``), so
    that no subdomain nor plain-HTTP page can plant one.
    """
    name = request.api_config[api]["cookie_name"]
    router = request.api_router
    if router is not None and router.cookie_secure and not name.startswith("__"):
        return "__Host-" + name
    return name


class SessionBackend:
    """
    Grants ``{"roles": ["user"], "users": ["<id>"]}`` to a caller with a
    valid session, and sets ``request.user`` to ``{"id", "email"}``.
    """

    def __init__(self, api="mylogin_api"):
        self.api = api

    @defer.inlineCallbacks
    def authenticate(self, request):
        settings = request.api_config[self.api]
        token = auth.get_secure_cookie(request, session_cookie(request, self.api))
        if token is None:
            return None
        if isinstance(token, webapi.APIError):
            raise token
        user = yield settings["users"].session_user(token)
        if user is None:
            return None
        request.user = {"id": user[0], "email": user[1]}
        return {"roles": ["user"], "users": [str(user[0])]}

    def challenge(self, request):
        """
        The ``WWW-Authenticate`` challenge of every 401 answer: the Cookie
        scheme, naming the session cookie to obtain from ``POST login``
        (``Cookie realm="mylogin_api", cookie-name="session"``). The API's
        name and a cookie name are tokens: nothing in them needs escaping.
        """
        name = session_cookie(request, self.api)
        return f'Cookie realm="{self.api}", cookie-name="{name}"'
