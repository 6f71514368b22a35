"""
How a client calls an API, for the pages people read: the paths its calls
are served at, a sentence saying where it is served, example values from
JSON Schemas and a ``curl`` command for each method.

Every call is shown under the API's :class:`~shiji.docs.prefix.ServedPrefix`
(``/myloginapi/ping/{timestamp}``); a command is sent to a server's base URL
(``http://127.0.0.1:9990``, the daemon's default address, unless the page is
served by shijid, which gives the request's own).
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any, List, Mapping, Optional, Tuple
from urllib.parse import quote

from .._version_header import VersionHeader
from .model import (
    ROUTE_GROUP,
    CallDoc,
    MethodInterface,
    is_pattern_route,
    readable_route,
    templated_route,
)
from .prefix import ServedPrefix

__all__ = [
    "DEFAULT_SERVER",
    "curl_command",
    "example_value",
    "served_path",
    "served_paths",
    "where_served",
]

#: Where shijid listens unless configured otherwise.
DEFAULT_SERVER = "http://127.0.0.1:9990"

# Header parameters a command sets otherwise (-u, the body's type).
_OWN_HEADERS = ("authorization", "content-type", "accept")
# Tried, in order, for a string that must match a pattern.
_CANDIDATES = ("string", "1", "2026", "a", "abc", "example", "2026-01-01")
_FORMATS = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "12:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def served_path(route: str, prefix: ServedPrefix) -> str:
    """
    ``route`` as served under ``prefix``: ``ping/(?P<timestamp>[0-9]+)``
    under ``myloginapi`` is ``/myloginapi/ping/{timestamp}``. A route that
    is a pattern rather than a path is shown as its readable pattern.
    """
    templated = templated_route(route)
    return f"{prefix.path}/{templated}" if templated else prefix.path


def served_paths(call: CallDoc, prefix: ServedPrefix) -> Tuple[str, ...]:
    """Every path ``call`` is served at under ``prefix``, in route order."""
    return tuple(served_path(route, prefix) for route in call.routes)


def where_served(prefix: ServedPrefix) -> List[str]:
    """
    Where an API is served, in one sentence: text and code alternate, the
    text first (``["Served at ", "/myloginapi", "."]``), for each format to
    mark up.
    """
    if prefix.literal and len(prefix.segments) == 1:
        return ["Served at ", prefix.path, "."]
    if prefix.literal:
        words: List[str] = ["Served at ", prefix.path, ", and also at "]
        others = [f"/{segment}" for segment in prefix.segments[1:]]
        for index, other in enumerate(others):
            if index:
                words.append(", " if index < len(others) - 1 else " and ")
            words.append(other)
        return [*words, " (the [apis] expression ", prefix.pattern, ")."]
    words = [
        "Served at ",
        prefix.path,
        ": {api} is any first path segment matching the [apis] expression ",
        prefix.pattern,
    ]
    if prefix.example is not None:
        words += [", such as ", f"/{prefix.example}"]
    return [*words, "."]


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    reference = schema.get("$ref")
    if isinstance(reference, str) and reference.startswith("#/"):
        found: Any = root
        for part in reference[2:].split("/"):
            found = found.get(part) if isinstance(found, Mapping) else None
        if isinstance(found, Mapping):
            return found
    return schema


def _fits(text: str, schema: Mapping[str, Any]) -> bool:
    least, most = schema.get("minLength"), schema.get("maxLength")
    if isinstance(least, int) and len(text) < least:
        return False
    if isinstance(most, int) and len(text) > most:
        return False
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            return re.search(pattern, text) is not None
        except re.error:
            return False
    return True


def _alternatives_of(pattern: str) -> List[str]:
    """The literal alternatives of ``^(?:a|b)$``-like patterns: ``a``, ``b``."""
    inner = pattern
    while True:
        found = re.fullmatch(r"\^?\(\?:(.*)\)\$?|\^(.*)\$", inner)
        if found is None:
            break
        inner = found.group(1) if found.group(1) is not None else found.group(2)
    inner = inner.strip("()")
    parts = inner.split("|")
    return [part for part in parts if re.fullmatch(r"[A-Za-z0-9_.~-]+", part)]


def _string_example(schema: Mapping[str, Any]) -> Optional[str]:
    known = schema.get("format")
    candidates: List[str] = []
    if isinstance(known, str) and known in _FORMATS:
        candidates.append(_FORMATS[known])
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        candidates += _alternatives_of(pattern)
    least = schema.get("minLength")
    if isinstance(least, int) and least > len("string"):
        candidates.append("string" + "x" * (least - len("string")))
    candidates += _CANDIDATES
    # Of the length asked for, or a count the pattern repeats: digits, then
    # letters.
    lengths = [least] if isinstance(least, int) and 0 < least <= 64 else [1]
    if isinstance(pattern, str):
        lengths += [int(n) for n in re.findall(r"\{([0-9]{1,2})\}", pattern)]
    for length in lengths:
        candidates += ["1" * length, "a" * length]
    for candidate in candidates:
        if _fits(candidate, schema):
            return candidate
    return None


def _number_example(schema: Mapping[str, Any], integer: bool) -> Any:
    low = schema.get("minimum")
    if not isinstance(low, (int, float)) or isinstance(low, bool):
        low = schema.get("exclusiveMinimum")
        if isinstance(low, (int, float)) and not isinstance(low, bool):
            low = low + 1
        else:
            low = None
    high = schema.get("maximum")
    value = low if low is not None else 0
    if isinstance(high, (int, float)) and not isinstance(high, bool) and value > high:
        value = high
    return int(value) if integer else value


def example_value(
    schema: Mapping[str, Any], root: Optional[Mapping[str, Any]] = None, depth: int = 0
) -> Any:
    """
    A value matching ``schema`` for an example: its own example, default,
    constant or first choice if it has one, else one made from its type
    and rules (``"string"``, ``0``, ``false``, an object with every field).
    ``None`` when no value could be made (a string no candidate matches).
    """
    root = schema if root is None else root
    schema = _resolve(schema, root)
    for keyword in ("const", "default"):
        if keyword in schema:
            return schema[keyword]
    examples = schema.get("examples")
    if isinstance(examples, list) and examples:
        return examples[0]
    choices = schema.get("enum")
    if isinstance(choices, list) and choices:
        return choices[0]
    for keyword in ("anyOf", "oneOf", "allOf"):
        options = [
            option
            for option in schema.get(keyword, ())
            if isinstance(option, Mapping) and option.get("type") != "null"
        ]
        if options:
            return example_value(options[0], root, depth + 1)
    declared = schema.get("type")
    if isinstance(declared, list):
        declared = next((t for t in declared if t != "null"), "null")
    if declared is None:
        if "properties" in schema:
            declared = "object"
        elif "items" in schema:
            declared = "array"
    if declared == "object":
        properties = schema.get("properties")
        if depth > 8 or not isinstance(properties, Mapping):
            return {}
        return {
            name: example_value(sub, root, depth + 1)
            for name, sub in properties.items()
            if isinstance(sub, Mapping)
        }
    if declared == "array":
        items = schema.get("items")
        if depth > 8 or not isinstance(items, Mapping):
            return []
        return [example_value(items, root, depth + 1)]
    if declared == "string":
        return _string_example(schema)
    if declared in ("integer", "number"):
        return _number_example(schema, declared == "integer")
    if declared == "boolean":
        return False
    return None


def _text(value: Any) -> Optional[str]:
    """An example value as it is written in a path, a query or a header."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _credentials(scheme: Mapping[str, Any], query: List[Tuple[str, str]]) -> List[str]:
    """The options sending the credentials an OpenAPI security scheme
    describes, with placeholder values (query parameters go to ``query``)."""
    kind, name = scheme.get("type"), scheme.get("name")
    if kind == "http":
        if str(scheme.get("scheme", "")).lower() == "basic":
            return [f"-u {shlex.quote('user:password')}"]
        return [f"-H {shlex.quote('Authorization: Bearer TOKEN')}"]
    if kind == "apiKey" and isinstance(name, str):
        where = scheme.get("in")
        if where == "cookie":
            return [f"-b {shlex.quote(name + '=VALUE')}"]
        if where == "header":
            return [f"-H {shlex.quote(name + ': VALUE')}"]
        if where == "query":
            query.append((name, "VALUE"))
    return []


def curl_command(
    api_name: str,
    version: str,
    method: str,
    route: str,
    declared: MethodInterface,
    prefix: ServedPrefix,
    server: str,
    version_header: str,
    auth_scheme: Optional[Mapping[str, Any]] = None,
) -> str:
    """
    A ``curl`` command calling ``method`` of the call at ``route`` on
    ``server``: the full URL under ``prefix``, with example values for the
    path and the required query parameters, the version header, required
    headers, credentials when the call needs them (HTTP Basic, or what
    ``auth_scheme`` describes for the auth backend's guards, with
    placeholder values) and an example JSON body when it reads one. Lines
    end with `` \\`` but the last.
    """
    values = {}
    query: List[Tuple[str, str]] = []
    headers: List[Tuple[str, str]] = []
    for parameter in declared.parameters:
        value = _text(example_value(parameter.schema))
        if parameter.location == "path":
            values[parameter.name] = value
        elif not parameter.required:
            continue
        elif parameter.location == "query":
            query.append((parameter.name, value if value is not None else ""))
        elif (
            parameter.location == "header"
            and parameter.name.lower() not in _OWN_HEADERS
        ):
            headers.append((parameter.name, value if value is not None else ""))
    credentials: List[str] = []
    if "basic" in declared.security:
        credentials.append(f"-u {shlex.quote('user:password')}")
    elif declared.backend_guarded and auth_scheme is not None:
        credentials += _credentials(auth_scheme, query)
    segment = prefix.example if prefix.example is not None else "{api}"
    globbed = segment == "{api}" or is_pattern_route(route)

    def fill(found: re.Match[str]) -> str:
        nonlocal globbed
        value = values.get(found.group(1))
        if value is None:
            globbed = True
            return "{" + found.group(1) + "}"
        return quote(value, safe="")

    path = ROUTE_GROUP.sub(fill, readable_route(route))
    url = f"{server.rstrip('/')}/{segment}" + (f"/{path}" if path else "")
    if query:
        url += "?" + "&".join(
            f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in query
        )
    first = ["curl"]
    if globbed:
        first.append("--globoff")
    if method == "HEAD":
        first.append("--head")
    else:
        first += ["-X", method]
    first.append(shlex.quote(url))
    lines = [" ".join(first)]
    sent = VersionHeader(api_name, version)
    lines.append(f"-H {shlex.quote(f'{version_header}: {sent}')}")
    lines += [f"-H {shlex.quote(f'{name}: {value}')}" for name, value in headers]
    lines += credentials
    body = declared.body
    if body is not None:
        example = example_value(body.schema)
        text = json.dumps(example, ensure_ascii=False)
        lines.append(f"-H {shlex.quote('Content-Type: ' + body.content_type)}")
        lines.append(f"--data {shlex.quote(text)}")
    return " \\\n  ".join(lines)
