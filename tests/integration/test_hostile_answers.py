"""Hostile peers over real sockets: arbitrary node answers, garbage on the DeepLink LAN port.

A sample of the fuzzed answers of tests/unit/baremetal/dbc/test_fuzz_parse.py goes through a real
HTTP server on loopback to the real ``Client``: every call ends in a model or a
``BaremetalError`` leaf, never another exception, and never hangs past its deadline. Then
random byte streams hit the emulator's DeepLink LAN service over TCP: it survives them and
a real (simulated) DeepLink still connects and reports afterwards.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baremetal.dbc.auth import NodeKeyAuth
from baremetal.dbc.client import Client
from baremetal.emulator.deeplink_client import SimulatedDeepLink
from baremetal.errors import BaremetalError
from baremetal.lanframe import encode_frame, encode_header
from tests.integration.test_client_peer import Answer, ScriptedPeer
from tests.support.emulator import bm_post, register_servers, signed_fields, start_emulator

MANAGER_KEY = "398f0c28f98885e046333d4a41c19cee4c37368a9832c6502f6cfd182e2aef89"
CALL_TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def peer() -> Iterator[ScriptedPeer]:
    server = ScriptedPeer()
    yield server
    server.close()


def _calls(client: Client) -> list[Callable[[], Any]]:
    auth = NodeKeyAuth(MANAGER_KEY)
    return [
        lambda: client.version(),
        lambda: client.list_bare_metal(auth),
        lambda: client.get_bare_metal("a" * 64, auth),
        lambda: client.get_deeplink("a" * 64, auth),
        lambda: client.power("a" * 64, "status", auth),
    ]


_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)
_bodies = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda code, msg: json.dumps({"errcode": code, "message": msg}).encode(),
              st.integers(min_value=-40000, max_value=3), _json),
    st.builds(lambda text: ('{"errcode":0, "message":"' + text + '"}\r\n').encode(),
              st.text(max_size=40)),
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(status=st.sampled_from([200, 200, 200, 400, 404, 500, 502]), body=_bodies,
       ctype=st.sampled_from(["application/json", "text/html", ""]),
       which=st.integers(min_value=0, max_value=4))
def test_any_answer_over_http_is_a_model_or_a_baremetal_error(
        peer: ScriptedPeer, status: int, body: bytes, ctype: str, which: int) -> None:
    peer.answers.clear()
    peer.queue(Answer(status=status, body=body, headers={"Content-Type": ctype} if ctype else {}))
    with Client(peer.url, timeout_s=CALL_TIMEOUT_S) as client:
        started = time.monotonic()
        with contextlib.suppress(BaremetalError):  # anything else fails the test
            _calls(client)[which]()
        assert time.monotonic() - started < CALL_TIMEOUT_S * 2 + 1


# --- the DeepLink LAN service under garbage -------------------------------------------------


def _garbage_streams(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    streams = []
    for _ in range(count):
        kind = rng.randrange(4)
        if kind == 0:  # pure noise
            streams.append(rng.randbytes(rng.randrange(1, 2048)))
        elif kind == 1:  # valid frames, then noise
            streams.append(encode_frame({"method": "setDeviceInfo",
                                         "data": {"device_id": "x"}}) + rng.randbytes(64))
        elif kind == 2:  # frames whose bodies are not JSON objects
            streams.append(b"".join(encode_frame(rng.randbytes(rng.randrange(0, 512)))
                                    for _ in range(5)))
        else:  # an announced body that never comes, or one too large
            streams.append(encode_header(rng.choice([511, 512, 513, 2**31])) + b"{")
    return streams


def _send_and_close(host: str, port: int, source_ip: str, data: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(3.0)
        sock.bind((source_ip, 0))
        sock.connect((host, port))
        with contextlib.suppress(OSError):  # the node may drop us mid-stream, as it should
            sock.sendall(data)


def test_deeplink_lan_service_survives_garbage_then_serves_a_real_deeplink(spawn, tmp_path
                                                                           ) -> None:
    emu = start_emulator(spawn, tmp_path, client=False)
    assert emu.deeplink_host and emu.deeplink_port
    for index, data in enumerate(_garbage_streams(seed=6, count=40)):
        _send_and_close(emu.deeplink_host, emu.deeplink_port, f"127.0.0.{20 + index % 50}", data)
    assert emu.proc.alive()
    node_id = register_servers(emu, [{
        "uuid": "pc-1", "ip": "127.0.0.90", "os": "win10", "desc": "", "ipmi_hostname": "h",
        "ipmi_username": "u", "ipmi_password": "p"}])["pc-1"]
    listed = bm_post(emu.url, "/bare_metal", {"peer_nodes_list": [], "additional": {},
                                              **signed_fields(emu.manager_key)})
    server_key = listed.json()["message"]["bare_metal_nodes"][0]["node_private_key"]
    deeplink = SimulatedDeepLink((emu.deeplink_host, emu.deeplink_port), source_ip="127.0.0.90",
                                 device_id="100000009", password="Init0009")
    deeplink.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            reply = bm_post(emu.url, "/deeplink", {"peer_nodes_list": [node_id], "additional": {},
                                                   **signed_fields(server_key)}).json()
            if reply.get("message") == {"device_id": "100000009", "device_password": "Init0009"}:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"DeepLink not seen after the garbage: {reply}")
    finally:
        deeplink.stop()
    assert emu.proc.alive()
