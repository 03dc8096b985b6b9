"""The Redfish power path when the service is gone or slow: typed errors within the deadline."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from agent.tls import make_self_signed
from baremetal.errors import PathAuthFailed, PathProtocolError, PathTimeout, PathUnreachable
from baremetal.power.backend import PowerState
from baremetal.power.redfish import RedfishBackend, RedfishTarget
from tests.support.http_relay import HttpRelay
from tests.support.redfish_emulator import (
    PASSWORD,
    USER,
    RedfishEmulator,
    start_redfish_emulator,
)
from tests.support.redfish_sessions import SessionFront

MARGIN_S = 0.5


class SlowRelay(HttpRelay):
    """Relays to the emulator but holds every answer for ``hold_s`` (a slow BMC)."""

    hold_s = 0.0
    hold_only: bytes = b""  # hold only requests whose text contains this

    def deliver(self, conn: socket.socket, request: bytes, answer: bytes) -> bool:
        if self.hold_only in request:
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


@pytest.fixture
def session_front(emulator: RedfishEmulator) -> Iterator[SessionFront]:
    front = SessionFront(emulator.port, USER, PASSWORD)
    yield front
    front.close()


def test_close_logs_the_session_out(emulator: RedfishEmulator,
                                    session_front: SessionFront) -> None:
    backend = _backend(session_front.url, emulator)
    backend.on(5.0)
    assert backend.status(5.0).power is PowerState.ON
    assert session_front.opened == 1 and len(session_front.open_sessions) == 1
    backend.close()
    assert session_front.open_sessions == []


def test_close_logs_out_after_a_failed_call(emulator: RedfishEmulator,
                                            session_front: SessionFront) -> None:
    backend = RedfishBackend(RedfishTarget(base_url=session_front.url, username=USER,
                                           password=PASSWORD,
                                           system_path="/redfish/v1/Systems/nope"))
    with pytest.raises(PathProtocolError):
        backend.status(5.0)
    assert len(session_front.open_sessions) == 1
    backend.close()
    assert session_front.open_sessions == []


def test_a_wrong_password_opens_no_session(emulator: RedfishEmulator,
                                           session_front: SessionFront) -> None:
    backend = RedfishBackend(RedfishTarget(base_url=session_front.url, username=USER,
                                           password="wrong-pass-XYZ",
                                           system_path=emulator.system_path))
    try:
        with pytest.raises(PathAuthFailed) as caught:
            backend.status(5.0)
    finally:
        backend.close()
    assert "wrong-pass-XYZ" not in str(caught.value)
    assert session_front.opened == 0 and session_front.open_sessions == []


def test_an_error_body_of_the_wrong_shape_is_a_protocol_error(
        emulator: RedfishEmulator, session_front: SessionFront) -> None:
    # Found here: sushy 5.14 raises AttributeError on a 401 whose "error" is a string.
    session_front.refusal_body = b'{"error": "bad credentials"}'
    backend = RedfishBackend(RedfishTarget(base_url=session_front.url, username=USER,
                                           password="wrong-pass-XYZ",
                                           system_path=emulator.system_path))
    try:
        with pytest.raises(PathProtocolError, match="unexpected shape"):
            backend.status(5.0)
    finally:
        backend.close()


def test_a_timed_out_call_leaves_no_session_after_close(emulator: RedfishEmulator) -> None:
    front = SessionFront(emulator.port, USER, PASSWORD)
    relay = SlowRelay(front.port)
    relay.hold_s, relay.hold_only = 1.5, b"GET /redfish/v1/Systems/"  # after the login
    backend = _backend(relay.url, emulator)
    try:
        with pytest.raises(PathTimeout):
            backend.status(0.5)
        assert len(front.open_sessions) == 1
    finally:
        backend.close()
    try:
        assert front.open_sessions == []
    finally:
        relay.close()
        front.close()


def test_https_verifies_by_default_and_takes_a_ca_file_or_insecure(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    workdir = tmp_path_factory.mktemp("redfish-tls")
    cert, key = workdir / "bmc.pem", workdir / "bmc.key"
    make_self_signed(cert, key, ["127.0.0.1"])
    emu = start_redfish_emulator(workdir, tls=(cert, key))
    try:
        def backend(**tls: object) -> RedfishBackend:
            return RedfishBackend(RedfishTarget(base_url=emu.url, username=USER,
                                                password=PASSWORD,
                                                system_path=emu.system_path, **tls))
        default = backend()
        with pytest.raises(PathUnreachable, match="TLS failed"):
            default.status(5.0)
        default.close()
        for trusted in (backend(ca_file=str(cert)), backend(insecure=True)):
            assert trusted.status(5.0).power in (PowerState.ON, PowerState.OFF)
            trusted.close()
    finally:
        emu.stop()
