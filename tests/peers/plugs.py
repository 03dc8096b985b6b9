"""Small real HTTP peers for the plug presets (``baremetal.power.http_plug``).

Each follows its vendor's published API shapes (paths, field names, status codes, auth)
and keeps its own state, which the tests read to check the plug independently:

- :class:`DbcSamplePeer`: DBC-AIComputingNet ``tool/netbar_power_manager/server.py``:
  ``POST /api/v1/power`` answers ``{"mac": <the request's id list>}``; other paths 404
  with ``{"code": 404, "message": "Not Found"}``.
- :class:`ShellyPeer`: Shelly Gen2 RPC over HTTP GET, ``Switch.Set`` answers
  ``{"was_on": bool}``, ``Switch.GetStatus`` the switch status (``output``, ``apower``…);
  with a password, digest auth (SHA-256, qop=auth, user ``admin``), else 401.
- :class:`TasmotaPeer`: ``/cm?cmnd=Power%20On`` etc. answering ``{"POWER":"ON"}``; with a
  password, a wrong or missing ``user``/``password`` gets HTTP 401
  ``{"WARNING":"Need user=<username>&password=<password>"}``.
- :class:`SilentPeer`: accepts connections and never answers.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["DbcSamplePeer", "ShellyPeer", "SilentPeer", "TasmotaPeer"]


class _Peer:
    """A ThreadingHTTPServer on 127.0.0.1 in a daemon thread; ``close()`` stops it."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                del format, args

            def do_GET(self) -> None:
                peer.requests.append(("GET", self.path))
                peer.handle(self, b"")

            def do_POST(self) -> None:
                peer.requests.append(("POST", self.path))
                length = int(self.headers.get("Content-Length") or 0)
                peer.handle(self, self.rfile.read(length))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        raise NotImplementedError

    @staticmethod
    def answer(handler: BaseHTTPRequestHandler, code: int, document: Any,
               headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(document).encode()
        handler.send_response(code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(raw)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class DbcSamplePeer(_Peer):
    """The DBC node's sample café power service; ``power[id]`` is each seat's state."""

    def __init__(self) -> None:
        self.power: dict[str, str] = {}
        self.confirm = True  # False: answer 200 without confirming any id (a failed switch)
        super().__init__()

    def handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        if handler.command != "POST" or handler.path != "/api/v1/power":
            self.answer(handler, 404, {"code": 404, "message": "Not Found"})
            return
        request = json.loads(body)
        for seat in request["id"]:
            self.power[seat] = request["mode"]
        self.answer(handler, 200, {"mac": request["id"] if self.confirm else []})


class ShellyPeer(_Peer):
    """A Shelly Gen2 switch device; ``output[id]`` and ``apower[id]`` are its state."""

    REALM = "shellyplus1pm-a8032ab12345"

    def __init__(self, password: str | None = None, switches: int = 1) -> None:
        self.password = password
        self.output = [False] * switches
        self.apower = [0.0] * switches
        self._nonces: set[str] = set()
        super().__init__()

    def handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        if self.password is not None and not self._authorized(handler):
            nonce = secrets.token_hex(8)
            self._nonces.add(nonce)
            challenge = (f'Digest qop="auth", realm="{self.REALM}", nonce="{nonce}", '
                         'algorithm=SHA-256')
            self.answer(handler, 401, {"code": 401, "message": "Unauthorized"},
                        {"WWW-Authenticate": challenge})
            return
        parts = urlsplit(handler.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        index = int(query.get("id", "0"))
        if index >= len(self.output):
            self.answer(handler, 500, {"code": -105, "message": f"Argument 'id', value {index} not found!"})
        elif parts.path == "/rpc/Switch.Set":
            was_on = self.output[index]
            self.output[index] = query.get("on") == "true"
            self.apower[index] = 85.3 if self.output[index] else 0.0
            self.answer(handler, 200, {"was_on": was_on})
        elif parts.path == "/rpc/Switch.GetStatus":
            self.answer(handler, 200, {
                "id": index, "source": "HTTP", "output": self.output[index],
                "apower": self.apower[index], "voltage": 229.8, "current": 0.37,
                "aenergy": {"total": 12.3, "by_minute": [0.0, 0.0, 0.0], "minute_ts": 0},
                "temperature": {"tC": 41.2, "tF": 106.2}})
        else:
            self.answer(handler, 404, {"code": 404, "message": "No handler for " + parts.path})

    def _authorized(self, handler: BaseHTTPRequestHandler) -> bool:
        header = handler.headers.get("Authorization", "")
        if not header.startswith("Digest "):
            return False
        fields = dict(_digest_fields(header[len("Digest "):]))
        if fields.get("nonce") not in self._nonces or fields.get("username") != "admin":
            return False

        def sha(text: str) -> str:
            return hashlib.sha256(text.encode()).hexdigest()

        ha1 = sha(f"admin:{self.REALM}:{self.password}")
        ha2 = sha(f"{handler.command}:{fields.get('uri')}")
        expected = sha(f"{ha1}:{fields['nonce']}:{fields.get('nc')}:{fields.get('cnonce')}:auth:{ha2}")
        return secrets.compare_digest(expected, fields.get("response", ""))


def _digest_fields(text: str) -> list[tuple[str, str]]:
    out = []
    for item in text.split(","):
        name, _, value = item.strip().partition("=")
        out.append((name, value.strip('"')))
    return out


class TasmotaPeer(_Peer):
    """A Tasmota plug (one relay); ``power`` is its relay."""

    def __init__(self, password: str | None = None) -> None:
        self.password = password
        self.power = False
        super().__init__()

    def handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path != "/cm":
            self.answer(handler, 404, {"code": 404, "message": "Not Found"})
            return
        if self.password is not None and (query.get("user") != "admin"
                                          or query.get("password") != self.password):
            self.answer(handler, 401, {"WARNING": "Need user=<username>&password=<password>"})
            return
        command = query.get("cmnd", "").strip().lower()
        if command in ("power on", "power1 on"):
            self.power = True
        elif command in ("power off", "power1 off"):
            self.power = False
        elif command not in ("power", "power1"):
            self.answer(handler, 200, {"Command": "Unknown"})
            return
        self.answer(handler, 200, {"POWER": "ON" if self.power else "OFF"})


class SilentPeer:
    """Accepts TCP connections on 127.0.0.1 and never answers."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._sock.close()
