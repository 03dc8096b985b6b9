"""Which local address and MAC this PC uses towards a peer (psutil; no packet is sent)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

import psutil

__all__ = ["LocalIdentity", "local_identity"]


@dataclass(frozen=True)
class LocalIdentity:
    """The local IPv4 address facing a peer, its interface, and that interface's MACs."""

    ip: str
    interface: str
    macs: tuple[str, ...]


def local_identity(peer_host: str, peer_port: int, source_ip: str = "") -> LocalIdentity:
    """Find the address (``source_ip`` if set, else the routed one) and MACs facing the peer."""
    ip = source_ip or _routed_address(peer_host, peer_port)
    interfaces = psutil.net_if_addrs()
    # An exact address match first; else the interface whose subnet holds the address
    # (127.0.0.N lives on lo as 127.0.0.1/8, an alias may not be listed on its own).
    for matches in (_same_address, _same_subnet):
        for name, addrs in interfaces.items():
            if any(a.family == socket.AF_INET and matches(ip, a) for a in addrs):
                # psutil spells MACs 00-1a-... on Windows, 00:1a:... elsewhere.
                macs = tuple(
                    a.address.lower().replace("-", ":")
                    for a in addrs
                    if a.family == psutil.AF_LINK
                )
                return LocalIdentity(ip=ip, interface=name, macs=macs)
    return LocalIdentity(ip=ip, interface="", macs=())


def _same_address(ip: str, addr: Any) -> bool:
    return bool(addr.address == ip)


def _same_subnet(ip: str, addr: Any) -> bool:
    try:
        network = ipaddress.IPv4Network(f"{addr.address}/{addr.netmask}", strict=False)
        return ipaddress.IPv4Address(ip) in network
    except (ValueError, TypeError):
        return False


def _routed_address(peer_host: str, peer_port: int) -> str:
    # connect() on a UDP socket only picks a route and a source address; nothing is sent.
    family = socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((peer_host, peer_port or 80))
        except OSError:
            return ""
        return str(sock.getsockname()[0])
