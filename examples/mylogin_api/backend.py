"""
The session backend: who the caller is, from the signed session cookie.

Configure it in shijid's ``[auth]`` section::

    enable_auth: true
    auth_module: mylogin_api.backend
    auth_class: SessionBackend
"""

from twisted.internet import defer

from shiji import auth, webapi


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
        token = auth.get_secure_cookie(request, settings["cookie_name"])
        if token is None:
            return None
        if isinstance(token, webapi.APIError):
            raise token
        user = yield settings["users"].session_user(token)
        if user is None:
            return None
        request.user = {"id": user[0], "email": user[1]}
        return {"roles": ["user"], "users": [str(user[0])]}
