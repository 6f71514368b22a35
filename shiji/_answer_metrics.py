"""
The metrics the site sends for every answer, under names made once and
kept: nothing a client sends becomes part of a name.

Two schemes, chosen by ``[statsd] names`` (the ``metric_names`` setting);
every name is preceded by ``[statsd] scheme``:

``v2``, the default. A call's answers are counted and timed as
``<api>.<mode>.<version>.<call>.<METHOD>``, and counted again by status
class (``...<METHOD>.4xx``), by status (``...<METHOD>.status.404``) and, for
an error, by its class (``...<METHOD>.errors.ValueError``). What no call
answers has names of its own, with the same four kinds of counters:
``<api>.<mode>.<version>.unrouted`` (an unknown call, a retired version),
``<api>.unrouted`` (no version), ``<api>.options`` (``OPTIONS`` and CORS
preflights), ``health`` (``/_health``), ``docs`` (``/_docs``), ``options``
(``OPTIONS *``) and ``unrouted`` (an unknown API, and what the connection
refused).

A request whose connection closed before its answer was complete is
counted ``<base>.lost`` (``...<METHOD>.lost``) and timed under ``<base>``,
the names its answer would have had, without the status counters.

``v1``, the names Shiji gave before ``v2``, for the dashboards built on
them (lost requests are not counted): ``<api>.<version>.<call>.<METHOD>``,
``<api>.unrouted`` and ``unrouted``, each with its status class, and
``<api>.error.<exception_class>``; ``/_health`` is counted as ``unrouted``
only when it is logged (``log_health``).

``<version>`` is the key of the version answering in the API's
``api_versions``, never the version the client asked for, with ``.`` (and
any other character that is not a letter, a digit, ``_`` or ``-``) written
``_``; ``<METHOD>`` is the request's method when it is one of
:data:`METHODS`, ``other`` otherwise.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Optional, Tuple

from .metrics import Metrics

__all__ = ["METHODS", "METRIC_NAMES", "AnswerMetrics", "segment"]

#: The values of the ``metric_names`` setting (``[statsd] names``).
METRIC_NAMES = ("v2", "v1")

#: The methods named in metrics; any other is counted as ``other``.
METHODS = {
    method.encode("ascii"): method
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
}
_OTHER_METHOD = "other"

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
# Names kept, at most, in each cache: more could only come from code that
# makes error classes or statuses on the fly.
_CACHE_LIMIT = 4096


def segment(text: str) -> str:
    """
    ``text`` as one segment of a metric name: every character that is not
    a letter, a digit, ``_`` or ``-`` (a dot, a colon, a ``|``, an ``@``, a
    space) written ``_``, so that ``1.0`` is ``1_0``.
    """
    return _UNSAFE.sub("_", text) or "_"


class _Names:
    """
    The names of one kind of answer: the counter and timer ``base``, and
    the counters of each status and error under it.
    """

    __slots__ = ("_errors", "_statuses", "base", "errors", "lost", "per_status")

    def __init__(self, base: str, per_status: bool, errors: Optional[str]) -> None:
        self.base = base
        #: The counter of the requests whose connection closed first.
        self.lost = f"{base}.lost"
        self.per_status = per_status
        #: The prefix of the error counters, or ``None`` for none.
        self.errors = errors
        self._statuses: Dict[int, Tuple[str, ...]] = {}
        self._errors: Dict[str, str] = {}

    def statuses(self, code: int) -> Tuple[str, ...]:
        """The counters of an answer of status ``code``."""
        found = self._statuses.get(code)
        if found is None:
            if not self.per_status:
                found = (f"{self.base}.{code // 100}xx",)
            elif 100 <= code <= 599:
                found = (f"{self.base}.{code // 100}xx", f"{self.base}.status.{code}")
            else:
                found = (f"{self.base}.other", f"{self.base}.status.other")
            if len(self._statuses) < _CACHE_LIMIT:
                self._statuses[code] = found
        return found

    def error(self, exception_class: str) -> Optional[str]:
        """The counter of an answer that was the error ``exception_class``."""
        if self.errors is None:
            return None
        found = self._errors.get(exception_class)
        if found is None:
            found = f"{self.errors}.{segment(exception_class)}"
            if len(self._errors) < _CACHE_LIMIT:
                self._errors[exception_class] = found
        return found


class AnswerMetrics:
    """
    Counts and times every answer the site sends.

    :param metrics: where the metrics go.
    :param names: the scheme, one of :data:`METRIC_NAMES`.
    :param health_path: the path of the health check.
    :param docs_prefix: the path the documentation is served under, or
        ``None`` when it is not served.
    :param count_health_v1: under ``v1``, count the health checks (as
        ``unrouted``), as Shiji did before ``v2`` when it logged them.
    """

    def __init__(
        self,
        metrics: Metrics,
        names: str,
        *,
        health_path: bytes,
        docs_prefix: Optional[bytes],
        count_health_v1: bool,
    ) -> None:
        if names not in METRIC_NAMES:
            raise ValueError(
                f"metric names are one of {', '.join(METRIC_NAMES)}, not {names!r}"
            )
        self.metrics = metrics
        self.v1 = names == "v1"
        self.health_path = health_path
        self.docs_prefix = docs_prefix
        self.docs_under = docs_prefix + b"/" if docs_prefix is not None else None
        v2 = not self.v1
        # Errors had no counter of their own under v1 without an API.
        self.unrouted = _Names("unrouted", v2, "unrouted.errors" if v2 else None)
        self.health: Optional[_Names] = (
            _Names("health", True, "health.errors")
            if v2
            else (self.unrouted if count_health_v1 else None)
        )
        self.docs = _Names("docs", True, "docs.errors") if v2 else self.unrouted
        self.options = (
            _Names("options", True, "options.errors") if v2 else self.unrouted
        )
        self._calls: Dict[Tuple[str, str, str, str, str], _Names] = {}
        self._apis: Dict[Tuple[str, str, str, str], _Names] = {}

    # Names

    def _call(self, request: Any) -> _Names:
        method = METHODS.get(request.method, _OTHER_METHOD)
        key = (
            request.api_name,
            request.api_mode,
            request.version_key,
            request.api_call,
            method,
        )
        found = self._calls.get(key)
        if found is None:
            api, mode, version, call = (segment(part) for part in key[:4])
            if self.v1:
                base = f"{api}.{version}.{call}.{method}"
                found = _Names(base, False, f"{api}.error")
            else:
                base = f"{api}.{mode}.{version}.{call}.{method}"
                found = _Names(base, True, f"{base}.errors")
            if len(self._calls) < _CACHE_LIMIT:
                self._calls[key] = found
        return found

    def _api(self, request: Any) -> _Names:
        """The names of an answer of an API that no call gave."""
        if self.v1:
            where = ""
        elif request.method == b"OPTIONS":
            where = "options"
        elif request.version_key:
            where = "version"
        else:
            where = "unrouted"
        key = (request.api_name, request.api_mode, request.version_key, where)
        found = self._apis.get(key)
        if found is None:
            api = segment(request.api_name)
            if self.v1:
                found = _Names(f"{api}.unrouted", False, f"{api}.error")
            else:
                if where == "version":
                    mode, version = segment(request.api_mode), segment(key[2])
                    base = f"{api}.{mode}.{version}.unrouted"
                else:
                    base = f"{api}.{where}"
                found = _Names(base, True, f"{base}.errors")
            if len(self._apis) < _CACHE_LIMIT:
                self._apis[key] = found
        return found

    def _names(self, request: Any) -> Optional[_Names]:
        if request.api_call:
            return self._call(request)
        if request.api_name:
            return self._api(request)
        path = request.path
        if path == self.health_path:
            return self.health
        if self.docs_prefix is not None and (
            path == self.docs_prefix or path.startswith(self.docs_under)
        ):
            return self.docs
        if path == b"*" and request.method == b"OPTIONS":
            return self.options
        return self.unrouted

    # Counting

    def answered(self, request: Any, duration_ms: float) -> None:
        """Count ``request``, answered after ``duration_ms``."""
        names = self._names(request)
        if names is None:
            return
        error_class = request.error_class
        if error_class is not None and not isinstance(error_class, str):
            error_class = str(error_class)
        self._count(names, request.code, duration_ms, error_class)

    def lost(self, request: Any, duration_ms: float) -> None:
        """
        Count ``request``, whose connection closed after ``duration_ms``,
        before its answer was complete: ``<base>.lost`` and the timer under
        ``v2``; nothing under ``v1``, which never counted them.
        """
        if self.v1:
            return
        names = self._names(request)
        if names is not None:
            self.metrics.increment(names.lost)
            self.metrics.timing(names.base, duration_ms)

    def refused(
        self, status: int, duration_ms: float, error_class: Optional[str]
    ) -> None:
        """Count a request the connection refused with ``error_class``."""
        self._count(self.unrouted, status, duration_ms, error_class)

    def _count(
        self,
        names: _Names,
        status: int,
        duration_ms: float,
        error_class: Optional[str],
    ) -> None:
        metrics = self.metrics
        error = names.error(error_class) if error_class is not None else None
        if self.v1 and error is not None:
            # Before v2, an error was counted as it was made, before its
            # answer.
            metrics.increment(error)
            error = None
        base = names.base
        metrics.increment(base)
        metrics.timing(base, duration_ms)
        for name in names.statuses(status):
            metrics.increment(name)
        if error is not None:
            metrics.increment(error)
