"""
Filters: functions chained around a call's handler.

A filter is ``filter(request, call_next)``: a plain function, one returning
a ``Deferred``, or an ``async def``. ``call_next(request)`` runs the rest of
the chain and the handler (with its decorators) and returns a ``Deferred``
of what the handler returned, before it is encoded. Before calling it a
filter may change the request, answer itself (return a result, raise an
``APIError``); after it, change the result and the response headers.

Filters are declared on an API (its package's ``filters``), a version
(``CallRouter(calls, filters=[...])``) and a call class (its ``filters``);
they chain in that order, the API's first filter outermost. The router runs
a call's chain (see :func:`chained`) only for calls that have one.
"""

from __future__ import annotations

import inspect
from collections.abc import Coroutine
from types import ModuleType
from typing import Any, Callable, List, Sequence, Set, Tuple

from twisted.internet.defer import Deferred, ensureDeferred, fail, succeed
from twisted.python.failure import Failure

from ._errors import APIDefinitionError
from ._request import APIRequest

__all__ = [
    "CallNext",
    "Filter",
    "call_chain",
    "chained",
    "checked_filters",
    "filter_name",
]

#: What a filter is given to go on: ``call_next(request)``, a ``Deferred``
#: of the handler's result.
CallNext = Callable[[APIRequest], "Deferred[Any]"]

#: A filter: ``filter(request, call_next)``, returning a result, a
#: ``Deferred`` or a coroutine of one.
Filter = Callable[[APIRequest, CallNext], object]


def filter_name(value: Any) -> str:
    """
    How documentation and errors name a filter: its qualified name
    (``require_api_key``, ``Keys.check``), less the function it was made
    in, if any.
    """
    for attribute in ("__qualname__", "__name__"):
        name = getattr(value, attribute, None)
        if isinstance(name, str):
            return name.rpartition("<locals>.")[2]
    return type(value).__qualname__


def checked_filters(value: Any, where: str) -> Tuple[Filter, ...]:
    """
    The filters ``value`` declares (``None`` for none), checked; a module
    (an API package's submodule named ``filters``) declares none.

    :param where: what declares them, for the error: ``"myapi.filters"``.
    :raises APIDefinitionError: ``value`` is not a list or tuple, or holds
        something that cannot be called as ``filter(request, call_next)``.
    """
    if value is None or isinstance(value, ModuleType):
        # A package's own module named filters (an API written before
        # filters were, say) is not a declaration.
        return ()
    if not isinstance(value, (list, tuple)):
        raise APIDefinitionError(
            f"{where} must be a list of filter(request, call_next) functions, "
            f"not {type(value).__name__}"
        )
    for index, item in enumerate(value):
        here = f"{where}[{index}]"
        if not callable(item):
            raise APIDefinitionError(
                f"{here} is {type(item).__name__}, not a filter(request, call_next)"
            )
        try:
            signature = inspect.signature(item)
        except (TypeError, ValueError):
            continue  # nothing to check it against
        try:
            signature.bind(None, None)
        except TypeError:
            raise APIDefinitionError(
                f"{here}: {filter_name(item)}{signature} cannot be called as "
                "filter(request, call_next)"
            ) from None
    return tuple(value)


def _as_deferred(result: object) -> Deferred[Any]:
    if isinstance(result, Deferred):
        return result
    if isinstance(result, Coroutine):
        return ensureDeferred(result)
    return succeed(result)


class _CallNext:
    """
    The ``call_next`` a filter is given: runs the next filter, or the
    handler, once.
    """

    __slots__ = ("_called", "_filters", "_handler", "_index")

    def __init__(
        self,
        filters: Sequence[Filter],
        handler: Callable[[APIRequest], object],
        index: int,
    ) -> None:
        self._filters = filters
        self._handler = handler
        self._index = index
        self._called = False

    def __call__(self, request: APIRequest) -> Deferred[Any]:
        if self._called:
            caller = filter_name(self._filters[self._index - 1])
            raise RuntimeError(
                f"the filter {caller} called call_next twice; it runs the "
                "rest of the chain once per request"
            )
        self._called = True
        index = self._index
        try:
            if index < len(self._filters):
                following = _CallNext(self._filters, self._handler, index + 1)
                result = self._filters[index](request, following)
            else:
                result = self._handler(request)
        except Exception:
            return fail()
        return _as_deferred(result)


def _settled(deferred: Deferred[Any]) -> object:
    """
    What ``deferred`` holds if it has fired, raised if a failure; else
    ``deferred`` itself. A chain that ran at once is answered at once, as
    a handler's plain result is, without a deadline to set and cancel.
    """
    box: List[object] = []

    def keep(value: object) -> object:
        box.append(value)
        return value

    deferred.addBoth(keep)
    if not box:
        return deferred
    value = box[0]
    if isinstance(value, Failure):
        # Raised here instead, to be answered as the handler's would be.
        deferred.addErrback(lambda reason: None)
        value.raiseException()
    return value


def call_chain(*levels: Sequence[Filter]) -> Tuple[Filter, ...]:
    """
    The filters of a call, from its levels (API, version, call), outermost
    first; a filter declared at several levels runs once, at the outermost
    (a session filter running twice would save the session twice).
    """
    # By identity: a filter need not be hashable, and two that compare
    # equal are still two.
    chain: List[Filter] = []
    seen: Set[int] = set()
    for level in levels:
        for found in level:
            if id(found) not in seen:
                seen.add(id(found))
                chain.append(found)
    return tuple(chain)


def chained(
    filters: Sequence[Filter], handler: Callable[[APIRequest], object]
) -> Callable[[APIRequest], object]:
    """
    ``handler`` behind ``filters`` (the first outermost): a handler that
    calls the first filter, whose result, ``Deferred``, coroutine or
    exception is answered as the handler's would be.
    """
    first = filters[0]

    def run(request: APIRequest) -> object:
        result = first(request, _CallNext(filters, handler, 1))
        if not isinstance(result, Deferred):
            if not isinstance(result, Coroutine):
                return result
            result = ensureDeferred(result)
        return _settled(result) if result.called else result

    return run
