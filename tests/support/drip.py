"""A hostile node on 127.0.0.1: accepts, reads the request, then drips its answer forever.

``DripPeer(prefix, drip, interval_s)`` sends ``prefix`` at once, then one byte of the endless
``drip`` every ``interval_s`` on every connection, until the client hangs up or ``close()``.
``header_drip()`` drips the status line and then an endless header; ``body_drip()`` sends
complete headers announcing a large body and drips the body. With ``first`` set, each
connection first gets that complete keep-alive answer, and drips on its second request
(a pooled connection turning hostile). ``hangups`` counts the
connections the client closed (a dripping socket the client forgot would never count).
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator

from tests.support.ports import free_port

__all__ = ["DripPeer", "answer", "body_drip", "header_drip"]

HEADER_DRIP = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Drip: "
BODY_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
             b"Content-Length: 1000000\r\n\r\n")


class DripPeer:
    """A TCP server that answers every request by dripping bytes, one per ``interval_s``."""

    def __init__(self, prefix: bytes, drip: bytes, interval_s: float = 0.3,
                 first: bytes | None = None) -> None:
        self.prefix = prefix
        self.first = first
        self.drip = drip
        self.interval_s = interval_s
        self.port = free_port()
        self.accepted = 0
        self.hangups = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.1)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _addr = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                if self.first is not None:
                    _read_head(conn)
                    conn.sendall(self.first)
                _read_head(conn)
                conn.sendall(self.prefix)
                for byte in _endless(self.drip):
                    if self._stop.wait(self.interval_s):
                        return
                    conn.sendall(byte)
            except OSError:
                with self._lock:
                    self.hangups += 1

    def wait_hangups(self, count: int, timeout_s: float = 2.0) -> int:
        """Wait until ``count`` clients hung up (or the timeout); return how many did."""
        deadline = time.monotonic() + timeout_s
        while self.hangups < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.hangups


def _read_head(conn: socket.socket) -> None:
    conn.settimeout(10.0)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionResetError("client left before its request was complete")
        data += chunk


def _endless(pattern: bytes) -> Iterator[bytes]:
    return (bytes([b]) for b in itertools.cycle(pattern))


def header_drip(interval_s: float = 0.3) -> DripPeer:
    """A node whose status line and headers never end: one byte per ``interval_s``."""
    return DripPeer(b"", HEADER_DRIP + b"a" * 60000, interval_s)


def answer(body: bytes) -> bytes:
    """A complete keep-alive HTTP/1.1 answer carrying ``body``."""
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


def body_drip(interval_s: float = 0.3) -> DripPeer:
    """A node that sends its headers at once, then its body one byte per ``interval_s``."""
    return DripPeer(BODY_HEAD, b'{"errcode":0,"message":{"client_version":"0.4.1.8"}}   ',
                    interval_s)
