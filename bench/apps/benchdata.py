"""
What every benchmark server shares: the list the paged call pages through,
and the checks of the PingCall POST for the servers that write them by hand.
"""

from typing import Any, Dict, List, Optional, Tuple

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
