"""
What the decorators of a call's handler declare: its arguments, paging,
guards and answers, kept on the handler for the router's checks and the
documentation.

Every decorator describes itself in the same terms, a :class:`Described`
(the parameters, request body, responses, errors and requirements it adds),
so the documentation reads any decorator, Shiji's or an API's own, without
knowing it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple, Type, TypeVar, cast

from ._errors import APIError

__all__ = [
    "CallCheck",
    "CallDeclarations",
    "Described",
    "Handler",
    "JSONArgument",
    "NamespaceDeclaration",
    "PagingDeclaration",
    "Parameter",
    "RequestBody",
    "Response",
    "declarations",
    "declare",
    "raises",
]

Handler = TypeVar("Handler", bound=Callable[..., Any])


@dataclass(frozen=True)
class JSONArgument:
    """
    One argument declared by :func:`shiji.webapi.json_arguments`.
    """

    name: str
    types: Tuple[type, ...]
    optional: bool

    @property
    def type_names(self) -> str:
        """The accepted types as written in error messages: ``int or str``."""
        return " or ".join(t.__name__ for t in self.types)


@dataclass(frozen=True)
class NamespaceDeclaration:
    """
    The namespace argument :func:`shiji.auth.access` checks: its name, and
    the one place it is read from (``"url"``, ``"query"`` or ``"json"``),
    or ``None`` when the call's other declarations tell.
    """

    name: str
    source: Optional[str]


@dataclass(frozen=True)
class PagingDeclaration:
    """
    The paging bounds declared by :func:`shiji.webapi.paged_results`.
    """

    default_page: int
    default_page_len: int
    max_page_len: int


@dataclass(frozen=True)
class Parameter:
    """
    A parameter a decorator declares, outside the body.

    :param location: ``"path"``, ``"query"`` or ``"header"``.
    :param schema: its JSON Schema (type, rules, default).
    """

    name: str
    location: str
    schema: Dict[str, Any]
    required: bool
    description: str = ""


@dataclass(frozen=True)
class RequestBody:
    """The request body a decorator declares: its media type and schema."""

    content_type: str
    schema: Dict[str, Any]
    description: str = ""


@dataclass(frozen=True)
class Response:
    """
    An answer a decorator declares: its status and the JSON Schema of its
    body (``None`` for no body).
    """

    status: int
    schema: Optional[Dict[str, Any]]
    description: str = ""


@dataclass(frozen=True)
class Described:
    """
    What one decorator adds to a call, as the documentation shows it.

    :param parameters: path, query and header parameters.
    :param body: the request body, if the decorator reads one.
    :param responses: the answers it declares.
    :param errors: the ``APIError`` classes it may answer with.
    :param security: the OpenAPI security schemes it requires (``"basic"``).
    :param requirement: what the caller must be, in words (``"a logged-in
        user"``). A requirement that names no ``security`` is the auth
        backend's to check, from the credentials the API's ``auth_scheme``
        describes (as :func:`shiji.auth.login_required` and
        :func:`shiji.auth.access` check it).
    :param handler_errors: ``errors`` are every error the handler itself
        raises (as :func:`raises` declares them): the documentation then
        lists none of the other errors of the API for the call.
    """

    parameters: Tuple[Parameter, ...] = ()
    body: Optional[RequestBody] = None
    responses: Tuple[Response, ...] = ()
    errors: Tuple[Type[Exception], ...] = ()
    security: Tuple[str, ...] = ()
    requirement: str = ""
    handler_errors: bool = False


#: A check of a declaration against the call class it is on, run when the
#: call's router is built: ``check(call_class, "render_POST")`` raises
#: ``APIDefinitionError`` if the declaration cannot hold there.
CallCheck = Callable[[type, str], None]


@dataclass(frozen=True)
class CallDeclarations:
    """
    Everything the decorators of one handler declare.
    """

    json_arguments: Tuple[JSONArgument, ...] = ()
    json_content_type: Optional[str] = None
    url_arguments: Tuple[str, ...] = ()
    paged_results: Optional[PagingDeclaration] = None
    http_basic_realm: Optional[str] = None
    #: What :func:`shiji.auth.access` or :func:`shiji.auth.login_required`
    #: asks of the caller, in words; ``None`` if neither guards the call.
    access_rule: Optional[str] = None
    #: The guard may answer 403 (a role or permission is required).
    may_deny: bool = False
    #: The namespaces :func:`shiji.auth.access` guards declare.
    namespaces: Tuple[NamespaceDeclaration, ...] = ()
    #: The answers ``webapi.returns`` declares: ``(status, check)`` pairs,
    #: where the check is the compiled schema of the body (``None``: none).
    returns: Tuple[Tuple[int, Any], ...] = ()
    #: What each decorator adds, innermost first.
    described: Tuple[Described, ...] = ()
    #: Checks against the call class, run when its router is built.
    call_checks: Tuple[CallCheck, ...] = ()


def declarations(handler: Callable[..., Any]) -> CallDeclarations:
    """
    What the Shiji decorators on ``handler`` declare.
    """
    found: Optional[CallDeclarations] = getattr(handler, "_shiji_declarations", None)
    return found if found is not None else CallDeclarations()


def declare(
    wrapper: Callable[..., Any],
    handler: Handler,
    *,
    described: Optional[Described] = None,
    call_check: Optional[CallCheck] = None,
    **changes: Any,
) -> Handler:
    """
    Give ``wrapper``, a decorator's wrapper of ``handler``, the declarations
    of ``handler`` with ``changes`` (fields of :class:`CallDeclarations`),
    what the decorator adds for the documentation (``described``) and its
    check against the call class (``call_check``), and return it as what it
    stands for: the handler.
    """
    # functools.wraps copied the inner handler's declarations to the wrapper;
    # the wrapper gets a new object holding those and its own.
    inner = declarations(handler)
    if described is not None:
        changes["described"] = (*inner.described, described)
    if call_check is not None:
        changes["call_checks"] = (*inner.call_checks, call_check)
    declared = dataclasses.replace(inner, **changes)
    wrapper._shiji_declarations = declared  # type: ignore[attr-defined]
    return cast(Handler, wrapper)


def raises(*errors: Type[APIError]) -> Callable[[Handler], Handler]:
    """
    Declare the errors the handler itself raises (or returns), for the
    documentation::

        @webapi.raises(LoginFailedError, TooManyAttemptsError)
        @webapi.json_arguments(CREDENTIALS)
        def render_POST(self, request): ...

    The call's documentation then lists these, with what its other
    decorators declare, instead of every error its version defines. Several
    ``raises`` add up; ``raises()`` says the handler raises none. Nothing
    is checked or wrapped when a request is served.

    :raises TypeError: one of ``errors`` is not an ``APIError`` subclass.
    """
    for error in errors:
        if not (isinstance(error, type) and issubclass(error, APIError)):
            raise TypeError(f"raises() takes APIError subclasses, not {error!r}")
    described = Described(errors=tuple(errors), handler_errors=True)

    def decorator(handler: Handler) -> Handler:
        # The handler is its own wrapper: the declaration costs no call.
        return declare(handler, handler, described=described)

    return decorator
