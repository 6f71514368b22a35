"""
The one place where Shiji encodes and decodes JSON.

Responses are compact UTF-8 JSON. Request bodies are parsed strictly: the
non-standard constants ``NaN``, ``Infinity`` and ``-Infinity``, numbers that
overflow a float and nesting deep enough to exhaust the stack are all refused
with :class:`JSONBodyError`.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["JSONBodyError", "dumps", "loads"]


class JSONBodyError(Exception):
    """
    A request body is not valid JSON under Shiji's strict rules.
    """


_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":")
).encode


def dumps(obj: Any) -> bytes:
    """
    Encode ``obj`` as compact UTF-8 JSON.

    :raises TypeError: ``obj`` holds something JSON cannot represent.
    :raises ValueError: ``obj`` holds a NaN or an infinite float.
    """
    return _encoder(obj).encode("utf-8")


def _refuse_constant(name: str) -> Any:
    raise JSONBodyError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise JSONBodyError(f"number {text[:40]} is out of range")
    return value


_decoder = json.JSONDecoder(
    parse_constant=_refuse_constant, parse_float=_finite_float
).decode


def loads(body: bytes) -> Any:
    """
    Decode a request body, which must be UTF-8 JSON.

    :raises JSONBodyError: the body is not UTF-8, not JSON, or uses one of the
        constructs refused above.
    """
    try:
        text = body.decode("utf-8")
        return _decoder(text)
    except JSONBodyError:
        raise
    # ValueError covers json.JSONDecodeError, UnicodeDecodeError and integers
    # longer than the interpreter's digit limit.
    except (ValueError, RecursionError) as e:
        raise JSONBodyError(str(e)) from None
