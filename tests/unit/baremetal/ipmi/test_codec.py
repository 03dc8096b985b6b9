"""Pure IPMI encoding, decoding and error classification (no sockets)."""

from __future__ import annotations

import struct

import pytest
from pyghmi.exceptions import IpmiException

from baremetal.errors import (
    IpmiAuthError,
    IpmiBusy,
    IpmiProtocolError,
    IpmiTimeout,
    IpmiUnreachable,
    IpmiUnsupported,
)
from baremetal.ipmi import client as ipmi
from baremetal.ipmi import codec as ipmi_codec
from baremetal.ipmi.codec import (
    BmcAddress,
    BootFlags,
    PowerState,
    auth_cap_probe,
    boot_flags_request,
    chassis_control_request,
    completion_error,
    error_kind,
    parse_auth_cap_reply,
    parse_boot_flags,
    parse_chassis_status,
)
from baremetal.ipmi.session import translate_failure

ADDR = BmcAddress(host="10.0.0.5", username="ops", password="S3cret-pw")


def test_public_names_are_exported():
    for module in (ipmi, ipmi_codec):
        assert all(hasattr(module, name) for name in module.__all__)
    assert {"BmcClient", "BmcAddress", "BootFlags", "PowerState"} <= set(ipmi.__all__)


def test_address_never_shows_the_password():
    assert "S3cret" not in repr(ADDR)
    assert "S3cret" not in str(ADDR)
    assert ADDR.label == "10.0.0.5:623"
    assert str(ADDR) == "ops@10.0.0.5:623"


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"host": ""}, "host"),
        ({"host": "a b"}, "host"),
        ({"port": 0}, "port"),
        ({"port": 70000}, "port"),
        ({"username": "u" * 17}, "16 bytes"),
        ({"password": "p" * 21}, "20 bytes"),
    ],
)
def test_address_validation(fields, needle):
    base = {"host": "h", "port": 623, "username": "u", "password": "pw-never-shown"}
    with pytest.raises(ValueError, match=needle) as info:
        BmcAddress(**{**base, **fields})
    assert "pw-never-shown" not in str(info.value)


@pytest.mark.parametrize(("action", "byte"), [("off", 0), ("on", 1), ("reset", 3), ("soft", 5)])
def test_chassis_control_bytes(action, byte):
    assert chassis_control_request(action) == bytes([byte])


def test_unknown_power_action_is_refused():
    with pytest.raises(ValueError, match="cycle"):
        chassis_control_request("cycle")


@pytest.mark.parametrize(
    ("device", "second_byte"),
    [("none", 0x00), ("pxe", 0x04), ("disk", 0x08), ("cdrom", 0x14), ("bios", 0x18)],
)
def test_boot_selectors_match_ipmitool_bootdev(device, second_byte):
    # ipmitool's ipmi_chassis_set_bootdev: none 0x00, pxe 0x04, disk 0x08, cdrom 0x14, bios 0x18
    assert boot_flags_request(device, persistent=False, uefi=False) == bytes(
        [5, 0x80, second_byte, 0, 0, 0]
    )


@pytest.mark.parametrize(
    ("persistent", "uefi", "flags"),
    [(False, False, 0x80), (True, False, 0xC0), (False, True, 0xA0), (True, True, 0xE0)],
)
def test_boot_flag_bits_match_ironic_uefi_bytes(persistent, uefi, flags):
    # Ironic's UEFI raw bytes: 0xA0 one-time, 0xE0 persistent (docs/ipmi.md §6.2).
    assert boot_flags_request("pxe", persistent=persistent, uefi=uefi)[1] == flags


def test_unknown_boot_device_is_refused():
    with pytest.raises(ValueError, match="floppy"):
        boot_flags_request("floppy", persistent=False, uefi=False)


def test_chassis_status():
    assert parse_chassis_status("b", bytes([0x01, 0, 0])) is PowerState.ON
    assert parse_chassis_status("b", bytes([0x60, 0, 0, 0])) is PowerState.OFF
    with pytest.raises(IpmiProtocolError, match="too short"):
        parse_chassis_status("b", b"\x01")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (bytes([1, 5, 0xE0, 0x04, 0, 0, 0]), BootFlags("pxe", 1, True, True, True)),
        (bytes([1, 5, 0x80, 0x08, 0, 0, 0]), BootFlags("disk", 2, True, False, False)),
        (bytes([1, 5, 0x80, 0x00]), BootFlags("none", 0, True, False, False)),
        # ipmi_sim: valid bit never set, selector kept
        (bytes([1, 5, 0x00, 0x04, 0, 0, 0]), BootFlags("default", 1, False, False, False)),
        # parameter marked invalid/locked by the BMC
        (bytes([1, 0x85, 0x80, 0x14, 0, 0, 0]), BootFlags("default", 5, False, False, False)),
        # Supermicro UEFI disk 0x24 -> selector 9
        (bytes([1, 5, 0xA0, 0x24, 0, 0, 0]), BootFlags("unknown:0x09", 9, True, False, True)),
    ],
)
def test_parse_boot_flags(data, expected):
    assert parse_boot_flags("b", data) == expected


@pytest.mark.parametrize(("data", "needle"), [(b"\x01\x05\x80", "short"), (b"\x01\x03\x08\x00", "5")])
def test_parse_boot_flags_rejects_malformed(data, needle):
    with pytest.raises(IpmiProtocolError, match=needle):
        parse_boot_flags("b", data)


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (0xC0, IpmiBusy), (0xC3, IpmiBusy), (0xD2, IpmiBusy),
        (0xC1, IpmiUnsupported), (0xC9, IpmiUnsupported), (0x80, IpmiUnsupported),
        (0xCC, IpmiUnsupported), (0xD4, IpmiAuthError), (0xFF, IpmiProtocolError),
    ],
)
def test_completion_codes(code, cls):
    exc = completion_error("1.2.3.4:623", "power read", code)
    assert type(exc) is cls
    assert f"0x{code:02X}" in str(exc)
    assert str(exc).startswith("BMC 1.2.3.4:623: power read:")


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (IpmiUnreachable("b", "x"), "unreachable"), (IpmiTimeout("b", "x"), "timeout"),
        (IpmiAuthError("b", "x"), "auth"), (IpmiBusy("b", "x"), "busy"),
        (IpmiUnsupported("b", "x"), "unsupported"), (IpmiProtocolError("b", "x"), "protocol"),
    ],
)
def test_error_kind(exc, kind):
    assert error_kind(exc) == kind


def _auth_cap_reply(seq: int, code: int, data: bytes) -> bytes:
    body = bytes([0x81, 0x07 << 2, 0]) + bytes([0x20, seq << 2, 0x38, code]) + data + b"\x00"
    return b"\x06\x00\xff\x07\x00" + bytes(8) + bytes([len(body)]) + body


def test_auth_cap_probe_is_well_formed():
    packet = auth_cap_probe(3)
    assert packet[:4] == b"\x06\x00\xff\x07"
    message = packet[14:]
    assert len(message) == packet[13] == 9
    assert sum(message[:3]) & 0xFF == 0  # header checksum
    assert sum(message[3:]) & 0xFF == 0  # body checksum
    assert message[5] == 0x38 and message[6] == 0x8E


def test_auth_cap_reply_ipmi20():
    data = bytes([1, 0x80 | 0x04, 0x04, 0x03, 0, 0, 0, 0])
    caps = parse_auth_cap_reply("b", _auth_cap_reply(2, 0, data), seq=2)
    assert caps is not None and caps.ipmi20 and caps.channel == 1


def test_auth_cap_reply_ipmi15_only():
    no_rmcpp = bytes([1, 0x04, 0x04, 0x00, 0, 0, 0, 0])
    caps = parse_auth_cap_reply("b", _auth_cap_reply(1, 0, no_rmcpp), seq=1)
    assert caps is not None and not caps.ipmi20
    refused = parse_auth_cap_reply("b", _auth_cap_reply(1, 0xCC, b""), seq=1)
    assert refused is not None and not refused.ipmi20


def test_auth_cap_reply_ignores_other_packets():
    assert parse_auth_cap_reply("b", _auth_cap_reply(5, 0, bytes(8)), seq=4) is None
    assert parse_auth_cap_reply("b", b"\x06\x00\xff\x07", seq=1) is None
    assert parse_auth_cap_reply("b", struct.pack("!I", 7) * 6, seq=1) is None


@pytest.mark.parametrize(
    ("exc", "cls", "needle"),
    [
        (IpmiException(None), IpmiUnreachable, "no answer"),
        (IpmiException("timeout"), IpmiUnreachable, "no answer"),
        (IpmiException("Incorrect password provided"), IpmiAuthError, "wrong IPMI user name"),
        (IpmiException("Unauthorized name in RAKP2"), IpmiAuthError, "does not know user 'ops'"),
        (IpmiException("Unauthorized role or privilege level requested"), IpmiAuthError, "level"),
        (IpmiException("Insufficient resources to create new session (wait for existing "
                       "sessions to timeout)"), IpmiBusy, "session slot"),
        (IpmiException("No Cipher suite match with proposed security algorithms"),
         IpmiUnsupported, "cipher suite"),
        (IpmiException("Session no longer connected"), IpmiUnreachable, "stopped answering"),
        (IpmiException("weird S3cret-pw text"), IpmiProtocolError, "weird *** text"),
        (struct.error("pack expected 32 items"), IpmiProtocolError, "unexpected answer"),
        (ConnectionResetError(104, "reset"), IpmiUnreachable, "network error"),
    ],
)
def test_translate_pyghmi_failures(exc, cls, needle):
    out = translate_failure(exc, ADDR, "login")
    assert type(out) is cls
    assert needle in str(out)
    assert "S3cret" not in str(out)
