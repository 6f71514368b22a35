"""
The argument decorators: a call's JSON body, query string, path and
headers, each checked by a declaration compiled when the module declaring it
is imported.

A refusal is one ``ValueError`` (HTTP 409) naming the first failing field in
the original Shiji's words, with every failing field in its field list.
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

from . import _json
from ._declarations import (
    Described,
    Handler,
    JSONArgument,
    PagingDeclaration,
    Parameter,
    RequestBody,
    declare,
)
from ._errors import (
    APIDefinitionError,
    CharsetNotUTF8Error,
    ContentTypeError,
    JSONDecodeError,
    RequestNotHashError,
    RequestTooLargeError,
    ValueError,
)
from ._request import APIRequest
from ._schema import (
    MISSING,
    Arg,
    Constraints,
    Invalid,
    Node,
    arg_node,
    as_arg,
    compile_fields,
    compile_type,
    dataclass_node,
)

__all__ = [
    "ARG_OPTIONAL",
    "ARG_REQUIRED",
    "header_arguments",
    "json_arguments",
    "paged_results",
    "path_arguments",
    "refuse",
    "url_arguments",
]

#: Third item of a ``json_arguments`` entry: the argument may be left out
#: (``True``, as in the original Shiji, so a literal ``True`` works too).
ARG_OPTIONAL = True
#: Third item of a ``json_arguments`` entry: the argument must be present
#: (the default; ``False``).
ARG_REQUIRED = False


def where(handler: Callable[..., Any], decorator: str) -> str:
    """How a declaration error names the call and the decorator."""
    return f"{handler.__module__}.{handler.__qualname__}: {decorator}"


def refuse(
    request: APIRequest, invalid: Invalid, location: str, original: bool = False
) -> ValueError:
    """
    The ``ValueError`` answering ``invalid``: the first failing field in
    its text, every failing field in its field list.

    :param original: the declaration is in the original Shiji's form, whose
        envelope lists no fields unless the router's ``field_errors`` says
        so (problem details list them anyway).
    """
    errors = invalid.field_errors(location)
    first = errors[0]
    error = ValueError(request, first.field, first.sentence(), fields=errors)
    if original:
        router = request.api_router
        error.fields_in_envelope = router is not None and router.settings.field_errors
    return error


# ---------------------------------------------------------------------------
# Content types


@functools.lru_cache(maxsize=256)
def _media_type(header: Optional[bytes]) -> Tuple[str, Optional[str]]:
    """
    The media type (lower case) and charset (lower case, or None) of a
    Content-Type header value (clients send few distinct ones: cached).
    """
    if header is None:
        return "", None
    media, *params = header.decode("latin-1").split(";")
    charset = None
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return media.strip().lower(), charset


def check_content_type(request: APIRequest, expected_media: str) -> None:
    """
    Refuse ``request`` unless its Content-Type is ``expected_media`` (lower
    case) with a UTF-8 charset, or without one where the router's
    ``strict_charset`` is off.

    :raises ContentTypeError: no Content-Type, or another media type.
    :raises CharsetNotUTF8Error: a charset other than UTF-8, or none under
        ``strict_charset``.
    """
    media, charset = _media_type(request.getHeader(b"content-type"))
    if media != expected_media:
        raise ContentTypeError(request)
    if charset is None:
        router = request.api_router
        if router is not None and router.strict_charset:
            raise CharsetNotUTF8Error(request)
    elif charset not in ("utf-8", "utf8"):
        raise CharsetNotUTF8Error(request)


# ---------------------------------------------------------------------------
# JSON bodies


def _is_declarable(tp: Any) -> bool:
    """Whether ``tp`` could be a type (checked in full when compiled)."""
    if isinstance(tp, tuple):
        return bool(tp) and all(_is_declarable(each) for each in tp)
    return (
        tp is None
        or isinstance(tp, (type, list, dict))
        or typing.get_origin(tp) is not None
    )


def _legacy_entry(entry: Any) -> Any:
    """
    Check an entry of ``json_arguments``'s list as the original Shiji's
    form would be checked, when the decorator is called.
    """
    if isinstance(entry, Arg):
        return entry
    if not isinstance(entry, (tuple, list)) or len(entry) not in (2, 3):
        raise TypeError(
            f"json_arguments entries are (name, type[, ARG_OPTIONAL]), not {entry!r}"
        )
    name, types = entry[0], entry[1]
    flag = entry[2] if len(entry) == 3 else ARG_REQUIRED
    if not isinstance(name, str):
        raise TypeError(f"json_arguments: argument name {name!r} is not a string")
    if not _is_declarable(types):
        raise TypeError(
            f"json_arguments: the type of {name!r} must be a type or a tuple of types"
        )
    if not isinstance(flag, int) or flag not in (ARG_OPTIONAL, ARG_REQUIRED):
        raise TypeError(
            f"json_arguments: the flag of {name!r} must be ARG_OPTIONAL (True) "
            "or ARG_REQUIRED (False)"
        )
    return entry


def _json_argument(arg: Arg) -> JSONArgument:
    types = arg.type if isinstance(arg.type, tuple) else (arg.type,)
    classes = tuple(t for t in types if isinstance(t, type))
    return JSONArgument(
        arg.name, classes if len(classes) == len(types) else (), not arg.required
    )


#: The errors reading a JSON body may answer with.
_BODY_ERRORS = (
    ContentTypeError,
    CharsetNotUTF8Error,
    JSONDecodeError,
    RequestNotHashError,
    ValueError,
    RequestTooLargeError,
)


def _is_model(declared: Any) -> bool:
    return isinstance(declared, (type, dict))


def json_arguments(
    arguments: Any,
    content_type: str = "application/json",
    *,
    allow_extra: bool = True,
    description: str = "",
) -> Callable[[Handler], Handler]:
    """
    Require a JSON object body holding the declared arguments.

    :param arguments: either a list of entries, each ``(name, type)``,
        ``(name, type, ARG_OPTIONAL)`` (the original Shiji's form) or an
        :class:`Arg` (with rules: ``Arg("zip", str, min_length=5)``); or a
        whole-body model: a dataclass, a pydantic v2 model, or a JSON
        Schema (a dict). Types may nest (see :mod:`shiji._schema`).
    :param content_type: the media type the body must be sent with. A charset
        parameter, if given, must be UTF-8 (and must be given at all when the
        router's ``strict_charset`` is on).
    :param allow_extra: whether fields the list does not declare are
        accepted (and kept in ``request.jsonArgs``); a model says so itself.
    :param description: what the body is, for the documentation.

    The checked object becomes ``request.jsonArgs`` (integers given for
    float arguments converted, defaults filled in, renamed arguments under
    their new keys); with a model, the model's instance is
    ``request.json_model`` and its fields, as a dict, ``request.jsonArgs``.
    Errors: ``ContentTypeError`` (HTTP 406), ``CharsetNotUTF8Error`` (409),
    ``JSONDecodeError`` (409) for a body that is not UTF-8 JSON,
    ``RequestNotHashError`` (409) for JSON that is not an object, and
    ``ValueError`` (409) naming the first missing, mistyped or invalid
    argument, with every failing field in its field list.
    """
    if isinstance(arguments, (str, bytes)):
        raise TypeError("json_arguments takes a list of entries or a model")
    model = _is_model(arguments)
    entries = () if model else tuple(_legacy_entry(entry) for entry in arguments)
    original = (
        not model and allow_extra and not any(isinstance(e, Arg) for e in entries)
    )
    expected_media = content_type.lower()

    def decorator(handler: Handler) -> Handler:
        here = where(handler, "json_arguments")
        if model:
            node = _model_node(arguments, here, allow_extra)
            args: Tuple[Arg, ...] = ()
        else:
            node, args = compile_fields(entries, here, allow_extra=allow_extra)
        check = node.check
        as_dict = _as_dict if model else None
        # The original form is checked in the wrapper itself, the cheapest
        # way there is; the first failure has the whole body checked again
        # to list every failing field.
        fields = tuple(
            (arg.name, arg_node(arg, here).check, arg.required)
            for arg in (args if original else ())
        )

        def read_body(request: APIRequest) -> Any:
            check_content_type(request, expected_media)
            content = request.content
            if content is None:  # the connection is gone
                raise JSONDecodeError(request)
            content.seek(0)
            try:
                body = _json.loads(content.read())
            except _json.JSONBodyError:
                raise JSONDecodeError(request) from None
            if body.__class__ is not dict:
                raise RequestNotHashError(request)
            return body

        def refuse_body(request: APIRequest, body: Any) -> ValueError:
            try:
                check(body)
            except Invalid as invalid:
                return refuse(request, invalid, "body", original)
            raise AssertionError("a failing body passed its check")

        if original:

            @functools.wraps(handler)
            def wrapper(self: Any, request: APIRequest, *a: Any, **kw: Any) -> Any:
                check_content_type(request, expected_media)
                content = request.content
                if content is None:  # the connection is gone
                    raise JSONDecodeError(request)
                content.seek(0)
                try:
                    body = _json.loads(content.read())
                except _json.JSONBodyError:
                    raise JSONDecodeError(request) from None
                if body.__class__ is not dict:
                    raise RequestNotHashError(request)
                try:
                    for name, each, required in fields:
                        if name in body:
                            body[name] = each(body[name])
                        elif required:
                            raise refuse_body(request, body)
                except Invalid:
                    raise refuse_body(request, body) from None
                request.jsonArgs = body
                return handler(self, request, *a, **kw)

        else:

            @functools.wraps(handler)
            def wrapper(self: Any, request: APIRequest, *a: Any, **kw: Any) -> Any:
                body = read_body(request)
                try:
                    checked = check(body)
                except Invalid as invalid:
                    raise refuse(request, invalid, "body", original) from None
                if as_dict is None:
                    request.jsonArgs = checked
                else:
                    request.json_model = checked
                    request.jsonArgs = as_dict(checked)
                return handler(self, request, *a, **kw)

        schema = dict(node.schema)
        if description:
            schema["description"] = description
        return declare(
            wrapper,
            handler,
            described=Described(
                body=RequestBody(content_type, schema, description),
                errors=_BODY_ERRORS,
            ),
            json_arguments=tuple(_json_argument(arg) for arg in args),
            json_content_type=content_type,
        )

    return decorator


def _model_node(model: Any, here: str, allow_extra: bool) -> Node:
    if isinstance(model, type) and dataclasses.is_dataclass(model):
        return dataclass_node(model, here, allow_extra)
    node = compile_type(model, here)
    if "object" not in node.json_types:
        raise APIDefinitionError(f"{here}: a request body's model must be an object")
    return node


def _as_dict(model: Any) -> Dict[str, Any]:
    if isinstance(model, dict):
        return model
    if dataclasses.is_dataclass(model) and not isinstance(model, type):
        return dataclasses.asdict(model)
    dump = getattr(model, "model_dump", None)
    if dump is not None:
        found: Dict[str, Any] = dump()
        return found
    raise TypeError(f"cannot read {model!r} as a dict")


# ---------------------------------------------------------------------------
# Arguments sent as text: the query string, the path, headers

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
        arg.name, arg.key, many, parse, node, required, arg.default, arg
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


def _compile_text(entries: Sequence[Any], here: str) -> Tuple[_TextArgument, ...]:
    compiled = []
    seen = set()
    for entry in entries:
        arg = _text_entry(entry, here)
        if arg.name.lower() in seen:
            raise APIDefinitionError(f"{here}: {arg.name!r} is declared twice")
        seen.add(arg.name.lower())
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
        if argument.many:
            value: Any = [argument.parse(text) for text in texts]
        else:
            value = argument.parse(texts[0])
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
        compiled = _compile_text(entries, here)
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


# ---------------------------------------------------------------------------
# Paging

_NOT_AN_INTEGER = "Argument must be an integer."
_NEGATIVE = "Argument must be 0 or greater."
#: Paging numbers beyond this are refused before they are converted (a
#: 5,000-digit number is no page, and converting it is work).
_MAX_PAGE_NUMBER = 10**18 - 1


def _paging_error(
    request: APIRequest, name: str, text: str, reason: str, expected: str
) -> ValueError:
    """A paging argument's error, in the original Shiji's words."""
    error = ValueError(
        request,
        name,
        text,
        fields=[{"field": name, "in": "query", "reason": reason, "expected": expected}],
    )
    router = request.api_router
    error.fields_in_envelope = router is not None and router.settings.field_errors
    return error


def _too_large(request: APIRequest, name: str, most: int) -> ValueError:
    return _paging_error(
        request,
        name,
        f"Argument must be {most} or less.",
        "too large",
        f"at most {most}",
    )


def _page_number(request: APIRequest, name: str, default: int, most: int) -> int:
    values = request.args.get(name)
    if not values:
        return default
    text = values[0]
    sign = text[:1] if text[:1] in ("-", "+") else ""
    digits = text[len(sign) :]
    if not (digits.isascii() and digits.isdigit()):
        raise _paging_error(request, name, _NOT_AN_INTEGER, "wrong type", "int")
    if len(digits.lstrip("0")) > len(str(_MAX_PAGE_NUMBER)):
        if sign == "-":
            raise _paging_error(request, name, _NEGATIVE, "too small", "at least 0")
        raise _too_large(request, name, most)
    number = int(text)
    if number < 0:
        raise _paging_error(request, name, _NEGATIVE, "too small", "at least 0")
    if number > most:
        raise _too_large(request, name, most)
    return number


def _paging_parameters(paging: PagingDeclaration) -> Tuple[Parameter, ...]:
    return (
        Parameter(
            "page",
            "query",
            {"type": "integer", "minimum": 0, "default": paging.default_page},
            False,
            "The zero-based page of results.",
        ),
        Parameter(
            "page_len",
            "query",
            {
                "type": "integer",
                "minimum": 0,
                "maximum": paging.max_page_len,
                "default": paging.default_page_len,
            },
            False,
            "How many results a page holds.",
        ),
    )


def paged_results(
    default_page: int = 0, default_page_len: int = 50, max_page_len: int = 100
) -> Callable[[Handler], Handler]:
    """
    Validate the paging arguments ``page`` and ``page_len`` of the query
    string, filling in defaults.

    ``page_len`` must be an integer from 0 to ``max_page_len`` and ``page``
    an integer ≥ 0 (checked in that order); otherwise ``ValueError`` (HTTP
    409) with the original Shiji's texts: ``Argument must be an integer.``,
    ``Argument must be 0 or greater.``, ``Argument must be N or less.``
    The handler then finds both as ints in ``request.args["page"][0]`` and
    ``request.args["page_len"][0]``. A ``page_len`` of 0 asks for no items
    (a count, say); what that means is the handler's to decide.

    :raises TypeError: (when applied) a default below 0, or
        ``default_page_len`` above ``max_page_len``.
    """
    if default_page < 0:
        raise TypeError(f"paged_results: default_page ({default_page}) cannot be < 0")
    if not 0 <= default_page_len <= max_page_len:
        raise TypeError(
            f"paged_results: default_page_len ({default_page_len}) must be "
            f"between 0 and max_page_len ({max_page_len})"
        )
    paging = PagingDeclaration(default_page, default_page_len, max_page_len)

    def decorator(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def wrapper(self: Any, request: APIRequest, *args: Any, **kwargs: Any) -> Any:
            page_len = _page_number(request, "page_len", default_page_len, max_page_len)
            page = _page_number(request, "page", default_page, _MAX_PAGE_NUMBER)
            request.args["page"] = [page]
            request.args["page_len"] = [page_len]
            return handler(self, request, *args, **kwargs)

        return declare(
            wrapper,
            handler,
            described=Described(
                parameters=_paging_parameters(paging), errors=(ValueError,)
            ),
            paged_results=paging,
        )

    return decorator
