"""
Limits on logins and signups, counted in the shared store
(``request.store``), so that every process and every host serving the API
counts together.

Each limit counts over fixed windows aligned to the epoch: the counter of
a key for the window ``floor(now / window)`` lives in the store as
``mylogin_api:limits:<kind>:<sha256 of the email or address>:<window>``,
and a refused caller is told to retry when that window ends. (A fixed
window lets a caller spend a whole allowance just before a window ends and
another just after: at most twice the limit in a short time, never more.)

Every attempt counts from the moment it starts, before its password is
checked, so attempts sent in parallel, to any process, cannot slip past a
limit while the first ones are still being checked; an attempt that is
refused, or that succeeds, gives its place back.
"""

import hashlib
import math

from twisted.internet import defer

#: Where the counters are kept in the store.
PREFIX = "mylogin_api:limits:"


class TooMany(Exception):
    """An attempt over a limit; ``retry_after`` is in seconds."""

    def __init__(self, retry_after):
        super().__init__(retry_after)
        self.retry_after = retry_after


def _digest(*parts):
    # Emails and addresses stay out of the store's keys; a NUL cannot occur
    # in either, so no two pairs make the same text.
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


class FixedWindow:
    """At most ``limit`` events per key within each ``window`` seconds,
    counted in the store under ``kind``."""

    def __init__(self, kind, limit, window):
        self.kind = kind
        self.limit = limit
        self.window = window

    def key(self, now, *parts):
        """The counter of ``parts`` for the window holding ``now``."""
        number = math.floor(now / self.window)
        return f"{PREFIX}{self.kind}:{_digest(*parts)}:{number}"

    def retry_after(self, now):
        """Seconds from ``now`` until the window holding it ends."""
        return (math.floor(now / self.window) + 1) * self.window - now

    def count(self, store, key, amount=1):
        """A Deferred of the counter ``key`` after adding ``amount``."""
        return store.incr(key, amount, expires_in=self.window)


class LoginAttempt:
    """A login under way, holding its place in each limit."""

    def __init__(self, limits, store, keys, slowdown):
        self.limits = limits
        self.store = store
        #: The counters it holds a place in: per account and address, per
        #: address, per account.
        self.keys = keys
        #: Seconds to wait before checking the password.
        self.slowdown = slowdown

    @defer.inlineCallbacks
    def succeeded(self):
        """The password was right: this address starts afresh for the
        account, and the attempt counts nowhere."""
        pair, address, account = self.keys
        limits = self.limits
        yield self.store.delete(pair)
        yield limits.per_address.count(self.store, address, -1)
        yield limits.per_account.count(self.store, account, -1)


class AccessLimits:
    """
    The example's limits:

    - failed logins per account *and* client address (``login_attempts``
      per ``login_window``): past it, that address gets 429 for that account
      (and no other address is locked out of it);
    - failed logins per client address, whatever the account
      (``address_login_attempts`` per ``login_window``): 429;
    - failed logins per account, from every address (``account_login_ceiling``
      per ``login_window``): past it, logins to that account are not refused
      but slowed, each waiting ``login_slowdown`` seconds before its password
      is checked, so that guessing from many addresses crawls while the
      owner still gets in;
    - signups per client address (``signup_attempts`` per ``signup_window``),
      since each one hashes a password: 429.
    """

    def __init__(
        self,
        login_attempts,
        login_window,
        address_login_attempts,
        account_login_ceiling,
        login_slowdown,
        signup_attempts,
        signup_window,
    ):
        self.per_account_and_address = FixedWindow(
            "login-account-address", login_attempts, login_window
        )
        self.per_address = FixedWindow(
            "login-address", address_login_attempts, login_window
        )
        self.per_account = FixedWindow(
            "login-account", account_login_ceiling, login_window
        )
        self.login_slowdown = login_slowdown
        self.signups = FixedWindow("signup-address", signup_attempts, signup_window)

    @defer.inlineCallbacks
    def start_login(self, store, email, address, now):
        """
        A Deferred admitting a login attempt for ``email`` from ``address``
        at ``now`` (UNIX time), which holds its place in every limit; its
        ``slowdown`` says how long it must wait before checking the
        password.

        :raises TooMany: a limit is reached (the attempt holds no place).
        :raises StorageUnavailableError: the store cannot be reached.
        """
        pair_limit, address_limit = self.per_account_and_address, self.per_address
        pair = pair_limit.key(now, email, address)
        if (yield pair_limit.count(store, pair)) > pair_limit.limit:
            yield pair_limit.count(store, pair, -1)
            raise TooMany(pair_limit.retry_after(now))
        from_address = address_limit.key(now, address)
        if (yield address_limit.count(store, from_address)) > address_limit.limit:
            yield address_limit.count(store, from_address, -1)
            yield pair_limit.count(store, pair, -1)
            raise TooMany(address_limit.retry_after(now))
        account = self.per_account.key(now, email)
        count = yield self.per_account.count(store, account)
        slowdown = self.login_slowdown if count > self.per_account.limit else 0
        return LoginAttempt(self, store, (pair, from_address, account), slowdown)

    @defer.inlineCallbacks
    def start_signup(self, store, address, now):
        """
        A Deferred admitting a signup from ``address`` at ``now``.

        :raises TooMany: the address has signed up too often.
        :raises StorageUnavailableError: the store cannot be reached.
        """
        key = self.signups.key(now, address)
        if (yield self.signups.count(store, key)) > self.signups.limit:
            yield self.signups.count(store, key, -1)
            raise TooMany(self.signups.retry_after(now))
