"""Pure IPMI encoding for the few commands the agent needs: no sockets, no pyghmi.

Everything is chassis netfn (0x00), IPMI 2.0 spec §28:

- Get Chassis Status (cmd 0x01): byte 1 bit 0 = power is on.
- Chassis Control (cmd 0x02): 0 = power down, 1 = power up, 3 = hard reset, 5 = soft off.
- Set/Get System Boot Options (cmd 0x08/0x09), parameter 5 "boot flags" (table 28-14):
  byte 1 bit 7 valid, bit 6 persistent, bit 5 EFI; byte 2 bits 5:2 device selector.
  Parameter 3 bit 3 stops the BMC clearing the valid bit after 60 s (docs/ipmi.md §6.3).

Also the session-less Get Channel Authentication Capabilities probe (IPMI 2.0 §22.13) used to
refuse IPMI-1.5-only BMCs before any credential is sent (docs/ipmi.md §4.1).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from baremetal.errors import (
    IpmiAuthError,
    IpmiBusy,
    IpmiError,
    IpmiProtocolError,
    IpmiTimeout,
    IpmiUnreachable,
    IpmiUnsupported,
)

__all__ = [
    "CMD_CHASSIS_CONTROL",
    "CMD_GET_BOOT_OPTIONS",
    "CMD_GET_CHASSIS_STATUS",
    "CMD_SET_BOOT_OPTIONS",
    "DBC_BOOT_DEVICES",
    "GET_BOOT_FLAGS_REQUEST",
    "NETFN_CHASSIS",
    "POWER_ACTIONS",
    "TIMER_DISABLE_REQUEST",
    "AuthCapabilities",
    "BmcAddress",
    "BootFlags",
    "PowerState",
    "auth_cap_probe",
    "boot_flags_request",
    "chassis_control_request",
    "completion_error",
    "error_kind",
    "parse_auth_cap_reply",
    "parse_boot_flags",
    "parse_chassis_status",
]

NETFN_CHASSIS = 0x00
CMD_GET_CHASSIS_STATUS = 0x01
CMD_CHASSIS_CONTROL = 0x02
CMD_SET_BOOT_OPTIONS = 0x08
CMD_GET_BOOT_OPTIONS = 0x09

_PARAM_VALID_BIT_CLEARING = 3
_PARAM_BOOT_FLAGS = 5
_DONT_CLEAR_ON_60S_TIMEOUT = 0x08
_FLAG_VALID, _FLAG_PERSISTENT, _FLAG_UEFI = 0x80, 0x40, 0x20

#: Set System Boot Options, parameter 3: keep the valid bit past the 60 s timer.
TIMER_DISABLE_REQUEST = bytes([_PARAM_VALID_BIT_CLEARING, _DONT_CLEAR_ON_60S_TIMEOUT])
#: Get System Boot Options, parameter 5, set selector 0, block selector 0.
GET_BOOT_FLAGS_REQUEST = bytes([_PARAM_BOOT_FLAGS, 0, 0])

#: Staff/agent power actions -> Chassis Control byte (IPMI 2.0 table 28-4).
POWER_ACTIONS: dict[str, int] = {"off": 0, "on": 1, "reset": 3, "soft": 5}

#: The boot devices DBC accepts (docs/protocol.md §3.7) -> 4-bit selector, as ipmitool sends
#: them for ``chassis bootdev`` (none 0x00, pxe 0x04, disk 0x08, cdrom 0x14, bios 0x18).
DBC_BOOT_DEVICES: dict[str, int] = {"none": 0, "pxe": 1, "disk": 2, "cdrom": 5, "bios": 6}
_DEVICE_BY_SELECTOR = {sel: name for name, sel in DBC_BOOT_DEVICES.items()}

_MAX_USER_BYTES = 16  # IPMI 2.0 user name limit (RAKP1)
_MAX_PASSWORD_BYTES = 20  # IPMI 2.0 password limit


class PowerState(enum.StrEnum):
    """Chassis power as the BMC reports it."""

    ON = "on"
    OFF = "off"


@dataclass(frozen=True, kw_only=True)
class BmcAddress:
    """Where a BMC listens and how to log in; the password never shows in repr or str."""

    host: str
    port: int = 623
    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.host or any(ch.isspace() for ch in self.host):
            raise ValueError("BMC host must be a non-empty name or address without spaces")
        if not 0 < self.port < 65536:
            raise ValueError(f"BMC port {self.port} is out of range 1-65535")
        if len(self.username.encode("utf-8")) > _MAX_USER_BYTES:
            raise ValueError("IPMI user name is longer than 16 bytes")
        if len(self.password.encode("utf-8")) > _MAX_PASSWORD_BYTES:
            raise ValueError("IPMI password is longer than 20 bytes (IPMI 2.0 limit)")

    @property
    def label(self) -> str:
        """``host:port``: how errors, logs and metrics name this BMC."""
        return f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.username}@{self.label}"


@dataclass(frozen=True)
class BootFlags:
    """Boot flags as read back: ``device`` is a DBC name, ``default`` or ``unknown:0xNN``.

    ``device`` is ``default`` whenever the valid bit is clear: the BMC will then boot its
    normal order whatever ``selector`` holds (a used one-time override reads back this way).
    ``unknown:0xNN`` names a selector outside DBC's set (e.g. 0x09, Supermicro's UEFI disk).
    """

    device: str
    selector: int
    valid: bool
    persistent: bool
    uefi: bool


@dataclass(frozen=True)
class AuthCapabilities:
    """What the session-less capability probe learned about the BMC's LAN channel."""

    channel: int
    ipmi20: bool
    ipmi15_auth_types: int


def chassis_control_request(action: str) -> bytes:
    """Encode Chassis Control data for ``on``, ``off``, ``soft`` or ``reset``."""
    try:
        return bytes([POWER_ACTIONS[action]])
    except KeyError:
        raise ValueError(
            f"unknown power action {action!r}; expected one of {sorted(POWER_ACTIONS)}"
        ) from None


def boot_flags_request(device: str, *, persistent: bool, uefi: bool) -> bytes:
    """Encode Set System Boot Options parameter 5 for a DBC device name (valid bit set)."""
    try:
        selector = DBC_BOOT_DEVICES[device]
    except KeyError:
        raise ValueError(
            f"unknown boot device {device!r}; expected one of {sorted(DBC_BOOT_DEVICES)}"
        ) from None
    flags = _FLAG_VALID | (_FLAG_PERSISTENT if persistent else 0) | (_FLAG_UEFI if uefi else 0)
    return bytes([_PARAM_BOOT_FLAGS, flags, selector << 2, 0, 0, 0])


def parse_chassis_status(bmc: str, data: bytes) -> PowerState:
    """Decode Get Chassis Status data (after the completion code)."""
    if len(data) < 3:
        raise IpmiProtocolError(bmc, f"chassis status answer too short ({len(data)} bytes)")
    return PowerState.ON if data[0] & 0x01 else PowerState.OFF


def parse_boot_flags(bmc: str, data: bytes) -> BootFlags:
    """Decode Get System Boot Options parameter 5 data (after the completion code)."""
    # ipmi_sim answers 7 bytes (version, selector, 5 flag bytes); some BMCs trim the last
    # three, so only version, selector and the two meaningful flag bytes are required.
    if len(data) < 4:
        raise IpmiProtocolError(bmc, f"boot flags answer too short ({len(data)} bytes)")
    if data[1] & 0x7F != _PARAM_BOOT_FLAGS:
        raise IpmiProtocolError(bmc, f"asked for boot parameter 5, got {data[1] & 0x7F}")
    # Bit 7 of the selector byte marks the parameter invalid/locked: treat as not valid.
    valid = bool(data[2] & _FLAG_VALID) and not data[1] & 0x80
    selector = (data[3] >> 2) & 0x0F
    if not valid:
        device = "default"
    else:
        device = _DEVICE_BY_SELECTOR.get(selector, f"unknown:0x{selector:02x}")
    return BootFlags(
        device=device,
        selector=selector,
        valid=valid,
        persistent=bool(data[2] & _FLAG_PERSISTENT),
        uefi=bool(data[2] & _FLAG_UEFI),
    )


# Completion codes (IPMI 2.0 table 5-2, plus 0x80 from Get/Set System Boot Options).
_BUSY = "try again later"
_COMPLETION: dict[int, tuple[type[IpmiError], str]] = {
    0x80: (IpmiUnsupported, "parameter not supported by this BMC"),
    0xC0: (IpmiBusy, f"the BMC is busy (node busy); {_BUSY}"),
    0xC1: (IpmiUnsupported, "the BMC does not implement this command"),
    0xC2: (IpmiUnsupported, "command not valid for this LUN"),
    0xC3: (IpmiBusy, f"the BMC timed out processing the command; {_BUSY}"),
    0xC9: (IpmiUnsupported, "parameter out of range for this BMC"),
    0xCC: (IpmiUnsupported, "the BMC rejected a field of the request (value not supported)"),
    0xD0: (IpmiBusy, f"the BMC's sensor repository is updating; {_BUSY}"),
    0xD1: (IpmiBusy, f"the BMC is in firmware update mode; {_BUSY}"),
    0xD2: (IpmiBusy, f"the BMC is still initialising; {_BUSY}"),
    0xD4: (IpmiAuthError, "the IPMI user lacks the privilege for this (needs Operator)"),
    0xD5: (IpmiUnsupported, "the BMC cannot do this in its present state"),
    0xD6: (IpmiUnsupported, "this function is disabled on the BMC"),
}


def completion_error(bmc: str, what: str, code: int) -> IpmiError:
    """Build the IpmiError for a non-zero completion code of request ``what``."""
    cls, text = _COMPLETION.get(code, (IpmiProtocolError, "the BMC reported an error"))
    return cls(bmc, f"{what}: {text} (completion code 0x{code:02X})")


_KINDS: tuple[tuple[type[IpmiError], str], ...] = (
    (IpmiUnreachable, "unreachable"),
    (IpmiTimeout, "timeout"),
    (IpmiAuthError, "auth"),
    (IpmiBusy, "busy"),
    (IpmiUnsupported, "unsupported"),
    (IpmiProtocolError, "protocol"),
)


def error_kind(exc: IpmiError) -> str:
    """Name the class of an IPMI error: unreachable, timeout, auth, busy, unsupported, protocol."""
    for cls, kind in _KINDS:
        if isinstance(exc, cls):
            return kind
    return "protocol"


# --- session-less Get Channel Authentication Capabilities (IPMI 2.0 §13.14, §22.13) ---
_RMCP_IPMI = b"\x06\x00\xff\x07"
_BMC_ADDR, _SW_ID = 0x20, 0x81
_NETFN_APP, _CMD_GET_AUTH_CAP = 0x06, 0x38
_CHANNEL_CURRENT_V2 = 0x8E  # bit 7: ask for IPMI 2.0 extended data; 0x0E: this channel
_PRIV_USER = 0x02  # lowest useful level: any BMC that takes logins answers it


def _checksum(data: bytes) -> int:
    return (-sum(data)) & 0xFF


def auth_cap_probe(seq: int) -> bytes:
    """Encode the session-less capability request (IPMI 1.5 framing, as every BMC accepts)."""
    header = bytes([_BMC_ADDR, _NETFN_APP << 2])
    body = bytes([_SW_ID, (seq & 0x3F) << 2, _CMD_GET_AUTH_CAP, _CHANNEL_CURRENT_V2, _PRIV_USER])
    message = header + bytes([_checksum(header)]) + body + bytes([_checksum(body)])
    return _RMCP_IPMI + b"\x00" + bytes(8) + bytes([len(message)]) + message


def parse_auth_cap_reply(bmc: str, packet: bytes, seq: int) -> AuthCapabilities | None:
    """Decode the probe's answer; None if the packet is not the answer to ``seq``."""
    if len(packet) < 14 or packet[:4] != _RMCP_IPMI or packet[4] != 0:
        return None
    message = packet[14 : 14 + packet[13]]
    if len(message) < 8 or message[1] >> 2 != _NETFN_APP + 1 or message[5] != _CMD_GET_AUTH_CAP:
        return None
    if message[4] >> 2 != seq & 0x3F:
        return None
    code, data = message[6], message[7:-1]
    if code == 0xCC:
        # An IPMI 1.5 BMC refuses the "IPMI 2.0 extended data" bit (IPMI 2.0 §22.13).
        return AuthCapabilities(channel=0, ipmi20=False, ipmi15_auth_types=0)
    if code != 0:
        raise completion_error(bmc, "authentication capabilities", code)
    if len(data) < 4:
        raise IpmiProtocolError(bmc, f"capability answer too short ({len(data)} bytes)")
    extended = bool(data[1] & 0x80)
    return AuthCapabilities(
        channel=data[0],
        ipmi20=extended and bool(data[3] & 0x02),
        ipmi15_auth_types=data[1] & 0x3F,
    )

