"""The agent host's neighbour (ARP) table: which MAC answers for an IP on the café LAN.

The hook relay compares it with the server's inventory MAC: an IP alias plus gratuitous
ARP moves another PC's address to the attacker's NIC, and the kernel's table then names the
attacker's MAC. Linux keeps the table in ``/proc/net/arp``::

    IP address       HW type     Flags       HW address            Mask     Device
    192.168.1.23     0x1         0x2         00:1a:2b:3c:4d:5e     *        eth0

Only complete entries (flag ``0x2`` ATF_COM set, MAC not all zeros) count. The check only
works when the agent shares the PCs' L2 segment; without an entry it says nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

__all__ = ["DEFAULT_TABLE", "NeighbourTable", "parse_proc_net_arp"]

_LOGGER = logging.getLogger(__name__)
DEFAULT_TABLE = Path("/proc/net/arp")
_ATF_COM = 0x2
_NO_MAC = "00:00:00:00:00:00"
_MAX_BYTES = 4 * 1024 * 1024


def parse_proc_net_arp(text: str) -> dict[str, str]:
    """Map IPv4 address -> lowercase MAC for the complete entries of ``/proc/net/arp`` text."""
    table: dict[str, str] = {}
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 4:
            continue
        ip, flags, mac = parts[0], parts[2], parts[3].lower()
        try:
            complete = int(flags, 16) & _ATF_COM
        except ValueError:
            continue
        if complete and mac != _NO_MAC and len(mac) == 17:
            table[ip] = mac
    return table


class NeighbourTable:
    """Read the MAC the host's neighbour table holds for an IP (file read on every call)."""

    def __init__(self, path: Path | None = DEFAULT_TABLE,
                 read: Callable[[Path], str] | None = None) -> None:
        self._path = path
        self._read = read or _read_text

    def mac_of(self, ip: str) -> str | None:
        """Return the MAC for ``ip``, or None (no entry, no table, unreadable)."""
        if self._path is None or not ip:
            return None
        try:
            text = self._read(self._path)
        except OSError as exc:
            _LOGGER.debug("neighbour table %s unreadable: %s", self._path, exc)
            return None
        return parse_proc_net_arp(text).get(ip.removeprefix("::ffff:"))


def _read_text(path: Path) -> str:
    with open(path, encoding="ascii", errors="replace") as fh:
        return fh.read(_MAX_BYTES)
