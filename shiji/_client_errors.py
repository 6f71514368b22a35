"""
What :mod:`shiji.client` raises, and how a Shiji API's error classes become
classes a client can catch.

A server's error class needs a request to be made and knows how to answer
one; a client needs neither. So each server class (``LoginFailedError``,
Shiji's ``UnknownAPIVersionError``) is mirrored by a client class of the
same name, a subclass of :class:`APIError` whose bases mirror the server
class's bases: ``except`` on a mirrored base catches every error derived
from it, as it would on the server.
"""

from __future__ import annotations

import builtins
import inspect
import threading
import weakref
from types import ModuleType
from typing import (
    Any,
    Dict,
    Iterable,
    Mapping,
    MutableMapping,
    Optional,
    Tuple,
    Type,
    Union,
)

from . import _errors

__all__ = [
    "CLOSED_BEFORE_ANSWER",
    "CONNECTION_REFUSED",
    "APIError",
    "BadAnswerError",
    "ClientError",
    "ClientTimeoutError",
    "ConnectionFailedError",
    "ErrorClasses",
    "TokenError",
]

#: Server error classes, or modules holding them, as ``Client(errors=...)``
#: takes them.
ErrorSpec = Union[ModuleType, Iterable[Union[type, ModuleType]], None]

# How much of an unreadable answer an error's message quotes.
_QUOTED = 120
# Classes made for error names the caller never declared, per client: past
# this many, a server inventing names gets plain APIError instances.
_MAX_MADE = 256
_MAX_NAME = 100


class ClientError(Exception):
    """
    Base class of every error :mod:`shiji.client` raises about a call.
    """


class APIError(ClientError):
    """
    The API answered with a Shiji error: the JSON envelope or RFC 9457
    problem details with an ``exception_class``.

    Errors of a class the client knows (Shiji's own, those given as
    ``errors=``, or asked for with :meth:`Client.error`) are instances of a
    subclass named as the server's class; others are instances of a
    subclass made for their name when it is a plain identifier, else of
    this class.

    :ivar status: the HTTP status (``401``).
    :ivar code: the ``error_code`` (``111``); ``None`` when problem details
        left it out.
    :ivar exception_class: the error's name (``"LoginFailedError"``).
    :ivar text: the ``exception_text`` (problem details' ``detail``).
    :ivar fields: the failing fields, each a dict with ``field``, ``in``,
        ``reason``, ``expected`` (and ``pointer`` for body fields), from the
        envelope's ``fields`` or problem details' ``errors``; ``()`` when
        none were sent.
    :ivar body: the decoded answer: the envelope, or the problem details.
    :ivar headers: the answer's headers, names in any case.
    :ivar problem: whether the answer was problem details.
    """

    #: The server's name of the errors of this class; ``None`` on this base
    #: class, which matches every name.
    exception_class: Optional[str] = None

    def __init__(
        self,
        status: int,
        code: Optional[int],
        exception_class: str,
        text: str,
        *,
        fields: Tuple[Dict[str, Any], ...] = (),
        body: Any = None,
        headers: Optional[Mapping[str, str]] = None,
        problem: bool = False,
    ) -> None:
        super().__init__(f"{exception_class} ({status}): {text}")
        self.status = status
        self.code = code
        self.exception_class = exception_class
        self.text = text
        self.fields = fields
        self.body = body
        self.headers: Mapping[str, str] = headers if headers is not None else {}
        self.problem = problem

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.exception_class} {self.code} "
            f"status={self.status} {self.text!r}>"
        )


class BadAnswerError(ClientError):
    """
    The answer is not one a Shiji API sends: not JSON, cut off, too large,
    an error without Shiji's envelope (a proxy's HTML 502 page), or a
    status that is neither success nor error.

    :ivar status: the HTTP status, or ``None`` if no whole status line and
        headers arrived.
    :ivar headers: the answer's headers (empty without them).
    :ivar body: the bytes received (at most ``max_answer_bytes``).
    :ivar reason: what is wrong, in words.
    """

    def __init__(
        self,
        reason: str,
        status: Optional[int] = None,
        headers: Optional[Mapping[str, str]] = None,
        body: bytes = b"",
    ) -> None:
        message = reason if status is None else f"HTTP {status}: {reason}"
        if body:
            quoted = body[:_QUOTED].decode("utf-8", "replace")
            message += f" (the answer began {quoted!r})"
        super().__init__(message)
        self.reason = reason
        self.status = status
        self.headers: Mapping[str, str] = headers if headers is not None else {}
        self.body = body


class ClientTimeoutError(ClientError, builtins.TimeoutError):
    """
    No whole answer arrived within the call's timeout; the connection was
    closed. Also a built-in ``TimeoutError``.

    :ivar timeout: the seconds waited.
    :ivar url: the URL called.
    """

    def __init__(self, timeout: float, url: str) -> None:
        super().__init__(f"no answer from {url} within {timeout:g} seconds")
        self.timeout = timeout
        self.url = url


class ConnectionFailedError(ClientError, builtins.ConnectionError):
    """
    The server could not be reached (connection refused, no such host), or
    closed the connection without answering. Also a built-in
    ``ConnectionError``; the cause is chained as ``__cause__``.

    :ivar url: the URL called.
    """

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


#: The ``reason`` of a :class:`ConnectionFailedError` whose connection was
#: refused: the request was never sent.
CONNECTION_REFUSED = "connection refused"
#: The ``reason`` of one whose connection closed before any answer.
CLOSED_BEFORE_ANSWER = "the connection closed before an answer"


class TokenError(ClientError):
    """
    The OAuth 2 token endpoint refused to give a token, or answered
    something that is not one (RFC 6749 section 5).

    :ivar status: the token endpoint's HTTP status.
    :ivar error: the ``error`` member of its answer (``"invalid_client"``),
        or ``None``.
    :ivar description: its ``error_description``, or what was wrong with
        the answer.
    """

    def __init__(
        self, status: Optional[int], error: Optional[str], description: str
    ) -> None:
        named = f"{error}: " if error else ""
        super().__init__(f"token endpoint answered {status}: {named}{description}")
        self.status = status
        self.error = error
        self.description = description


def _wire_name(server_class: type) -> str:
    name = getattr(server_class, "exception_class", None)
    return name if isinstance(name, str) else server_class.__name__


# Server class -> client class; weak, so that an API module unloaded takes
# its classes' mirrors with it.
_MIRRORS: MutableMapping[type, Type[APIError]] = weakref.WeakKeyDictionary()


def mirror(server_class: type) -> Type[APIError]:
    """
    The client class of a server error class (a subclass of
    ``shiji.webapi.APIError``): made once, then always the same class.

    A subclass that keeps its base's name on the wire (``InvalidField``
    answers as ``ValueError``) is its base's class.
    """
    if not (
        isinstance(server_class, type) and issubclass(server_class, _errors.APIError)
    ):
        raise TypeError(f"not a Shiji error class: {server_class!r}")
    if server_class is _errors.APIError:
        return APIError
    found = _MIRRORS.get(server_class)
    if found is not None:
        return found
    name = _wire_name(server_class)
    same_name = [
        base
        for base in server_class.__mro__[1:]
        if issubclass(base, _errors.APIError)
        and base is not _errors.APIError
        and _wire_name(base) == name
    ]
    if same_name:
        made = mirror(same_name[0])
    else:
        bases = tuple(
            mirror(base)
            for base in server_class.__bases__
            if issubclass(base, _errors.APIError)
        )
        made = type(
            name,
            bases,
            {
                "__doc__": _own_doc(server_class) or f"{name}, as the API answers it.",
                "__module__": "shiji.client",
                "__qualname__": name,
                "exception_class": name,
            },
        )
    _MIRRORS[server_class] = made
    return made


def _own_doc(server_class: type) -> Optional[str]:
    """The class's own docstring, not one it inherits (the server's
    ``APIError`` documents the server side)."""
    doc = server_class.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if isinstance(doc, str) else None


def _server_classes(spec: Union[type, ModuleType]) -> Iterable[type]:
    if isinstance(spec, ModuleType):
        for value in vars(spec).values():
            if (
                isinstance(value, type)
                and issubclass(value, _errors.APIError)
                and value is not _errors.APIError
            ):
                yield value
    else:
        yield spec


class ErrorClasses:
    """
    The client classes of one client's errors, by the name answered.

    Starts with Shiji's own errors, then the classes (or the error classes
    of the modules) given, each replacing an earlier one of the same name.
    """

    def __init__(self, errors: ErrorSpec = None) -> None:
        self._by_name: Dict[str, Type[APIError]] = {}
        self._made = 0
        # A blocking client may be shared by threads.
        self._lock = threading.Lock()
        self.add(_errors)
        specs: Iterable[Union[type, ModuleType]] = (
            [errors] if isinstance(errors, ModuleType) else errors or ()
        )
        for spec in specs:
            self.add(spec)

    def add(self, spec: Union[type, ModuleType]) -> None:
        """Add a server class, or every error class of a module."""
        for server_class in _server_classes(spec):
            self._by_name[_wire_name(server_class)] = mirror(server_class)

    def get(self, spec: Union[str, type]) -> Type[APIError]:
        """
        The class raised for the errors named ``spec``, or of the server
        class ``spec`` (which this adds when its name is not known yet).
        """
        if isinstance(spec, type):
            name = _wire_name(spec)
            if name not in self._by_name:
                self.add(spec)
            return self._by_name[name]
        if not isinstance(spec, str) or not spec:
            raise TypeError(f"an error's name or server class, not {spec!r}")
        return self._class_of(spec, asked=True)

    def _class_of(self, name: str, asked: bool) -> Type[APIError]:
        found = self._by_name.get(name)
        if found is not None:
            return found
        with self._lock:
            return self._made_for(name, asked)

    def _made_for(self, name: str, asked: bool) -> Type[APIError]:
        found = self._by_name.get(name)
        if found is not None:
            return found
        if not asked and (
            self._made >= _MAX_MADE or len(name) > _MAX_NAME or not name.isidentifier()
        ):
            return APIError
        self._made += 1
        made = type(
            name,
            (APIError,),
            {
                "__doc__": f"{name}, an error this client has no class for.",
                "__module__": "shiji.client",
                "__qualname__": name,
                "exception_class": name,
            },
        )
        self._by_name[name] = made
        return made

    def error(
        self,
        status: int,
        code: Optional[int],
        name: str,
        text: str,
        **details: Any,
    ) -> APIError:
        """The exception for one error answer."""
        return self._class_of(name, asked=False)(status, code, name, text, **details)
