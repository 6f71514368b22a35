"""
The schema language of Shiji's declarations, compiled once into checks.

A *type* in a declaration may be:

- a built-in: ``int``, ``float``, ``str``, ``bool``, ``list``, ``dict``,
  ``None`` (or ``type(None)``), ``object`` (anything);
- a tuple of types, any of which will do (the original Shiji's form);
- ``typing`` forms: ``List[X]``, ``Dict[str, X]``, ``Optional[X]``,
  ``Union[X, Y]``, ``Literal["a", "b"]``, ``Annotated[X, Constraints(...)]``;
- an ``enum.Enum`` subclass (its values are accepted; the member is given);
- a dataclass (a nested object; the instance is given);
- a list of :class:`Arg` entries or ``(name, type[, optional])`` tuples (a
  nested object; a dict is given);
- a JSON Schema (a dict), in the subset :func:`compile_json_schema` lists;
- a pydantic v2 model, when pydantic is installed.

:func:`compile_type` turns one into a :class:`Node`: a check that converts a
value or raises :class:`Invalid` with every failing field, and the JSON
Schema that the documentation shows. Checks are closures built when the
module declaring them is imported; nothing is looked up per request.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import enum
import math
import re
import sys
import typing
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Pattern,
    Sequence,
    Tuple,
    Type,
    Union,
)

from ._errors import APIDefinitionError, clip

__all__ = [
    "MISSING",
    "Arg",
    "Constraints",
    "FieldError",
    "Invalid",
    "Node",
    "Object",
    "ObjectSchema",
    "compile_fields",
    "compile_json_schema",
    "compile_type",
    "dataclass_node",
    "field_path",
]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


#: What an :class:`Arg` without a default has.
MISSING: Any = _Missing()

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


def _pointer(path: Path) -> str:
    return "#" + "".join(
        "/" + str(part).replace("~", "~0").replace("/", "~1") for part in path
    )


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


class _Failure:
    """One failure before it knows where its value was sent."""

    __slots__ = ("expected", "message", "path", "reason")

    def __init__(self, path: Path, reason: str, expected: str, message: str) -> None:
        self.path = path
        self.reason = reason
        self.expected = expected
        self.message = message


class Invalid(Exception):
    """A value failed its check; ``failures`` lists every failing field."""

    def __init__(self, failures: List[_Failure]) -> None:
        super().__init__(failures)
        self.failures = failures

    def under(self, key: Union[str, int]) -> List[_Failure]:
        """The failures, found under ``key`` of the value checked."""
        for failure in self.failures:
            failure.path = (key, *failure.path)
        return self.failures

    @staticmethod
    def missing(name: str, described: str) -> List[_Failure]:
        """The failure of a required ``name`` that was not sent."""
        return [_Failure((name,), "missing", _a(described), "Argument is missing.")]

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


def _fail(reason: str, expected: str, message: str = "") -> Invalid:
    return Invalid([_Failure((), reason, expected, message)])


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


_CONSTRAINT_NAMES = tuple(f.name for f in dataclasses.fields(Constraints))


class Arg:
    """
    One declared argument: its name, type and rules.

    ``Arg("zip", str, min_length=5)`` is what ``("zip", str)`` is, with more
    to say. Every option is keyword-only:

    :param name: the name the client sends.
    :param type: the argument's type (see :mod:`shiji._schema`'s list).
    :param required: whether the client must send it; ``True`` unless a
        ``default`` is given.
    :param default: the value used when the client sends none (copied for
        each request).
    :param convert: a callable applied to the checked value; its
        ``ValueError`` or ``TypeError`` makes the field invalid (HTTP 409),
        with ``expected`` (or the exception's text) saying why.
    :param expected: what a converted value must be, in words, for the field
        error of a failing ``convert``.
    :param rename: the key the handler finds the value under (the client
        still sends ``name``).
    :param constraints: the rules of :class:`Constraints`, by keyword:
        ``minimum``, ``maximum``, ``exclusive_minimum``,
        ``exclusive_maximum``, ``min_length``, ``max_length``, ``pattern``,
        ``min_items``, ``max_items``, ``enum``, ``allow_extra`` and
        ``description``.
    """

    def __init__(
        self,
        name: str,
        type: Any = object,
        *,
        required: Optional[bool] = None,
        default: Any = MISSING,
        convert: Optional[Callable[[Any], Any]] = None,
        expected: str = "",
        rename: Optional[str] = None,
        **constraints: Any,
    ) -> None:
        unknown = sorted(set(constraints) - set(_CONSTRAINT_NAMES))
        if unknown:
            raise TypeError(
                f"Arg {name!r}: unknown option {unknown[0]!r}; the options are "
                "required, default, convert, expected, rename, "
                + ", ".join(_CONSTRAINT_NAMES)
            )
        self.name = name
        self.type = type
        self.required = (default is MISSING) if required is None else required
        self.default = default
        self.convert = convert
        self.expected = expected
        self.rename = rename
        self.constraints = Constraints(**constraints)

    @property
    def key(self) -> str:
        """The key the handler finds the value under."""
        return self.rename or self.name

    def __repr__(self) -> str:
        return f"Arg({self.name!r}, {self.type!r})"


class ObjectSchema:
    """
    Base of the classes :func:`Object` makes: a nested object's entries,
    as a class, so that ``typing`` forms take it (``List[Object([...])]``).
    """

    entries: Tuple[Any, ...] = ()
    allow_extra: bool = True


def Object(entries: Sequence[Any], *, allow_extra: bool = True) -> type:
    """
    A nested object of ``entries`` (:class:`Arg` or ``(name, type[,
    optional])``), usable where a type is, typing forms included:
    ``Arg("lines", List[Object([Arg("sku", str), ("qty", int)])])``. (A
    plain list of entries is a nested object too, but Python 3.9's
    ``typing`` refuses it inside ``List[...]``.)

    :param allow_extra: whether fields not declared are accepted.
    """
    return type(
        "Object",
        (ObjectSchema,),
        {"entries": tuple(entries), "allow_extra": allow_extra},
    )


# ---------------------------------------------------------------------------
# Nodes


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


def _a(name: str) -> str:
    return ("an " if name[:1] in "aeiou" else "a ") + name


def _exact(cls: type, json_type: str, described: str) -> Node:
    def check(value: Any) -> Any:
        if value.__class__ is cls:
            return value
        if isinstance(value, cls) and not isinstance(value, bool):
            return value
        raise _fail("wrong type", described, f"Must be of type {described}")

    return Node(check, {"type": json_type}, described, (json_type,))


def _boolean() -> Node:
    def check(value: Any) -> Any:
        if value is True or value is False:
            return value
        raise _fail("wrong type", "bool", "Must be of type bool")

    return Node(check, {"type": "boolean"}, "bool", ("boolean",))


def _number() -> Node:
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
        raise _fail("wrong type", "float", "Must be of type float")

    return Node(check, {"type": "number"}, "float", ("number",))


def _null() -> Node:
    def check(value: Any) -> Any:
        if value is None:
            return None
        raise _fail("wrong type", "null", "Must be of type NoneType")

    return Node(check, {"type": "null"}, "NoneType", ("null",))


def _anything() -> Node:
    return Node(lambda value: value, {}, "anything")


def _union(nodes: Sequence[Node]) -> Node:
    described = " or ".join(node.described for node in nodes)
    checks = [node.check for node in nodes]

    def check(value: Any) -> Any:
        for each in checks:
            try:
                return each(value)
            except Invalid:
                continue
        raise _fail("wrong type", described, f"Must be of type {described}")

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


def _list_of(items: Optional[Node]) -> Node:
    described = "list" if items is None else f"list of {items.described}"
    schema: Dict[str, Any] = {"type": "array"}
    if items is None:

        def check(value: Any) -> Any:
            if value.__class__ is list:
                return value
            raise _fail("wrong type", described, f"Must be of type {described}")

        return Node(check, schema, described, ("array",))
    item_check = items.check
    schema["items"] = items.schema

    def check_items(value: Any) -> Any:
        if value.__class__ is not list:
            raise _fail("wrong type", described, f"Must be of type {described}")
        failures: List[_Failure] = []
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


def _dict_of(values: Node) -> Node:
    described = f"object of {values.described}"
    value_check = values.check

    def check(value: Any) -> Any:
        if value.__class__ is not dict:
            raise _fail("wrong type", described, f"Must be of type {described}")
        failures: List[_Failure] = []
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


def _enum_of(values: Sequence[Any], convert: Optional[Callable[[Any], Any]]) -> Node:
    choices = list(values)
    listed = ", ".join(_show(choice) for choice in choices)
    expected = f"one of {listed}"

    def matches(value: Any, choice: Any) -> bool:
        # True is not 1, and 1 is not 1.0's enum entry "1".
        return value == choice and type(value) is type(choice)

    def check(value: Any) -> Any:
        for choice in choices:
            if matches(value, choice):
                return convert(choice) if convert is not None else choice
        raise _fail("not allowed", expected, f"Must be {expected}.")

    json_types = tuple(dict.fromkeys(_json_type_of(choice) for choice in choices))
    return Node(check, {"enum": choices}, expected, json_types)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json_type_of(value: Any) -> str:
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
    return "object"


# ---------------------------------------------------------------------------
# Constraints


def _with_constraints(node: Node, rules: Constraints, where: str) -> Node:
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
        enum_node = _enum_of(choices, None)
        enum_check = enum_node.check

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
        failures: List[_Failure] = []
        for rule in checks:
            try:
                rule(value)
            except Invalid as invalid:
                failures += invalid.failures
        if failures:
            raise Invalid(failures)
        return value

    return Node(check, schema, node.described, node.json_types)


def _bound_check(name: str, bound: float) -> Callable[[Any], None]:
    if name == "minimum":
        expected = f"at least {bound}"

        def check(value: Any) -> None:
            if value < bound:
                raise _fail("too small", expected)

    elif name == "maximum":
        expected = f"at most {bound}"

        def check(value: Any) -> None:
            if value > bound:
                raise _fail("too large", expected)

    elif name == "exclusive_minimum":
        expected = f"greater than {bound}"

        def check(value: Any) -> None:
            if value <= bound:
                raise _fail("too small", expected)

    else:
        expected = f"less than {bound}"

        def check(value: Any) -> None:
            if value >= bound:
                raise _fail("too large", expected)

    return check


def _plural(size: int, unit: str) -> str:
    return f"{size} {unit}" + ("" if size == 1 else "s")


def _size_check(name: str, size: int, unit: str) -> Callable[[Any], None]:
    if name.startswith("min"):
        expected = f"at least {_plural(size, unit)}"
        reason = "too short"

        def check(value: Any) -> None:
            if len(value) < size:
                raise _fail(reason, expected, f"Must be {expected} long.")

    else:
        expected = f"at most {_plural(size, unit)}"
        reason = "too long"

        def check(value: Any) -> None:
            if len(value) > size:
                raise _fail(reason, expected, f"Must be {expected} long.")

    return check


def _pattern_check(compiled: Pattern[str]) -> Callable[[Any], None]:
    expected = f"matching {compiled.pattern}"

    def check(value: Any) -> None:
        if compiled.fullmatch(value) is None:
            raise _fail("no match", expected, f"Must match {compiled.pattern}.")

    return check


# ---------------------------------------------------------------------------
# Objects


@dataclass(frozen=True)
class _Field:
    name: str
    key: str
    check: Check
    required: bool
    default: Any
    described: str


def _object(
    fields: Sequence[_Field],
    allow_extra: bool,
    build: Optional[Callable[[Dict[str, Any]], Any]],
    schema: Dict[str, Any],
    described: str = "object",
) -> Node:
    names = frozenset(field.name for field in fields)
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
            raise _fail("wrong type", "object", "Must be of type object")
        failures: Optional[List[_Failure]] = None
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
                        _Failure(
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
                if key not in names and key not in out:
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
            raise _fail("wrong type", "object", "Must be of type object")
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


def _object_schema(
    properties: Dict[str, Dict[str, Any]], required: List[str], allow_extra: bool
) -> Dict[str, Any]:
    schema: Dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if not allow_extra:
        schema["additionalProperties"] = False
    return schema


def compile_fields(
    entries: Sequence[Any],
    where: str,
    *,
    allow_extra: bool = True,
    normalise: Optional[Callable[[Any, str], Arg]] = None,
) -> Tuple[Node, Tuple[Arg, ...]]:
    """
    The object node of a list of entries (:class:`Arg` or ``(name, type[,
    optional])`` tuples), and the entries as :class:`Arg`.

    :raises APIDefinitionError: an entry is malformed; the text names
        ``where`` and the argument.
    """
    args = tuple(
        normalise(entry, where) if normalise else as_arg(entry, where)
        for entry in entries
    )
    fields = []
    properties: Dict[str, Dict[str, Any]] = {}
    required = []
    seen = set()
    for arg in args:
        if arg.name in seen:
            raise APIDefinitionError(f"{where}: {arg.name!r} is declared twice")
        seen.add(arg.name)
        node = arg_node(arg, f"{where}: {arg.name!r}")
        fields.append(
            _Field(
                arg.name, arg.key, node.check, arg.required, arg.default, node.described
            )
        )
        properties[arg.name] = node.schema
        if arg.required:
            required.append(arg.name)
    keys = [arg.key for arg in args]
    if len(set(keys)) != len(keys):
        raise APIDefinitionError(f"{where}: two arguments are renamed to the same key")
    schema = _object_schema(properties, required, allow_extra)
    return _object(fields, allow_extra, None, schema), args


def as_arg(entry: Any, where: str) -> Arg:
    """An entry of a declaration list as an :class:`Arg`."""
    if isinstance(entry, Arg):
        arg = entry
    elif isinstance(entry, (tuple, list)) and len(entry) in (2, 3):
        optional = entry[2] if len(entry) == 3 else False
        if not (isinstance(optional, int) and optional in (True, False)):
            raise APIDefinitionError(
                f"{where}: the flag of {entry[0]!r} must be ARG_OPTIONAL (True) "
                "or ARG_REQUIRED (False)"
            )
        arg = Arg(entry[0], entry[1], required=not optional)
    else:
        raise APIDefinitionError(
            f"{where}: entries are Arg(...) or (name, type[, ARG_OPTIONAL]), "
            f"not {entry!r}"
        )
    if not isinstance(arg.name, str) or not arg.name:
        raise APIDefinitionError(f"{where}: argument name {arg.name!r} is not a string")
    if arg.rename is not None and not (isinstance(arg.rename, str) and arg.rename):
        raise APIDefinitionError(f"{where}: {arg.name!r}: rename must be a string")
    return arg


def arg_node(arg: Arg, where: str) -> Node:
    """The node checking one argument: its type, rules, default, converter."""
    node = compile_type(arg.type, where, arg.constraints.allow_extra)
    node = _with_constraints(node, arg.constraints, where)
    if arg.default is not MISSING:
        try:
            node.check(copy.deepcopy(arg.default))
        except Invalid:
            raise APIDefinitionError(
                f"{where}: the default {arg.default!r} is not {_a(node.described)} "
                "the rules accept"
            ) from None
        try:
            default_schema = _json_ready(arg.default)
        except TypeError:
            default_schema = None
        if default_schema is not None or arg.default is None:
            node = Node(
                node.check,
                {**node.schema, "default": default_schema},
                node.described,
                node.json_types,
            )
    if arg.convert is not None:
        if not callable(arg.convert):
            raise APIDefinitionError(f"{where}: convert must be callable")
        node = _converted(node, arg.convert, arg.expected)
    return node


def _json_ready(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return _json_ready(value.value)
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _json_ready(dataclasses.asdict(value))
    raise TypeError(value)


def _converted(node: Node, convert: Callable[[Any], Any], expected: str) -> Node:
    base = node.check
    fallback = (
        expected or f"{_a(node.described)} {getattr(convert, '__name__', '')} accepts"
    )

    def check(value: Any) -> Any:
        value = base(value)
        try:
            return convert(value)
        except (ValueError, TypeError) as e:
            said = expected or clip(str(e)) or fallback
            raise _fail("invalid", said, f"Must be {said}.") from None

    schema = dict(node.schema)
    if expected:
        schema.setdefault("description", expected)
    return Node(check, schema, node.described, node.json_types)


def dataclass_node(cls: type, where: str, allow_extra: bool = True) -> Node:
    try:
        module = sys.modules.get(cls.__module__)
        hints = typing.get_type_hints(
            cls, globalns=vars(module) if module is not None else {}, include_extras=True
        )
    except Exception as e:
        raise APIDefinitionError(
            f"{where}: the annotations of {cls.__qualname__} cannot be read: {e}"
        ) from None
    fields = []
    properties: Dict[str, Dict[str, Any]] = {}
    required = []
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        default: Any = MISSING
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        node = compile_type(
            hints[field.name], f"{where}: {cls.__qualname__}.{field.name}"
        )
        described = field.metadata.get("description") if field.metadata else None
        schema = dict(node.schema)
        if described:
            schema["description"] = described
        if default is not MISSING:
            with contextlib.suppress(TypeError):
                schema["default"] = _json_ready(default)
        properties[field.name] = schema
        is_required = default is MISSING
        if is_required:
            required.append(field.name)
        fields.append(
            _Field(
                field.name, field.name, node.check, is_required, default, node.described
            )
        )
    schema = _object_schema(properties, required, allow_extra)
    schema["title"] = cls.__name__
    doc = (cls.__doc__ or "").strip()
    if doc and not doc.startswith(cls.__name__ + "("):
        schema["description"] = doc
    init_names = [field.name for field in fields]

    def build(values: Dict[str, Any]) -> Any:
        return cls(**{name: values[name] for name in init_names if name in values})

    return _object(fields, allow_extra, build, schema, cls.__name__)


def _enum_class_node(cls: Type[enum.Enum]) -> Node:
    members = list(cls)
    node = _enum_of([member.value for member in members], cls)
    return Node(
        node.check,
        {"enum": [m.value for m in members], "title": cls.__name__},
        node.described,
        node.json_types,
    )


def _is_pydantic_model(tp: Any) -> bool:
    module = sys.modules.get("pydantic")
    return (
        module is not None and isinstance(tp, type) and issubclass(tp, module.BaseModel)
    )


def _pydantic_node(model: Any, where: str) -> Node:
    from ._pydantic import pydantic_node  # only where pydantic is in use

    return pydantic_node(model, where)


_ORIGIN_LIST = (list, typing.List, Sequence, typing.Sequence)


def compile_type(tp: Any, where: str, allow_extra: Optional[bool] = None) -> Node:
    """
    The :class:`Node` checking values of the declared type ``tp``.

    :param allow_extra: for a list of entries or a dataclass, whether
        fields they do not declare are accepted (``True`` unless refused).

    :raises APIDefinitionError: ``tp`` is not a type Shiji can check; the
        text starts with ``where``.
    """
    if tp is None or tp is type(None):
        return _null()
    if tp is int:
        return _exact(int, "integer", "int")
    if tp is float:
        return _number()
    if tp is str:
        return _exact(str, "string", "str")
    if tp is bool:
        return _boolean()
    if tp is list:
        return _list_of(None)
    if tp is dict:
        return _exact(dict, "object", "dict")
    if tp is object or tp is Any:
        return _anything()
    if isinstance(tp, tuple):
        if not tp:
            raise APIDefinitionError(
                f"{where}: an empty tuple of types accepts nothing"
            )
        return _spec_union(tp, where)
    if isinstance(tp, list):
        return compile_fields(tp, where, allow_extra=allow_extra is not False)[0]
    if isinstance(tp, type) and issubclass(tp, ObjectSchema):
        extra = tp.allow_extra if allow_extra is None else allow_extra
        return compile_fields(tp.entries, where, allow_extra=extra)[0]
    if isinstance(tp, dict):
        return compile_json_schema(tp, where)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum_class_node(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return dataclass_node(tp, where, allow_extra is not False)
    if _is_pydantic_model(tp):
        return _pydantic_node(tp, where)
    origin = typing.get_origin(tp)
    arguments = typing.get_args(tp)
    if origin is typing.Annotated:
        rules = [extra for extra in tp.__metadata__ if isinstance(extra, Constraints)]
        refused = [r.allow_extra for r in rules if r.allow_extra is not None]
        node = compile_type(arguments[0], where, refused[-1] if refused else None)
        for extra in tp.__metadata__:
            if isinstance(extra, Constraints):
                node = _with_constraints(node, extra, where)
        return node
    if origin is Union or _is_union_type(tp):
        return _union([compile_type(argument, where) for argument in arguments])
    if origin is typing.Literal:
        return _enum_of(list(arguments), None)
    if origin in _ORIGIN_LIST or origin is list:
        if len(arguments) != 1:
            raise APIDefinitionError(f"{where}: {tp!r} needs one item type")
        return _list_of(compile_type(arguments[0], where))
    if origin in (dict, typing.Dict, Mapping):
        if len(arguments) != 2 or arguments[0] is not str:
            raise APIDefinitionError(
                f"{where}: {tp!r}: JSON objects have string keys (Dict[str, X])"
            )
        return _dict_of(compile_type(arguments[1], where))
    if _plain_class(tp):
        # Any other class is checked as the original Shiji checked it.
        return _classes((tp,))
    raise APIDefinitionError(f"{where}: {tp!r} is not a type Shiji can check")


_CLASS_SCHEMA_TYPES = {
    int: "integer",
    float: "number",
    str: "string",
    bool: "boolean",
    list: "array",
    tuple: "array",
    dict: "object",
    type(None): "null",
}


def _plain_class(tp: Any) -> bool:
    return (
        isinstance(tp, type)
        and not issubclass(tp, ObjectSchema)
        and not dataclasses.is_dataclass(tp)
        and not issubclass(tp, enum.Enum)
        and not _is_pydantic_model(tp)
    )


def _classes(types: Tuple[type, ...]) -> Node:
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
        raise _fail("wrong type", described, f"Must be of type {described}")

    names = [_CLASS_SCHEMA_TYPES.get(t) for t in types]
    json_types: Tuple[str, ...] = ()
    schema: Dict[str, Any] = {}
    if all(names):
        unique = list(dict.fromkeys(n for n in names if n is not None))
        schema = {"type": unique[0] if len(unique) == 1 else unique}
        json_types = tuple(unique)
    return Node(check, schema, described, json_types)


def _spec_union(types: Tuple[Any, ...], where: str) -> Node:
    if all(_plain_class(each) for each in types):
        return _classes(types)
    nodes = [compile_type(each, where) for each in types]
    return nodes[0] if len(nodes) == 1 else _union(nodes)


def _is_union_type(tp: Any) -> bool:
    union_type = getattr(__import__("types"), "UnionType", None)
    return union_type is not None and isinstance(tp, union_type)


# ---------------------------------------------------------------------------
# JSON Schema

_SCHEMA_TYPES = {
    "integer": lambda: _exact(int, "integer", "int"),
    "number": _number,
    "string": lambda: _exact(str, "string", "str"),
    "boolean": _boolean,
    "null": _null,
    "array": lambda: _list_of(None),
    "object": lambda: _exact(dict, "object", "dict"),
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
        node = _union([compile_json_schema(option, where) for option in options])
    elif "enum" in schema or "const" in schema:
        choices = schema["enum"] if "enum" in schema else [schema["const"]]
        if not isinstance(choices, list) or not choices:
            raise APIDefinitionError(f"{where}: enum must be a non-empty list")
        node = _enum_of(choices, None)
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
    node = _with_constraints(node, rules, where)
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
            return _anything()
    names = [declared] if isinstance(declared, str) else declared
    if not isinstance(names, list) or not names:
        raise APIDefinitionError(f"{where}: type must be a name or a list of names")
    nodes = []
    for name in names:
        if name not in _SCHEMA_TYPES:
            raise APIDefinitionError(f"{where}: {name!r} is not a JSON Schema type")
        if name == "object":
            nodes.append(_json_schema_object(schema, where))
        elif name == "array" and "items" in schema:
            nodes.append(_list_of(compile_json_schema(schema["items"], f"{where}[]")))
        else:
            nodes.append(_SCHEMA_TYPES[name]())
    return nodes[0] if len(nodes) == 1 else _union(nodes)


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
            _Field(name, name, node.check, name in required, default, node.described)
        )
    for name in required:
        if name not in properties:
            fields.append(_Field(name, name, _anything().check, True, MISSING, "value"))
    if isinstance(extra, Mapping):
        extra_node = compile_json_schema(extra, f"{where}.*")
        base = _object(fields, True, None, {})
        known = frozenset(properties)
        extra_check = extra_node.check

        def check(value: Any) -> Any:
            failures: List[_Failure] = []
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
    return _object(fields, extra, None, {}, "object")
