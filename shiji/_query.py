"""
A request's arguments from its URL: the query string, and the named groups
of the call's route, percent-decoded into ``str``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional
from urllib.parse import unquote, unquote_plus

from ._errors import ValueError, clip
from ._request import APIRequest

__all__ = ["decode_url_matches", "query_arguments"]


def query_arguments(request: APIRequest) -> Dict[str, List[Any]]:
    """
    The query string as ``{name: [value, ...]}`` with ``str`` names and
    values, as ``parse_qs`` would give with blank values kept; a name or
    value that is not percent-encoded UTF-8 is refused.
    """
    _, mark, query = request.uri.partition(b"?")
    args: Dict[str, List[Any]] = {}
    if not mark:
        return args
    # Most query strings hold nothing to unquote.
    plain = b"%" not in query and b"+" not in query
    for field in query.split(b"&"):
        if not field:
            continue
        raw_name, _, raw_value = field.partition(b"=")
        try:
            if plain:
                name = raw_name.decode("utf-8")
                value = raw_value.decode("utf-8")
            else:
                name = unquote_plus(raw_name.decode("utf-8"), errors="strict")
                value = unquote_plus(raw_value.decode("utf-8"), errors="strict")
        except UnicodeDecodeError:
            raise ValueError(
                request,
                clip(unquote_plus(raw_name.decode("utf-8", "replace"))),
                "Query arguments must be percent-encoded UTF-8.",
            ) from None
        args.setdefault(name, []).append(value)
    return args


def decode_url_matches(
    request: APIRequest, groups: Mapping[str, Optional[str]]
) -> Dict[str, str]:
    matches = {}
    for name, value in groups.items():
        if value is None:
            continue
        try:
            matches[name] = unquote(value, errors="strict")
        except UnicodeDecodeError:
            raise ValueError(
                request, name, "Path arguments must be percent-encoded UTF-8."
            ) from None
    return matches
