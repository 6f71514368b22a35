"""
Who the client is: the peer's address, or the one a trusted reverse proxy
names in ``X-Real-IP`` or ``X-Forwarded-For``.
"""

from __future__ import annotations

import ipaddress
from typing import Optional, Sequence, Tuple, Union

__all__ = ["ClientAddresses", "Network"]

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class ClientAddresses:
    """
    How a request's client address is found.

    :param honor_x_realip: believe ``X-Real-IP`` and ``X-Forwarded-For``...
    :param trusted_proxies: ...from peers in these networks only, and only
        when they hold IP addresses. In ``X-Forwarded-For``, the nearest
        address that is not a trusted proxy's is the client.
    """

    def __init__(
        self, honor_x_realip: bool = False, trusted_proxies: Sequence[Network] = ()
    ) -> None:
        self.honor_x_realip = honor_x_realip
        self.trusted_proxies: Tuple[Network, ...] = tuple(trusted_proxies)

    def client_ip(
        self, peer: str, real_ip: Optional[bytes], forwarded_for: Optional[bytes]
    ) -> str:
        """
        The client's address, given the peer's and the request's
        ``X-Real-IP`` and ``X-Forwarded-For`` headers (``None`` if absent).
        """
        if not self.trusts_proxy(peer):
            return peer
        if real_ip:
            candidate = real_ip.decode("latin-1").strip()
            return candidate if _is_ip(candidate) else peer
        if forwarded_for:
            hops = [hop.strip() for hop in forwarded_for.decode("latin-1").split(",")]
            for hop in reversed(hops):
                if not _is_ip(hop):
                    return peer
                if not self._trusted(hop):
                    return hop
        return peer

    def trusts_proxy(self, peer: str) -> bool:
        """
        Whether ``peer`` is a proxy whose forwarding headers are believed:
        ``honor_x_realip`` is on and ``peer`` is in ``trusted_proxies``.
        """
        return self.honor_x_realip and self._trusted(peer)

    def _trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.trusted_proxies)


#: The default: the peer is the client, whatever the headers say.
PEER_ONLY = ClientAddresses()


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
