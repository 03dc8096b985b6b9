"""Free loopback ports, checked: nothing may already listen on them (ipmi_sim shares silently).

One allocator for the whole process: the BMC simulators' (``baremetal.emulator.bmc_sim``)
also serve the tests, so a port is never handed out twice.
"""

from __future__ import annotations

import socket
import time

from baremetal.emulator.bmc_sim.procs import free_port as _free_port

__all__ = ["free_port", "wait_tcp"]


def free_port(kind: str = "tcp", host: str = "127.0.0.1") -> int:
    """Return a port on ``host`` free for both TCP and UDP and not handed out yet."""
    del kind  # every port is checked for both protocols
    return _free_port(host)


def wait_tcp(host: str, port: int, timeout: float = 10.0) -> None:
    """Wait until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")
