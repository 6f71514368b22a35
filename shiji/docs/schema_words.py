"""
JSON Schemas in words, for the documents people read (Markdown, HTML and
the JSON documentation).

:func:`type_words` names a schema's type (``array of string``,
``integer or null``), :func:`rule_words` says its rules and default (``at
least 5 characters; default 'a'``), and :func:`field_rows` lists the fields
inside it, one :class:`FieldRow` each, with dotted paths for nested objects
(``client.address.zip``) and ``[]`` for list items (``tags[]``).
:func:`schema_row` (a parameter) and :func:`body_words` (a body) put them
together for the renderers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Tuple

from .._nodes import json_type_of

__all__ = [
    "BodyWords",
    "FieldRow",
    "body_words",
    "description_of",
    "field_rows",
    "rule_words",
    "schema_row",
    "show_value",
    "type_words",
]

Schema = Mapping[str, Any]

#: The keywords holding alternatives of a schema.
_ALTERNATIVES = ("anyOf", "oneOf")


@dataclass(frozen=True)
class FieldRow:
    """
    One field inside a schema, as a documentation table shows it.

    :param field: its path: ``client.address.zip``, ``tags[]`` (an item of
        the list ``tags``), ``extra.*`` (any key of the object ``extra``).
    :param type: its type in words (:func:`type_words`).
    :param required: whether the object holding it must have it (items of
        lists always are).
    :param rules: its rules and default in words (:func:`rule_words`).
    :param description: what it means, as its schema describes it.
    """

    field: str
    type: str
    required: bool
    rules: str
    description: str

    def as_dict(self) -> Dict[str, Any]:
        """The row as the JSON documentation gives it."""
        return {
            "field": self.field,
            "type": self.type,
            "required": self.required,
            "rules": self.rules,
            "description": self.description,
        }


def show_value(value: Any) -> str:
    """A value as the words show it: ``'a'``, ``3``, ``true``, ``null``,
    ``[]``."""
    if isinstance(value, str):
        return repr(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _alternatives(schema: Schema) -> List[Schema]:
    return [
        option
        for keyword in _ALTERNATIVES
        for option in schema.get(keyword, ())
        if isinstance(option, Mapping)
    ]


def _one_type(name: str, schema: Schema) -> str:
    if name == "array":
        items = schema.get("items")
        if isinstance(items, Mapping) and items:
            return f"array of {type_words(items)}"
    elif name == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping) and extra and not schema.get("properties"):
            return f"object of {type_words(extra)}"
    return name


def type_words(schema: Schema) -> str:
    """
    The type of ``schema`` in words: ``integer``, ``string or null``,
    ``array of string``, ``object of integer`` (any keys, integer values),
    ``any``; a titled schema adds its title: ``Address (object)``.
    """
    reference = schema.get("$ref")
    if isinstance(reference, str):
        return reference.rsplit("/", 1)[-1]
    alternatives = _alternatives(schema)
    declared = schema.get("type")
    if alternatives and declared is None:
        text = " or ".join(dict.fromkeys(type_words(each) for each in alternatives))
    else:
        if declared is None:
            if "const" in schema:
                declared = json_type_of(schema["const"])
            elif isinstance(schema.get("enum"), list) and schema["enum"]:
                declared = list(dict.fromkeys(map(json_type_of, schema["enum"])))
            elif "properties" in schema or "additionalProperties" in schema:
                declared = "object"
            elif "items" in schema:
                declared = "array"
            else:
                declared = "any"
        names = [declared] if isinstance(declared, str) else list(declared)
        text = " or ".join(_one_type(str(name), schema) for name in names)
    title = schema.get("title")
    return f"{title} ({text})" if isinstance(title, str) and title else text


def _plural(count: Any, unit: str) -> str:
    return f"{show_value(count)} {unit}{'' if count == 1 else 's'}"


def _range(schema: Schema, low: str, high: str, unit: str) -> List[str]:
    """``5 to 10 characters``, ``at least 1 item``, ``exactly 5 characters``."""
    least, most = schema.get(low), schema.get(high)
    if least is not None and most is not None:
        if least == most:
            return [f"exactly {_plural(least, unit)}"]
        return [f"{show_value(least)} to {_plural(most, unit)}"]
    if least is not None:
        return [f"at least {_plural(least, unit)}"]
    if most is not None:
        return [f"at most {_plural(most, unit)}"]
    return []


def _own_rules(schema: Schema) -> List[str]:
    words = []
    choices = schema.get("enum")
    if isinstance(choices, list):
        words.append("one of " + ", ".join(show_value(each) for each in choices))
    if "const" in schema:
        words.append(f"only {show_value(schema['const'])}")
    least, most = schema.get("minimum"), schema.get("maximum")
    if least is not None and most is not None:
        words.append(f"{show_value(least)} to {show_value(most)}")
    elif least is not None:
        words.append(f"at least {show_value(least)}")
    elif most is not None:
        words.append(f"at most {show_value(most)}")
    if schema.get("exclusiveMinimum") is not None:
        words.append(f"more than {show_value(schema['exclusiveMinimum'])}")
    if schema.get("exclusiveMaximum") is not None:
        words.append(f"less than {show_value(schema['exclusiveMaximum'])}")
    words += _range(schema, "minLength", "maxLength", "character")
    words += _range(schema, "minItems", "maxItems", "item")
    if isinstance(schema.get("pattern"), str):
        words.append(f"matching {schema['pattern']}")
    if isinstance(schema.get("format"), str):
        words.append(f"format {schema['format']}")
    if schema.get("additionalProperties") is False:
        words.append("no other fields")
    return words


def rule_words(schema: Schema) -> str:
    """
    The rules of ``schema`` (not of the fields inside it) and its default,
    in words, ``; ``-separated: ``one of 'a', 'b'``, ``0 to 100``, ``at
    least 5 characters``, ``at most 3 items``, ``matching ^x$``, ``no other
    fields``, ``default 10``. Rules of alternatives are named by their type
    when more than one has any: ``string: at least 5 characters; integer: 0
    to 9``.
    """
    words = _own_rules(schema)
    ruled = [
        (option, rules)
        for option, rules in (
            (option, _own_rules(option)) for option in _alternatives(schema)
        )
        if rules
    ]
    if len(ruled) == 1:
        words += ruled[0][1]
    else:
        words += [f"{type_words(option)}: {'; '.join(each)}" for option, each in ruled]
    if "default" in schema:
        words.append(f"default {show_value(schema['default'])}")
    if schema.get("deprecated") is True:
        words.append("deprecated")
    return "; ".join(words)


def description_of(schema: Schema) -> str:
    """The schema's description, or nothing."""
    described = schema.get("description")
    return described if isinstance(described, str) else ""


def schema_row(
    name: str, schema: Schema, required: bool, description: str = ""
) -> FieldRow:
    """
    The row of a field or parameter ``name`` of ``schema``: its type and
    rules in words, and ``description`` (or the schema's own).
    """
    return FieldRow(
        name,
        type_words(schema),
        required,
        rule_words(schema),
        description or description_of(schema),
    )


def _inside(schema: Schema, path: str) -> Iterator[FieldRow]:
    """The rows of the fields inside ``schema``, whose own path is ``path``."""
    for branch in [schema, *_alternatives(schema)]:
        properties = branch.get("properties")
        if isinstance(properties, Mapping):
            required = branch.get("required", ())
            for name, sub in properties.items():
                if not isinstance(sub, Mapping):
                    continue
                sub_path = f"{path}.{name}" if path else str(name)
                yield schema_row(sub_path, sub, name in required)
                yield from _inside(sub, sub_path)
        extra = branch.get("additionalProperties")
        if isinstance(extra, Mapping) and extra:
            sub_path = f"{path}.*" if path else "*"
            yield schema_row(sub_path, extra, False)
            yield from _inside(extra, sub_path)
        items = branch.get("items")
        if isinstance(items, Mapping) and items:
            sub_path = f"{path}[]"
            yield schema_row(sub_path, items, True)
            yield from _inside(items, sub_path)


@dataclass(frozen=True)
class BodyWords:
    """A body (a request's or an answer's) as the documentation shows it:
    its type and description in words, and the rows of its fields."""

    type: str
    description: str
    fields: Tuple[FieldRow, ...]


def body_words(schema: Schema, description: str = "") -> BodyWords:
    """``schema``, a body's, in words, described by ``description`` or, if
    none is given, by the schema's own description."""
    return BodyWords(
        type_words(schema),
        description or description_of(schema),
        field_rows(schema),
    )


def field_rows(schema: Schema) -> Tuple[FieldRow, ...]:
    """
    The fields inside ``schema`` (a body's), in the order declared, each
    followed by the fields inside it: ``client``, ``client.name``,
    ``client.address``, ``client.address.zip``, ``tags``, ``tags[]``.
    A field found twice (in two alternatives) is listed once.
    """
    rows: Dict[str, FieldRow] = {}
    for row in _inside(schema, ""):
        rows.setdefault(row.field, row)
    return tuple(rows.values())
