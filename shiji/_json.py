"""
The one place where Shiji encodes and decodes JSON.

Responses are compact UTF-8 JSON. Request bodies are parsed strictly: the
non-standard constants ``NaN``, ``Infinity`` and ``-Infinity``, numbers that
overflow a float, objects naming a key twice (which parsers disagree on: the
first or the last?) and nesting deep enough to exhaust the stack are all
refused with :class:`JSONBodyError`, as are strings holding a lone UTF-16
surrogate (``"\\ud800"``): JSON's escapes can write one, but it is not a
character, and no UTF-8 encoder will write it back out.

On CPython, responses are encoded by orjson, an order of magnitude faster
than the standard library, where it gives the same answer: anything it
cannot encode exactly as the standard library would (integers beyond 64 bits,
subclasses of built-in types, dataclasses, dates, and NaN or infinities,
which orjson would write as ``null``) is handed to the standard library's
encoder, which stays the reference. Request bodies are always parsed by the
standard library: orjson turns integers beyond 64 bits into floats.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

__all__ = ["JSONBodyError", "dumps", "loads"]


class JSONBodyError(Exception):
    """
    A request body is not valid JSON under Shiji's strict rules.
    """


_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":")
).encode


def _standard_dumps(obj: Any) -> bytes:
    return _encoder(obj).encode("utf-8")


_fast_dumps: Optional[Callable[..., bytes]]
try:
    import orjson
except ImportError:  # PyPy, whose own JSON encoder is the fast one there
    _fast_dumps, _FAST_OPTIONS = None, 0
else:
    _fast_dumps = orjson.dumps
    _FAST_OPTIONS = (
        orjson.OPT_PASSTHROUGH_SUBCLASS
        | orjson.OPT_PASSTHROUGH_DATACLASS
        | orjson.OPT_PASSTHROUGH_DATETIME
        | orjson.OPT_NON_STR_KEYS
    )


def dumps(obj: Any, *, floatless: bool = False) -> bytes:
    """
    Encode ``obj`` as compact UTF-8 JSON.

    :param floatless: the caller vouches that ``obj`` holds no float, which
        spares a check for non-finite ones.
    :raises TypeError: ``obj`` holds something JSON cannot represent.
    :raises ValueError: ``obj`` holds a NaN or an infinite float.
    """
    if _fast_dumps is None:
        return _standard_dumps(obj)
    try:
        encoded = _fast_dumps(obj, option=_FAST_OPTIONS)
    except TypeError:
        return _standard_dumps(obj)
    if not floatless and b"null" in encoded:
        # orjson writes NaN and infinities as null, as it does None: only the
        # reference encoder tells them apart.
        return _standard_dumps(obj)
    # orjson's bytes keep the capacity of its buffer (4 KiB at least) while
    # they wait in a transport's write buffer: with thousands of connections
    # an exact-size copy saves megabytes, for a fraction of a microsecond.
    return bytes(memoryview(encoded))


def _refuse_constant(name: str) -> Any:
    raise JSONBodyError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise JSONBodyError(f"number {text[:40]} is out of range")
    return value


def _unique_keys(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: Set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JSONBodyError(f"key {key[:40]!r} appears twice in an object")
            seen.add(key)
    return found


# CPython refuses to convert integers longer than this (converting is
# quadratic in their length: a megabyte of digits would take seconds);
# interpreters without that limit get it here.
_MAX_INT_DIGITS = 4300


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise JSONBodyError(f"integer of {len(text)} digits is too long")
    return int(text)


_decoder = json.JSONDecoder(
    parse_constant=_refuse_constant,
    parse_float=_finite_float,
    parse_int=None if hasattr(sys, "get_int_max_str_digits") else _bounded_int,
    object_pairs_hook=_unique_keys,
).decode


def loads(body: bytes) -> Any:
    """
    Decode a request body, which must be UTF-8 JSON.

    :raises JSONBodyError: the body is not UTF-8, not JSON, or uses one of the
        constructs refused above.
    """
    try:
        text = body.decode("utf-8")
        value = _decoder(text)
    except JSONBodyError:
        raise
    # ValueError covers json.JSONDecodeError, UnicodeDecodeError and integers
    # longer than the interpreter's digit limit.
    except (ValueError, RecursionError) as e:
        raise JSONBodyError(str(e)) from None
    # Raw UTF-8 cannot carry a surrogate (the decoding above refuses it): only
    # an escape can, so only a body with one needs looking through.
    if _SURROGATE_ESCAPE.search(text) is not None and _holds_lone_surrogate(value):
        raise JSONBodyError("a string holds a lone UTF-16 surrogate")
    return value


# \uD800 to \uDFFF, in any case.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _holds_lone_surrogate(value: Any) -> bool:
    """
    Whether a string in ``value``, key or value, holds a lone surrogate
    (escaped pairs were joined into one character by the decoder).
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            strings = [item]
        elif isinstance(item, dict):
            strings = list(item)
            pending.extend(item.values())

        elif isinstance(item, list):
            pending.extend(item)
            continue
        else:
            continue
        for string in strings:
            try:
                string.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False
