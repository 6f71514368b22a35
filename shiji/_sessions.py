"""
Server-side sessions: :class:`Session`, and :func:`session_filter`, which
loads one before a call and saves it after.

A session is a JSON object kept in the shared store (``request.store``)
under ``shiji:session:<id>``, as ``{"data": {...}, "saved": <time>}``; the
client holds only its id, in a signed cookie. A session lives
``session_max_age`` seconds unused: each use further than a tenth of that
from its last save saves it again (and sends the cookie again), so that an
active client's session slides forward while most requests write nothing.

Two requests of one session served at once each load it and each save what
they end with: the last to finish wins, and a change the other made is
lost. Keep in a session what one request at a time changes (who is logged
in); count and queue in the store itself (``incr``, ``push``).
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import MutableMapping
from typing import Any, Dict, Iterator, List, Optional

from twisted.internet.defer import Deferred, inlineCallbacks

from ._declarations import raises
from ._errors import APIError, ErrorText, StorageUnavailableError
from ._filters import CallNext
from ._request import APIRequest
from .auth._cookies import get_secure_cookie, set_secure_cookie
from .storage import Store

__all__ = ["KEY_PREFIX", "Session", "session_cookie_name", "session_filter"]

#: Where sessions are kept in the store: this, then the session's id.
KEY_PREFIX = "shiji:session:"

#: A session is saved again once this part of its lifetime has passed.
_REFRESH_FRACTION = 0.1


def _new_id() -> str:
    return secrets.token_urlsafe(32)


class _State:
    """
    What a :class:`Session` and the filter that saves it share: its id,
    data, and what is to happen to it at the end of the call.
    """

    __slots__ = ("changed", "data", "destroyed", "id", "old_ids", "stored")

    def __init__(self, session_id: Optional[str], data: Optional[Dict[str, Any]]):
        #: The session is in the store under :attr:`id`.
        self.stored = session_id is not None
        self.id = session_id if session_id is not None else _new_id()
        self.data: Dict[str, Any] = dict(data or {})
        #: Save it at the end of the call.
        self.changed = False
        #: Ids it had, to delete from the store at the end of the call.
        self.old_ids: List[str] = []
        #: Clear the cookie at the end of the call.
        self.destroyed = False

    def retire(self) -> None:
        """Give the session a new id, the old one to be deleted."""
        if self.stored:
            self.old_ids.append(self.id)
        self.stored = False
        self.id = _new_id()

    def record(self, now: float) -> str:
        """The session as the store keeps it, saved at ``now``."""
        try:
            return _encode({"data": self.data, "saved": now})
        except (TypeError, ValueError) as error:
            # A value changed in place after it was set (see mark_changed).
            raise TypeError(
                f"the session cannot be saved, nothing was: it holds a value "
                f"JSON cannot encode ({error}); a session holds JSON values "
                "only (str, int, float, bool, None, lists and dicts of them)"
            ) from None


class Session(MutableMapping):
    """
    The caller's session: a dict of JSON values, saved at the end of the
    call when it changed.

    Changes made inside a value (``session["cart"].append(...)``) are not
    seen: assign the value again, or call :meth:`mark_changed`.
    """

    def __init__(
        self,
        session_id: Optional[str] = None,
        data: Optional[Dict[str, Any]] = None,
        *,
        _state: Optional[_State] = None,
    ) -> None:
        self._state = _state if _state is not None else _State(session_id, data)

    @property
    def id(self) -> str:
        """
        The session's id (a new session has one already, kept only if the
        session is saved).
        """
        return self._state.id

    @property
    def is_new(self) -> bool:
        """The caller had no live session: this one is not stored yet."""
        return not self._state.stored

    @property
    def changed(self) -> bool:
        """The session will be saved at the end of the call."""
        return self._state.changed

    def mark_changed(self) -> None:
        """Save the session at the end of the call, changed or not."""
        self._state.changed = True
        self._state.destroyed = False

    def regenerate(self) -> None:
        """
        Give the session a new id now, keeping its data; the old id stops
        working when the session is saved. Call it on login (and on any
        change of privilege), so that an id planted or seen before it is
        worth nothing after.
        """
        self._state.retire()
        self.mark_changed()

    def destroy(self) -> None:
        """
        Forget the session: at the end of the call it is deleted from the
        store and the cookie cleared (logout). Setting values afterwards
        starts a new session.
        """
        state = self._state
        state.retire()
        state.data.clear()
        state.changed = False
        state.destroyed = True

    # The mapping.

    def __getitem__(self, key: str) -> Any:
        return self._state.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"session keys are strings, not {type(key).__name__}")
        try:
            _encode(value)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"request.session[{key!r}]: a session holds JSON values only "
                f"(str, int, float, bool, None, lists and dicts of them): {error}"
            ) from None
        self._state.data[key] = value
        self.mark_changed()

    def __delitem__(self, key: str) -> None:
        del self._state.data[key]
        self.mark_changed()

    def __iter__(self) -> Iterator[str]:
        return iter(self._state.data)

    def __len__(self) -> int:
        return len(self._state.data)

    def __repr__(self) -> str:
        state = " (new)" if self.is_new else ""
        return f"<Session{state} {self._state.data!r}>"


def _encode(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def session_cookie_name(request: APIRequest) -> str:
    """
    The session cookie's name for ``request``: ``session_cookie`` of the
    router's settings, with ``__Host-`` before it when cookies are sent over
    HTTPS only (``cookie_secure``).
    """
    router = request.api_router
    if router is None:
        return "session"
    name = router.settings.session_cookie
    if router.cookie_secure and not name.startswith("__"):
        return "__Host-" + name
    return name


def _parse(raw: str) -> Optional[Dict[str, Any]]:
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("data"), dict):
        return None
    saved = record.get("saved")
    if not isinstance(saved, (int, float)) or isinstance(saved, bool):
        return None
    return record


def expiry_of(
    store: Store, session_id: str, max_age: float
) -> Deferred[Optional[float]]:
    """
    A ``Deferred`` of when the session ``session_id`` expires unless used
    again (UNIX time, on the store's clock: its last save plus ``max_age``,
    the router's ``settings.session_max_age``), or ``None`` if it is not
    in ``store`` (expired, destroyed, never saved).
    """

    def expiry(raw: Optional[str]) -> Optional[float]:
        record = _parse(raw) if raw is not None else None
        return None if record is None else float(record["saved"]) + max_age

    return store.get(KEY_PREFIX + session_id).addCallback(expiry)


@raises(StorageUnavailableError)
@inlineCallbacks
def session_filter(request: APIRequest, call_next: CallNext) -> Any:
    """
    A filter giving the call ``request.session``: loaded from the store
    before the call when the request carries a session cookie (an empty,
    new session otherwise, or when the cookie is not validly signed or its
    session has expired), saved after the call if it changed, before the
    answer is sent. A session is never saved when the call fails (raises,
    or returns an ``APIError``).

    Declare it on the API (``filters = [sessions.session_filter]``), the
    version or the calls that use sessions. The store unreachable, at load
    or at save, answers ``StorageUnavailableError`` (HTTP 503) and the
    call's own answer is not sent. A session due to slide forward is
    :attr:`~Session.changed` from the start of the call; one holding a
    value JSON cannot encode is not saved (a ``TypeError``: HTTP 500).
    """
    router = request.api_router
    assert router is not None
    store = router.store
    name = session_cookie_name(request)
    now = router.clock.seconds()
    max_age = router.settings.session_max_age
    state = _State(None, None)
    cookie = get_secure_cookie(request, name)
    if isinstance(cookie, str) and cookie:
        raw = yield store.get(KEY_PREFIX + cookie)
        record = _parse(raw) if raw is not None else None
        # A session saved longer ago than max_age is over, even if the
        # store would keep it longer (max_age was lowered since): deleted,
        # so that raising max_age again does not bring it back.
        if record is not None and now - record["saved"] > max_age:
            yield store.delete(KEY_PREFIX + cookie)
        elif record is not None:
            state = _State(cookie, record["data"])
            # Past a tenth of its life, a session used is saved again.
            state.changed = now - record["saved"] > max_age * _REFRESH_FRACTION
    request.session = Session(_state=state)
    result = yield call_next(request)
    if not isinstance(result, (APIError, ErrorText)):
        # An error returned rather than raised fails the call all the same.
        yield _save(request, state, name, now, max_age)
    return result


@inlineCallbacks
def _save(
    request: APIRequest,
    state: _State,
    name: str,
    now: float,
    max_age: float,
) -> Any:
    router = request.api_router
    assert router is not None
    store = router.store
    # Every write to the store first, the cookie last: an answer that
    # fails on the way carries no cookie for a session that is not there.
    saved = state.changed
    if saved and state.stored:
        # Only while it is still there: a session that another request
        # ended meanwhile (logout, a new id on login) stays ended.
        saved = yield store.replace(KEY_PREFIX + state.id, state.record(now), max_age)
    elif saved:
        yield store.set(KEY_PREFIX + state.id, state.record(now), max_age)
    for old in state.old_ids:
        yield store.delete(KEY_PREFIX + old)
    state.old_ids = []
    state.changed = False
    if saved:
        state.stored = True
        # Whole seconds, and a half more for the conversion to days and
        # back to be truncated to them.
        days = (max(math.floor(max_age), 1) + 0.5) / 86400
        set_secure_cookie(request, name, state.id, expires_days=days)
    elif state.destroyed:
        set_secure_cookie(request, name, "", expires_days=0)
