"""
Compiled checks: a :class:`Node` pairs a closure that checks (and converts)
a value with the JSON Schema the documentation shows. The node builders of
JSON's types, unions, lists, maps, enums and objects live here.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Optional,
    Sequence,
    Tuple,
)

from ._field_errors import MAX_FAILURES, FieldFailure, Invalid, fail, wrong_type

__all__ = [
    "CLASS_SCHEMA_TYPES",
    "MISSING",
    "Check",
    "Node",
    "ObjectField",
    "anything",
    "boolean",
    "classes_node",
    "dict_of",
    "enum_node",
    "exact",
    "json_type_of",
    "list_of",
    "null",
    "number",
    "object_node",
    "object_schema",
    "union",
]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


#: What an :class:`Arg` without a default has.
MISSING: Any = _Missing()


Check = Callable[[Any], Any]


@dataclass(frozen=True)
class Node:
    """
    A compiled type: ``check(value)`` returns the value as the handler gets
    it, or raises :class:`Invalid` (whose failures' paths are relative to
    the value); ``schema`` is its JSON Schema;
    ``described`` names the type in error texts (``int or str``).
    """

    check: Check
    schema: Dict[str, Any]
    described: str
    #: The JSON types the node can accept ("integer", "string"...), for
    #: deciding which constraints apply; empty for anything.
    json_types: Tuple[str, ...] = ()


def exact(cls: type, json_type: str, described: str) -> Node:
    def check(value: Any) -> Any:
        if value.__class__ is cls:
            return value
        if isinstance(value, cls) and not isinstance(value, bool):
            return value
        raise wrong_type(described)

    return Node(check, {"type": json_type}, described, (json_type,))


def boolean() -> Node:
    def check(value: Any) -> Any:
        if value is True or value is False:
            return value
        raise wrong_type("bool")

    return Node(check, {"type": "boolean"}, "bool", ("boolean",))


def number() -> Node:
    def check(value: Any) -> Any:
        if value.__class__ is float:
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                converted = float(value)
            except OverflowError:
                converted = math.inf
            if math.isfinite(converted):
                return converted
        raise wrong_type("float")

    return Node(check, {"type": "number"}, "float", ("number",))


def null() -> Node:
    def check(value: Any) -> Any:
        if value is None:
            return None
        raise wrong_type("null", "NoneType")

    return Node(check, {"type": "null"}, "NoneType", ("null",))


def anything() -> Node:
    return Node(lambda value: value, {}, "anything")


def union(nodes: Sequence[Node]) -> Node:
    """
    Any of ``nodes``: the first that accepts the value. Each option checks
    a copy of a container (checks convert in place), and when only one
    option takes values of the value's kind, its own failures are the
    answer (``Optional[Address]`` tells which field of the address is
    wrong).
    """
    described = " or ".join(node.described for node in nodes)
    options = [(node.check, _kinds(node)) for node in nodes]

    def check(value: Any) -> Any:
        kind = json_type_of(value)
        takers = [each for each, kinds in options if kinds is None or kind in kinds]
        if len(takers) == 1:
            return takers[0](value)
        container = value.__class__ is dict or value.__class__ is list
        for each in takers:
            try:
                return each(copy.deepcopy(value) if container else value)
            except Invalid:
                continue
        raise wrong_type(described)

    simple = [node.schema.get("type") for node in nodes]
    if all(
        isinstance(t, str) and len(node.schema) == 1 for t, node in zip(simple, nodes)
    ):
        schema: Dict[str, Any] = {
            "type": simple[0] if len(simple) == 1 else list(dict.fromkeys(simple))
        }
    else:
        schema = {"anyOf": [node.schema for node in nodes]}
    json_types = tuple(t for node in nodes for t in node.json_types)
    if any(not node.json_types for node in nodes):
        json_types = ()
    return Node(check, schema, described, json_types)


def list_of(items: Optional[Node]) -> Node:
    described = "list" if items is None else f"list of {items.described}"
    schema: Dict[str, Any] = {"type": "array"}
    if items is None:

        def check(value: Any) -> Any:
            if value.__class__ is list:
                return value
            raise wrong_type(described)

        return Node(check, schema, described, ("array",))
    item_check = items.check
    schema["items"] = items.schema

    def check_items(value: Any) -> Any:
        if value.__class__ is not list:
            raise wrong_type(described)
        failures: List[FieldFailure] = []
        out = []
        for index, item in enumerate(value):
            try:
                out.append(item_check(item))
            except Invalid as invalid:
                failures += invalid.under(index)
                if len(failures) >= MAX_FAILURES:
                    break
        if failures:
            raise Invalid(failures)
        return out

    return Node(check_items, schema, described, ("array",))


def dict_of(values: Node) -> Node:
    described = f"object of {values.described}"
    value_check = values.check

    def check(value: Any) -> Any:
        if value.__class__ is not dict:
            raise wrong_type(described)
        failures: List[FieldFailure] = []
        out = {}
        for key, item in value.items():
            try:
                out[key] = value_check(item)
            except Invalid as invalid:
                failures += invalid.under(key)
                if len(failures) >= MAX_FAILURES:
                    break
        if failures:
            raise Invalid(failures)
        return out

    return Node(
        check,
        {"type": "object", "additionalProperties": values.schema},
        described,
        ("object",),
    )


def enum_node(values: Sequence[Any], convert: Optional[Callable[[Any], Any]]) -> Node:
    choices = list(values)
    listed = ", ".join(_show(choice) for choice in choices)
    expected = f"one of {listed}"

    def check(value: Any) -> Any:
        for choice in choices:
            if _same(value, choice):
                # The value itself: never the declaration's own choice.
                return convert(choice) if convert is not None else value
        raise fail("not allowed", expected, f"Must be {expected}.")

    json_types = tuple(dict.fromkeys(json_type_of(choice) for choice in choices))
    return Node(check, {"enum": choices}, expected, json_types)


def _kinds(node: Node) -> Optional[frozenset]:
    """The JSON kinds ``node`` takes (integers are numbers too); ``None``
    for any."""
    if not node.json_types:
        return None
    kinds = set(node.json_types)
    if "number" in kinds:
        kinds.add("integer")
    return frozenset(kinds)


def _same(value: Any, choice: Any) -> bool:
    """Equal as JSON values are: ``true`` is not ``1``, at any depth."""
    if type(value) is not type(choice):
        return False
    if isinstance(value, list):
        return len(value) == len(choice) and all(map(_same, value, choice))
    if isinstance(value, dict):
        return value.keys() == choice.keys() and all(
            _same(item, choice[key]) for key, item in value.items()
        )
    return bool(value == choice)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def json_type_of(value: Any) -> str:
    """The JSON kind of a JSON value: ``integer``, ``array``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


CLASS_SCHEMA_TYPES = {
    int: "integer",
    float: "number",
    str: "string",
    bool: "boolean",
    list: "array",
    tuple: "array",
    dict: "object",
    type(None): "null",
}


def classes_node(types: Tuple[type, ...]) -> Node:
    """
    The original Shiji's check of a value against a tuple of classes:
    booleans are not numbers, and an integer is accepted (as a float) where
    a float is.
    """
    described = " or ".join(t.__name__ for t in types)
    takes_bool = bool in types
    takes_float = float in types

    def check(value: Any) -> Any:
        if isinstance(value, bool):
            if takes_bool:
                return value
        elif isinstance(value, types):
            return value
        elif takes_float and isinstance(value, int):
            try:
                return float(value)
            except OverflowError:
                pass
        raise wrong_type(described)

    names = [CLASS_SCHEMA_TYPES.get(t) for t in types]
    json_types: Tuple[str, ...] = ()
    schema: Dict[str, Any] = {}
    if all(names):
        unique = list(dict.fromkeys(n for n in names if n is not None))
        schema = {"type": unique[0] if len(unique) == 1 else unique}
        json_types = tuple(unique)
    return Node(check, schema, described, json_types)


@dataclass(frozen=True)
class ObjectField:
    name: str
    key: str
    check: Check
    required: bool
    default: Any
    described: str


def object_node(
    fields: Sequence[ObjectField],
    allow_extra: bool,
    build: Optional[Callable[[Dict[str, Any]], Any]],
    schema: Dict[str, Any],
    described: str = "object",
) -> Node:
    names = frozenset(field.name for field in fields)
    # The keys arguments are renamed to: sent as fields of their own, they
    # would pass unchecked under a key the handler trusts.
    renamed = frozenset(f.key for f in fields if f.key != f.name) - names
    plain = all(field.key == field.name for field in fields) and build is None
    steps = tuple(
        (field.name, field.key, field.check, field.required, field.default)
        for field in fields
    )
    kinds = {field.name: field.described for field in fields}
    if plain and allow_extra and all(f.default is MISSING for f in fields):
        return Node(_plain_object(steps, kinds), schema, described, ("object",))

    def check(value: Any) -> Any:
        if value.__class__ is not dict:
            raise wrong_type("object")
        failures: Optional[List[FieldFailure]] = None
        out = value if plain else {}
        for name, key, each, required, default in steps:
            if name in value:
                try:
                    out[key] = each(value[name])
                except Invalid as invalid:
                    failures = (failures or []) + invalid.under(name)
            elif required:
                failures = failures or []
                failures += Invalid.missing(name, kinds[name])
            elif default is not MISSING:
                out[key] = copy.deepcopy(default)
        if not allow_extra:
            for key in value:
                if key not in names:
                    failures = failures or []
                    failures.append(
                        FieldFailure(
                            (key,),
                            "unexpected",
                            "no such field",
                            "Is not an argument of this call.",
                        )
                    )
                    if len(failures) >= MAX_FAILURES:
                        break
        elif not plain:
            for key, item in value.items():
                if key in renamed:
                    failures = failures or []
                    failures.append(
                        FieldFailure(
                            (key,),
                            "unexpected",
                            "no such field",
                            "Is not an argument of this call.",
                        )
                    )
                elif key not in names and key not in out:
                    out[key] = item
        if failures:
            raise Invalid(failures)
        return build(out) if build is not None else out

    return Node(check, schema, described, ("object",))


def _plain_object(
    steps: Tuple[Tuple[str, str, Check, bool, Any], ...], kinds: Dict[str, str]
) -> Check:
    """
    The check of an object whose fields keep their names and have no
    defaults, and which takes fields it does not declare (the original
    Shiji's form): the value is checked in place, as cheaply as can be.
    """
    fields = tuple((name, each, required) for name, _, each, required, _ in steps)

    def check(value: Any) -> Any:
        if value.__class__ is not dict:
            raise wrong_type("object")
        failures = None
        for name, each, required in fields:
            if name in value:
                try:
                    value[name] = each(value[name])
                except Invalid as invalid:
                    failures = (failures or []) + invalid.under(name)
            elif required:
                failures = (failures or []) + Invalid.missing(name, kinds[name])
        if failures:
            raise Invalid(failures)
        return value

    return check


def object_schema(
    properties: Dict[str, Dict[str, Any]], required: List[str], allow_extra: bool
) -> Dict[str, Any]:
    schema: Dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if not allow_extra:
        schema["additionalProperties"] = False
    return schema
