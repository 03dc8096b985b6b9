"""The Redfish power path against a real sushy-emulator (sushy-tools, fake driver)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from baremetal.errors import InvalidInput, NotAvailableOnThisPath, PathAuthFailed, PathProtocolError
from baremetal.power.backend import Operation, PowerPath, PowerState
from baremetal.power.redfish import ONCE_READ_AS_CONTINUOUS, RedfishBackend, RedfishTarget
from tests.support.redfish_emulator import (
    PASSWORD,
    USER,
    RedfishEmulator,
    start_redfish_emulator,
)

DEADLINE = 5.0


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedfishEmulator]:
    emu = start_redfish_emulator(tmp_path_factory.mktemp("redfish"))
    yield emu
    emu.stop()


def _backend(emu: RedfishEmulator, *, password: str = PASSWORD,
             system: bool = True) -> RedfishBackend:
    return RedfishBackend(RedfishTarget(
        base_url=emu.url, username=USER, password=password,
        system_path=emu.system_path if system else None))


@pytest.fixture
def backend(emulator: RedfishEmulator) -> Iterator[RedfishBackend]:
    b = _backend(emulator)
    yield b
    b.close()


def _emulator_power(emu: RedfishEmulator) -> str:
    """Read the emulator's own state over plain HTTP: an independent check."""
    answer = requests.get(emu.url + emu.system_path, auth=(USER, PASSWORD), timeout=5)
    answer.raise_for_status()
    return str(answer.json()["PowerState"])


def test_on_off_soft_reset_change_the_emulators_power(emulator: RedfishEmulator,
                                                       backend: RedfishBackend) -> None:
    backend.off(DEADLINE)
    assert _emulator_power(emulator) == "Off"
    assert backend.status(DEADLINE).power is PowerState.OFF
    backend.on(DEADLINE)
    assert _emulator_power(emulator) == "On"
    reading = backend.status(DEADLINE)
    assert reading.power is PowerState.ON and reading.path is PowerPath.REDFISH
    backend.reset(DEADLINE)
    assert _emulator_power(emulator) == "On"  # ForceRestart: off, then on again
    backend.soft(DEADLINE)
    assert _emulator_power(emulator) == "Off"


def test_the_only_system_is_found_without_a_url(emulator: RedfishEmulator) -> None:
    b = _backend(emulator, system=False)
    try:
        b.off(DEADLINE)
        assert b.status(DEADLINE).power is PowerState.OFF
    finally:
        b.close()


def test_capabilities_are_all_seven_operations(backend: RedfishBackend) -> None:
    caps = backend.capabilities
    assert caps.path is PowerPath.REDFISH
    assert all(caps.can(op) for op in Operation)


def test_a_wrong_system_url_is_a_protocol_error(emulator: RedfishEmulator) -> None:
    b = RedfishBackend(RedfishTarget(base_url=emulator.url, username=USER, password=PASSWORD,
                                     system_path="/redfish/v1/Systems/no-such-seat"))
    try:
        with pytest.raises(PathProtocolError, match="no such Redfish system"):
            b.status(DEADLINE)
    finally:
        b.close()


@pytest.mark.parametrize(("device", "uefi"), [("pxe", True), ("disk", True),
                                              ("cdrom", False)])
def test_boot_override_persistent_reads_back(backend: RedfishBackend, device: str,
                                             uefi: bool) -> None:
    backend.boot_set(device, persistent=True, uefi=uefi, deadline_s=DEADLINE)
    read = backend.boot_get(DEADLINE)
    assert (read.device, read.persistent, read.uefi, read.notes) == (device, True, uefi, ())


def test_a_one_time_override_read_back_as_continuous_is_noted(
        emulator: RedfishEmulator, backend: RedfishBackend) -> None:
    backend.boot_set("pxe", persistent=False, uefi=True, deadline_s=DEADLINE)
    # sushy-tools keeps every override continuous (its own code says so): check it.
    raw = requests.get(emulator.url + emulator.system_path, auth=(USER, PASSWORD),
                       timeout=5).json()["Boot"]
    assert raw["BootSourceOverrideTarget"] == "Pxe"
    assert raw["BootSourceOverrideEnabled"] == "Continuous"
    read = backend.boot_get(DEADLINE)
    assert read.device == "pxe" and read.uefi
    assert read.notes == (ONCE_READ_AS_CONTINUOUS,)


def test_a_device_the_bmc_does_not_allow_is_not_available(backend: RedfishBackend) -> None:
    # sushy-tools' AllowableValues has no BiosSetup: sushy refuses before sending.
    with pytest.raises(NotAvailableOnThisPath, match="AllowableValues"):
        backend.boot_set("bios", persistent=True, uefi=True, deadline_s=DEADLINE)


def test_an_unknown_boot_device_is_refused_before_sending(backend: RedfishBackend) -> None:
    with pytest.raises(InvalidInput, match="unknown boot device"):
        backend.boot_set("floppy", persistent=True, uefi=False, deadline_s=DEADLINE)


def test_a_wrong_password_is_auth_failed_without_the_password(
        emulator: RedfishEmulator) -> None:
    b = _backend(emulator, password="wrong-pass-XYZ")
    started = time.monotonic()
    try:
        with pytest.raises(PathAuthFailed) as caught:
            b.status(DEADLINE)
    finally:
        b.close()
    assert time.monotonic() - started < DEADLINE
    assert "wrong-pass-XYZ" not in str(caught.value)
    assert "wrong-pass-XYZ" not in repr(b) and PASSWORD not in repr(b._target)


def test_password_is_not_in_repr(emulator: RedfishEmulator) -> None:
    target = RedfishTarget(base_url=emulator.url, username=USER, password=PASSWORD)
    assert PASSWORD not in repr(target)


def test_target_refuses_ca_file_and_insecure_together() -> None:
    with pytest.raises(InvalidInput):
        RedfishTarget(base_url="https://bmc", username="u", password="p",
                      ca_file="/x.pem", insecure=True)
    assert RedfishTarget(base_url="https://bmc", username="u", password="p").verify is True
