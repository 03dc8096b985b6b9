"""A slowloris client for tests and benches: many half-sent requests from one loopback address.

- ``raise_own_open_files()``: this process needs a socket per connection; raise its soft limit.
- ``HalfOpen(host, port, source_ip)``: ``open(n)`` connects ``n`` sockets from ``source_ip``
  and sends each an unfinished request (headers without the final blank line);
  ``closed_by_server()`` counts those the server has closed (EOF or reset), ``top_up()``
  reopens them (a real attacker reconnects), ``close()`` closes every one.
- ``probe_healthz(url, source_ip)``: one GET /healthz from another address; its latency in
  seconds, or ``None`` when it failed or took longer than the timeout.
"""

from __future__ import annotations

import contextlib
import errno
import resource
import socket
import time

import requests

from tests.support.agentproc import SourceAddressAdapter

__all__ = ["HalfOpen", "probe_healthz", "raise_own_open_files"]

PARTIAL_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: agent\r\nX-Slow: "


def raise_own_open_files(wanted: int = 65536) -> int:
    """Raise this process's soft RLIMIT_NOFILE toward ``wanted``; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class HalfOpen:
    """Connections from ``source_ip`` that never finish their request headers."""

    def __init__(self, host: str, port: int, source_ip: str) -> None:
        self.address = (host, port)
        self.source_ip = source_ip
        self.socks: list[socket.socket] = []
        self.connect_failures = 0

    def open(self, count: int, timeout_s: float = 2.0) -> int:
        """Open up to ``count`` more half-sent requests; return how many connected."""
        opened = 0
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(timeout_s)
            try:
                sock.bind((self.source_ip, 0))
                sock.connect(self.address)
                sock.sendall(PARTIAL_REQUEST)
            except OSError:
                self.connect_failures += 1
                sock.close()
                continue
            sock.setblocking(False)
            self.socks.append(sock)
            opened += 1
        return opened

    def closed_by_server(self) -> int:
        """Count the connections the server has closed (EOF or reset)."""
        return sum(1 for sock in self.socks if _peer_closed(sock))

    def top_up(self, count: int) -> int:
        """Drop the connections the server closed and reopen them; return how many reopened."""
        alive = [s for s in self.socks if not _peer_closed(s)]
        for sock in self.socks:
            if sock not in alive:
                sock.close()
        self.socks = alive
        return self.open(max(0, count - len(alive)), timeout_s=0.5)

    def close(self) -> None:
        """Close every connection."""
        for sock in self.socks:
            sock.close()
        self.socks = []


def _peer_closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError as exc:
        return exc.errno in (errno.ECONNRESET, errno.EPIPE, errno.EBADF, errno.ENOTCONN)


def probe_healthz(url: str, source_ip: str, timeout_s: float = 5.0) -> float | None:
    """GET ``url``/healthz from ``source_ip``; return seconds, or None on failure/timeout."""
    with requests.Session() as sess:
        sess.trust_env = False
        sess.mount("http://", SourceAddressAdapter(source_ip))
        started = time.monotonic()
        with contextlib.suppress(requests.RequestException):
            if sess.get(url + "/healthz", timeout=timeout_s).status_code == 200:
                return time.monotonic() - started
    return None
