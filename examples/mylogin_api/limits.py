"""
Limits on logins and signups, counted in each process's memory (each worker
counts on its own).

Every attempt counts from the moment it starts, before its password is
checked, so attempts sent in parallel cannot slip past a limit while the
first ones are still being checked; an attempt that succeeds gives its
place back.
"""

import time
from collections import OrderedDict, deque


class SlidingWindow:
    """At most ``limit`` events per key within the last ``window`` seconds."""

    #: Keys remembered at most; the least recently used are forgotten first.
    MAX_KEYS = 100_000

    def __init__(self, limit, window, clock=time.monotonic):
        self.limit = limit
        self.window = window
        self.clock = clock
        self._events = OrderedDict()

    def _recent(self, key):
        events = self._events.get(key)
        if events is None:
            return None
        cutoff = self.clock() - self.window
        while events and events[0] <= cutoff:
            events.popleft()
        return events

    def count(self, key):
        """Events of ``key`` within the window."""
        events = self._recent(key)
        return len(events) if events else 0

    def retry_after(self, key):
        """Seconds until ``key`` may have another event; 0 if it may now."""
        events = self._recent(key)
        if not events or len(events) < self.limit:
            return 0.0
        return max(events[-self.limit] + self.window - self.clock(), 0.001)

    def add(self, key):
        """Count an event of ``key`` now; returns its time, for :meth:`remove`."""
        events = self._recent(key)
        if events is None:
            events = self._events[key] = deque()
        stamp = self.clock()
        events.append(stamp)
        self._events.move_to_end(key)
        while len(self._events) > self.MAX_KEYS:
            self._events.popitem(last=False)
        return stamp

    def remove(self, key, stamp):
        """Uncount the event of ``key`` that :meth:`add` timed at ``stamp``."""
        events = self._events.get(key)
        if events is not None and stamp in events:
            events.remove(stamp)

    def clear(self, key):
        """Forget every event of ``key``."""
        self._events.pop(key, None)


class TooMany(Exception):
    """An attempt over a limit; ``retry_after`` is in seconds."""

    def __init__(self, retry_after):
        super().__init__(retry_after)
        self.retry_after = retry_after


class LoginAttempt:
    """A login under way, holding its place in each limit."""

    def __init__(self, limits, email, address, slowdown):
        self.limits = limits
        self.keys = ((email, address), address, email)
        self.slowdown = slowdown
        self.stamps = (
            limits.per_account_and_address.add(self.keys[0]),
            limits.per_address.add(address),
            limits.per_account.add(email),
        )

    def succeeded(self):
        """The password was right: this address starts afresh for the
        account, and the attempt counts nowhere."""
        limits = self.limits
        limits.per_account_and_address.clear(self.keys[0])
        limits.per_address.remove(self.keys[1], self.stamps[1])
        limits.per_account.remove(self.keys[2], self.stamps[2])


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
        clock=time.monotonic,
    ):
        self.per_account_and_address = SlidingWindow(
            login_attempts, login_window, clock
        )
        self.per_address = SlidingWindow(address_login_attempts, login_window, clock)
        self.per_account = SlidingWindow(account_login_ceiling, login_window, clock)
        self.login_slowdown = login_slowdown
        self.signups = SlidingWindow(signup_attempts, signup_window, clock)

    def start_login(self, email, address):
        """
        Admit a login attempt for ``email`` from ``address``, holding its
        place in every limit; its ``slowdown`` says how long it must wait
        before checking the password.

        :raises TooMany: a limit is reached.
        """
        wait = max(
            self.per_account_and_address.retry_after((email, address)),
            self.per_address.retry_after(address),
        )
        if wait:
            raise TooMany(wait)
        slowdown = self.login_slowdown if self.per_account.retry_after(email) else 0
        return LoginAttempt(self, email, address, slowdown)

    def start_signup(self, address):
        """
        Admit a signup from ``address``.

        :raises TooMany: the address has signed up too often.
        """
        wait = self.signups.retry_after(address)
        if wait:
            raise TooMany(wait)
        self.signups.add(address)
