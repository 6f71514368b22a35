"""
Login attempt limits, per email and per client address, over a sliding
window. Counted in each process's memory (each worker counts on its own).
"""

import time
from collections import OrderedDict, deque


class RateLimiter:
    """At most ``attempts`` failures per key within ``window`` seconds."""

    MAX_KEYS = 100_000

    def __init__(self, attempts, window, clock=time.monotonic):
        self.attempts = attempts
        self.window = window
        self.clock = clock
        self._failures = OrderedDict()

    def _recent(self, key):
        failures = self._failures.get(key)
        if failures is None:
            return None
        cutoff = self.clock() - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        return failures

    def retry_after(self, *keys):
        """Seconds until one of ``keys`` may try again; 0 if all may now."""
        wait = 0.0
        for key in keys:
            failures = self._recent(key)
            if failures and len(failures) >= self.attempts:
                wait = max(wait, failures[0] + self.window - self.clock())
        return wait

    def failed(self, *keys):
        for key in keys:
            failures = self._recent(key)
            if failures is None:
                failures = self._failures[key] = deque()
            failures.append(self.clock())
            self._failures.move_to_end(key)
        while len(self._failures) > self.MAX_KEYS:
            self._failures.popitem(last=False)

    def succeeded(self, *keys):
        for key in keys:
            self._failures.pop(key, None)
