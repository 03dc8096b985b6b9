"""What the node drives: the ipmitool power backend and the DeepLink info source.

``PowerBackend`` is ``IpmiToolClient`` (docs/protocol.md §6.2) through ``baremetal.ipmi.ipmitool``.
Two DeepLink sources exist, chosen by the emulated node version (§7.4, §9):

- ``LanDeepLink`` (0.4.1.7+): live values from the DeepLink LAN session whose remote
  IP equals the server's stored ``ip``; ``set`` writes a ``setDevicePassword`` frame;
- ``StoredDeepLink`` (0.4.1.1-0.4.1.6): values kept in the server record; ``set``
  overwrites both fields; always "present".
"""

from __future__ import annotations

import logging
from typing import Protocol

from baremetal.emulator.store import BareMetalRecord, BareMetalStore
from baremetal.errors import IpmiError
from baremetal.ipmi.ipmitool import redacted_command_line, run_dbc_ipmitool

__all__ = [
    "DeepLinkSource",
    "EmptyRoom",
    "LanDeepLink",
    "PowerBackend",
    "RoomLike",
    "StoredDeepLink",
]

_LOGGER = logging.getLogger(__name__)
NOT_CONNECTED = "deeplink service not connected"


class PowerBackend:
    """Run the node's ipmitool commands for a stored server."""

    def __init__(self, store: BareMetalStore, *, executable: str, timeout_s: float) -> None:
        self._store = store
        self._executable = executable
        self._timeout_s = timeout_s

    def _run(self, node_id: str, verb: str, arg: str) -> tuple[bool, str]:
        record = self._store.get(node_id)
        if record is None:
            return False, "node id not existed"
        line = redacted_command_line(
            record.ipmi_hostname, record.ipmi_port, record.ipmi_username, verb, arg)
        try:
            result = run_dbc_ipmitool(
                record.ipmi_hostname, record.ipmi_port, record.ipmi_username,
                record.ipmi_password, verb, arg,
                timeout_s=self._timeout_s, executable=self._executable,
            )
        except IpmiError as exc:
            # The node has no timeout and always finds ipmitool (checked at start).
            _LOGGER.warning("run shell (%s) failed: %s", line, exc.reason)
            return False, f"Error: {exc.reason}"
        _LOGGER.info("run shell (%s) ok=%s", line, result.ok)
        return result.ok, result.message

    def power(self, node_id: str, command: str) -> tuple[bool, str]:
        """Run ``chassis power <command>`` (``IpmiToolClient::PowerControl``)."""
        return self._run(node_id, "power", command)

    def bootdev(self, node_id: str, device: str) -> tuple[bool, str]:
        """Run ``chassis bootdev <device>`` (``IpmiToolClient::SetBootDeviceOrder``)."""
        return self._run(node_id, "bootdev", device)


class SessionLike(Protocol):
    """The part of a DeepLink LAN session the node uses."""

    @property
    def device_id(self) -> str:
        """Return the last reported device id ("" if never)."""

    @property
    def password(self) -> str:
        """Return the last reported password ("" if never)."""

    def send_set_password(self, password: str) -> None:
        """Write a ``setDevicePassword`` frame to the session."""


class RoomLike(Protocol):
    """The registry of live DeepLink LAN sessions."""

    def session_for_ip(self, ip: str) -> SessionLike | None:
        """Return the live session from this exact IP string, if any."""


class DeepLinkSource(Protocol):
    """Where the node reads and writes a server's DeepLink credentials."""

    def get(self, record: BareMetalRecord) -> tuple[str, str] | None:
        """Return (device_id, password), or None when not connected."""

    def set(self, record: BareMetalRecord, device_id: str, password: str) -> tuple[bool, str]:
        """Apply new credentials; return (ok, node message)."""


class LanDeepLink:
    """DeepLink info from the LAN service (node 0.4.1.7 and later)."""

    def __init__(self, room: RoomLike) -> None:
        self._room = room

    def get(self, record: BareMetalRecord) -> tuple[str, str] | None:
        """Return the live session's last reported values, or None."""
        session = self._room.session_for_ip(record.ip)
        if session is None:
            return None
        return session.device_id, session.password

    def set(self, record: BareMetalRecord, device_id: str, password: str) -> tuple[bool, str]:
        """Queue ``setDevicePassword`` (device_id is ignored, §3.9)."""
        session = self._room.session_for_ip(record.ip)
        if session is None:
            return False, NOT_CONNECTED
        session.send_set_password(password)
        return True, "ok"


class StoredDeepLink:
    """DeepLink info kept in the server record (node 0.4.1.1 - 0.4.1.6)."""

    def __init__(self, store: BareMetalStore) -> None:
        self._store = store

    def get(self, record: BareMetalRecord) -> tuple[str, str] | None:
        """Return the stored values (always present)."""
        return record.deeplink_device_id, record.deeplink_device_password

    def set(self, record: BareMetalRecord, device_id: str, password: str) -> tuple[bool, str]:
        """Overwrite both stored fields (``SetDeepLinkInfo``)."""
        errcode, message = self._store.set_deeplink(record.node_id, device_id, password)
        return errcode == 0, message


class EmptyRoom:
    """A room with no sessions, for a node started without the LAN service."""

    def session_for_ip(self, ip: str) -> SessionLike | None:
        """Return None: nobody is connected."""
        return None
