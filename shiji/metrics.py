"""
Metrics that API calls ship through ``request.metrics``.

Every request carries an object with the :class:`Metrics` methods. With no
metrics backend configured it is :class:`NullMetrics`, which drops what it is
given, so handler code never has to check whether metrics are enabled.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import ContextManager, Iterator, Protocol

__all__ = ["Metrics", "NullMetrics"]


class Metrics(Protocol):
    """
    What a handler may call on ``request.metrics``; names are dotted paths
    such as ``"myapi.logins"``.
    """

    def increment(self, name: str, value: int = 1, sample_rate: float = 1.0) -> None:
        """Add ``value`` to the counter ``name``."""

    def decrement(self, name: str, value: int = 1, sample_rate: float = 1.0) -> None:
        """Subtract ``value`` from the counter ``name``."""

    def gauge(self, name: str, value: float) -> None:
        """Set the gauge ``name`` to ``value``."""

    def timing(self, name: str, milliseconds: float, sample_rate: float = 1.0) -> None:
        """Record a duration for the timer ``name``."""

    def timer(self, name: str) -> TimerContext:
        """
        A context manager that records how long its block took::

            with request.metrics.timer("myapi.db.lookup"):
                ...
        """


TimerContext = ContextManager[None]


@contextmanager
def time_block(metrics: Metrics, name: str) -> Iterator[None]:
    """
    Time the ``with`` block and record it as ``metrics.timing(name, ...)``;
    backends use it to implement :meth:`Metrics.timer`.
    """
    start = time.perf_counter()
    try:
        yield
    finally:
        metrics.timing(name, (time.perf_counter() - start) * 1000.0)


class NullMetrics:
    """
    Metrics that go nowhere: the default when no backend is configured.
    """

    def increment(self, name: str, value: int = 1, sample_rate: float = 1.0) -> None:
        pass

    def decrement(self, name: str, value: int = 1, sample_rate: float = 1.0) -> None:
        pass

    def gauge(self, name: str, value: float) -> None:
        pass

    def timing(self, name: str, milliseconds: float, sample_rate: float = 1.0) -> None:
        pass

    def timer(self, name: str) -> TimerContext:
        return time_block(self, name)
