"""
The global reactor, imported only when first needed.

shijid installs the reactor its configuration names before anything imports
``twisted.internet.reactor``; Shiji's modules therefore import it late,
through :func:`global_reactor`, typed loosely because its methods come from
zope interfaces that type checkers cannot follow.

A worker runs the reactor its parent runs (twistd's, under twistd): the
parent names it by :func:`reactor_name`, the name twistd's ``--reactor``
gives it, and the worker installs it by that name.
"""

from typing import Any, Optional

__all__ = ["global_reactor", "reactor_name"]


def global_reactor() -> Any:
    """The installed reactor (installing the default one if none is)."""
    from twisted.internet import reactor

    return reactor


def reactor_name() -> Optional[str]:
    """
    The name twistd's ``--reactor`` gives the installed reactor (``epoll``,
    ``asyncio``...), or ``None`` for a reactor twistd cannot install.
    """
    from twisted.application.reactors import getReactorTypes

    module = type(global_reactor()).__module__
    for installer in getReactorTypes():
        if installer.moduleName == module:
            return str(installer.shortName)
    return None
