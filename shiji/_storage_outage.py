"""
:class:`OutageLog`: one line when a store stops answering and one when it
answers again, instead of a line per refused operation.

The clients of a store that cannot be reached are answered 503
``StorageUnavailableError`` without the cause; this log is where the cause
is told.
"""

import re
from typing import TypeVar

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from ._errors import StorageUnavailableError

__all__ = ["OutageLog", "shown_url"]

log = Logger(namespace="shiji.storage")

_T = TypeVar("_T")


def shown_url(url: str, user: bool = False) -> str:
    """
    ``url`` (``scheme://[user[:password]@]host[:port][/path][?query]``)
    without its password or query, to name a store; never raises. The
    password may hold ``/``, ``#``, ``?`` or ``@`` unencoded: the host is
    what follows the last ``@``.

    :param user: keep the user name (what precedes the first ``:``).
    """
    scheme, _, rest = url.partition("://")
    userinfo, at, place = rest.rpartition("@")
    name = userinfo.partition(":")[0] if at and user else ""
    if re.search(r"[/?#=&\s]", name):
        name = "?"
    place = re.split(r"[?#]", place, maxsplit=1)[0]
    if re.search(r"[=&\s]", place):
        # The last "@" was in the query (user=name@server&password=...):
        # nothing after it can be trusted not to be a secret.
        return f"{scheme}://..."
    return f"{scheme}://{name + '@' if name else ''}{place}"


class OutageLog:
    """
    Watches the outcomes of one store's operations (on the reactor's
    thread): pass each operation's ``Deferred`` through :meth:`watch`.

    :param name: how the lines name the store (never with a password).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        #: The store is refusing operations as unreachable.
        self.down = False

    def watch(self, result: "Deferred[_T]") -> "Deferred[_T]":
        """``result``, watched; it fires as it would have."""
        return result.addCallbacks(self._answered, self._failed)

    def _answered(self, value: _T) -> _T:
        if self.down:
            self.down = False
            log.info("The shared store {store} answers again", store=self.name)
        return value

    def _failed(self, reason: Failure) -> Failure:
        if reason.check(StorageUnavailableError):
            if not self.down:
                self.down = True
                cause = getattr(reason.value, "__cause__", None)
                why = f"{type(cause).__name__}: {cause}" if cause else "no answer"
                log.warn(
                    "The shared store {store} cannot be reached ({why}); calls "
                    "that need it are answered 503 until it answers again",
                    store=self.name,
                    why=why,
                )
        elif self.down:
            # A refusal (a wrong type, say) is an answer all the same.
            self._answered(None)
        return reason
