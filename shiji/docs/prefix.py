"""
Where an API is served: the first path segment its ``[apis]`` regular
expression matches, as the documentation shows it.

- A literal (``myloginapi``) is the prefix ``/myloginapi``.
- An alternation of literals (``(myloginapi|login)``) is shown at its first
  alternative, with the others listed: every one is served.
- Any other expression is shown as the template ``/{api}``, with the
  expression beside it; its example is the API's name when the expression
  matches it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Tuple

__all__ = ["ServedPrefix", "default_prefix", "served_prefix"]

_LITERAL = re.compile(r"[A-Za-z0-9_.~-]+")
_ALTERNATION = re.compile(
    r"(?:\((?:\?:)?)?([A-Za-z0-9_.~-]+(?:\|[A-Za-z0-9_.~-]+)+)\)?"
)


@dataclass(frozen=True)
class ServedPrefix:
    """The first path segment an API answers on, for the documentation."""

    #: The regular expression from ``[apis]``.
    pattern: str
    #: Every segment the API answers on, first the one shown; empty when the
    #: expression is not a list of literals.
    segments: Tuple[str, ...]
    #: A segment the API answers on, for examples (``None`` if unknown).
    example: Optional[str]

    @property
    def literal(self) -> bool:
        """Whether the API answers on known segments only."""
        return bool(self.segments)

    @property
    def path(self) -> str:
        """The prefix as shown: ``/myloginapi``, or ``/{api}``."""
        return f"/{self.segments[0]}" if self.segments else "/{api}"


def served_prefix(pattern: str, api_name: str) -> ServedPrefix:
    """
    The prefix an API is served at when ``[apis]`` maps it to ``pattern``
    (matched against the whole first path segment).
    """
    if _LITERAL.fullmatch(pattern):
        return ServedPrefix(pattern, (pattern,), pattern)
    found = _ALTERNATION.fullmatch(pattern)
    if found is not None and (pattern[0] == "(") == (pattern[-1] == ")"):
        segments = tuple(found.group(1).split("|"))
        return ServedPrefix(pattern, segments, segments[0])
    try:
        matches_name = re.fullmatch(pattern, api_name) is not None
    except re.error:
        matches_name = False
    return ServedPrefix(pattern, (), api_name if matches_name else None)


def default_prefix(api_name: str) -> ServedPrefix:
    """Where an API is shown served when nothing says otherwise: at its
    name (``/mylogin_api``)."""
    return served_prefix(re.escape(api_name), api_name)
