"""
Server-side sessions, kept in the shared store (:mod:`shiji.storage`)::

    from shiji import sessions

    class LoginCall(urldispatch.URLMatchJSONResource):
        routes = r"login"
        filters = [sessions.session_filter]

        async def render_POST(self, request):
            ...                                # check the password
            request.session.regenerate()       # a new id on login
            request.session["user_id"] = user_id
            return {"result": "welcome"}

``request.session`` is dict-like; it is saved at the end of the call when
it changed (``StorageUnavailableError``, HTTP 503, if the store cannot
take it: the answer is then not sent), its id travels in a signed cookie
(``[sessions] cookie_name``, ``session`` by default; signing needs
``[auth] secure_cookies_secrets``), and it expires ``[sessions] max_age``
seconds after its last use. :meth:`Session.destroy` logs out.
:func:`expiry_of` tells when a stored session expires unless used again
(to list a user's sessions, say).
"""

from ._sessions import Session, expiry_of, session_cookie_name, session_filter

__all__ = ["Session", "expiry_of", "session_cookie_name", "session_filter"]
