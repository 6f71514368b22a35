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
import sys
import typing
from typing import (
    Any,
    Callable,
    Dict,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    Union,
)

from ._errors import APIDefinitionError, clip
from ._field_errors import FieldError, Invalid, a_or_an, fail
from ._json_schema import compile_json_schema
from ._nodes import (
    MISSING,
    Node,
    ObjectField,
    anything,
    boolean,
    classes_node,
    dict_of,
    enum_node,
    exact,
    list_of,
    null,
    number,
    object_node,
    object_schema,
    union,
)
from ._rules import CONSTRAINT_NAMES, Constraints, with_constraints

__all__ = [
    "MISSING",
    "Arg",
    "Constraints",
    "FieldError",
    "Invalid",
    "Node",
    "Object",
    "ObjectSchema",
    "arg_default",
    "arg_node",
    "as_arg",
    "compile_fields",
    "compile_json_schema",
    "compile_type",
    "dataclass_node",
]


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
        unknown = sorted(set(constraints) - set(CONSTRAINT_NAMES))
        if unknown:
            raise TypeError(
                f"Arg {name!r}: unknown option {unknown[0]!r}; the options are "
                "required, default, convert, expected, rename, "
                + ", ".join(CONSTRAINT_NAMES)
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
            ObjectField(
                arg.name,
                arg.key,
                node.check,
                arg.required,
                arg_default(arg, node, f"{where}: {arg.name!r}"),
                node.described,
            )
        )
        properties[arg.name] = node.schema
        if arg.required:
            required.append(arg.name)
    keys = [arg.key for arg in args]
    if len(set(keys)) != len(keys):
        raise APIDefinitionError(f"{where}: two arguments are renamed to the same key")
    schema = object_schema(properties, required, allow_extra)
    return object_node(fields, allow_extra, None, schema), args


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
    node = with_constraints(node, arg.constraints, where)
    if arg.default is not MISSING:
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


def arg_default(arg: Arg, node: Node, where: str) -> Any:
    """
    The default of ``arg`` as the handler gets it: checked and converted
    by ``node`` as a value sent would be (an ``Enum`` member stands for its
    value); ``MISSING`` if there is none.

    :raises APIDefinitionError: the declaration refuses its own default.
    """
    if arg.default is MISSING:
        return MISSING
    given = arg.default.value if isinstance(arg.default, enum.Enum) else arg.default
    try:
        return node.check(copy.deepcopy(given))
    except Invalid as invalid:
        sentence = invalid.field_errors("body")[0].sentence()
        raise APIDefinitionError(
            f"{where}: the default {arg.default!r} is refused by its own "
            f"declaration: {sentence}"
        ) from None


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
        expected
        or f"{a_or_an(node.described)} {getattr(convert, '__name__', '')} accepts"
    )

    def check(value: Any) -> Any:
        value = base(value)
        try:
            return convert(value)
        except (ValueError, TypeError) as e:
            said = expected or clip(str(e)) or fallback
            raise fail("invalid", said, f"Must be {said}.") from None

    schema = dict(node.schema)
    if expected:
        schema.setdefault("description", expected)
    return Node(check, schema, node.described, node.json_types)


def dataclass_node(cls: type, where: str, allow_extra: bool = True) -> Node:
    try:
        module = sys.modules.get(cls.__module__)
        hints = typing.get_type_hints(
            cls,
            globalns=vars(module) if module is not None else {},
            include_extras=True,
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
            default = field.default_factory()  # for the documentation only
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
        # A field left out is left to the dataclass, whose own default (or
        # default_factory, called for each instance) fills it.
        fields.append(
            ObjectField(
                field.name, field.name, node.check, is_required, MISSING, node.described
            )
        )
    init_vars = [
        name for name, hint in hints.items() if isinstance(hint, dataclasses.InitVar)
    ]
    if init_vars:
        raise APIDefinitionError(
            f"{where}: {cls.__qualname__}.{init_vars[0]} is an InitVar, which "
            "Shiji cannot fill from a JSON object"
        )
    schema = object_schema(properties, required, allow_extra)
    schema["title"] = cls.__name__
    doc = (cls.__doc__ or "").strip()
    if doc and not doc.startswith(cls.__name__ + "("):
        schema["description"] = doc
    init_names = [field.name for field in fields]

    def build(values: Dict[str, Any]) -> Any:
        try:
            return cls(**{name: values[name] for name in init_names if name in values})
        except (ValueError, TypeError) as e:
            # __post_init__ refusing what the fields allow.
            said = clip(str(e)) or f"a valid {cls.__name__}"
            raise fail("invalid", said, f"Must be {said}.") from None

    return object_node(fields, allow_extra, build, schema, cls.__name__)


def _enum_class_node(cls: Type[enum.Enum]) -> Node:
    members = list(cls)
    node = enum_node([member.value for member in members], cls)
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
        return null()
    if tp is int:
        return exact(int, "integer", "int")
    if tp is float:
        return number()
    if tp is str:
        return exact(str, "string", "str")
    if tp is bool:
        return boolean()
    if tp is list:
        return list_of(None)
    if tp is dict:
        return exact(dict, "object", "dict")
    if tp is object or tp is Any:
        return anything()
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
    if allow_extra is not None and (isinstance(tp, dict) or _is_pydantic_model(tp)):
        raise APIDefinitionError(
            f"{where}: allow_extra applies to entries and dataclasses; a JSON "
            "Schema says additionalProperties, a pydantic model extra='forbid'"
        )
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
                node = with_constraints(node, extra, where)
        return node
    if origin is Union or _is_union_type(tp):
        return union([compile_type(argument, where) for argument in arguments])
    if origin is typing.Literal:
        return enum_node(list(arguments), None)
    if origin in _ORIGIN_LIST or origin is list:
        if len(arguments) != 1:
            raise APIDefinitionError(f"{where}: {tp!r} needs one item type")
        return list_of(compile_type(arguments[0], where))
    if origin in (dict, typing.Dict, Mapping):
        if len(arguments) != 2 or arguments[0] is not str:
            raise APIDefinitionError(
                f"{where}: {tp!r}: JSON objects have string keys (Dict[str, X])"
            )
        return dict_of(compile_type(arguments[1], where))
    if _plain_class(tp):
        # Any other class is checked as the original Shiji checked it.
        return classes_node((tp,))
    raise APIDefinitionError(f"{where}: {tp!r} is not a type Shiji can check")


def _plain_class(tp: Any) -> bool:
    return (
        isinstance(tp, type)
        and not issubclass(tp, ObjectSchema)
        and not dataclasses.is_dataclass(tp)
        and not issubclass(tp, enum.Enum)
        and not _is_pydantic_model(tp)
    )


def _spec_union(types: Tuple[Any, ...], where: str) -> Node:
    if all(_plain_class(each) for each in types):
        return classes_node(types)
    nodes = [compile_type(each, where) for each in types]
    return nodes[0] if len(nodes) == 1 else union(nodes)


def _is_union_type(tp: Any) -> bool:
    union_type = getattr(__import__("types"), "UnionType", None)
    return union_type is not None and isinstance(tp, union_type)
