"""
What a call answers with: ``webapi.returns`` declares a status and the
schema of the body sent with it, sets the status, documents it, and, where
responses are checked (``validate_responses``, and always under
``shiji.testing``), holds every answer to it.
"""

from __future__ import annotations

import copy
import functools
import secrets
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from twisted.logger import Logger

from ._declarations import Described, Handler, Response, declarations, declare
from ._errors import APIDefinitionError, UnexpectedServerError
from ._field_errors import Invalid
from ._nodes import Node
from ._request import APIRequest
from ._schema import compile_type

__all__ = ["ResponseCheck", "check_response", "returns"]

log = Logger(namespace="shiji.responses")

#: The schema of a body that is not described: any JSON.
_ANYTHING = object


@dataclass(frozen=True)
class ResponseCheck:
    """
    The answers a handler declares: for each status, the node checking its
    body (``None``: no body is sent).
    """

    call: str
    nodes: Dict[int, Optional[Node]]

    def problems(self, status: int, body: Any) -> List[str]:
        """What is wrong with answering ``body`` with ``status``, in words;
        nothing if it is as declared."""
        if status not in self.nodes:
            declared = ", ".join(str(code) for code in sorted(self.nodes))
            return [f"status {status} is not declared (declared: {declared})"]
        node = self.nodes[status]
        if node is None:
            return [] if body is None else [f"status {status} declares no body"]
        try:
            # On a copy: checks convert, and the answer is sent as it was.
            node.check(copy.deepcopy(body))
        except Invalid as invalid:
            return [
                f"{error.field or 'the body'}: {error.reason}, expected {error.expected}"
                for error in invalid.field_errors("body")
            ]
        return []


def returns(
    status: int = 200, schema: Any = _ANYTHING, *, description: str = ""
) -> Callable[[Handler], Handler]:
    """
    Declare an answer of the call: its HTTP status and the schema of its
    JSON body (any type :func:`json_arguments` takes: a dataclass, a
    ``typing`` form, a JSON Schema dict, a pydantic model; ``None`` for no
    body, as with 204). Stack one per status; the topmost one's status is
    set before the handler runs, and the handler may set another declared
    one with ``request.setResponseCode``.

    The documentation shows each declared answer. Under ``shiji.testing``,
    and in servers whose ``[general] validate_responses`` is on, every
    success answer (2xx) is checked: a status not declared, or a body its
    schema refuses, is logged with a request id and answered with HTTP 500
    instead (and fails the test).

    :raises APIDefinitionError: (when applied) a status outside 100-599 or
        declared twice, or a schema Shiji cannot check.
    """
    if (
        isinstance(status, bool)
        or not isinstance(status, int)
        or not 100 <= status <= 599
    ):
        raise APIDefinitionError(f"returns: {status!r} is not an HTTP status")

    def decorator(handler: Handler) -> Handler:
        here = f"{handler.__module__}.{handler.__qualname__}: returns({status})"
        node = None if schema is None else compile_type(schema, here)
        nodes: Dict[int, Optional[Node]] = dict(declarations(handler).returns)
        if status in nodes:
            raise APIDefinitionError(f"{here}: status {status} is declared twice")
        nodes[status] = node
        check = ResponseCheck(f"{handler.__module__}.{handler.__qualname__}", nodes)

        @functools.wraps(handler)
        def wrapper(self: Any, request: APIRequest, *a: Any, **kw: Any) -> Any:
            if request.response_check is None:
                # The outermost declaration speaks for all of them.
                if status != 200:
                    request.setResponseCode(status)
                request.response_check = check
            return handler(self, request, *a, **kw)

        response = Response(
            status,
            None if node is None else node.schema,
            description,
        )
        return declare(
            wrapper,
            handler,
            described=Described(responses=(response,)),
            returns=tuple(sorted(nodes.items())),
        )

    return decorator


def check_response(request: APIRequest, body: Any) -> Optional[UnexpectedServerError]:
    """
    Check a success answer against what the handler declared, if answers
    are being checked; the error to answer with instead when it does not
    match (logged under its request id, and reported to the site's
    ``on_response_mismatch``).
    """
    check: Optional[ResponseCheck] = request.response_check
    router = request.api_router
    if (
        check is None
        or router is None
        or not router.settings.validate_responses
        or not 200 <= request.code < 300
    ):
        return None
    problems = check.problems(request.code, body)
    if not problems:
        return None
    request_id = secrets.token_hex(8)
    request.request_id = request_id
    described = "; ".join(problems)
    log.error(
        "The answer of {call} does not match its declaration (request id "
        "{request_id}): {problems}",
        call=check.call,
        request_id=request_id,
        problems=described,
    )
    observer: Optional[Callable[[APIRequest, str], None]] = getattr(
        request.site, "on_response_mismatch", None
    )
    if observer is not None:
        observer(request, f"{check.call}: {described}")
    error = UnexpectedServerError(request, f"request id {request_id}")
    error.headers["X-Request-Id"] = request_id
    return error
