"""
Routing: from a request to the API call that answers it, in three steps.

1. :class:`APIRouter` matches the first path segment against each API's URL
   regular expression (a full match, in the order given).
2. The API's :class:`VersionRouter` matches the version named in the version
   header (``X-API-Version: myapi-1.0+prod``) against each version's regular
   expression (a full match, in declaration order: the first that matches
   wins, so list specific patterns before broad ones such as ``r"1\\..*"``).
3. The version's :class:`CallRouter` matches the rest of the path against the
   ``routes`` of its :class:`URLMatchJSONResource` subclasses (a full match,
   in the order the classes appear in the calls module), and the call's
   ``render_<METHOD>`` answers, behind the filters of the API, the version
   and the call, if any declare some (see :class:`CallRouter`).

Routers are built once, when the API packages are imported, and are never
changed while serving: everything a request learns on its way is stored on
the request.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from types import ModuleType
from typing import (
    Any,
    Dict,
    FrozenSet,
    Iterable,
    List,
    Mapping,
    Optional,
    Pattern,
    Sequence,
    Set,
    Tuple,
    Type,
    Union,
    cast,
)
from urllib.parse import unquote

from twisted.python.failure import Failure
from twisted.web import resource
from twisted.web.iweb import IRequest
from twisted.web.server import NOT_DONE_YET

from . import auth
from ._calls import (
    ListVersionsCall,
    URLMatchJSONResource,
    allowed_methods,
    compile_route,
    route_patterns,
)
from ._cors import CORSPolicy
from ._declarations import declarations
from ._errors import (
    APIDefinitionError,
    APIError,
    APIVersionGoneError,
    MethodNotAllowedError,
    UnknownAPICallError,
    UnknownAPIError,
    UnknownAPIVersionError,
    clip,
)
from ._filters import Filter, call_chain, chained, checked_filters
from ._lifecycle import Deprecation
from ._query import decode_url_matches, query_arguments
from ._reactor import global_reactor
from ._request import APIRequest
from ._response import render_call, write_error, write_failure
from ._settings import DEFAULT_SETTINGS, Settings
from ._storage_memory import MemoryStore
from ._version_header import VersionHeader, version_and_mode
from .auth import AuthBackend, CookieSigner, namespace_source
from .auth._challenge import challenge
from .metrics import Metrics, NullMetrics
from .storage import Store

__all__ = [
    "APIDefinitionError",
    "APIRouter",
    "CallRouter",
    "Deprecation",
    "ListVersionsCall",
    "URLMatchJSONResource",
    "VersionHeader",
    "VersionRouter",
    "version_sort_key",
]


def version_sort_key(version: str) -> Tuple[Tuple[int, int, str], ...]:
    """
    Sort key that orders version strings as versions: ``"2.0"`` before
    ``"10.0"``, numeric parts before textual ones.
    """
    return tuple(
        (0, int(part), "") if part.isascii() and part.isdigit() else (1, 0, part)
        for part in version.split(".")
    )


class CallRouter:
    """
    Routes paths within one API version to its calls.

    :param calls: the version's calls module; every
        :class:`URLMatchJSONResource` subclass in it with ``routes`` is
        installed, in the order the module defines (or imports) them.
    :param auto_list_versions: also install :class:`ListVersionsCall` (after
        the module's own calls).
    :param filters: the version's filters, ``filter(request, call_next)``
        functions run around every call of the version: inside the API's
        (its package's ``filters``), outside the call's (its class's
        ``filters``). They run once routing has chosen the call and its
        handler (``request.api_call``, ``url_matches`` and the version are
        set), before the handler's decorators; ``call_next(request)`` runs
        the rest of the chain and returns a ``Deferred`` of the handler's
        result, before encoding. Refusals of routing (an unknown API,
        version or call, a method the call lacks, a version gone) and
        ``OPTIONS`` are answered without them.
    :raises APIDefinitionError: a call's ``routes`` is not a string or list
        of strings, or is not a valid regular expression; the version's or
        a call's ``filters`` is not a list of ``filter(request,
        call_next)`` callables.
    """

    def __init__(
        self,
        calls: ModuleType,
        auto_list_versions: bool = False,
        filters: Optional[Sequence[Filter]] = None,
    ) -> None:
        self.calls_module = calls
        where = getattr(calls, "__name__", repr(calls))
        #: The version's filters, the first outermost.
        self.filters: Tuple[Filter, ...] = checked_filters(
            filters, f"CallRouter({where}, filters=...)"
        )
        found: List[Type[URLMatchJSONResource]] = []
        for value in vars(calls).values():
            if (
                isinstance(value, type)
                and issubclass(value, URLMatchJSONResource)
                and value.routes
                and value not in found
            ):
                found.append(value)
        if auto_list_versions and ListVersionsCall not in found:
            found.append(ListVersionsCall)
        self.calls: Tuple[Type[URLMatchJSONResource], ...] = tuple(found)
        self._routes: List[Tuple[Pattern[str], Type[URLMatchJSONResource]]] = [
            (compile_route(pattern, f"{calls.__name__}.{call.__name__}.routes"), call)
            for call in found
            for pattern in route_patterns(call)
        ]
        self._allowed = {call: allowed_methods(call) for call in found}
        # The version's filters and the call's, for the calls that have any.
        self._filters: Dict[Type[URLMatchJSONResource], Tuple[Filter, ...]] = {}
        for call in found:
            _guard_namespaces(call)
            own = checked_filters(
                call.filters, f"{call.__module__}.{call.__name__}.filters"
            )
            if self.filters or own:
                self._filters[call] = self.filters + own

    def match(
        self, path: str
    ) -> Optional[Tuple[Type[URLMatchJSONResource], Dict[str, Optional[str]]]]:
        """
        Find the call whose route matches the whole of ``path``.

        :returns: the call class and the route's named groups (not yet
            percent-decoded), or ``None``.
        """
        for pattern, call in self._routes:
            found = pattern.fullmatch(path)
            if found is not None:
                return call, found.groupdict()
        return None

    def allowed_methods(self, call: Type[URLMatchJSONResource]) -> FrozenSet[str]:
        """
        The HTTP methods ``call`` answers (see :func:`allowed_methods`).
        """
        return self._allowed[call]

    def filters_of(self, call: Type[URLMatchJSONResource]) -> Tuple[Filter, ...]:
        """
        The filters around ``call`` in this version, the first outermost:
        the version's, then the call's (the API's go around these).
        """
        return self._filters.get(call, ())

    @property
    def route_map(self) -> List[Tuple[Pattern[str], Type[URLMatchJSONResource]]]:
        """
        The installed routes, in the order they are tried: ``(compiled
        route, call class)`` pairs, one per route of each call (a copy).
        """
        return list(self._routes)


def _guard_namespaces(call: Type[URLMatchJSONResource]) -> None:
    """
    Check that each ``auth.access`` guard of ``call`` knows where to read
    its namespace, and every other declaration of its handlers holds on
    it, so that a call that cannot be served stops start-up.
    """
    owner: type = call
    for method in sorted(allowed_methods(call)):
        handler = getattr(call, "render_" + method, None)
        if handler is None:
            continue
        declared = declarations(handler)
        for namespace in declared.namespaces:
            namespace_source(
                owner, "render_" + method, namespace.name, namespace.source
            )
        for check in declared.call_checks:
            check(owner, "render_" + method)


@dataclass(frozen=True)
class ResolvedVersion:
    """One version of an API, as :meth:`VersionRouter.resolve` finds it."""

    pattern: Pattern[str]
    key: str
    call_router: CallRouter
    deprecation: Optional[Deprecation]
    #: The headers announcing the deprecation, computed once.
    headers: List[Tuple[bytes, List[bytes]]]


class VersionRouter:
    """
    Routes a version string to one of an API's versions.

    :param api_versions: ``{"1.0": (r"1\\.0", v1_0), ...}``: for each
        version, the regular expression that header versions must fully match
        and the version package, which must have a ``call_router`` and may
        have a ``deprecation`` (a :class:`Deprecation`). Patterns are tried
        in the order of the mapping.
    :raises APIDefinitionError: an entry is malformed.
    """

    def __init__(self, api_versions: Mapping[str, Tuple[str, ModuleType]]) -> None:
        self.api_versions: Dict[str, Tuple[str, ModuleType]] = dict(api_versions)
        self._routes: List[ResolvedVersion] = []
        for key, entry in self.api_versions.items():
            where = f"api_versions[{key!r}]"
            if not (isinstance(entry, tuple) and len(entry) == 2):
                raise APIDefinitionError(
                    f"{where} must be a (version_regex, version_module) tuple"
                )
            pattern, module = entry
            if not isinstance(pattern, str):
                raise APIDefinitionError(f"{where}: the version regex must be a string")
            call_router = getattr(module, "call_router", None)
            if not isinstance(call_router, CallRouter):
                raise APIDefinitionError(
                    f"{where}: {getattr(module, '__name__', module)!r} has no "
                    "call_router = urldispatch.CallRouter(calls)"
                )
            deprecation = getattr(module, "deprecation", None)
            if deprecation is not None and not isinstance(deprecation, Deprecation):
                raise APIDefinitionError(
                    f"{where}: deprecation must be a urldispatch.Deprecation"
                )
            self._routes.append(
                ResolvedVersion(
                    compile_route(pattern, where),
                    key,
                    call_router,
                    deprecation,
                    deprecation.headers() if deprecation is not None else [],
                )
            )

    def resolve(self, version: str) -> Optional[ResolvedVersion]:
        """
        The first version whose pattern fully matches ``version``, or
        ``None``.
        """
        for route in self._routes:
            if route.pattern.fullmatch(version) is not None:
                return route
        return None

    @property
    def version_map(self) -> Dict[str, Tuple[Pattern[str], ModuleType]]:
        """
        The versions, as the original Shiji kept them: ``{version key:
        (compiled version regex, version package)}`` (a copy).
        """
        return {
            route.key: (route.pattern, self.api_versions[route.key][1])
            for route in self._routes
        }

    def get_version_map(self) -> Dict[str, Tuple[Pattern[str], ModuleType]]:
        """The :attr:`version_map` (the original Shiji's accessor)."""
        return self.version_map

    def deprecations(self) -> Dict[str, Deprecation]:
        """The deprecated versions' :class:`Deprecation`, by version key."""
        return {r.key: r.deprecation for r in self._routes if r.deprecation is not None}

    def versions(self) -> List[str]:
        """
        The keys of ``api_versions``, sorted as versions.
        """
        return sorted(self.api_versions, key=version_sort_key)

    def call_routers(self) -> List[CallRouter]:
        """
        Every version's call router, in declaration order.
        """
        return [route.call_router for route in self._routes]


RouteMap = Union[Mapping[str, ModuleType], Iterable[Tuple[str, ModuleType]]]


class APIRouter(resource.Resource):
    """
    The root resource serving a set of API packages.

    :param route_map: ``{url_regex: api_package}``, or a sequence of such
        pairs; each package has ``api_name``, ``api_versions`` and
        ``version_router``, and may have ``filters``: a list of
        ``filter(request, call_next)`` functions run around every call of
        the API, outside the version's and the call's (see
        :class:`CallRouter`). The first segment of a request's path must
        fully match a URL regex; they are tried in order.
    :param config: every API's validated configuration, keyed by API name;
        handlers see it as ``request.api_config``.
    :param cross_origin_domains: origins allowed to make cross-origin
        requests: ``"*"`` for any (never with credentials), or a list (or a
        string separated by commas or spaces) of origins such as
        ``"https://app.example.com"``, which are echoed back with
        ``Access-Control-Allow-Credentials: true``.
    :param inhibit_http_caching: send ``Cache-Control: no-cache`` and
        ``Pragma: no-cache`` with every response.
    :param settings: how to serve (the :class:`~shiji._settings.Settings`
        shijid makes from its configuration); the defaults otherwise.
    :param metrics: where ``request.metrics`` ships metrics.
    :param auth_backend: what ``auth.access`` and ``auth.login_required``
        ask who the caller is (see :class:`shiji.auth.AuthBackend`).
    :param store: the shared store handlers find as ``request.store`` and
        sessions are kept in (see :mod:`shiji.storage`); this process's
        memory by default.
    :param clock: what tells the time of sessions; the reactor by default.
    :param options: settings to change, by name: ``version_header``,
        ``version_in_query`` (take the version from the query string when
        the header is absent; off by default, since a browser sends a
        cross-site request without a preflight only when it carries no
        custom header, so a version the query string can name lets any site
        send such requests: CSRF), ``strict_charset``, ``server_ident``,
        ``request_timeout`` (seconds a call's ``Deferred`` or coroutine may
        run before it is cancelled with ``RequestTimeoutError``, HTTP 503;
        ``None`` for no limit), ``cookie_secrets`` and ``cookie_secure``.
    :raises APIDefinitionError: an API package lacks what routing needs, or
        its ``filters`` is not a list of ``filter(request, call_next)``
        callables.
    :raises ValueError: ``cross_origin_domains`` names something that is
        not an origin.
    :raises TypeError: an option that is not a setting.
    """

    isLeaf = True

    def __init__(
        self,
        route_map: RouteMap,
        config: Optional[Mapping[str, Any]] = None,
        cross_origin_domains: Union[str, Sequence[str], None] = None,
        inhibit_http_caching: Optional[bool] = None,
        *,
        settings: Optional[Settings] = None,
        metrics: Optional[Metrics] = None,
        auth_backend: Optional[AuthBackend] = None,
        store: Optional[Store] = None,
        clock: Any = None,
        **options: Any,
    ) -> None:
        super().__init__()
        if cross_origin_domains is not None:
            options["cross_origin_domains"] = cross_origin_domains
        if inhibit_http_caching is not None:
            options["inhibit_http_caching"] = inhibit_http_caching
        settings = settings if settings is not None else DEFAULT_SETTINGS
        if options:
            settings = settings.replace(**options)
        #: How this router serves.
        self.settings = settings
        pairs = route_map.items() if isinstance(route_map, Mapping) else route_map
        self.apis: List[Tuple[Pattern[str], ModuleType]] = [
            (
                compile_route(regex, f"the URL regex of {_api_label(api)}"),
                _checked_api(api),
            )
            for regex, api in pairs
        ]
        # The whole chain of each call that has one, by API, version and
        # call; empty when nothing declares filters, so that requests pay
        # nothing for them.
        self._chains: Dict[
            Tuple[ModuleType, CallRouter, Type[URLMatchJSONResource]],
            Tuple[Filter, ...],
        ] = {}
        for _, api in self.apis:
            outer = checked_filters(
                getattr(api, "filters", None),
                f"{getattr(api, '__name__', api)}.filters",
            )
            for call_router in api.version_router.call_routers():
                for call in call_router.calls:
                    chain = call_chain(outer, call_router.filters_of(call))
                    if chain:
                        self._chains[(api, call_router, call)] = chain
        self.config: Mapping[str, Any] = dict(config or {})
        self.version_header = settings.version_header
        self.strict_charset = settings.strict_charset
        self.metrics: Metrics = metrics if metrics is not None else NullMetrics()
        self.request_timeout = settings.request_timeout
        self.version_in_query = settings.version_in_query
        secrets = settings.cookie_secrets
        self.cookie_signer = CookieSigner(secrets) if secrets is not None else None
        self.cookie_secure = settings.cookie_secure
        self.auth_backend = auth_backend
        self._clock = clock
        #: The shared store (see :mod:`shiji.storage`).
        self.store: Store = store if store is not None else MemoryStore(clock)
        self._version_header = settings.version_header.lower().encode("ascii")
        self._cors = CORSPolicy.build(
            settings.cross_origin_domains, settings.version_header
        )
        # The site writes the Server header on every answer.
        self._fixed_headers: List[Tuple[bytes, bytes]] = (
            [(b"cache-control", b"no-cache"), (b"pragma", b"no-cache")]
            if settings.inhibit_http_caching
            else []
        )

    def uses_filter(self, filter_function: Filter) -> bool:
        """Whether some call of these APIs runs behind ``filter_function``."""
        return any(filter_function in chain for chain in self._chains.values())

    @property
    def clock(self) -> Any:
        """What tells the time of sessions: the reactor unless told otherwise."""
        return self._clock if self._clock is not None else global_reactor()

    @property
    def route_map(self) -> List[Tuple[Pattern[str], ModuleType]]:
        """
        The APIs, in the order they are tried: ``(compiled URL regex, API
        package)`` pairs (a copy).
        """
        return list(self.apis)

    def get_route_map(self) -> List[Tuple[Pattern[str], ModuleType]]:
        """The :attr:`route_map` (the original Shiji's accessor)."""
        return self.route_map

    def challenge(self, request: APIRequest) -> bytes:
        """
        The ``WWW-Authenticate`` value of a 401 answer to ``request`` that
        sets none: what the auth backend's optional ``challenge(request)``
        returns (the router's ``auth_backend``, else the one
        :func:`shiji.auth.install_auth` installed), or
        ``Cookie realm="<api_name>"``. A backend's challenge that fails, or
        is not a header value, is logged and the default sent.
        """
        backend = self.auth_backend
        if backend is None:
            backend = auth.auth_backend
        return challenge(request, backend)

    def render(self, request: IRequest) -> int:
        """
        Answer ``request``; the response is always written by Shiji, so this
        returns ``NOT_DONE_YET``.
        """
        api_request = cast(APIRequest, request)
        try:
            for name, value in self._fixed_headers:
                api_request.set_raw_header(name, value)
            if self._cors is not None:
                self._cors.apply(api_request)
            self._dispatch(api_request)
        except APIError as error:
            write_error(api_request, error)
        except Exception:
            write_failure(api_request, Failure())
        return NOT_DONE_YET

    def _dispatch(self, request: APIRequest) -> None:
        try:
            path = request.path.decode("utf-8")
        except UnicodeDecodeError:
            raise UnknownAPIError(
                request, clip(request.path.decode("utf-8", "replace"))
            ) from None
        segment, _, call_path = path[1:].partition("/")
        api = self._find_api(unquote(segment))
        if api is None:
            raise UnknownAPIError(request, clip(unquote(segment)))

        request.api_name = api.api_name
        request.api_config = self.config
        request.metrics = self.metrics
        request.api_router = self
        version_router: VersionRouter = api.version_router
        request.version_router = version_router
        request.args = query_arguments(request)

        if request.method == b"OPTIONS":
            self._answer_options(request, version_router, call_path)
            return

        call_router = self._route_version(request, api.api_name, version_router)
        found = call_router.match(call_path)
        if found is None:
            raise UnknownAPICallError(request, clip(unquote(call_path)))
        call_class, groups = found
        url_matches = decode_url_matches(request, groups)
        request.url_matches = url_matches
        request.api_call = call_class.__name__
        call = call_class(request, url_matches)

        method = request.method.decode("ascii", "replace")
        handler = getattr(call, "render_" + method, None)
        if handler is None and method == "HEAD":
            handler = getattr(call, "render_GET", None)
        if handler is None:
            error = MethodNotAllowedError(request, clip(method))
            error.headers["Allow"] = ", ".join(
                sorted(call_router.allowed_methods(call_class))
            )
            raise error
        if self._chains:
            chain = self._chains.get((api, call_router, call_class))
            if chain is not None:
                handler = chained(chain, handler)
        render_call(request, handler, self.request_timeout)

    def _find_api(self, segment: str) -> Optional[ModuleType]:
        for pattern, api in self.apis:
            if pattern.fullmatch(segment) is not None:
                return api
        return None

    def _route_version(
        self, request: APIRequest, api_name: str, version_router: VersionRouter
    ) -> CallRouter:
        raw = request.header_values(self._version_header)
        if raw:
            value = raw[0].decode("utf-8", "replace")
        elif self.version_in_query:
            value = request.args.get(self.version_header, [""])[0]
        else:
            value = ""
        asked = version_and_mode(value, api_name)
        resolved = None
        if asked is not None:
            version, mode = asked
            resolved = version_router.resolve(version)
        if resolved is None:
            raise UnknownAPIVersionError(request, clip(value))
        request.api_version = version
        request.version_key = resolved.key
        request.api_mode = mode
        deprecation = resolved.deprecation
        if deprecation is not None:
            for name, values in resolved.headers:
                for header_value in values:
                    request.add_header(name, header_value)
            if deprecation.is_gone(datetime.datetime.now(datetime.timezone.utc)):
                sunset = deprecation.sunset_at
                assert sunset is not None
                raise APIVersionGoneError(
                    request, clip(version), sunset.date().isoformat()
                )
        return resolved.call_router

    def _answer_options(
        self, request: APIRequest, version_router: VersionRouter, call_path: str
    ) -> None:
        methods: Set[str] = set()
        for call_router in version_router.call_routers():
            found = call_router.match(call_path)
            if found is not None:
                methods |= call_router.allowed_methods(found[0])
        if not methods:
            raise UnknownAPICallError(request, clip(unquote(call_path)))
        allow = ", ".join(sorted(methods)).encode("ascii")
        request.setResponseCode(204)
        request.setHeader(b"allow", allow)
        if self._cors is not None:
            self._cors.answer_preflight(request, allow)
        request.finish()


def _api_label(api: object) -> str:
    return repr(getattr(api, "__name__", api))


def _checked_api(api: Any) -> ModuleType:
    for name in ("api_name", "api_versions", "version_router"):
        if not hasattr(api, name):
            raise APIDefinitionError(
                f"API package {_api_label(api)} has no {name}; an API package "
                "defines api_name, api_versions and version_router"
            )
    if not isinstance(api.api_name, str) or not api.api_name:
        raise APIDefinitionError(
            f"{_api_label(api)}.api_name must be a non-empty string"
        )
    if not isinstance(api.version_router, VersionRouter):
        raise APIDefinitionError(
            f"{_api_label(api)}.version_router must be a urldispatch.VersionRouter"
        )
    return cast(ModuleType, api)
