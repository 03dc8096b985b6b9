"""A tiny stand-in for bm-agent's hook endpoints, for bm-hook tests only.

It implements the agent side of tests/contract/hook_relay.json over real HTTP
(``http.server`` on loopback) and verifies every request exactly as the contract says:
ed25519 signature over the canonical string (enroll: the café hook token; whoami and
deeplink: the PC's approved seat key named in ``X-BM-Seat-Key``), timestamp window, nonce
replay, body, and the TCP source IP against the registered server IP. ``seats`` maps seat
public keys to their state; with ``auto_approve`` (default) an enrolled key is approved at
once, as if staff had clicked. What it does after that
is pluggable (``publish``): the e2e tests pass :class:`NodePublisher`, which signs
``deeplink/set`` with the server key and reads back through the real emulator.

The real agent endpoint (agent/api) is written and tested with the agent; this
stand-in only lets the hook's side be tested against the contract today.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import nacl.exceptions
import nacl.signing

__all__ = ["AgentStandin", "NodePublisher", "Refusal", "RegisteredServer"]

WINDOW_S = 300
_HEX64 = re.compile(r"[0-9a-f]{64}")
_CODE = re.compile(r"[A-Za-z0-9]{6,16}")


class Refusal(Exception):
    """An error answer of the contract: HTTP status + error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class RegisteredServer:
    node_id: str
    ip: str
    node_private_key: str = field(repr=False, default="")


Publish = Callable[[RegisteredServer, str, str], str]


@dataclass
class AgentStandin:
    """Serve whoami and deeplink on 127.0.0.1:port with contract-exact verification."""

    token_public_hex: str
    servers: list[RegisteredServer]
    publish: Publish
    node_version: str = ""
    clock: Callable[[], float] = time.time
    seats: dict[str, str] = field(default_factory=dict)
    auto_approve: bool = True
    requests: list[dict[str, Any]] = field(default_factory=list)
    rotations: dict[str, str] = field(default_factory=dict)
    _nonces: dict[str, float] = field(default_factory=dict)
    _httpd: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, port: int) -> AgentStandin:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                standin._handle(self, "GET")

            def do_POST(self) -> None:
                standin._handle(self, "POST")

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # -- request handling ---------------------------------------------------------
    def _handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        record = {"method": method, "target": req.path, "source": req.client_address[0],
                  "headers": dict(req.headers), "body": body}
        with self._lock:
            self.requests.append(record)
        try:
            seat = self._verify(method, req.path, req.headers, body)
            answer = self._route(method, req.path, req.client_address[0], body, seat)
            self._send(req, 202 if answer.get("status") == "pending" else 200, answer)
        except Refusal as exc:
            self._send(req, exc.status, {"error": {"code": exc.code, "message": exc.message}})

    def _verify(self, method: str, target: str, headers: Any, body: bytes) -> str | None:
        timestamp = headers.get("X-BM-Timestamp", "")
        nonce = headers.get("X-BM-Nonce", "")
        signature = headers.get("X-BM-Signature", "")
        seat = headers.get("X-BM-Seat-Key")
        if seat is not None and seat not in self.seats:
            raise Refusal(403, "seat_not_enrolled", "this PC has no approved seat key")
        canonical = "\n".join([method, target, timestamp, nonce, hashlib.sha256(body).hexdigest()])
        try:
            nacl.signing.VerifyKey(bytes.fromhex(seat or self.token_public_hex)).verify(
                canonical.encode("utf-8"), bytes.fromhex(signature)
            )
        except (ValueError, nacl.exceptions.BadSignatureError):
            raise Refusal(403, "bad_signature", "hook token signature does not verify") from None
        if not timestamp.isdigit() or abs(self.clock() - int(timestamp)) > WINDOW_S:
            raise Refusal(401, "stale_timestamp", f"timestamp outside the {WINDOW_S} s window")
        with self._lock:
            now = self.clock()
            self._nonces = {n: t for n, t in self._nonces.items() if now - t <= WINDOW_S}
            if nonce in self._nonces:
                raise Refusal(409, "replayed", "nonce already used")
            self._nonces[nonce] = now
        return seat

    def _route(self, method: str, target: str, source: str, body: bytes,
               seat: str | None) -> dict[str, Any]:
        path = target.split("?", 1)[0]
        if method == "POST" and path == "/api/v1/hook/enroll" and seat is None:
            self._server_by_ip(source)
            key = json.loads(body)["seat_key"]
            with self._lock:
                state = self.seats.setdefault(key, "approved" if self.auto_approve else "pending")
            return {"status": state}
        if seat is None:
            raise Refusal(403, "seat_not_enrolled", "this PC has no approved seat key")
        if self.seats[seat] != "approved":
            raise Refusal(403, "seat_pending", "this PC waits for staff approval in the dashboard")
        if method == "GET" and path == "/api/v1/hook/whoami":
            server = self._server_by_ip(source)
            answer: dict[str, Any] = {"node_id": server.node_id}
            if self.node_version:
                answer["node_version"] = self.node_version
            return answer
        if method == "POST" and path == "/api/v1/hook/deeplink":
            return self._deeplink(source, body)
        raise Refusal(404, "not_found", "no such hook endpoint")

    def _deeplink(self, source: str, body: bytes) -> dict[str, Any]:
        payload = _parse_body(body)
        server = next((s for s in self.servers if s.node_id == payload["node_id"]), None)
        if server is None or server.ip != source:
            raise Refusal(403, "forbidden_source", "request does not come from the server's IP")
        self.publish(server, payload["device_password"], payload.get("device_id", ""))
        rotated_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock()))
        with self._lock:
            self.rotations[server.node_id] = rotated_at
        return {"status": "confirmed", "rotated_at": rotated_at}  # never the device_id

    def _server_by_ip(self, source: str) -> RegisteredServer:
        for server in self.servers:
            if server.ip == source:
                return server
        raise Refusal(403, "forbidden_source", f"no server is registered with IP {source}")

    def _send(self, req: BaseHTTPRequestHandler, status: int, answer: dict[str, Any]) -> None:
        data = json.dumps(answer).encode("utf-8")
        # send_response() would add a second Date (real time); ours follows self.clock.
        req.send_response_only(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.send_header("Date", email.utils.formatdate(self.clock(), usegmt=True))
        req.end_headers()
        req.wfile.write(data)


def _parse_body(body: bytes) -> dict[str, str]:
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Refusal(400, "bad_request", "body is not JSON") from None
    if not isinstance(payload, dict) or not _HEX64.fullmatch(str(payload.get("node_id", ""))):
        raise Refusal(400, "bad_request", "node_id must be 64 hex characters")
    if not _CODE.fullmatch(str(payload.get("device_password", ""))):
        raise Refusal(400, "bad_request", "device_password must be 6-16 letters and digits")
    if "device_id" in payload and not (isinstance(payload["device_id"], str) and payload["device_id"]):
        raise Refusal(400, "bad_request", "device_id must be a non-empty string")
    return payload


@dataclass
class NodePublisher:
    """What the agent does after verification: sign with the server key, set, read back."""

    node_url: str
    confirm_s: float = 10.0

    def __call__(self, server: RegisteredServer, code: str, device_id: str) -> str:
        from baremetal import errors as bm
        from baremetal.dbc.client import Client, NodeKeyAuth

        client = Client(self.node_url, timeout_s=5.0)
        auth = NodeKeyAuth(server.node_private_key)
        try:
            client.set_deeplink(server.node_id, device_id=device_id or None,
                                device_password=code, auth=auth)
            deadline = time.monotonic() + self.confirm_s
            while time.monotonic() < deadline:
                info = client.get_deeplink(server.node_id, auth=auth)
                if info.device_password == code:
                    return info.device_id
                time.sleep(0.05)
        except bm.DeepLinkNotConnected:
            raise Refusal(503, "deeplink_not_connected", "deeplink service not connected") from None
        except bm.TransportError:
            raise Refusal(502, "node_unreachable", "bare-metal node did not answer") from None
        raise Refusal(504, "not_confirmed", "node did not report the new code in time")
