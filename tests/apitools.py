"""
Build API packages in memory, for tests that need routing set-ups the example
API does not have; watch what is logged.
"""

from contextlib import contextmanager
from types import ModuleType

from twisted.logger import formatEvent, globalLogPublisher

from shiji.urldispatch import CallRouter, VersionRouter


def make_version(name, calls, auto_list_versions=True):
    """A version package whose calls module holds ``calls``, in order."""
    calls_module = ModuleType(f"{name}.calls")
    for call in calls:
        setattr(calls_module, call.__name__, call)
    version = ModuleType(name)
    version.calls = calls_module
    version.call_router = CallRouter(
        calls_module, auto_list_versions=auto_list_versions
    )
    return version


def make_api(api_name, versions):
    """
    An API package; ``versions`` is a list of ``(key, pattern, calls)``.
    """
    api = ModuleType(api_name)
    api.api_name = api_name
    api.api_versions = {
        key: (pattern, make_version(f"{api_name}.v{key}", calls))
        for key, pattern, calls in versions
    }
    api.version_router = VersionRouter(api.api_versions)
    return api


def without_date(headers):
    """Response headers less Date, which changes every second."""
    return {name: value for name, value in headers.items() if name != "date"}


def envelope(error_class, code, text):
    """The JSON error envelope."""
    return {
        "result": None,
        "error": {
            "error_code": code,
            "exception_class": error_class,
            "exception_text": text,
        },
    }


@contextmanager
def log_lines(namespace):
    """The lines logged under ``namespace`` while the block runs, formatted."""
    lines = []

    def observe(event):
        if event.get("log_namespace") == namespace:
            lines.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    try:
        yield lines
    finally:
        globalLogPublisher.removeObserver(observe)


class HeldStoreThread:
    """
    Stands in for the task store's thread (a ``call_store``): each call
    waits until :meth:`run` runs it, so a test can stop a service while a
    claim is still in the store's hands.
    """

    def __init__(self):
        #: ``(function, args, deferred)`` of each call not yet run.
        self.pending = []

    def __call__(self, function, *args):
        from twisted.internet.defer import Deferred

        done = Deferred()
        self.pending.append((function, args, done))
        return done

    def run(self):
        """Run every waiting call (and those they make), in order."""
        from twisted.internet.defer import maybeDeferred

        while self.pending:
            function, args, done = self.pending.pop(0)
            maybeDeferred(function, *args).chainDeferred(done)

    def waiting(self):
        """The names of the functions waiting to run."""
        return [function.__name__ for function, _, _ in self.pending]
