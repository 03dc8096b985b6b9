"""DeepLink LAN service against real TCP clients on loopback, each from its own 127.0.0.N.

Peers: the emulator's DeepLinkLanServer in-process, the simulated DeepLink both as a
subprocess (python -m baremetal.emulator.deeplink_client) and in-process, and raw sockets
for the byte-level checks. Reference: docs/protocol.md §7, §10 item 11.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from baremetal.emulator.deeplink_client import SimulatedDeepLink
from baremetal.emulator.deeplink_lan import DeepLinkLanServer, DeepLinkRoom, DeepLinkSession
from baremetal.lanframe import FrameDecoder, encode_frame, encode_header
from tests.support.ports import free_port
from tests.support.procs import Proc, python_module
from tests.support.wait import wait_for

CLIENT = "baremetal.emulator.deeplink_client"


def _session_with(room: DeepLinkRoom, ip: str, password: str) -> DeepLinkSession:
    def _match() -> DeepLinkSession | None:
        session = room.session_for_ip(ip)
        return session if session is not None and session.password == password else None

    return wait_for(_match, every=0.01)


def _raw(server: DeepLinkLanServer, source_ip: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source_ip, 0))
    sock.settimeout(3.0)
    sock.connect(server.address)
    return sock


def _info(**data: str) -> bytes:
    return encode_frame({"method": "setDeviceInfo", "data": data}, node_safe=True)


def _closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True


def _read_state(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def _start_server(room: DeepLinkRoom, port: int, *, faithful: bool = True) -> DeepLinkLanServer:
    server = DeepLinkLanServer("127.0.0.1", port, room, faithful=faithful)
    server.start()
    return server


@pytest.fixture
def room() -> DeepLinkRoom:
    return DeepLinkRoom()


@pytest.fixture
def server(room: DeepLinkRoom) -> Iterator[DeepLinkLanServer]:
    lan = _start_server(room, free_port())
    yield lan
    lan.stop()


@pytest.fixture
def deeplinks(server: DeepLinkLanServer) -> Iterator[Callable[..., SimulatedDeepLink]]:
    started: list[SimulatedDeepLink] = []

    def _start(source_ip: str, **kwargs: Any) -> SimulatedDeepLink:
        kwargs.setdefault("device_id", "100000001")
        kwargs.setdefault("password", "Init0001")
        client = SimulatedDeepLink(server.address, source_ip=source_ip, **kwargs)
        started.append(client)
        client.start()
        return client

    yield _start
    for client in started:
        client.stop()


def _client_args(node: tuple[str, int], source_ip: str, state: Path, *extra: str) -> list[str]:
    return python_module(
        CLIENT, "--node", f"{node[0]}:{node[1]}", "--source-ip", source_ip,
        "--device-id", "123456789", "--password", "Boot0001", "--state-file", str(state), *extra,
    )


def test_subprocess_client_reports_and_applies_a_pushed_password(
    server: DeepLinkLanServer, room: DeepLinkRoom, spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    state = tmp_path / "pc.json"
    proc = spawn(_client_args(server.address, "127.0.0.7", state), name="deeplink")

    session = _session_with(room, "127.0.0.7", "Boot0001")
    assert (session.remote_ip, session.device_id) == ("127.0.0.7", "123456789")
    wait_for(lambda: "deeplink-client connected 127.0.0.7:" in proc.log(), every=0.01)

    session.send_set_password("Rotated42")
    assert _session_with(room, "127.0.0.7", "Rotated42") is session
    assert _read_state(state)["password"] == "Rotated42"
    assert "Rotated42" not in proc.log()

    proc.stop()
    assert proc.popen.returncode == 0
    wait_for(lambda: room.session_for_ip("127.0.0.7") is None, every=0.01)


def test_password_breaking_deeplinks_rule_is_refused(
    deeplinks: Callable[..., SimulatedDeepLink], room: DeepLinkRoom, tmp_path: Path
) -> None:
    state = tmp_path / "pc.json"
    client = deeplinks("127.0.0.8", state_file=state)
    session = _session_with(room, "127.0.0.8", "Init0001")

    for bad in ("short", "has-dash99", "x" * 17, "密码密码密码"):
        session.send_set_password(bad)
    session.send_set_password("Good1234")

    _session_with(room, "127.0.0.8", "Good1234")
    # Two reports: the one at connect and the one for Good1234; the state follows.
    wait_for(lambda: _read_state(state).get("reports") == 2, every=0.01)
    assert client.rejected == 4
    assert _read_state(state) == client.snapshot()
    assert client.snapshot()["password"] == "Good1234"


def test_reject_passwords_knob_refuses_everything(
    deeplinks: Callable[..., SimulatedDeepLink], room: DeepLinkRoom
) -> None:
    client = deeplinks("127.0.0.9", reject_passwords=True)
    session = _session_with(room, "127.0.0.9", "Init0001")
    session.send_set_password("Valid123")
    assert client.wait_until(lambda c: c.rejected == 1, 3)
    assert (client.password, session.password) == ("Init0001", "Init0001")


def test_newest_connection_per_ip_wins(server: DeepLinkLanServer, room: DeepLinkRoom) -> None:
    with _raw(server, "127.0.0.12") as old, _raw(server, "127.0.0.13") as other:
        old.sendall(_info(device_id="old", password="OldPass1"))
        other.sendall(_info(device_id="other", password="Other001"))
        _session_with(room, "127.0.0.12", "OldPass1")
        with _raw(server, "127.0.0.12") as new:
            new.sendall(_info(device_id="new", password="NewPass1"))
            assert _closed_by_peer(old)
            session = _session_with(room, "127.0.0.12", "NewPass1")
            assert (session.device_id, session.remote_port) == ("new", new.getsockname()[1])
        assert room.session_for_ip("127.0.0.13").device_id == "other"  # type: ignore[union-attr]


def test_oversize_header_drops_the_session(server: DeepLinkLanServer, room: DeepLinkRoom) -> None:
    with _raw(server, "127.0.0.14") as sock:
        sock.sendall(_info(device_id="d", password="Pass0001"))
        _session_with(room, "127.0.0.14", "Pass0001")
        sock.sendall(encode_header(513) + b"{" * 20)
        assert _closed_by_peer(sock)
    wait_for(lambda: room.session_for_ip("127.0.0.14") is None, every=0.01)


def test_unknown_methods_and_non_objects_are_ignored(
    server: DeepLinkLanServer, room: DeepLinkRoom, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="baremetal.emulator.deeplink_lan")
    with _raw(server, "127.0.0.15") as sock:
        sock.sendall(encode_frame({"method": "getDeviceInfo",
                                   "data": {"device_id": "evil", "password": "Evil0001"}},
                                  node_safe=True))
        sock.sendall(encode_frame(b"[1,2]\0"))
        sock.sendall(_info(password="OnlyPw01"))  # device_id missing: keeps ""
        session = _session_with(room, "127.0.0.15", "OnlyPw01")
        assert session.device_id == ""
        sock.sendall(_info(device_id="555"))  # password missing: keeps OnlyPw01
        wait_for(lambda: session.device_id == "555", every=0.01)
        assert session.password == "OnlyPw01"
    assert "received 'getDeviceInfo'" in caplog.text
    assert "parse body failed" in caplog.text


def test_connected_but_silent_deeplink_reports_empty_values(
    server: DeepLinkLanServer, room: DeepLinkRoom
) -> None:
    with _raw(server, "127.0.0.16"):
        session = wait_for(lambda: room.session_for_ip("127.0.0.16"), every=0.01)
        assert session.device_info() == ("", "")
        assert room.session_for_ip("127.0.0.160") is None  # exact string match only


def test_set_password_is_written_unescaped(server: DeepLinkLanServer, room: DeepLinkRoom) -> None:
    with _raw(server, "127.0.0.17") as sock:
        session = wait_for(lambda: room.session_for_ip("127.0.0.17"), every=0.01)
        session.send_set_password('a"b')
        decoder = FrameDecoder()
        bodies = wait_for(lambda: decoder.feed(sock.recv(4096)), every=0.01)
    assert bodies == [b'{"method":"setDevicePassword","data":{"password":"a"b"}}']


def test_two_clients_from_different_ips_are_independent(
    deeplinks: Callable[..., SimulatedDeepLink], room: DeepLinkRoom
) -> None:
    first = deeplinks("127.0.0.10", device_id="10", password="First001")
    second = deeplinks("127.0.0.11", device_id="11", password="Second01")
    session = _session_with(room, "127.0.0.10", "First001")
    _session_with(room, "127.0.0.11", "Second01")

    session.send_set_password("Changed1")
    _session_with(room, "127.0.0.10", "Changed1")
    assert (first.password, second.password) == ("Changed1", "Second01")
    assert room.session_for_ip("127.0.0.11").device_info() == ("11", "Second01")  # type: ignore[union-attr]


def test_connect_delay_holds_the_first_connection(
    deeplinks: Callable[..., SimulatedDeepLink], room: DeepLinkRoom
) -> None:
    started = time.monotonic()
    deeplinks("127.0.0.18", connect_delay=0.5)
    assert room.session_for_ip("127.0.0.18") is None
    _session_with(room, "127.0.0.18", "Init0001")
    assert time.monotonic() - started >= 0.5


def test_password_too_long_for_a_frame_breaks_the_link(
    deeplinks: Callable[..., SimulatedDeepLink], room: DeepLinkRoom
) -> None:
    client = deeplinks("127.0.0.19")
    session = _session_with(room, "127.0.0.19", "Init0001")
    session.send_set_password("A" * 480)  # body 527 bytes: the node overflows (§7.2)
    assert client.wait_until(lambda c: not c.running and not c.connected, 3)
    wait_for(lambda: room.session_for_ip("127.0.0.19") is None, every=0.01)
    assert client.password == "Init0001"


def test_faithful_node_misreads_a_shorter_frame_without_nul(
    server: DeepLinkLanServer, room: DeepLinkRoom
) -> None:
    with _raw(server, "127.0.0.20") as sock:
        sock.sendall(encode_frame({"method": "setDeviceInfo",
                                   "data": {"device_id": "123456789", "password": "Long0001"}}))
        session = _session_with(room, "127.0.0.20", "Long0001")
        # Shorter, no NUL: the old tail stays in the node's buffer -> parse body failed.
        sock.sendall(encode_frame({"method": "setDeviceInfo", "data": {"password": "Short01"}}))
        sock.sendall(_info(device_id="marker"))
        wait_for(lambda: session.device_id == "marker", every=0.01)
        assert session.password == "Long0001"
        sock.sendall(_info(password="Short01"))  # node-safe: NUL-terminated
        _session_with(room, "127.0.0.20", "Short01")


@pytest.mark.parametrize("faithful", [True, False])
def test_a_256_byte_body_desynchronises_only_the_faithful_node(
    room: DeepLinkRoom, faithful: bool
) -> None:
    lan = _start_server(room, free_port(), faithful=faithful)
    body = json.dumps({"method": "setDeviceInfo", "data": {"password": "Pad00001"}}).encode()
    body += b" " * (256 - len(body))
    try:
        with _raw(lan, "127.0.0.21") as sock:
            sock.sendall(encode_frame(body))
            if faithful:  # the header reads as 0, then '{"me' is taken as a header
                assert _closed_by_peer(sock)
            else:
                assert _session_with(room, "127.0.0.21", "Pad00001")
    finally:
        lan.stop()


def test_client_started_before_the_node_connects_and_survives_restarts(
    room: DeepLinkRoom, spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    port, state = free_port(), tmp_path / "pc.json"
    proc = spawn(_client_args(("127.0.0.1", port), "127.0.0.22", state, "--reconnect"),
                 name="deeplink")
    wait_for(lambda: _read_state(state).get("connected") is False, every=0.01)
    assert proc.alive()

    lan = _start_server(room, port)
    try:
        started = time.monotonic()
        session = _session_with(room, "127.0.0.22", "Boot0001")
        assert time.monotonic() - started < 2.0
        session.send_set_password("AfterUp1")
        wait_for(lambda: _read_state(state).get("password") == "AfterUp1", every=0.01)
    finally:
        lan.stop()

    second_room = DeepLinkRoom()
    lan = _start_server(second_room, port)  # node restart: memory is empty again
    try:
        started = time.monotonic()
        session = _session_with(second_room, "127.0.0.22", "AfterUp1")
        assert time.monotonic() - started < 2.0
        assert session.device_id == "123456789"
    finally:
        lan.stop()
    proc.stop()
    assert proc.popen.returncode == 0


def test_client_without_reconnect_exits_1_when_the_node_is_down(
    spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    proc = spawn(_client_args(("127.0.0.1", free_port()), "127.0.0.23", tmp_path / "s.json"),
                 name="deeplink")
    assert proc.popen.wait(10) == 1


def test_no_password_reaches_the_logs(
    deeplinks: Callable[..., SimulatedDeepLink], room: DeepLinkRoom,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = deeplinks("127.0.0.24", password="Secret01")
    session = _session_with(room, "127.0.0.24", "Secret01")
    session.send_set_password("Secret02")
    session.send_set_password("bad-Secret03")
    session.send_set_password("Secret04" * 70)
    assert client.wait_until(lambda c: not c.running, 3)
    assert "Secret0" not in caplog.text
    assert "Secret0" not in repr(session) + repr(client)
