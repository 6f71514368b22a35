"""
Rules on a value beyond its type (bounds, lengths, a pattern, an enum),
declared with :class:`Constraints` and applied to a compiled :class:`Node`.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    List,
    Optional,
    Pattern,
    Sequence,
)

from ._errors import APIDefinitionError
from ._field_errors import Invalid, fail
from ._nodes import Node, enum_node

__all__ = ["CONSTRAINT_NAMES", "Constraints", "with_constraints"]


@dataclass(frozen=True)
class Constraints:
    """
    Rules on a value beyond its type, for ``Annotated[int, Constraints(...)]``
    (inside dataclasses, lists...) and as the options of :class:`Arg`.

    :param minimum: numbers: the smallest accepted.
    :param maximum: numbers: the largest accepted.
    :param exclusive_minimum: numbers: accepted only above this.
    :param exclusive_maximum: numbers: accepted only below this.
    :param min_length: strings: the fewest characters.
    :param max_length: strings: the most characters.
    :param pattern: strings: a regular expression the whole string matches.
    :param min_items: lists: the fewest items.
    :param max_items: lists: the most items.
    :param enum: the only values accepted.
    :param allow_extra: objects: whether fields not declared are accepted
        (and kept); ``True`` unless refused.
    :param description: what the value means, for the documentation.
    """

    minimum: Optional[float] = None
    maximum: Optional[float] = None
    exclusive_minimum: Optional[float] = None
    exclusive_maximum: Optional[float] = None
    min_length: Optional[int] = None
    max_length: Optional[int] = None
    pattern: Optional[str] = None
    min_items: Optional[int] = None
    max_items: Optional[int] = None
    enum: Optional[Sequence[Any]] = None
    allow_extra: Optional[bool] = None
    description: str = ""


CONSTRAINT_NAMES = tuple(f.name for f in dataclasses.fields(Constraints))


def with_constraints(node: Node, rules: Constraints, where: str) -> Node:
    """``node`` with ``rules`` applied after its own check."""
    checks: List[Callable[[Any], None]] = []
    schema = dict(node.schema)
    kinds = set(node.json_types)

    def require(kind: str, *names: str) -> None:
        for name in names:
            if getattr(rules, name) is not None and kinds and kind not in kinds:
                if kind == "number" and kinds & {"integer"}:
                    continue
                raise APIDefinitionError(
                    f"{where}: {name} applies to "
                    f"{'numbers' if kind == 'number' else kind + 's'}, "
                    f"not to {node.described}"
                )

    require("number", "minimum", "maximum", "exclusive_minimum", "exclusive_maximum")
    require("string", "min_length", "max_length", "pattern")
    require("array", "min_items", "max_items")
    if rules.allow_extra is not None and not node.json_types == ("object",):
        raise APIDefinitionError(
            f"{where}: allow_extra applies to objects, not to {node.described}"
        )

    for name, key in (
        ("minimum", "minimum"),
        ("maximum", "maximum"),
        ("exclusive_minimum", "exclusiveMinimum"),
        ("exclusive_maximum", "exclusiveMaximum"),
    ):
        bound = getattr(rules, name)
        if bound is None:
            continue
        if isinstance(bound, bool) or not isinstance(bound, (int, float)):
            raise APIDefinitionError(f"{where}: {name} must be a number, not {bound!r}")
        schema[key] = bound
        checks.append(_bound_check(name, bound))

    for name, key, unit in (
        ("min_length", "minLength", "character"),
        ("max_length", "maxLength", "character"),
        ("min_items", "minItems", "item"),
        ("max_items", "maxItems", "item"),
    ):
        size = getattr(rules, name)
        if size is None:
            continue
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise APIDefinitionError(
                f"{where}: {name} must be an integer >= 0, not {size!r}"
            )
        schema[key] = size
        checks.append(_size_check(name, size, unit))

    if rules.pattern is not None:
        try:
            compiled = re.compile(rules.pattern)
        except (re.error, TypeError) as e:
            raise APIDefinitionError(
                f"{where}: pattern {rules.pattern!r} is not a valid regular "
                f"expression: {e}"
            ) from None
        schema["pattern"] = rules.pattern
        checks.append(_pattern_check(compiled))

    if rules.enum is not None:
        choices = list(rules.enum)
        if not choices:
            raise APIDefinitionError(f"{where}: enum must list at least one value")
        for choice in choices:
            try:
                node.check(copy.deepcopy(choice))
            except Invalid:
                raise APIDefinitionError(
                    f"{where}: enum value {choice!r} is not of type {node.described}"
                ) from None
        schema["enum"] = choices
        choice_node = enum_node(choices, None)
        enum_check = choice_node.check

        def check_enum(value: Any) -> None:
            enum_check(value)

        checks.append(check_enum)

    if rules.description:
        schema["description"] = rules.description

    base = node.check
    if not checks:
        if schema == node.schema:
            return node
        return Node(base, schema, node.described, node.json_types)

    sizes = [
        _size_check(name, getattr(rules, name), "item")
        for name in ("max_items",)
        if getattr(rules, name) is not None
    ]

    def check(value: Any) -> Any:
        if sizes and value.__class__ is list:
            # Too many items are refused before any is looked at.
            for size in sizes:
                size(value)
        value = base(value)
        # The first rule broken is the field's failure: the rules are in
        # order of cost, so a string too long is never matched against a
        # pattern.
        for rule in checks:
            rule(value)
        return value

    return Node(check, schema, node.described, node.json_types)


def _bound_check(name: str, bound: float) -> Callable[[Any], None]:
    if name == "minimum":
        expected = f"at least {bound}"

        def check(value: Any) -> None:
            if value < bound:
                raise fail("too small", expected)

    elif name == "maximum":
        expected = f"at most {bound}"

        def check(value: Any) -> None:
            if value > bound:
                raise fail("too large", expected)

    elif name == "exclusive_minimum":
        expected = f"greater than {bound}"

        def check(value: Any) -> None:
            if value <= bound:
                raise fail("too small", expected)

    else:
        expected = f"less than {bound}"

        def check(value: Any) -> None:
            if value >= bound:
                raise fail("too large", expected)

    return check


def _plural(size: int, unit: str) -> str:
    return f"{size} {unit}" + ("" if size == 1 else "s")


def _size_check(name: str, size: int, unit: str) -> Callable[[Any], None]:
    if name.startswith("min"):
        expected = f"at least {_plural(size, unit)}"
        reason = "too short"

        def check(value: Any) -> None:
            if len(value) < size:
                raise fail(reason, expected, f"Must be {expected} long.")

    else:
        expected = f"at most {_plural(size, unit)}"
        reason = "too long"

        def check(value: Any) -> None:
            if len(value) > size:
                raise fail(reason, expected, f"Must be {expected} long.")

    return check


def _pattern_check(compiled: Pattern[str]) -> Callable[[Any], None]:
    expected = f"matching {compiled.pattern}"

    def check(value: Any) -> None:
        if compiled.fullmatch(value) is None:
            raise fail("no match", expected, f"Must match {compiled.pattern}.")

    return check
