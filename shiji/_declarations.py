"""
What the decorators of a call's handler declare: its arguments, paging and
guards, kept on the handler for the router's checks and the documentation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple, TypeVar, cast

__all__ = [
    "CallDeclarations",
    "Handler",
    "JSONArgument",
    "NamespaceDeclaration",
    "PagingDeclaration",
    "declarations",
    "declare",
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


def declarations(handler: Callable[..., Any]) -> CallDeclarations:
    """
    What the Shiji decorators on ``handler`` declare.
    """
    found: Optional[CallDeclarations] = getattr(handler, "_shiji_declarations", None)
    return found if found is not None else CallDeclarations()


def declare(wrapper: Callable[..., Any], handler: Handler, **changes: Any) -> Handler:
    """
    Give ``wrapper``, a decorator's wrapper of ``handler``, the declarations
    of ``handler`` with ``changes`` (fields of :class:`CallDeclarations`),
    and return it as what it stands for: the handler.
    """
    # functools.wraps copied the inner handler's declarations to the wrapper;
    # the wrapper gets a new object holding those and its own.
    declared = dataclasses.replace(declarations(handler), **changes)
    wrapper._shiji_declarations = declared  # type: ignore[attr-defined]
    return cast(Handler, wrapper)
