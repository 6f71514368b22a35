"""
Rules on a value beyond its type (bounds, lengths, a pattern, an enum),
declared with :class:`Constraints` and applied to a compiled :class:`Node`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    Dict,
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


#: Which values a rule of each kind looks at, in a type that takes several
#: kinds (``Optional[str]``: a length applies to the string, not to null).
_OF_KIND: Dict[str, Callable[[Any], bool]] = {
    "number": lambda value: (
        isinstance(value, (int, float)) and not isinstance(value, bool)
    ),
    "string": lambda value: isinstance(value, str),
    "array": lambda value: value.__class__ is list,
}


def _kind_of(json_type: str) -> str:
    return "number" if json_type == "integer" else json_type


def with_constraints(
    node: Node, rules: Constraints, where: str, search: bool = False
) -> Node:
    """
    ``node`` with ``rules`` applied after its own check, each to the values
    of its kind only.

    :param search: ``pattern`` is found anywhere in a string (JSON
        Schema's meaning) rather than matching the whole of it (Shiji's).
    """
    checks: List[Callable[[Any], None]] = []
    schema = dict(node.schema)
    kinds = set(node.json_types)
    only_kinds = {_kind_of(kind) for kind in kinds}

    def add(kind: str, rule: Callable[[Any], None]) -> None:
        if only_kinds == {kind}:
            checks.append(rule)
            return
        applies = _OF_KIND[kind]

        def guarded(value: Any) -> None:
            if applies(value):
                rule(value)

        checks.append(guarded)

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
        if (
            isinstance(bound, bool)
            or not isinstance(bound, (int, float))
            or not math.isfinite(bound)
        ):
            raise APIDefinitionError(
                f"{where}: {name} must be a finite number, not {bound!r}"
            )
        schema[key] = bound
    if rules.minimum is not None and rules.maximum is not None:
        add("number", _range_check(rules.minimum, rules.maximum))
    else:
        for name in ("minimum", "maximum"):
            if getattr(rules, name) is not None:
                add("number", _bound_check(name, getattr(rules, name)))
    for name in ("exclusive_minimum", "exclusive_maximum"):
        if getattr(rules, name) is not None:
            add("number", _bound_check(name, getattr(rules, name)))

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
        add("string" if unit == "character" else "array", _size_check(name, size, unit))

    for low, high in (
        ("minimum", "maximum"),
        ("min_length", "max_length"),
        ("min_items", "max_items"),
    ):
        least, most = getattr(rules, low), getattr(rules, high)
        if least is not None and most is not None and least > most:
            raise APIDefinitionError(
                f"{where}: {low} ({least}) is above {high} ({most}): no value can pass"
            )

    if rules.pattern is not None:
        if not isinstance(rules.pattern, str):
            raise APIDefinitionError(
                f"{where}: pattern must be a string, not {rules.pattern!r}"
            )
        try:
            compiled = re.compile(rules.pattern)
        except (re.error, TypeError) as e:
            raise APIDefinitionError(
                f"{where}: pattern {rules.pattern!r} is not a valid regular "
                f"expression: {e}"
            ) from None
        # Published as JSON Schema reads it: found anywhere, so a whole
        # match is anchored.
        schema["pattern"] = rules.pattern if search else _anchored(rules.pattern)
        add("string", _pattern_check(compiled, search))

    if rules.enum is not None:
        if not isinstance(rules.enum, (list, tuple)):
            raise APIDefinitionError(
                f"{where}: enum must be a list of values, not {rules.enum!r}"
            )
        choices = list(rules.enum)
        if not choices:
            raise APIDefinitionError(f"{where}: enum must list at least one value")
        converted = []
        for choice in choices:
            try:
                # As the type gives it: a float's enum of 1 means 1.0.
                converted.append(node.check(copy.deepcopy(choice)))
            except Invalid:
                raise APIDefinitionError(
                    f"{where}: enum value {choice!r} is not of type {node.described}"
                ) from None
        schema["enum"] = choices
        choice_node = enum_node(converted, None)
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

    if rules.max_items is not None:
        too_many = _size_check("max_items", rules.max_items, "item")

        def check(value: Any) -> Any:
            if value.__class__ is list:
                # Too many items are refused before any is looked at.
                too_many(value)
            value = base(value)
            for rule in checks:
                rule(value)
            return value

    elif len(checks) == 1:
        # The common case (one bound, one length), in one call less.
        [only] = checks

        def check(value: Any) -> Any:
            value = base(value)
            only(value)
            return value

    else:

        def check(value: Any) -> Any:
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


def _anchored(pattern: str) -> str:
    """``pattern`` as a JSON Schema pattern matching whole strings."""
    anchored = pattern.startswith("^") and pattern.endswith("$")
    if anchored and not pattern.endswith("\\$") and "|" not in pattern:
        return pattern
    return f"^(?:{pattern})$"


def _range_check(low: float, high: float) -> Callable[[Any], None]:
    """``minimum`` and ``maximum`` in one comparison."""
    too_small = f"at least {low}"
    too_large = f"at most {high}"

    def check(value: Any) -> None:
        if not low <= value <= high:
            if value < low:
                raise fail("too small", too_small)
            raise fail("too large", too_large)

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


def _pattern_check(compiled: Pattern[str], search: bool) -> Callable[[Any], None]:
    expected = f"matching {compiled.pattern}"
    find = compiled.search if search else compiled.fullmatch

    def check(value: Any) -> None:
        if find(value) is None:
            raise fail("no match", expected, f"Must match {compiled.pattern}.")

    return check
