"""
The daemon's service tree: children start in the order they were added and
stop one at a time in the reverse order, each after the one added after it
has finished stopping.

Twisted's ``MultiService`` stops its children all at once; the daemon needs
an order: the log must still be open while requests in flight drain, and
the PID file must stay until everything else has stopped.
"""

from __future__ import annotations

from typing import Any, List

from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger

__all__ = ["ServiceTree"]

log = Logger(namespace="shiji.daemon")


class ServiceTree(service.MultiService):
    """
    A ``MultiService`` that stops its running children one after another,
    last added first. A child that fails to stop is logged, and the next
    one is stopped all the same; children that never started (the start
    failed before them) are not stopped.
    """

    def stopService(self) -> defer.Deferred[None]:
        service.Service.stopService(self)
        children: List[Any] = [child for child in reversed(list(self)) if child.running]
        done: defer.Deferred[None] = defer.Deferred()

        def stop_next(_: object = None) -> None:
            if not children:
                done.callback(None)
                return
            child = children.pop(0)
            stopping = defer.maybeDeferred(child.stopService)
            stopping.addErrback(
                lambda reason: log.failure(
                    "A service failed to stop cleanly: {name}",
                    reason,
                    name=child.name,
                )
            )
            stopping.addBoth(stop_next)

        stop_next()
        return done
