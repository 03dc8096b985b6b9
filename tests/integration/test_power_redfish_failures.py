"""The Redfish power path when the service is gone or slow: typed errors within the deadline."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from baremetal.errors import PathTimeout, PathUnreachable
from baremetal.power.redfish import RedfishBackend, RedfishTarget
from tests.support.http_relay import HttpRelay
from tests.support.redfish_emulator import (
    PASSWORD,
    USER,
    RedfishEmulator,
    start_redfish_emulator,
)

MARGIN_S = 0.5


class SlowRelay(HttpRelay):
    """Relays to the emulator but holds every answer for ``hold_s`` (a slow BMC)."""

    hold_s = 0.0

    def deliver(self, conn: socket.socket, request: bytes, answer: bytes) -> bool:
        time.sleep(self.hold_s)
        return super().deliver(conn, request, answer)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedfishEmulator]:
    emu = start_redfish_emulator(tmp_path_factory.mktemp("redfish-failures"))
    yield emu
    emu.stop()


def _backend(url: str, emu: RedfishEmulator) -> RedfishBackend:
    return RedfishBackend(RedfishTarget(base_url=url, username=USER, password=PASSWORD,
                                        system_path=emu.system_path))


def test_a_slow_answer_is_a_timeout_within_the_deadline(emulator: RedfishEmulator) -> None:
    relay = SlowRelay(emulator.port)
    backend = _backend(relay.url, emulator)
    try:
        backend.status(5.0)  # fast: connected, authenticated
        relay.hold_s = 3.0
        started = time.monotonic()
        with pytest.raises(PathTimeout):
            backend.on(1.0)
        elapsed = time.monotonic() - started
    finally:
        relay.hold_s = 0.0
        backend.close()
        relay.close()
    assert elapsed < 1.0 + MARGIN_S


def test_a_slow_first_contact_is_a_timeout_within_the_deadline(
        emulator: RedfishEmulator) -> None:
    relay = SlowRelay(emulator.port)
    relay.hold_s = 3.0
    backend = _backend(relay.url, emulator)
    started = time.monotonic()
    try:
        with pytest.raises(PathTimeout):
            backend.status(1.0)
    finally:
        elapsed = time.monotonic() - started
        backend.close()
        relay.close()
    assert elapsed < 1.0 + MARGIN_S


def test_a_killed_emulator_is_unreachable(tmp_path_factory: pytest.TempPathFactory) -> None:
    emu = start_redfish_emulator(tmp_path_factory.mktemp("redfish-killed"))
    backend = _backend(emu.url, emu)
    try:
        backend.status(5.0)
        emu.proc.kill9()
        started = time.monotonic()
        with pytest.raises(PathUnreachable):
            backend.off(5.0)
        assert time.monotonic() - started < 5.0
    finally:
        backend.close()
        emu.stop()


def test_nothing_listening_is_unreachable(emulator: RedfishEmulator) -> None:
    from tests.support.ports import free_port
    backend = _backend(f"http://127.0.0.1:{free_port()}", emulator)
    try:
        with pytest.raises(PathUnreachable):
            backend.status(3.0)
    finally:
        backend.close()
