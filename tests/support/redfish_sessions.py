"""A Redfish SessionService in front of sushy-emulator (which has none).

``SessionFront`` relays to the emulator over real HTTP and answers the session calls
itself, as a BMC does: ``POST /redfish/v1/SessionService/Sessions`` with UserName and
Password opens a session (201, ``X-Auth-Token`` and ``Location``), ``DELETE`` on that
location logs it out (204). A request carrying a live token is relayed with the
emulator's Basic credentials. ``open_sessions`` is what the tests check.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import socket
import threading

from tests.support.http_relay import HttpRelay, read_message

__all__ = ["SessionFront"]

SESSIONS = "/redfish/v1/SessionService/Sessions"


def _answer(status: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}",
            "Content-Type: application/json"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class SessionFront(HttpRelay):
    """Sessions handled here; everything else relayed to the emulator."""

    def __init__(self, upstream_port: int, user: str, password: str) -> None:
        super().__init__(upstream_port)
        self._user, self._password = user, password
        self._basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._lock = threading.Lock()
        self._tokens: dict[str, str] = {}  # token -> session path
        self.opened = 0
        # What a refused login answers: Redfish's shape unless a test wants a broken one.
        self.refusal_body = (b'{"error": {"code": "Base.1.0.GeneralError", '
                             b'"message": "bad credentials"}}')

    @property
    def open_sessions(self) -> list[str]:
        with self._lock:
            return sorted(self._tokens.values())

    def _relay(self, conn: socket.socket) -> None:
        with conn:
            try:
                while request := read_message(conn):
                    conn.sendall(self._handle(request))
            except OSError:
                return

    def _handle(self, request: bytes) -> bytes:
        head, _sep, body = request.partition(b"\r\n\r\n")
        method, path = head.split(b" ", 2)[:2]
        if method == b"POST" and path.decode().rstrip("/") == SESSIONS:
            return self._login(body)
        if method == b"DELETE" and path.decode().startswith(SESSIONS + "/"):
            return self._logout(path.decode())
        token = re.search(rb"(?i)\r\nx-auth-token:\s*(\S+)", head)
        if token:
            with self._lock:
                live = token.group(1).decode() in self._tokens
            if not live:
                return _answer("401 Unauthorized", body=self.refusal_body)
            head = re.sub(rb"(?i)\r\nx-auth-token:[^\r]*", b"", head)
            head += f"\r\nAuthorization: Basic {self._basic}".encode()
        return self._upstream(head + b"\r\n\r\n" + body)

    def _upstream(self, request: bytes) -> bytes:
        with socket.create_connection(self.upstream, timeout=self.upstream_timeout_s) as up:
            up.sendall(request)
            return read_message(up)

    def _login(self, body: bytes) -> bytes:
        try:
            creds = json.loads(body)
        except ValueError:
            return _answer("400 Bad Request")
        if (creds.get("UserName"), creds.get("Password")) != (self._user, self._password):
            return _answer("401 Unauthorized", body=self.refusal_body)
        token = secrets.token_hex(16)
        with self._lock:
            self.opened += 1
            path = f"{SESSIONS}/{self.opened}"
            self._tokens[token] = path
        doc = json.dumps({"@odata.id": path, "Id": str(self.opened)}).encode()
        return _answer("201 Created", {"X-Auth-Token": token, "Location": path}, doc)

    def _logout(self, path: str) -> bytes:
        with self._lock:
            found = [t for t, p in self._tokens.items() if p == path]
            for token in found:
                del self._tokens[token]
        return _answer("204 No Content" if found else "404 Not Found")
