"""Trusted reverse proxies: which TCP peers may name the client in ``X-Forwarded-For``.

``[api] trusted_proxies`` lists IPs and CIDRs (default: none). Only when the TCP peer is
in that list is ``X-Forwarded-For`` read, and then from the right: each proxy appends the
address it received the request from, so the right-most entry that is not itself a
trusted proxy is the first hop nobody we trust vouches for. Entries to its left are
whatever the client claimed (``X-Forwarded-For: <seat ip>, <attacker>`` names the
attacker). Everyone else's proxy headers are ignored: their TCP address is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

__all__ = ["Network", "forwarded_client", "is_trusted", "parse_networks", "plain_address"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """Parse IPs and CIDRs (``10.0.0.2``, ``10.0.0.0/24``, ``fd00::/8``); ValueError if bad."""
    networks: list[Network] = []
    for raw in entries:
        text = raw.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=True))
        except ValueError as exc:
            raise ValueError(f"{text!r} is not an IP address or CIDR ({exc})") from None
    return tuple(networks)


def plain_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Parse an address (IPv4-mapped IPv6 becomes IPv4); None when it is not one."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_trusted(peer: str, trusted: Sequence[Network]) -> bool:
    """Tell whether the address ``peer`` lies in one of the ``trusted`` networks."""
    address = plain_address(peer)
    return address is not None and any(address in network for network in trusted)


def forwarded_client(header_values: Iterable[str], trusted: Sequence[Network]) -> str:
    """Return the right-most ``X-Forwarded-For`` address that is not a trusted proxy.

    ``header_values``: every ``X-Forwarded-For`` line, in order. Returns "" (unknown) when
    the header is empty or the entry that decides is not an IP address; when every entry
    is a trusted proxy, the left-most one.
    """
    hops = [hop.strip() for value in header_values for hop in value.split(",")]
    hops = [hop for hop in hops if hop]
    for hop in reversed(hops):
        address = plain_address(hop)
        if address is None:
            return ""
        if not any(address in network for network in trusted):
            return str(address)
    return str(plain_address(hops[0])) if hops else ""
