r"""
Field errors: which field of a request failed its declaration, why, and
what would have been accepted, as clients receive them.

Checks raise :class:`Invalid` holding :class:`FieldFailure`\ s whose paths
are relative to the value checked; containers prefix their key on the way
up (:meth:`Invalid.under`), so a check needs no path while it succeeds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import (
    Dict,
    List,
    Optional,
    Tuple,
    Union,
)
from urllib.parse import quote

__all__ = [
    "MAX_FAILURES",
    "REASONS",
    "FieldError",
    "FieldFailure",
    "Invalid",
    "a_or_an",
    "fail",
    "field_path",
    "wrong_type",
]


Path = Tuple[Union[str, int], ...]


#: A value stops being checked once this many of its fields have failed,
#: and an error lists no more than this many: a client sending a million
#: wrong items learns of the first hundred.
MAX_FAILURES = 100


#: The reasons a field can fail, as clients see them in ``reason``.
REASONS = (
    "missing",
    "wrong type",
    "too small",
    "too large",
    "too short",
    "too long",
    "not allowed",
    "no match",
    "unexpected",
    "invalid",
)


def field_path(path: Path) -> str:
    """``("client", "tags", 2)`` as clients read it: ``client.tags[2]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


#: What a URI fragment holds as it is (RFC 3986 section 3.5); the rest is
#: percent-encoded, as RFC 6901 section 6 asks of a pointer in a fragment.
_FRAGMENT_SAFE = "!$&'()*+,;=:@-._~?"


#: Names and indices that need no escaping, the usual ones.
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9_.-]*")


def _segment(part: Union[str, int]) -> str:
    text = str(part)
    if _PLAIN_SEGMENT.fullmatch(text):
        return text
    return quote(text.replace("~", "~0").replace("/", "~1"), safe=_FRAGMENT_SAFE)


def _pointer(path: Path) -> str:
    return "#" + "".join("/" + _segment(part) for part in path)


@dataclass(frozen=True)
class FieldError:
    """
    One failing field of a request: where it is, what is wrong and what is
    expected. Sent to clients in the error's field list.

    :param field: the field's path, dotted, with list indices in brackets:
        ``client.address.zip``, ``tags[2]``.
    :param location: where it was sent: ``"body"``, ``"query"``, ``"path"``
        or ``"header"``.
    :param reason: one of ``missing``, ``wrong type``, ``too small``, ``too
        large``, ``too short``, ``too long``, ``not allowed``, ``no match``,
        ``unexpected``, ``invalid``.
    :param expected: what would have been accepted, in words.
    :param message: the sentence for the error's ``exception_text``; made
        from ``expected`` unless given.
    :param pointer: the body field as an RFC 6901 JSON Pointer fragment
        (``#/client/address/zip``); body fields only.
    """

    field: str
    location: str
    reason: str
    expected: str
    message: str = ""
    pointer: Optional[str] = None

    def as_dict(self) -> Dict[str, str]:
        """The field error as clients receive it."""
        found = {
            "field": self.field,
            "in": self.location,
            "reason": self.reason,
            "expected": self.expected,
        }
        if self.pointer is not None:
            found["pointer"] = self.pointer
        return found

    def sentence(self) -> str:
        """What follows ``Invalid value for argument '<field>'.``"""
        if self.message:
            return self.message
        if self.reason == "missing":
            return "Argument is missing."
        if self.reason == "unexpected":
            return "Is not an argument of this call."
        return f"Must be {self.expected}."


class FieldFailure:
    """One failure before it knows where its value was sent."""

    __slots__ = ("expected", "message", "path", "reason")

    def __init__(self, path: Path, reason: str, expected: str, message: str) -> None:
        self.path = path
        self.reason = reason
        self.expected = expected
        self.message = message


class Invalid(Exception):
    """A value failed its check; ``failures`` lists every failing field."""

    def __init__(self, failures: List[FieldFailure]) -> None:
        super().__init__(failures)
        self.failures = failures

    def under(self, key: Union[str, int]) -> List[FieldFailure]:
        """The failures, found under ``key`` of the value checked."""
        for failure in self.failures:
            failure.path = (key, *failure.path)
        return self.failures

    @staticmethod
    def missing(name: str, described: str) -> List[FieldFailure]:
        """The failure of a required ``name`` that was not sent."""
        return [
            FieldFailure((name,), "missing", a_or_an(described), "Argument is missing.")
        ]

    def field_errors(self, location: str, root: Path = ()) -> List[FieldError]:
        """The failures as :class:`FieldError` of ``location``."""
        return [
            FieldError(
                field=field_path(root + failure.path),
                location=location,
                reason=failure.reason,
                expected=failure.expected,
                message=failure.message,
                pointer=_pointer(root + failure.path) if location == "body" else None,
            )
            for failure in self.failures[:MAX_FAILURES]
        ]


def fail(reason: str, expected: str, message: str = "") -> Invalid:
    return Invalid([FieldFailure((), reason, expected, message)])


def wrong_type(expected: str, named: Optional[str] = None) -> Invalid:
    """
    The failure of a value of another type than ``expected``: ``Must be of
    type int``, in the original Shiji's words (``named`` is the type's name
    there, when it is not what ``expected`` says: ``NoneType`` for
    ``null``).
    """
    return fail("wrong type", expected, f"Must be of type {named or expected}")


def a_or_an(name: str) -> str:
    return ("an " if name[:1] in "aeiou" else "a ") + name
