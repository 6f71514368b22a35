"""
``paged_results``: the ``page`` and ``page_len`` query arguments, with the
original Shiji's texts.
"""

from __future__ import annotations

import functools
from typing import (
    Any,
    Callable,
    Tuple,
)

from ._declarations import (
    Described,
    Handler,
    PagingDeclaration,
    Parameter,
    declare,
)
from ._errors import (
    ValueError,
)
from ._request import APIRequest

__all__ = ["paged_results"]


_NOT_AN_INTEGER = "Argument must be an integer."


_NEGATIVE = "Argument must be 0 or greater."


#: Paging numbers beyond this are refused before they are converted (a
#: 5,000-digit number is no page, and converting it is work).
_MAX_PAGE_NUMBER = 10**18 - 1


def _paging_error(
    request: APIRequest, name: str, text: str, reason: str, expected: str
) -> ValueError:
    """A paging argument's error, in the original Shiji's words."""
    error = ValueError(
        request,
        name,
        text,
        fields=[{"field": name, "in": "query", "reason": reason, "expected": expected}],
    )
    router = request.api_router
    error.fields_in_envelope = router is not None and router.settings.field_errors
    return error


def _too_large(request: APIRequest, name: str, most: int) -> ValueError:
    return _paging_error(
        request,
        name,
        f"Argument must be {most} or less.",
        "too large",
        f"at most {most}",
    )


def _page_number(request: APIRequest, name: str, default: int, most: int) -> int:
    values = request.args.get(name)
    if not values:
        return default
    text = values[0]
    sign = text[:1] if text[:1] in ("-", "+") else ""
    digits = text[len(sign) :]
    if not (digits.isascii() and digits.isdigit()):
        raise _paging_error(request, name, _NOT_AN_INTEGER, "wrong type", "int")
    if len(digits.lstrip("0")) > len(str(_MAX_PAGE_NUMBER)):
        if sign == "-":
            raise _paging_error(request, name, _NEGATIVE, "too small", "at least 0")
        raise _too_large(request, name, most)
    number = int(text)
    if number < 0:
        raise _paging_error(request, name, _NEGATIVE, "too small", "at least 0")
    if number > most:
        raise _too_large(request, name, most)
    return number


def _paging_parameters(paging: PagingDeclaration) -> Tuple[Parameter, ...]:
    return (
        Parameter(
            "page",
            "query",
            {"type": "integer", "minimum": 0, "default": paging.default_page},
            False,
            "The zero-based page of results.",
        ),
        Parameter(
            "page_len",
            "query",
            {
                "type": "integer",
                "minimum": 0,
                "maximum": paging.max_page_len,
                "default": paging.default_page_len,
            },
            False,
            "How many results a page holds.",
        ),
    )


def paged_results(
    default_page: int = 0, default_page_len: int = 50, max_page_len: int = 100
) -> Callable[[Handler], Handler]:
    """
    Validate the paging arguments ``page`` and ``page_len`` of the query
    string, filling in defaults.

    ``page_len`` must be an integer from 0 to ``max_page_len`` and ``page``
    an integer ≥ 0 (checked in that order); otherwise ``ValueError`` (HTTP
    409) with the original Shiji's texts: ``Argument must be an integer.``,
    ``Argument must be 0 or greater.``, ``Argument must be N or less.``
    The handler then finds both as ints in ``request.args["page"][0]`` and
    ``request.args["page_len"][0]``. A ``page_len`` of 0 asks for no items
    (a count, say); what that means is the handler's to decide.

    :raises TypeError: (when applied) a default below 0, or
        ``default_page_len`` above ``max_page_len``.
    """
    if default_page < 0:
        raise TypeError(f"paged_results: default_page ({default_page}) cannot be < 0")
    if not 0 <= default_page_len <= max_page_len:
        raise TypeError(
            f"paged_results: default_page_len ({default_page_len}) must be "
            f"between 0 and max_page_len ({max_page_len})"
        )
    paging = PagingDeclaration(default_page, default_page_len, max_page_len)

    def decorator(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def wrapper(self: Any, request: APIRequest, *args: Any, **kwargs: Any) -> Any:
            page_len = _page_number(request, "page_len", default_page_len, max_page_len)
            page = _page_number(request, "page", default_page, _MAX_PAGE_NUMBER)
            request.args["page"] = [page]
            request.args["page_len"] = [page_len]
            return handler(self, request, *args, **kwargs)

        return declare(
            wrapper,
            handler,
            described=Described(
                parameters=_paging_parameters(paging), errors=(ValueError,)
            ),
            paged_results=paging,
        )

    return decorator
