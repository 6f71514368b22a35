"""
JSON Schemas as declarations: the subset Shiji checks, compiled into the
same nodes as every other declaration. A keyword outside it is refused when
the module declaring it is imported, so no schema is checked other than as
written.
"""

from __future__ import annotations

import copy
from typing import (
    Any,
    List,
    Mapping,
)

from ._errors import APIDefinitionError
from ._field_errors import FieldFailure, Invalid
from ._nodes import (
    MISSING,
    Node,
    ObjectField,
    anything,
    boolean,
    enum_node,
    exact,
    list_of,
    null,
    number,
    object_node,
    union,
)
from ._rules import Constraints, with_constraints

__all__ = ["compile_json_schema"]


_SCHEMA_TYPES = {
    "integer": lambda: exact(int, "integer", "int"),
    "number": number,
    "string": lambda: exact(str, "string", "str"),
    "boolean": boolean,
    "null": null,
    "array": lambda: list_of(None),
    "object": lambda: exact(dict, "object", "dict"),
}


_ANNOTATIONS = {
    "description",
    "title",
    "examples",
    "format",
    "default",
    "$comment",
    "deprecated",
    "readOnly",
    "writeOnly",
}


_KEYWORDS = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "anyOf",
} | _ANNOTATIONS


def compile_json_schema(schema: Mapping[str, Any], where: str) -> Node:
    """
    The node checking values against a JSON Schema, in the subset Shiji
    checks: ``type`` (a name or a list), ``properties``, ``required``,
    ``additionalProperties`` (a boolean or a schema), ``items``, ``enum``,
    ``const``, ``minimum``, ``maximum``, ``exclusiveMinimum``,
    ``exclusiveMaximum``, ``minLength``, ``maxLength``, ``pattern``,
    ``minItems``, ``maxItems``, ``anyOf``, and the annotations
    ``description``, ``title``, ``examples``, ``format``, ``default``.

    :raises APIDefinitionError: a keyword outside that subset (a schema
        Shiji would not check as written), or a malformed value.
    """
    if not isinstance(schema, Mapping):
        raise APIDefinitionError(f"{where}: a JSON Schema is a dict, not {schema!r}")
    unknown = sorted(set(schema) - _KEYWORDS)
    if unknown:
        raise APIDefinitionError(
            f"{where}: the JSON Schema keyword {unknown[0]!r} is not one Shiji "
            "checks; use a dataclass, Arg entries or a pydantic model instead"
        )
    if "anyOf" in schema:
        options = schema["anyOf"]
        if not isinstance(options, list) or not options:
            raise APIDefinitionError(f"{where}: anyOf must be a non-empty list")
        beside = sorted(set(schema) - _ANNOTATIONS - {"anyOf"})
        if beside:
            raise APIDefinitionError(
                f"{where}: {beside[0]!r} beside anyOf is not checked; move it into "
                "each of anyOf's schemas"
            )
        node = union([compile_json_schema(option, where) for option in options])
    elif "enum" in schema or "const" in schema:
        choices = schema["enum"] if "enum" in schema else [schema["const"]]
        if not isinstance(choices, list) or not choices:
            raise APIDefinitionError(f"{where}: enum must be a non-empty list")
        if "type" in schema:
            # The type is checked here, once: a choice it refuses is a mistake.
            typed = _typed_json_schema(schema, where)
            for choice in choices:
                try:
                    typed.check(copy.deepcopy(choice))
                except Invalid:
                    raise APIDefinitionError(
                        f"{where}: enum value {choice!r} is not of the schema's type"
                    ) from None
        node = enum_node(choices, None)
    else:
        node = _typed_json_schema(schema, where)
    rules = Constraints(
        minimum=schema.get("minimum"),
        maximum=schema.get("maximum"),
        exclusive_minimum=schema.get("exclusiveMinimum"),
        exclusive_maximum=schema.get("exclusiveMaximum"),
        min_length=schema.get("minLength"),
        max_length=schema.get("maxLength"),
        pattern=schema.get("pattern"),
        min_items=schema.get("minItems"),
        max_items=schema.get("maxItems"),
    )
    node = with_constraints(node, rules, where, search=True)
    # What the documentation shows is the schema as written.
    return Node(node.check, dict(schema), node.described, node.json_types)


def _typed_json_schema(schema: Mapping[str, Any], where: str) -> Node:
    declared = schema.get("type")
    if declared is None:
        if "properties" in schema or "additionalProperties" in schema:
            declared = "object"
        elif "items" in schema:
            declared = "array"
        else:
            return anything()
    names = [declared] if isinstance(declared, str) else declared
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(name, str) for name in names)
    ):
        raise APIDefinitionError(f"{where}: type must be a name or a list of names")
    nodes = []
    for name in names:
        if name not in _SCHEMA_TYPES:
            raise APIDefinitionError(f"{where}: {name!r} is not a JSON Schema type")
        if name == "object":
            nodes.append(_json_schema_object(schema, where))
        elif name == "array" and "items" in schema:
            nodes.append(list_of(compile_json_schema(schema["items"], f"{where}[]")))
        else:
            nodes.append(_SCHEMA_TYPES[name]())
    return nodes[0] if len(nodes) == 1 else union(nodes)


def _json_schema_object(schema: Mapping[str, Any], where: str) -> Node:
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    extra = schema.get("additionalProperties", True)
    if not isinstance(properties, Mapping):
        raise APIDefinitionError(f"{where}: properties must be an object")
    if not (isinstance(required, list) and all(isinstance(r, str) for r in required)):
        raise APIDefinitionError(f"{where}: required must be a list of names")
    fields = []
    for name, sub in properties.items():
        node = compile_json_schema(sub, f"{where}.{name}")
        default = sub.get("default", MISSING) if isinstance(sub, Mapping) else MISSING
        fields.append(
            ObjectField(
                name, name, node.check, name in required, default, node.described
            )
        )
    for name in required:
        if name not in properties:
            fields.append(
                ObjectField(name, name, anything().check, True, MISSING, "value")
            )
    if isinstance(extra, Mapping):
        extra_node = compile_json_schema(extra, f"{where}.*")
        base = object_node(fields, True, None, {})
        known = frozenset(properties)
        extra_check = extra_node.check

        def check(value: Any) -> Any:
            failures: List[FieldFailure] = []
            try:
                value = base.check(value)
            except Invalid as invalid:
                if value.__class__ is not dict:
                    raise
                failures += invalid.failures
            for key, item in list(value.items()):
                if key not in known:
                    try:
                        value[key] = extra_check(item)
                    except Invalid as invalid:
                        failures += invalid.under(key)
            if failures:
                raise Invalid(failures)
            return value

        return Node(check, {}, "object", ("object",))
    if not isinstance(extra, bool):
        raise APIDefinitionError(
            f"{where}: additionalProperties must be a boolean or a schema"
        )
    return object_node(fields, extra, None, {}, "object")
