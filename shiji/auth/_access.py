"""
Authentication backends and access control: who is calling, and whether
they may.
"""

from __future__ import annotations

import functools
from collections.abc import Coroutine
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    List,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    Type,
)

from twisted.internet.defer import Deferred, ensureDeferred, maybeDeferred
from twisted.python.failure import Failure

from .. import _json
from .._declarations import (
    Described,
    Handler,
    NamespaceDeclaration,
    declarations,
    declare,
)
from .._errors import (
    AccessDeniedError,
    APIDefinitionError,
    APIError,
    InvalidAuthenticationError,
    ServiceUnavailableError,
)
from .._errors import ValueError as ArgumentValueError
from . import errors

__all__ = [
    "NAMESPACE_SOURCES",
    "ROLES_NAMESPACE",
    "AuthBackend",
    "access",
    "install_auth",
    "login_required",
    "namespace_source",
]

#: The namespace whose permissions :func:`login_required` reads as roles.
ROLES_NAMESPACE = "roles"

Permissions = Mapping[str, Sequence[str]]


class AuthBackend(Protocol):
    """
    Who is calling, and what they may do.

    ``authenticate`` returns (or returns a ``Deferred`` or coroutine of)
    ``{namespace: [permission, ...]}``, or ``None`` when the request carries
    no valid credentials; raising ``webapi.InvalidAuthenticationError`` means
    the same. Any other failure is a server error, never a pass. shijid makes
    one from ``[auth] auth_module``, ``auth_class`` and ``auth_args``.

    Namespaces that hold something other than a client's own records, such
    as ``"roles"`` (:data:`ROLES_NAMESPACE`), must never be named by a
    client: :func:`access` refuses them, and any a backend lists in an
    optional ``internal_namespaces`` attribute.

    An optional ``challenge(request)`` method gives the ``WWW-Authenticate``
    value of every 401 answer that sets none of its own (a ``str``, sent as
    it is: ``Bearer realm="shop"``, say); without it, 401 answers carry
    ``Cookie realm="<api_name>"``.
    """

    def authenticate(self, request: Any) -> Any:
        """The permissions of the request's caller, by namespace."""


#: The backend :func:`install_auth` installed, for routers without one.
installed_backend: Optional[AuthBackend] = None


def install_auth(backend: AuthBackend) -> None:
    """
    Install ``backend`` for every router of the process that has none of
    its own (the original Shiji's way; a router's ``auth_backend``, or
    shijid's ``[auth]`` section, is the usual one).

    :raises errors.AuthBadBackend: ``backend`` has no ``authenticate``
        method.
    """
    if not callable(getattr(backend, "authenticate", None)):
        raise errors.AuthBadBackend(
            "Supplied backend must have an authenticate(request) method."
        )
    global installed_backend
    installed_backend = backend


def _backend(request: Any) -> AuthBackend:
    """The router's backend, or the installed one; a server error without."""
    backend: Optional[AuthBackend] = request.api_router.auth_backend
    if backend is None:
        backend = installed_backend
    if backend is None:
        raise RuntimeError(
            "access control needs an auth backend: set [auth] enable_auth, "
            "auth_module and auth_class (or APIRouter(auth_backend=...))"
        )
    return backend


#: Where :func:`access` may read a namespace from: a named group of the
#: call's route, the query string, or the JSON body.
NAMESPACE_SOURCES = ("url", "query", "json")

_SOURCE_NAMES = {
    "url": "the URL path",
    "query": "the query string",
    "json": "the JSON body",
}


@functools.cache
def namespace_source(
    call: type, method_name: str, name: str, source: Optional[str] = None
) -> str:
    """
    Where the ``access`` guard of ``call.method_name`` reads the namespace
    ``name``: ``source`` if the guard names one; otherwise the one place the
    call declares ``name``: a named group of its ``routes`` (``"url"``), an
    argument of its ``json_arguments`` (``"json"``) or of its
    ``url_arguments`` (``"query"``).

    :raises APIDefinitionError: ``source`` is not one of
        :data:`NAMESPACE_SOURCES`, ``"url"`` names no group of the routes, or
        without ``source`` the call declares ``name`` in no place or in
        several.
    """
    where = f"{call.__module__}.{call.__name__}.{method_name}"
    route_groups: FrozenSet[str] = getattr(call, "route_groups", frozenset)()
    if source is not None:
        if source not in NAMESPACE_SOURCES:
            raise APIDefinitionError(
                f"{where}: auth.access(source={source!r}) must be one of "
                + ", ".join(NAMESPACE_SOURCES)
            )
        if source == "url" and name not in route_groups:
            raise APIDefinitionError(
                f"{where}: auth.access reads {name!r} from the URL path, but no "
                "route of the call has a group of that name"
            )
        return source
    declared = declarations(getattr(call, method_name))
    found = []
    if name in route_groups:
        found.append("url")
    if name in declared.url_arguments:
        found.append("query")
    if any(argument.name == name for argument in declared.json_arguments):
        found.append("json")
    if len(found) != 1:
        places = " and ".join(_SOURCE_NAMES[place] for place in found)
        raise APIDefinitionError(
            f"{where}: auth.access cannot tell where to read {name!r}: the call "
            + (f"declares it in {places}" if found else "declares it nowhere")
            + "; name the one place with source="
            + ", ".join(repr(s) for s in NAMESPACE_SOURCES)
            + " (or declare it in the routes, json_arguments or url_arguments)"
        )
    return found[0]


def _json_object(request: Any) -> Dict[str, Any]:
    """
    The request's body as a JSON object; empty if it is none (no body, not
    JSON, or JSON but no object). The body is left to be read again.
    """
    content = request.content
    if content.closed:  # the client has gone
        return {}
    content.seek(0)
    raw = content.read()
    content.seek(0)
    try:
        body = _json.loads(raw)
    except _json.JSONBodyError:
        return {}
    return body if isinstance(body, dict) else {}


def _namespace(request: Any, name: str, source: str) -> str:
    """
    The value of ``name`` in ``source``. A client that names it anywhere
    else too, or twice, is refused: a handler reading it from another place
    than the guard did would act on a namespace nobody checked.

    :raises ArgumentValueError: given more than once, or in the body but not
        a string or an integer (HTTP 409).
    :raises InvalidAuthenticationError: not given in ``source`` (HTTP 401).
    """
    in_url = name in request.url_matches
    in_query = request.args.get(name, [])
    body = _json_object(request)
    if in_url + len(in_query) + (name in body) > 1:
        raise ArgumentValueError(
            request, name, f"Must be given once, in {_SOURCE_NAMES[source]}."
        )
    if source == "url" and in_url:
        return str(request.url_matches[name])
    if source == "query" and in_query:
        return str(in_query[0])
    if source == "json" and name in body:
        value = body[name]
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ArgumentValueError(request, name, "Must be a string or an integer.")
        return str(value)
    raise InvalidAuthenticationError(request)


def _method_name(call: type, request: Any) -> str:
    """
    The name of the ``render_`` method answering ``request``'s method, as
    the router picks it: ``render_GET`` answers HEAD where there is no
    ``render_HEAD``.
    """
    name: str = "render_" + request.method.decode()
    if name == "render_HEAD" and getattr(call, name) is None:
        return "render_GET"
    return name


def _authorize(
    handler: Callable[..., Any],
    check: Callable[[Any, Any, Dict[str, List[str]]], None],
) -> Callable[..., Any]:
    """
    Wrap ``handler``: authenticate with the backend, let ``check`` refuse
    (by raising), then call the handler.
    """

    @functools.wraps(handler)
    def wrapper(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            verdict = _backend(request).authenticate(request)
        except errors.AuthBaseException as refusal:
            answer = _answer(request, refusal)
            if answer is None:
                raise
            raise answer from None
        if isinstance(verdict, Coroutine):
            verdict = ensureDeferred(verdict)

        def proceed(permissions: Optional[Permissions]) -> Any:
            if permissions is None:
                raise InvalidAuthenticationError(request)
            granted = {ns: list(perms) for ns, perms in permissions.items()}
            request.permissions = granted
            check(self, request, granted)
            return handler(self, request, *args, **kwargs)

        def refuse(failure: Failure) -> Failure:
            answer = _answer(request, failure.value)
            if answer is None:
                return failure
            raise answer

        if isinstance(verdict, Deferred):
            return verdict.addCallbacks(
                lambda result: maybeDeferred(proceed, result), refuse
            )
        return proceed(verdict)

    return wrapper


def _answer(request: Any, refusal: Optional[BaseException]) -> Optional[APIError]:
    """
    The answer to a backend's :mod:`~shiji.auth.errors` exception when it is
    the caller's (credentials, permissions) or the backend is not ready yet;
    ``None`` for any other failure (no backend, a bug): a server error.
    """
    if isinstance(refusal, errors.InvalidAuthentication):
        return InvalidAuthenticationError(request)
    if isinstance(refusal, errors.NotAuthorized):
        return AccessDeniedError(request)
    if isinstance(refusal, errors.BackendWarmingUp):
        return ServiceUnavailableError(request)
    return None


def access(
    auth_ns_var: str,
    all_required: bool = False,
    *permissions: str,
    source: Optional[str] = None,
) -> Callable[[Handler], Handler]:
    """
    Let the handler run only for callers the auth backend grants
    ``permissions`` (any of them, or all with ``all_required``; with none
    listed, any grant) in the namespace named by the request's
    ``auth_ns_var`` argument::

        @auth.access("account", True, "read", "write")
        @webapi.json_arguments([("account", str), ("amount", int)])
        def render_POST(self, request): ...

    The namespace is read from one place only: ``source`` (``"url"``, a
    named group of the route; ``"query"``; or ``"json"``, the body), or, by
    default, the one place the call declares ``auth_ns_var`` (its routes,
    ``json_arguments`` or ``url_arguments``; see :func:`namespace_source`),
    checked when the call router is built. A request naming it in another
    place too, or twice, is refused, so the value checked is the value the
    handler reads.

    Sets ``request.permissions`` (every namespace's) and
    ``request.auth_namespace``. No credentials, or no namespace where it is
    read: ``InvalidAuthenticationError`` (HTTP 401); the namespace given
    twice: ``ValueError`` (HTTP 409); not permitted, or a namespace
    internal to the backend (``"roles"``): ``AccessDeniedError`` (HTTP 403).
    """

    if not isinstance(all_required, bool):
        raise TypeError(
            "access(auth_ns_var, all_required, *permissions): all_required is "
            f"True or False, not {all_required!r}"
        )
    if source is not None and source not in NAMESPACE_SOURCES:
        raise TypeError(
            f"access(source=...) is one of {', '.join(NAMESPACE_SOURCES)}, "
            f"not {source!r}"
        )

    def check(handler_self: Any, request: Any, granted: Dict[str, List[str]]) -> None:
        call: type = type(handler_self)
        where = namespace_source(call, _method_name(call, request), auth_ns_var, source)
        namespace = _namespace(request, auth_ns_var, where)
        request.auth_namespace = namespace
        internal = getattr(_backend(request), "internal_namespaces", ())
        if namespace == ROLES_NAMESPACE or namespace in internal:
            raise AccessDeniedError(request)
        held = granted.get(namespace)
        if held is None:
            raise AccessDeniedError(request)
        if permissions:
            test = all if all_required else any
            if not test(permission in held for permission in permissions):
                raise AccessDeniedError(request)

    joined = (" and " if all_required else " or ").join(permissions)
    rule = (
        f"a caller granted {joined or 'any permission'} in the namespace "
        f"named by {auth_ns_var}"
    )
    declared = NamespaceDeclaration(auth_ns_var, source)

    def decorator(handler: Handler) -> Handler:
        return declare(
            _authorize(handler, check),
            handler,
            described=_guard_described(rule, may_deny=True, reads_namespace=True),
            access_rule=rule,
            may_deny=True,
            namespaces=(*declarations(handler).namespaces, declared),
        )

    return decorator


def _guard_described(
    rule: str, may_deny: bool, reads_namespace: bool = False
) -> Described:
    """What a guard adds to a call's documentation; one that reads a
    namespace refuses it given twice (:func:`_namespace`)."""
    errors: Tuple[Type[Exception], ...] = (
        InvalidAuthenticationError,
        ServiceUnavailableError,
    )
    if may_deny:
        errors += (AccessDeniedError,)
    if reads_namespace:
        errors += (ArgumentValueError,)
    return Described(errors=errors, requirement=rule)


def login_required(role: Optional[str] = None) -> Callable[[Handler], Handler]:
    """
    Let the handler run only for authenticated callers, and with ``role``
    only for those whose ``"roles"`` namespace (:data:`ROLES_NAMESPACE`)
    holds it. No credentials: ``InvalidAuthenticationError`` (401); missing
    role: ``AccessDeniedError`` (403).
    """

    def check(handler_self: Any, request: Any, granted: Dict[str, List[str]]) -> None:
        if role is not None and role not in granted.get(ROLES_NAMESPACE, []):
            raise AccessDeniedError(request)

    rule = "a logged-in caller" + (f" with the role {role}" if role else "")

    def decorator(handler: Handler) -> Handler:
        return declare(
            _authorize(handler, check),
            handler,
            described=_guard_described(rule, may_deny=role is not None),
            access_rule=rule,
            may_deny=role is not None,
        )

    return decorator
