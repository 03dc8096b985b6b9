"""A TCP peer on loopback that relays HTTP/1.1 requests to an upstream and can meddle with
the answers (hold, delay, drop): what a slow or lossy network does between agent and node.

Subclasses override ``deliver(conn, request, answer)``: send the answer (or not) and return
False to drop the client connection.
"""

from __future__ import annotations

import re
import socket
import threading

from tests.support.ports import free_port

__all__ = ["HttpRelay", "read_message"]


def read_message(sock: socket.socket) -> bytes:
    """Read one HTTP message (head and Content-Length body); b"" when the peer closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _sep, body = data.partition(b"\r\n\r\n")
    match = re.search(rb"(?i)content-length:\s*(\d+)", head)
    length = int(match.group(1)) if match else 0
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


class HttpRelay:
    """Relay every request on a fresh upstream connection; ``deliver`` sends the answer."""

    def __init__(self, upstream_port: int, *, upstream_timeout_s: float = 5.0) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.upstream_timeout_s = upstream_timeout_s
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._listener.close()

    def deliver(self, conn: socket.socket, request: bytes, answer: bytes) -> bool:
        """Send ``answer`` to the client; return False to drop the connection instead."""
        del request
        conn.sendall(answer)
        return True

    def _accept(self) -> None:
        while True:
            try:
                conn, _addr = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        with conn:
            try:
                while request := read_message(conn):
                    with socket.create_connection(self.upstream,
                                                  timeout=self.upstream_timeout_s) as upstream:
                        upstream.sendall(request)
                        answer = read_message(upstream)
                    if not self.deliver(conn, request, answer):
                        return
            except OSError:
                return
