"""
The global reactor, imported only when first needed.

shijid installs the reactor its configuration names before anything imports
``twisted.internet.reactor``; Shiji's modules therefore import it late,
through :func:`global_reactor`, typed loosely because its methods come from
zope interfaces that type checkers cannot follow.
"""

from typing import Any

__all__ = ["global_reactor"]


def global_reactor() -> Any:
    """The installed reactor (installing the default one if none is)."""
    from twisted.internet import reactor

    return reactor
