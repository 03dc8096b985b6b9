"""Free loopback ports, checked: nothing may already listen on them (ipmi_sim shares silently)."""

from __future__ import annotations

import socket
import threading

_lock = threading.Lock()
_handed_out: set[tuple[str, int]] = set()


def _udp_in_use(host: str, port: int) -> bool:
    # ipmi_sim sets SO_REUSEADDR, so a plain bind can succeed next to it; bind
    # without the option and also consult /proc to be sure nobody listens.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return _listed_in_proc("/proc/net/udp", port)


def _listed_in_proc(path: str, port: int) -> bool:
    try:
        with open(path, encoding="ascii") as fh:
            next(fh)
            return any(int(line.split()[1].split(":")[1], 16) == port for line in fh)
    except OSError:
        return False


def free_port(kind: str = "tcp", host: str = "127.0.0.1") -> int:
    """Return a port on ``host`` that is free for both TCP and UDP and not handed out yet."""
    with _lock:
        for _ in range(200):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port = sock.getsockname()[1]
            if (host, port) in _handed_out or _udp_in_use(host, port):
                continue
            if _listed_in_proc("/proc/net/tcp", port):
                continue
            _handed_out.add((host, port))
            return port
    raise RuntimeError("no free loopback port found")


def wait_tcp(host: str, port: int, timeout: float = 10.0) -> None:
    """Wait until something accepts TCP connections on host:port."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")
