"""
Arguments sent as text (the query string, the route's named groups,
request headers): ``url_arguments``, ``path_arguments`` and
``header_arguments``, parsed by their declared types and checked by the
same rules as JSON arguments.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import functools
import math
import re
import typing
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from ._arguments import check_content_type, refuse, where
from ._declarations import (
    Described,
    Handler,
    Parameter,
    declare,
)
from ._errors import (
    APIDefinitionError,
    CharsetNotUTF8Error,
    ContentTypeError,
    ValueError,
)
from ._request import APIRequest
from ._schema import (
    MISSING,
    Arg,
    Constraints,
    Invalid,
    Node,
    arg_default,
    arg_node,
    as_arg,
)

__all__ = ["header_arguments", "path_arguments", "url_arguments"]


_INTEGER = re.compile(r"[+-]?[0-9]{1,100}")


_FLOAT = re.compile(
    r"[+-]?(?:[0-9]{1,100}(?:\.[0-9]{0,100})?|\.[0-9]{1,100})(?:[eE][+-]?[0-9]{1,4})?"
)


_TRUE = frozenset(("true", "1"))


_FALSE = frozenset(("false", "0"))


TextParser = Callable[[str], Any]


def _unwrap(tp: Any) -> Tuple[Any, bool]:
    """``tp`` without ``Annotated`` and ``Optional``; whether it was
    optional."""
    optional = False
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin is Union:
            members = [t for t in typing.get_args(tp) if t is not type(None)]
            optional = optional or len(members) < len(typing.get_args(tp))
            if len(members) != 1:
                return tp, optional
            tp = members[0]
        else:
            return tp, optional


def _text_parser(tp: Any, here: str) -> TextParser:
    """
    How one text value becomes a value of ``tp`` (before ``tp``'s own
    check): numbers and booleans are parsed, enums looked up; what cannot
    be parsed is left as text, for the check to refuse.
    """
    tp, _ = _unwrap(tp)
    if tp is int:

        def parse_int(text: str) -> Any:
            return int(text) if _INTEGER.fullmatch(text) else text

        return parse_int
    if tp is float:

        def parse_float(text: str) -> Any:
            if _FLOAT.fullmatch(text):
                value = float(text)
                if math.isfinite(value):
                    return value
            return text

        return parse_float
    if tp is bool:

        def parse_bool(text: str) -> Any:
            lowered = text.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            return text

        return parse_bool
    choices: Optional[Sequence[Any]] = None
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        choices = [member.value for member in tp]
    elif typing.get_origin(tp) is typing.Literal:
        choices = typing.get_args(tp)
    if choices is not None:
        lookup = {_as_text(choice): choice for choice in choices}
        return lambda text: lookup.get(text, text)
    if tp is str or tp is object or tp is typing.Any:
        return lambda text: text
    if isinstance(tp, tuple) and all(t in (int, float, str, bool) for t in tp):
        parsers = [_text_parser(t, here) for t in tp if t is not str]

        def parse_any(text: str) -> Any:
            for parse in parsers:
                value = parse(text)
                if value is not text:
                    return value
            return text

        return parse_any
    raise APIDefinitionError(
        f"{here}: {tp!r} cannot be sent as text; use str, int, float, bool, "
        "an Enum, a Literal, or a list of one of them"
    )


def _as_text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


@dataclasses.dataclass(frozen=True)
class _TextArgument:
    """One argument sent as text, compiled."""

    name: str
    key: str
    many: bool
    parse: TextParser
    node: Node
    required: bool
    default: Any
    arg: Arg


def _text_argument(arg: Arg, here: str) -> _TextArgument:
    where_arg = f"{here}: {arg.name!r}"
    tp, optional = _unwrap(arg.type)
    many = typing.get_origin(tp) in (list, typing.List, Sequence) or tp is list
    item_types = typing.get_args(tp) or (str,)
    item = item_types[0] if many else tp
    parse = _text_parser(item, where_arg)
    required = arg.required and not optional
    if optional and arg.default is MISSING and arg.required:
        arg = Arg(
            arg.name,
            arg.type,
            required=False,
            default=None,
            convert=arg.convert,
            expected=arg.expected,
            rename=arg.rename,
            **_rules(arg.constraints),
        )
    node = arg_node(arg, where_arg)
    return _TextArgument(
        arg.name,
        arg.key,
        many,
        parse,
        node,
        required,
        arg_default(arg, node, where_arg),
        arg,
    )


def _rules(constraints: Constraints) -> Dict[str, Any]:
    return {
        field.name: getattr(constraints, field.name)
        for field in dataclasses.fields(constraints)
        if getattr(constraints, field.name) not in (None, "")
    }


def _text_entry(entry: Any, here: str) -> Arg:
    if isinstance(entry, str):
        return Arg(entry, str)
    return as_arg(entry, here)


def _compile_text(
    entries: Sequence[Any], here: str, any_case: bool = False
) -> Tuple[_TextArgument, ...]:
    """
    The entries compiled; ``any_case``: their names match in any case (as
    header names do; query and path names are case-sensitive).
    """
    compiled = []
    seen = set()
    keys = set()
    for entry in entries:
        arg = _text_entry(entry, here)
        name = arg.name.lower() if any_case else arg.name
        if name in seen:
            raise APIDefinitionError(f"{here}: {arg.name!r} is declared twice")
        if arg.key in keys:
            raise APIDefinitionError(
                f"{here}: two arguments are given under the key {arg.key!r}"
            )
        seen.add(name)
        keys.add(arg.key)
        compiled.append(_text_argument(arg, here))
    return tuple(compiled)


def _read_text(
    arguments: Tuple[_TextArgument, ...],
    values_of: Callable[[str], Optional[List[str]]],
) -> Dict[str, Any]:
    """
    The arguments read by ``values_of(name)`` (the texts sent, or None),
    converted and checked.

    :raises Invalid: with every failing argument.
    """
    found: Dict[str, Any] = {}
    failures: List[Any] = []
    for argument in arguments:
        texts = values_of(argument.name)
        if not texts:
            if argument.required:
                failures += Invalid.missing(argument.name, argument.node.described)
            elif argument.default is not MISSING:
                found[argument.key] = copy.deepcopy(argument.default)
            continue
        # Another decorator (paged_results) may have put numbers there.
        if argument.many:
            value: Any = [argument.parse(str(text)) for text in texts]
        else:
            value = argument.parse(str(texts[0]))
        try:
            found[argument.key] = argument.node.check(value)
        except Invalid as invalid:
            failures += invalid.under(argument.name)
    if failures:
        raise Invalid(failures)
    return found


def _parameters(
    arguments: Tuple[_TextArgument, ...], location: str
) -> Tuple[Parameter, ...]:
    return tuple(
        Parameter(
            argument.name,
            location,
            argument.node.schema,
            argument.required,
            argument.arg.constraints.description,
        )
        for argument in arguments
    )


def _missing(
    request: APIRequest, names: Sequence[str], args: Dict[str, Any]
) -> ValueError:
    """The ``ValueError`` of the original form's missing query arguments."""
    return refuse(
        request,
        Invalid(
            [
                f
                for name in names
                if name not in args
                for f in Invalid.missing(name, "str")
            ]
        ),
        "query",
        original=True,
    )


def url_arguments(
    names: Sequence[Any], content_type: str = ""
) -> Callable[[Handler], Handler]:
    """
    Require query-string arguments.

    :param names: the arguments: a name alone (the original Shiji's form:
        the argument must be present, its value is not checked), or
        ``(name, type[, ARG_OPTIONAL])`` or an :class:`Arg` (typed: ``int``,
        ``float``, ``bool`` from ``true``/``false``/``1``/``0``, ``str``, an
        ``Enum`` or ``Literal``, or a ``List`` of one, from repeated keys;
        with defaults and rules). Typed arguments are given, converted, in
        ``request.query_args`` (a scalar from the first value sent, a list
        from every value); ``request.args`` keeps the text sent.
    :param content_type: if given, the media type the request must be sent
        with, checked as :func:`json_arguments` checks it
        (``ContentTypeError``, HTTP 406; ``CharsetNotUTF8Error``, 409).

    A missing or invalid argument gives ``ValueError`` (HTTP 409): ``Invalid
    value for argument 'name'. Argument is missing.``

    :raises TypeError: (when applied) ``names`` is a string, or holds
        something other than names, tuples and ``Arg``.
    """
    if isinstance(names, str):
        raise TypeError("url_arguments takes a list of names, not a string")
    entries = tuple(names)
    for name in entries:
        well_formed = isinstance(name, (str, Arg)) or (
            isinstance(name, (tuple, list))
            and len(name) in (2, 3)
            and isinstance(name[0], str)
        )
        if not well_formed:
            raise TypeError(
                "url_arguments: argument names are strings (or typed entries: "
                f"(name, type[, ARG_OPTIONAL]) or Arg), not {name!r}"
            )
    expected_media = content_type.lower()
    present_only = tuple(name for name in entries if isinstance(name, str))
    original = len(present_only) == len(entries)

    def decorator(handler: Handler) -> Handler:
        here = where(handler, "url_arguments")
        compiled = _compile_text(entries, here)
        typed = tuple(
            argument
            for argument, entry in zip(compiled, entries)
            if not isinstance(entry, str)
        )

        @functools.wraps(handler)
        def wrapper(self: Any, request: APIRequest, *a: Any, **kw: Any) -> Any:
            if expected_media:
                check_content_type(request, expected_media)
            args = request.args
            if not typed:
                for name in present_only:
                    if name not in args:
                        raise _missing(request, present_only, args)
                return handler(self, request, *a, **kw)
            try:
                found = _read_text(compiled, args.get)
            except Invalid as invalid:
                raise refuse(request, invalid, "query", original) from None
            request.query_args = {
                **request.query_args,
                **{
                    argument.key: found[argument.key]
                    for argument in typed
                    if argument.key in found
                },
            }
            return handler(self, request, *a, **kw)

        errors: Tuple[type, ...] = (ValueError,)
        if expected_media:
            errors += (ContentTypeError, CharsetNotUTF8Error)
        return declare(
            wrapper,
            handler,
            described=Described(
                parameters=_parameters(compiled, "query"), errors=errors
            ),
            url_arguments=tuple(argument.name for argument in compiled),
        )

    return decorator


def path_arguments(arguments: Sequence[Any]) -> Callable[[Handler], Handler]:
    """
    Convert and check the named groups of the call's routes.

    :param arguments: ``(name, type)`` or :class:`Arg` entries, typed as
        :func:`url_arguments`'s are; each name must be a named group of the
        call's routes (checked when the call's router is built).

    ``self.url_matches`` (and ``request.url_matches``) then hold the
    converted values: ``self.url_matches["timestamp"]`` is an ``int``. A
    group the matching route does not have is left out, or given its
    default. An invalid one gives ``ValueError`` (HTTP 409).
    """
    entries = tuple(arguments)

    def decorator(handler: Handler) -> Handler:
        here = where(handler, "path_arguments")
        compiled = tuple(
            dataclasses.replace(argument, required=False)
            for argument in _compile_text(entries, here)
        )
        names = [argument.name for argument in compiled]

        def check_call(call: type, method: str) -> None:
            groups = call.route_groups()  # type: ignore[attr-defined]
            for name in names:
                if name not in groups:
                    raise APIDefinitionError(
                        f"{call.__module__}.{call.__qualname__}.{method}: "
                        f"path_arguments: {name!r} is not a named group of the "
                        f"call's routes ({', '.join(sorted(groups)) or 'none'})"
                    )

        @functools.wraps(handler)
        def wrapper(self: Any, request: APIRequest, *a: Any, **kw: Any) -> Any:
            matches = request.url_matches

            def values_of(name: str) -> Optional[List[str]]:
                value = matches.get(name)
                return None if value is None else [value]

            try:
                found = _read_text(compiled, values_of)
            except Invalid as invalid:
                raise refuse(request, invalid, "path") from None
            converted = {**matches, **found}
            for argument in compiled:
                if argument.key != argument.name and argument.name in converted:
                    del converted[argument.name]
            request.url_matches = converted
            self.url_matches = converted
            return handler(self, request, *a, **kw)

        parameters = tuple(
            dataclasses.replace(parameter, required=True)
            for parameter in _parameters(compiled, "path")
        )
        return declare(
            wrapper,
            handler,
            described=Described(parameters=parameters, errors=(ValueError,)),
            call_check=check_call,
        )

    return decorator


def header_arguments(arguments: Sequence[Any]) -> Callable[[Handler], Handler]:
    """
    Read declared request headers, typed as :func:`url_arguments`'s
    arguments are, into ``request.header_args`` (by the name declared, or
    the ``rename``). Header names are matched without regard to case; a
    list type takes every value sent. A missing required header or an
    invalid one gives ``ValueError`` (HTTP 409).
    """
    entries = tuple(arguments)

    def decorator(handler: Handler) -> Handler:
        here = where(handler, "header_arguments")
        compiled = _compile_text(entries, here, any_case=True)
        raw_names = {
            argument.name: argument.name.lower().encode("ascii", "replace")
            for argument in compiled
        }

        @functools.wraps(handler)
        def wrapper(self: Any, request: APIRequest, *a: Any, **kw: Any) -> Any:
            def values_of(name: str) -> Optional[List[str]]:
                values = request.header_values(raw_names[name])
                return [value.decode("latin-1") for value in values] or None

            try:
                found = _read_text(compiled, values_of)
            except Invalid as invalid:
                raise refuse(request, invalid, "header") from None
            request.header_args = {**request.header_args, **found}
            return handler(self, request, *a, **kw)

        return declare(
            wrapper,
            handler,
            described=Described(
                parameters=_parameters(compiled, "header"), errors=(ValueError,)
            ),
        )

    return decorator
