"""Reading a Redfish boot override back in DBC's names (no sockets)."""

from __future__ import annotations

from sushy.resources.system.constants import (
    BootSource,
    BootSourceOverrideEnabled,
    BootSourceOverrideMode,
)

from baremetal.power.redfish import ONCE_READ_AS_CONTINUOUS, RedfishTarget, _boot_setting

CONT, ONCE, OFF = (BootSourceOverrideEnabled.CONTINUOUS, BootSourceOverrideEnabled.ONCE,
                   BootSourceOverrideEnabled.DISABLED)
UEFI, LEGACY = BootSourceOverrideMode.UEFI, BootSourceOverrideMode.LEGACY


def test_dbc_names_read_back() -> None:
    for source, name in [(BootSource.PXE, "pxe"), (BootSource.HDD, "disk"),
                         (BootSource.CD, "cdrom"), (BootSource.BIOS_SETUP, "bios")]:
        read = _boot_setting(source, ONCE, LEGACY, asked_once=None)
        assert (read.device, read.persistent, read.uefi, read.notes) == (name, False, False, ())


def test_disabled_or_no_target_is_default() -> None:
    assert _boot_setting(BootSource.PXE, OFF, UEFI, asked_once=None).device == "default"
    assert _boot_setting(None, CONT, UEFI, asked_once=None).device == "default"


def test_once_read_back_as_continuous_is_noted_only_for_the_device_asked() -> None:
    noted = _boot_setting(BootSource.PXE, CONT, UEFI, asked_once="pxe")
    assert noted.persistent and noted.notes == (ONCE_READ_AS_CONTINUOUS,)
    assert _boot_setting(BootSource.HDD, CONT, UEFI, asked_once="pxe").notes == ()
    assert _boot_setting(BootSource.PXE, CONT, UEFI, asked_once=None).notes == ()


def test_a_target_without_a_dbc_name_is_default_with_a_note() -> None:
    read = _boot_setting(BootSource.USB, CONT, UEFI, asked_once=None)
    assert read.device == "default" and "Usb" in read.notes[0]


def test_verify_is_a_ca_file_false_when_insecure_else_true() -> None:
    base = {"base_url": "https://bmc", "username": "u", "password": "p"}
    assert RedfishTarget(**base).verify is True
    assert RedfishTarget(**base, ca_file="/ca.pem").verify == "/ca.pem"
    assert RedfishTarget(**base, insecure=True).verify is False
