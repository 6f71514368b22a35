"""
``json_arguments``: the JSON body of a call, checked by a declaration
compiled when the module declaring it is imported.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import (
    Any,
    Callable,
    Dict,
    Tuple,
)

from . import _json
from ._arguments import ARG_OPTIONAL, ARG_REQUIRED, check_content_type, refuse, where
from ._declarations import (
    Described,
    Handler,
    JSONArgument,
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
    Arg,
    Invalid,
    Node,
    arg_node,
    compile_fields,
    compile_type,
    dataclass_node,
)

__all__ = ["json_arguments"]


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
        # way there is (the object node's loop, in line).
        compiled = [(arg, arg_node(arg, here)) for arg in args] if original else []
        fields = tuple((arg.name, node.check, arg.required) for arg, node in compiled)
        kinds = {arg.name: node.described for arg, node in compiled}

        def read_body(request: APIRequest) -> Any:
            # The original form's wrapper below does the same in line: it
            # is the benchmark's hot path, and a call costs there.
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
                failures = None
                for name, each, required in fields:
                    if name in body:
                        try:
                            body[name] = each(body[name])
                        except Invalid as invalid:
                            failures = (failures or []) + invalid.under(name)
                    elif required:
                        failures = (failures or []) + Invalid.missing(name, kinds[name])
                if failures:
                    raise refuse(request, Invalid(failures), "body", original)
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
    if not allow_extra:
        raise APIDefinitionError(
            f"{here}: allow_extra applies to entries and dataclasses; a JSON "
            "Schema says additionalProperties, a pydantic model extra='forbid'"
        )
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
