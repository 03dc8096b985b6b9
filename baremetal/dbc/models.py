"""Request and response types of the DBC HTTP API (docs/protocol.md §3).

Request types (``NewServer``, ``ServerChanges``) check themselves on construction with
the node's own rules and raise ``InvalidInput`` before anything reaches the wire. They
also refuse double quotes, backslashes and control characters: the node writes its JSON without
escaping (§2.5), so one such character in a stored field breaks every later list. The IPMI
fields must be plain shell words (``baremetal.ipmi.shell_word``, ``UnsafeShellWord``): the node
puts them unquoted on an ``sh -c`` line (§6.2).

Response types are frozen dataclasses built by ``baremetal.dbc.parse`` from answers
that were checked field by field. Secrets (private keys, IPMI credentials, DeepLink
passwords) are ``repr=False``; masked values are kept exactly as the node sent them
(``*`` repeated to the secret's length, §3.1) and recognised with ``is_masked``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from baremetal.errors import InvalidInput
from baremetal.ipmi.shell_word import check_node_shell_fields, check_shell_word

__all__ = [
    "ADD_CAP",
    "BOOT_DEVICES",
    "DEEPLINK_PASSWORD_MAX_BYTES",
    "LIST_CAP",
    "POWER_COMMANDS",
    "AddedServer",
    "ApiReply",
    "BareMetalServer",
    "BootdevResult",
    "DeepLinkInfo",
    "DeleteResult",
    "NewServer",
    "NodeInfo",
    "NodeSummary",
    "NodeVersion",
    "PowerResult",
    "RenterServerView",
    "ServerChanges",
    "ServerListing",
    "check_wire_text",
    "is_masked",
]

POWER_COMMANDS = ("on", "off", "reset", "status")
# The wiki lists four devices; the client check also accepts "none" (rest_api_service.cpp:13846).
BOOT_DEVICES = ("none", "pxe", "cdrom", "disk", "bios")
# The list loop breaks when count > 50 (rest_api_service.cpp:11970): at most 51 items.
LIST_CAP = 51
# The add answer stops after 101 items (rest_api_service.cpp:12488-12514).
ADD_CAP = 101
# The setDevicePassword frame is 48 bytes plus the password and must fit in 512 (§7.2).
DEEPLINK_PASSWORD_MAX_BYTES = 512 - len('{"method":"setDevicePassword","data":{"password":""}}')

_UUID_CHARS = re.compile(r"[A-Za-z0-9-]+")
_JSON_BREAKERS = re.compile(r'["\\\x00-\x1f\x7f]')
_POWER_STATE = re.compile(r"Power is (on|off)\b")


def is_masked(value: str | None) -> bool:
    """Tell whether a secret came back masked: non-empty and made only of ``*`` (§3.1)."""
    return bool(value) and set(value or "") == {"*"}


def check_wire_text(name: str, value: object, *, required: bool = True) -> None:
    """Raise InvalidInput unless ``value`` is a string the node can store and echo safely."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string")
    if required and not value:
        raise InvalidInput(f"{name} must not be empty")
    if _JSON_BREAKERS.search(value):
        raise InvalidInput(
            f"{name} must not contain '\"', '\\' or control characters: the node writes "
            "them into its JSON unescaped (docs/protocol.md §2.5)"
        )


def _check_port(name: str, port: object) -> None:
    # The node silently ignores a non-integer port and rejects 0 or > 65535 (§3.2).
    if port is None:
        return
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidInput(f"{name} must be an integer in 1..65535")


def _check_uuid(uuid: str) -> None:
    check_wire_text("uuid", uuid)
    # C isalnum or '-' (bare_metal_node_manager.h:17-28); ASCII only, digits allowed.
    if not _UUID_CHARS.fullmatch(uuid):
        raise InvalidInput("uuid may only contain ASCII letters, digits and '-'")


@dataclass(frozen=True)
class NewServer:
    """A GPU server to register with ``bare_metal/add``, checked with the node's rules."""

    uuid: str
    ip: str
    ipmi_hostname: str
    ipmi_username: str = field(repr=False)
    ipmi_password: str = field(repr=False)
    os: str = ""
    desc: str = ""
    ipmi_port: int | None = None

    def __post_init__(self) -> None:
        _check_uuid(self.uuid)
        for name in ("ip", "ipmi_hostname", "ipmi_username", "ipmi_password"):
            check_wire_text(name, getattr(self, name))
        check_wire_text("os", self.os, required=False)
        check_wire_text("desc", self.desc, required=False)
        _check_port("ipmi_port", self.ipmi_port)
        check_node_shell_fields(hostname=self.ipmi_hostname, port=self.ipmi_port,
                                username=self.ipmi_username, password=self.ipmi_password)

    def to_wire(self) -> dict[str, Any]:
        """Return the item of ``additional.bare_metal_nodes`` (port only when set)."""
        item: dict[str, Any] = {
            "uuid": self.uuid, "ip": self.ip, "os": self.os, "desc": self.desc,
            "ipmi_hostname": self.ipmi_hostname, "ipmi_username": self.ipmi_username,
            "ipmi_password": self.ipmi_password,
        }
        if self.ipmi_port is not None:
            item["ipmi_port"] = self.ipmi_port
        return item


@dataclass(frozen=True)
class ServerChanges:
    """Fields to change with ``bare_metal/modify/<id>``; ``None`` keeps the stored value.

    The node treats an empty string as "keep" too and can never clear a field (§3.4),
    so empty strings are refused here rather than silently ignored.
    """

    uuid: str | None = None
    ip: str | None = None
    os: str | None = None
    desc: str | None = None
    ipmi_hostname: str | None = None
    ipmi_username: str | None = field(default=None, repr=False)
    ipmi_password: str | None = field(default=None, repr=False)
    ipmi_port: int | None = None

    def __post_init__(self) -> None:
        texts = {k: v for k, v in self._texts().items() if v is not None}
        if not texts and self.ipmi_port is None:
            raise InvalidInput("nothing to change: give at least one field")
        for name, value in texts.items():
            check_wire_text(name, value)
            if name.startswith("ipmi_"):
                check_shell_word(name, value)
        if self.uuid is not None:
            _check_uuid(self.uuid)
        _check_port("ipmi_port", self.ipmi_port)

    def _texts(self) -> dict[str, str | None]:
        return {
            "uuid": self.uuid, "ip": self.ip, "os": self.os, "desc": self.desc,
            "ipmi_hostname": self.ipmi_hostname, "ipmi_username": self.ipmi_username,
            "ipmi_password": self.ipmi_password,
        }

    def to_wire(self) -> dict[str, Any]:
        """Return the ``additional`` object with only the fields to change."""
        changes: dict[str, Any] = {k: v for k, v in self._texts().items() if v is not None}
        if self.ipmi_port is not None:
            changes["ipmi_port"] = self.ipmi_port
        return changes


@dataclass(frozen=True, kw_only=True)
class BareMetalServer:
    """One server as the bare-metal node lists it (local list or manager view, §3.1)."""

    node_id: str
    uuid: str
    ip: str
    os: str
    description: str
    ipmi_hostname: str
    ipmi_username: str = field(repr=False)
    ipmi_password: str = field(repr=False)
    ipmi_port: int | None = None
    node_private_key: str = field(repr=False)
    deeplink_device_id: str | None = None
    deeplink_device_password: str | None = field(default=None, repr=False)
    power_status: str | None = None

    @property
    def secrets_masked(self) -> bool:
        """Tell whether the node masked the secrets (no verified manager signature)."""
        return is_masked(self.node_private_key)


@dataclass(frozen=True)
class ServerListing:
    """Every server found by ``list_all_bare_metal``, with what could not be seen."""

    servers: tuple[BareMetalServer, ...]
    capped: bool
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeSummary:
    """A node as a client node lists it: node_id, the manager's name, version (§3.1)."""

    node_id: str
    name: str
    version: str


@dataclass(frozen=True, kw_only=True)
class RenterServerView:
    """The renter's view of one server through a client node (since 0.4.1.4, §3.1)."""

    version: str
    ip: str
    os: str
    description: str
    power_status: str | None = None
    deeplink_device_id: str | None = None
    deeplink_device_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class AddedServer:
    """A server registered by ``bare_metal/add``: its generated node_id and its uuid."""

    node_id: str
    uuid: str


@dataclass(frozen=True)
class DeleteResult:
    """Outcome of ``bare_metal/delete``: "<n> were successfully deleted, <m> failed"."""

    succeeded: int
    failed: int
    message: str


def _power_state(message: str) -> str | None:
    match = _POWER_STATE.search(message)
    return match.group(1) if match else None


@dataclass(frozen=True)
class PowerResult:
    """Answer of ``bare_metal/power``: the backend's text (ipmitool, plug-in, Smyoo, §6)."""

    command: str
    message: str

    @property
    def power_state(self) -> str | None:
        """Return "on"/"off" when the text reports a power state, else None."""
        return _power_state(self.message)


@dataclass(frozen=True)
class BootdevResult:
    """Answer of ``bare_metal/bootdev``.

    ``confirmed`` is False for the node's constant ``-3 "bare metal client not existed"``,
    which it sends even when the BMC took the change (§3.7): the outcome is unknown and
    must be read back from the BMC.
    """

    device: str
    confirmed: bool
    message: str


@dataclass(frozen=True)
class DeepLinkInfo:
    """DeepLink device code and verification code as the node reports them (§3.8)."""

    device_id: str
    device_password: str = field(repr=False)

    @property
    def password_masked(self) -> bool:
        """Tell whether the node masked the verification code."""
        return is_masked(self.device_password)


@dataclass(frozen=True)
class NodeVersion:
    """Answer of the ``/api/v1/`` probe (§2.2)."""

    client_version: str

    @property
    def parts(self) -> tuple[int, ...]:
        """Return the dotted version as integers, e.g. (0, 4, 1, 8); () if not numeric."""
        pieces = self.client_version.split(".")
        return tuple(int(p) for p in pieces) if all(p.isdigit() for p in pieces) else ()

    def at_least(self, version: str) -> bool:
        """Tell whether this node is at least ``version`` (e.g. "0.4.1.7")."""
        wanted = tuple(int(p) for p in version.split("."))
        return bool(self.parts) and self.parts >= wanted


@dataclass(frozen=True)
class NodeInfo:
    """Answer of ``mining_nodes`` for one node; ``extra`` holds the other fields (§3.10)."""

    version: str
    node_type: str
    ip: str
    os: str
    deeplink: DeepLinkInfo | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiReply:
    """A successful answer whose ``message`` the client does not model (VM endpoints)."""

    endpoint: str
    message: Any
