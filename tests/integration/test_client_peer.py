"""The client against a scripted HTTP peer on loopback: transport faults and malformed answers.

The emulator answers like the node; this peer produces what no node should (truncated
bodies, HTML, wrong types, drip-fed bytes) so the client's failure paths run over real
HTTP. ``ScriptedPeer`` is also used by test_client_requests.py to record request shapes.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from baremetal.dbc.auth import NodeKeyAuth, SessionAuth
from baremetal.dbc.client import Client
from baremetal.dbc.http import MAX_ANSWER_BYTES
from baremetal.errors import (
    DecodeError,
    InvalidInput,
    NodeTimeout,
    NodeUnreachable,
    RelayTimeout,
)
from tests.support.ports import free_port

OK_EMPTY = b'{"errcode":0, "message":{}}\r\n'
MANAGER_KEY = "398f0c28f98885e046333d4a41c19cee4c37368a9832c6502f6cfd182e2aef89"
NODE_A = "a" * 64


@dataclass
class Recorded:
    """One request as the peer saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    """A scripted answer; ``raw`` takes over the socket for faults."""

    status: int = 200
    body: bytes = OK_EMPTY
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    delay_s: float = 0.0
    raw: Callable[[BaseHTTPRequestHandler], None] | None = None


class ScriptedPeer:
    """A real HTTP server on 127.0.0.1 that records requests and plays queued answers."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[Recorded] = []
        self.answers: deque[Answer] = deque()
        self.default = Answer()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler_class())
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def queue(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    def queue_json(self, message: Any, errcode: int = 0, status: int = 200) -> None:
        body = json.dumps({"errcode": errcode, "message": message}).encode() + b"\r\n"
        self.queue(Answer(status=status, body=body))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                peer.requests.append(Recorded(self.command, self.path, dict(self.headers), body))
                answer = peer.answers.popleft() if peer.answers else peer.default
                try:
                    time.sleep(answer.delay_s)
                    if answer.raw is not None:
                        answer.raw(self)
                        return
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except OSError:
                    pass  # the client gave up first; that is what the test wanted

            do_GET = do_POST = do_PUT = _serve

        return Handler


@pytest.fixture
def peer() -> Iterator[ScriptedPeer]:
    server = ScriptedPeer()
    yield server
    server.close()


def _drip(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    for _ in range(40):
        handler.wfile.write(b" ")
        handler.wfile.flush()
        time.sleep(0.1)


def _truncate(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "200")
    handler.end_headers()
    handler.wfile.write(b'{"errcode":0, "message":{"bare_metal_nodes":[{"node_id":"aa')
    handler.wfile.flush()
    handler.connection.shutdown(socket.SHUT_RDWR)


def _hang_up(handler: BaseHTTPRequestHandler) -> None:
    handler.connection.shutdown(socket.SHUT_RDWR)
    handler.close_connection = True


# -- transport ---------------------------------------------------------------------------

def test_refused_connection_is_node_unreachable():
    client = Client(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    with pytest.raises(NodeUnreachable) as info:
        client.list_bare_metal()
    assert info.value.endpoint == "list_bare_metal"


def test_hang_up_without_answer_is_node_unreachable(peer):
    peer.queue(Answer(raw=_hang_up))
    with pytest.raises(NodeUnreachable):
        Client(peer.url, timeout_s=2).version()


def test_slow_answer_is_node_timeout_within_the_deadline(peer):
    peer.queue(Answer(delay_s=3.0))
    started = time.monotonic()
    with pytest.raises(NodeTimeout) as info:
        Client(peer.url, timeout_s=0.3).list_bare_metal()
    assert time.monotonic() - started < 1.5
    assert info.value.endpoint == "list_bare_metal"


def test_per_call_timeout_overrides_the_default(peer):
    peer.queue(Answer(delay_s=0.5, body=b'{"errcode":0,"message":{"client_version":"0.4.1.8"}}'))
    client = Client(peer.url, timeout_s=0.1)
    assert client.version(timeout_s=5).client_version == "0.4.1.8"
    with pytest.raises(InvalidInput):
        client.version(timeout_s=0)


def test_drip_fed_answer_is_cut_off_by_the_overall_deadline(peer):
    peer.queue(Answer(raw=_drip))
    started = time.monotonic()
    with pytest.raises(NodeTimeout):
        Client(peer.url, timeout_s=0.5).list_bare_metal()
    assert time.monotonic() - started < 2 * 0.5 + 0.5


def test_truncated_body_is_a_decode_error(peer):
    peer.queue(Answer(raw=_truncate))
    with pytest.raises(DecodeError) as info:
        Client(peer.url, timeout_s=2).list_bare_metal()
    assert info.value.http_status == 200


def test_oversized_answer_is_refused(peer):
    peer.queue(Answer(body=b" " * (MAX_ANSWER_BYTES + 1)))
    with pytest.raises(DecodeError, match="larger than"):
        Client(peer.url, timeout_s=5).list_bare_metal()


def test_environment_proxy_is_ignored(peer, monkeypatch):
    # A proxy would see every signature; node traffic must go straight to the node.
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    peer.queue_json({"client_version": "0.4.1.8"})
    assert Client(peer.url, timeout_s=2).version().client_version == "0.4.1.8"


# -- malformed answers -----------------------------------------------------------------

@pytest.mark.parametrize(("status", "body", "ctype", "needle"), [
    (502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html", "text/html"),
    (302, b"", "text/plain", "empty body"),
    (200, b'{"errcode":0, "message":{"bare_metal_nodes":[{"node_id":"', "application/json",
     "invalid JSON"),
    (200, b'{"errcode":0, "message":{"bare_metal_nodes":"none"}}', "application/json",
     "not an array"),
    (200, b'{"errcode":"0", "message":{}}', "application/json", "no integer errcode"),
])
def test_malformed_answers_are_decode_errors(peer, status, body, ctype, needle):
    peer.queue(Answer(status=status, body=body, headers={"Content-Type": ctype}))
    with pytest.raises(DecodeError, match=needle) as info:
        Client(peer.url, timeout_s=2).list_bare_metal()
    assert info.value.http_status == status


def test_unescaped_description_from_a_verified_list_never_leaks_keys(peer):
    item = (f'{{"node_id":"{NODE_A}","node_private_key":"{MANAGER_KEY}","uuid":"u1","ip":"i",'
            f'"os":"","description":"say "hi"","ipmi_hostname":"h","ipmi_username":"root",'
            f'"ipmi_password":"pw-secret-1"}}')
    peer.queue(Answer(body=('{"errcode":0, "message":{"bare_metal_nodes":[' + item + "]}}\r\n")
                      .encode()))
    with pytest.raises(DecodeError, match=r"§2\.5") as info:
        Client(peer.url, timeout_s=2).list_bare_metal(NodeKeyAuth(MANAGER_KEY))
    assert MANAGER_KEY not in str(info.value) and "pw-secret-1" not in str(info.value)


@pytest.mark.parametrize(("call", "message", "needle"), [
    (lambda c: c.get_bare_metal("u1"),
     {"bare_metal_nodes": [{"node_id": NODE_A, "uuid": "u1", "ipmi_port": "623"}]}, "missing"),
    (lambda c: c.get_deeplink(NODE_A), {"device_id": 1, "device_password": ""}, "device_id"),
    (lambda c: c.get_deeplink(NODE_A), "ok", "not a JSON object"),
    (lambda c: c.power(NODE_A, "status", SessionAuth("s", "t")), {"text": "on"},
     "not a string"),
    (lambda c: c.delete_bare_metal([NODE_A], NodeKeyAuth(MANAGER_KEY)), "done", "deleted"),
    (lambda c: c.version(), {"version": "0.4.1.8"}, "client_version"),
    (lambda c: c.node_info(NODE_A), {"version": "0.4.1.8"}, "node_type"),
    (lambda c: c.get_bare_metal("u2"),
     {"bare_metal_nodes": []}, None),
])
def test_wrong_shapes_are_decode_errors_not_crashes(peer, call, message, needle):
    peer.queue_json(message)
    client = Client(peer.url, timeout_s=2)
    if needle is None:
        assert call(client) is None
        return
    with pytest.raises(DecodeError, match=needle):
        call(client)


def test_get_bare_metal_refuses_an_answer_about_another_server(peer):
    other = {"node_id": NODE_A, "node_private_key": "*", "uuid": "other", "ip": "i", "os": "",
             "description": "", "ipmi_hostname": "h", "ipmi_username": "*", "ipmi_password": "*"}
    peer.queue_json({"bare_metal_nodes": [other]})
    with pytest.raises(DecodeError, match="another server"):
        Client(peer.url, timeout_s=2).get_bare_metal("wanted-uuid")


def test_client_node_timeout_answer_is_relay_timeout(peer):
    body = b'{\n    "errcode": -1,\n    "message": "bare metal power timeout"\n}\r\n'
    peer.queue(Answer(status=500, body=body))
    with pytest.raises(RelayTimeout) as info:
        Client(peer.url, timeout_s=2).power(NODE_A, "on", SessionAuth("s", "t"))
    assert (info.value.http_status, info.value.errcode) == (500, -1)
