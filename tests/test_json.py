"""
The JSON seam: the fast encoder, where there is one, answers exactly as the
standard library's reference encoder does, or hands over to it.
"""

import dataclasses
import datetime
import enum
import json

import pytest

from shiji import _json


def reference(obj):
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class Colour(str, enum.Enum):
    RED = "red"


class Count(int):
    pass


@dataclasses.dataclass
class Point:
    x: int


@pytest.mark.parametrize(
    "obj",
    [
        {"result": {"a": 1, "b": [True, False, None], "c": "żółw ✓"}},
        {"result": None, "error": {"error_code": 502, "exception_text": "null"}},
        [2**64 - 1, -(2**63), 2**70, -(2**70)],
        {1: "integer keys", "s": 1},
        "a \x00 control \u2028 line separator",
        [Colour.RED, Count(3)],
        {"nested": [[[{"x": ["y"]}]]]},
    ],
)
def test_encoding_matches_the_reference(obj):
    assert _json.dumps(obj) == reference(obj).encode("utf-8")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_floats_are_refused_not_written_as_null(value):
    with pytest.raises(ValueError):
        _json.dumps({"result": [1.5, value]})


@pytest.mark.parametrize(
    "value",
    [datetime.datetime(2026, 1, 1), datetime.date(2026, 1, 1), Point(1), {1, 2}],
)
def test_values_the_reference_cannot_encode_are_refused_everywhere(value):
    with pytest.raises(TypeError):
        _json.dumps({"result": value})


def test_lone_surrogates_are_refused():
    with pytest.raises(ValueError):
        _json.dumps({"result": "\ud800"})


@pytest.mark.parametrize(
    "body, value",
    [
        (b"123456789012345678901234567890", 123456789012345678901234567890),
        (
            b'{"a":1,"b":{"a":2},"c":[{"a":3}]}',
            {"a": 1, "b": {"a": 2}, "c": [{"a": 3}]},
        ),
        (b"-0", 0),
        (b"1e308", 1e308),
        (b"[18446744073709551615, -9223372036854775808]", [2**64 - 1, -(2**63)]),
        (
            b'{"n": 0.1, "big": 1.5e300, "tiny": 5e-324}',
            {"n": 0.1, "big": 1.5e300, "tiny": 5e-324},
        ),
        (b'"\\ud83d\\ude00 a pair"', "\U0001f600 a pair"),
        (b'"\\uD83D\\uDE00"', "\U0001f600"),
        (b'"\\\\ud800 an escaped backslash"', "\\ud800 an escaped backslash"),
        (b"[" * 500 + b"]" * 500, None),
    ],
)
def test_decoding_matches_the_reference(body, value):
    if value is None:
        value = json.loads(body)
    decoded = _json.loads(body)
    assert decoded == value and type(decoded) is type(value)


@pytest.mark.parametrize(
    "body",
    [
        b"NaN",
        b"[Infinity]",
        b"-Infinity",
        b"1e400",
        b"-1e999999",
        b"9" * 5000,
        b"\xff",
        b'"\xed\xa0\x80"',
        b"\xef\xbb\xbf{}",
        b"[" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b'{"a":1,"a":2}',
        b'[{"x":{"a":1,"a":1}}]',
        b"",
        b"{",
        b'{"a": 1',
        b'"\\ud800"',
        b'"\\uDC00 low"',
        b'{"\\ud800": 1}',
        b'["a", {"b": ["\\udbff"]}]',
        b'"\\ude00\\ud83d"',
        b'"\\\\\\ud800"',
    ],
)
def test_decoding_refuses_what_is_not_strict_json(body):
    with pytest.raises(_json.JSONBodyError):
        _json.loads(body)
