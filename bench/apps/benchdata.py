"""
What every benchmark server shares: the list the paged call pages through,
the checks of the PingCall POST for the servers that write them by hand,
and the order of the nested scenario with its answer.
"""

import copy
import json
from typing import Any, Callable, Dict, List, Optional, Tuple

try:
    from orjson import loads as _loads
except ImportError:  # PyPy
    _loads: Callable[[bytes], Any] = json.loads

#: What the paged list pages through.
ITEMS: List[Dict[str, Any]] = [
    {"id": i, "name": f"item-{i}", "price": round(i * 1.25, 2), "in_stock": i % 3 != 0}
    for i in range(1000)
]

#: PingCall's JSON arguments: name, type, required.
PING_ARGUMENTS = (
    ("client_tz", int, True),
    ("client_id", str, True),
    ("new_client", bool, False),
)


def ping_argument_error(
    args: Dict[str, Any], key: Optional[str]
) -> Optional[Tuple[str, str]]:
    """
    The first problem with PingCall's arguments, as ``(name, why)`` in the
    words of Shiji's ``ValueError``, or ``None``.
    """
    if key is None:
        return "simple_auth_key", "Argument is missing."
    for name, kind, required in PING_ARGUMENTS:
        if name not in args:
            if required:
                return name, "Argument is missing."
            continue
        value = args[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return name, f"Must be of type {kind.__name__}"
    if key != "abc":
        return "simple_auth_key", "Key isn't valid!"
    return None


def invalid_argument(name: str, why: str) -> Dict[str, Any]:
    """Shiji's envelope of a ``ValueError`` for argument ``name``."""
    return {
        "result": None,
        "error": {
            "error_code": 502,
            "exception_class": "ValueError",
            "exception_text": f"Invalid value for argument '{name}'. {why}",
        },
    }


#: An answer of the servers written by hand: the status and the JSON body.
Answer = Tuple[int, Dict[str, Any]]


def ping_answer(
    version: Optional[str],
    content_type: str,
    body: bytes,
    key: Optional[str],
    timestamp: int,
) -> Answer:
    """PingCall's answer, for the servers whose frameworks only route."""
    if version != "benchapi-1.0+prod":
        return 406, {"result": None, "error": "unknown version"}
    if content_type.split(";")[0].strip().lower() != "application/json":
        return 406, {"result": None, "error": "not JSON"}
    try:
        args = _loads(body)
    except ValueError:
        return 409, invalid_argument("body", "bad JSON")
    if not isinstance(args, dict):
        return 409, invalid_argument("body", "not an object")
    problem = ping_argument_error(args, key)
    if problem is not None:
        return 409, invalid_argument(*problem)
    return 200, {
        "result": {
            "timestamp": timestamp,
            "client_tz": args["client_tz"],
            "client_id": args["client_id"],
            "new_client": args.get("new_client", False),
        }
    }


def items_answer(version: Optional[str], page: str, page_len: str) -> Answer:
    """The paged list's answer, for the servers whose frameworks only route."""
    if version != "benchapi-1.0+prod":
        return 406, {"result": None, "error": "unknown version"}
    try:
        first, length = int(page), int(page_len)
    except ValueError:
        return 409, invalid_argument("page", "Must be of type int")
    if first < 0 or not 1 <= length <= 100:
        return 409, invalid_argument("page_len", "Must be between 1 and 100.")
    start = first * length
    return 200, {"result": ITEMS[start : start + length]}


#: The nested scenario's order, 30 fields: ``order_id`` (``ORD-`` and six
#: digits), ``currency`` (EUR, USD or GBP), ``priority`` (1 to 5); a
#: ``customer`` with ``name`` (1 to 100 characters), ``email`` (at most 254,
#: a pattern), ``age`` (18 to 130) and an ``address`` of ``street`` (1 to
#: 100), ``city`` (1 to 60), ``zip`` (3 to 10) and ``country`` (two capital
#: letters); 5 ``lines`` (1 to 10 of them) of ``sku`` (``ABC-1234``),
#: ``quantity`` (1 to 100) and ``price`` (above 0, at most 10,000); three
#: boolean ``flags``; ``tags`` (at most 5, each 1 to 20 characters) and an
#: optional ``note`` (at most 200).
ORDER: Dict[str, Any] = {
    "order_id": "ORD-000123",
    "currency": "EUR",
    "priority": 2,
    "customer": {
        "name": "Ada Lovelace",
        "email": "ada@example.org",
        "age": 36,
        "address": {
            "street": "12 Analytical Row",
            "city": "London",
            "zip": "NW1 6XE",
            "country": "GB",
        },
    },
    "lines": [
        {"sku": "BRS-0001", "quantity": 2, "price": 12.5},
        {"sku": "GEA-0042", "quantity": 10, "price": 3.99},
        {"sku": "PUN-1843", "quantity": 1, "price": 249.0},
        {"sku": "CRD-0007", "quantity": 25, "price": 0.35},
        {"sku": "LVR-0300", "quantity": 4, "price": 17.2},
    ],
    "flags": {"gift": False, "express": True, "insured": False},
    "tags": ["engine", "repeat-customer"],
    "note": "Leave with the porter.",
}

#: The order with three rules broken: a currency not in the enum, a country
#: in lower case, and a quantity of 0 in the third line.
ORDER_REFUSED: Dict[str, Any] = copy.deepcopy(ORDER)
ORDER_REFUSED["currency"] = "JPY"
ORDER_REFUSED["customer"]["address"]["country"] = "gb"
ORDER_REFUSED["lines"][2]["quantity"] = 0


def order_result(order_id: str, lines: List[Tuple[int, float]]) -> Dict[str, Any]:
    """
    Every server's answer to a valid order: its id, how many lines and
    items it has and its total, from ``(quantity, price)`` of each line.
    """
    return {
        "result": {
            "order_id": order_id,
            "lines": len(lines),
            "items": sum(quantity for quantity, _ in lines),
            "total": round(sum(quantity * price for quantity, price in lines), 2),
        }
    }
