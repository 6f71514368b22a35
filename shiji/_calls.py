"""
Calls: ``URLMatchJSONResource``, the base class of an API's calls, what a
call class declares (its routes and methods), and ``ListVersionsCall``.
"""

from __future__ import annotations

import functools
import re
from typing import (
    Any,
    ClassVar,
    Dict,
    FrozenSet,
    Mapping,
    Optional,
    Pattern,
    Sequence,
    Type,
    Union,
)

from twisted.web import resource

from ._errors import APIDefinitionError
from ._filters import Filter
from ._request import APIRequest

__all__ = [
    "ListVersionsCall",
    "URLMatchJSONResource",
    "allowed_methods",
    "compile_route",
    "route_patterns",
]


class URLMatchJSONResource(resource.Resource):
    """
    Base class of API calls.

    A subclass in a version's ``calls.py`` declares ``routes``, a regular
    expression (or a list of them) that must match the whole path after the
    API's segment, and one ``render_<METHOD>(self, request)`` per HTTP method
    it answers. Named groups of the matching route are available,
    percent-decoded, as ``self.url_matches`` (and ``request.url_matches``).

    A handler may return ``bytes`` or ``str`` (sent as they are), a dict,
    list or other JSON value (encoded), an ``APIError`` or ``str(error)``
    (sent as the error), ``None`` after :func:`shiji.webapi.write_json`, a
    ``Deferred`` or a coroutine of any of these; or it may raise an
    ``APIError``. An instance is made for each request.

    ``filters``, a list of ``filter(request, call_next)`` functions, run
    around every handler of the call, inside the API's and the version's
    (see :class:`~shiji.urldispatch.CallRouter`).
    """

    isLeaf = True
    #: The route(s) of this call: a regular expression or a list of them.
    routes: ClassVar[Union[str, Sequence[str], None]] = None
    #: The filters around this call's handlers, the first outermost.
    filters: ClassVar[Sequence[Filter]] = ()
    #: ``Resource`` answers HEAD with ``render_GET`` even where there is none;
    #: the router does that itself, only for calls that have one.
    render_HEAD = None  # type: ignore[assignment]

    def __init__(
        self,
        request: Optional[APIRequest] = None,
        url_matches: Optional[Mapping[str, str]] = None,
    ) -> None:
        super().__init__()
        self.request = request
        self.url_matches: Mapping[str, str] = url_matches or {}

    @classmethod
    def route_groups(cls) -> FrozenSet[str]:
        """
        The names of the named groups of the call's routes.

        :raises APIDefinitionError: ``routes`` is malformed.
        """
        call: type = cls
        return _route_groups(call)


class ListVersionsCall(URLMatchJSONResource):
    """
    The ``list_versions`` call that ``CallRouter(auto_list_versions=True)``
    adds to a version.
    """

    routes = r"list_versions/?"

    def render_GET(self, request: APIRequest) -> Dict[str, Any]:
        """
        List every version of this API, sorted as versions, and the version
        this request asked for.

        Returns ``{"all_versions": ["1.0", "2.0"], "curr_version": "1.0"}``,
        and ``"deprecated_versions"`` (version: deprecation and sunset dates,
        links) when some are deprecated.
        """
        router = request.version_router
        assert router is not None
        listing: Dict[str, Any] = {
            "all_versions": router.versions(),
            "curr_version": request.api_version,
        }
        deprecations = router.deprecations()
        if deprecations:
            listing["deprecated_versions"] = {
                key: deprecation.describe() for key, deprecation in deprecations.items()
            }
        return listing


def allowed_methods(call: Type[URLMatchJSONResource]) -> FrozenSet[str]:
    """
    The HTTP methods ``call`` answers: those it has a ``render_<METHOD>``
    for, ``HEAD`` wherever ``GET`` is, and ``OPTIONS``.
    """
    methods = {
        name[len("render_") :]
        for name in dir(call)
        if name.startswith("render_") and callable(getattr(call, name))
    }
    methods.discard("")
    if "GET" in methods:
        methods.add("HEAD")
    methods.add("OPTIONS")
    return frozenset(methods)


@functools.lru_cache(maxsize=1024)
def _route_groups(call: type) -> FrozenSet[str]:
    where = f"{call.__module__}.{call.__name__}.routes"
    return frozenset(
        name
        for pattern in route_patterns(call)
        for name in compile_route(pattern, where).groupindex
    )


def route_patterns(call: Type[URLMatchJSONResource]) -> Sequence[str]:
    routes = call.routes
    if isinstance(routes, str):
        return [routes]
    if isinstance(routes, (list, tuple)) and all(isinstance(r, str) for r in routes):
        return routes
    raise APIDefinitionError(
        f"{call.__module__}.{call.__name__}.routes must be a regular expression "
        f"string or a list of them, not {routes!r}"
    )


def compile_route(pattern: str, where: str) -> Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as e:
        raise APIDefinitionError(
            f"{where}: {pattern!r} is not a valid regular expression: {e}"
        ) from None
