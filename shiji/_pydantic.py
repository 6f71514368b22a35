"""
pydantic v2 models as Shiji types (when pydantic is installed): the model
checks the value, and its errors become Shiji's field errors.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

from pydantic import BaseModel, ValidationError

from ._errors import APIDefinitionError
from ._field_errors import FieldFailure, Invalid, wrong_type
from ._nodes import Node

__all__ = ["pydantic_node"]

#: pydantic's error types, as Shiji's reasons.
_REASONS = {
    "missing": "missing",
    "extra_forbidden": "unexpected",
    "greater_than": "too small",
    "greater_than_equal": "too small",
    "less_than": "too large",
    "less_than_equal": "too large",
    "string_too_short": "too short",
    "too_short": "too short",
    "string_too_long": "too long",
    "too_long": "too long",
    "literal_error": "not allowed",
    "enum": "not allowed",
    "string_pattern_mismatch": "no match",
    "finite_number": "wrong type",
}


def _reason(error_type: str) -> str:
    if error_type in _REASONS:
        return _REASONS[error_type]
    if error_type.endswith(("_type", "_parsing")):
        return "wrong type"
    return "invalid"


def _inline(schema: Any, definitions: Mapping[str, Any], seen: tuple) -> Any:
    """``schema`` with its ``$ref``s to ``$defs`` replaced by what they name."""
    if isinstance(schema, list):
        return [_inline(item, definitions, seen) for item in schema]
    if not isinstance(schema, dict):
        return schema
    reference = schema.get("$ref")
    if isinstance(reference, str) and reference.startswith("#/$defs/"):
        name = reference[len("#/$defs/") :]
        if name in seen:
            raise APIDefinitionError(
                f"the model {name} refers to itself; Shiji documents "
                "models without cycles"
            )
        return _inline(definitions[name], definitions, (*seen, name))
    return {
        key: _inline(value, definitions, seen)
        for key, value in schema.items()
        if key != "$defs"
    }


def pydantic_node(model: type, where: str) -> Node:
    """The node checking values with ``model.model_validate``."""
    assert issubclass(model, BaseModel)
    try:
        raw: Dict[str, Any] = model.model_json_schema()
        schema = _inline(raw, raw.get("$defs", {}), ())
    except APIDefinitionError as e:
        raise APIDefinitionError(f"{where}: {e}") from None

    def check(value: Any) -> Any:
        if value.__class__ is not dict:
            raise wrong_type("object")
        try:
            return model.model_validate(value)
        except ValidationError as e:
            failures: List[FieldFailure] = []
            for error in e.errors(include_url=False, include_input=False):
                text = str(error.get("msg", "invalid"))
                failures.append(
                    FieldFailure(
                        tuple(error.get("loc", ())),
                        _reason(str(error.get("type", ""))),
                        text[:1].lower() + text[1:],
                        text.rstrip(".") + ".",
                    )
                )
            raise Invalid(failures) from None

    return Node(check, schema, model.__name__, ("object",))
