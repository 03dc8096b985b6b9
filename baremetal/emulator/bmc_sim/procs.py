"""Child processes stopped by PID, and free loopback ports, for the BMC simulators and the demo."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

__all__ = ["ChildProcess", "free_port"]

_PR_SET_PDEATHSIG = 1
_lock = threading.Lock()
_handed_out: set[tuple[str, int]] = set()


def _die_with_parent() -> Callable[[], None] | None:
    # Linux prctl(PR_SET_PDEATHSIG): a child still running when its launcher is killed
    # (even with SIGKILL) gets SIGTERM instead of living on as an orphan.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None

    def _set() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    return _set


class ChildProcess:
    """A child process with its output in a log file; ``stop()`` ends it by its PID."""

    def __init__(self, args: Sequence[str], log_path: Path, *,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None,
                 die_with_parent: bool = False) -> None:
        self.args = list(args)
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.popen = subprocess.Popen(
            self.args, stdout=self._log, stderr=subprocess.STDOUT, env=full_env,
            cwd=str(cwd) if cwd else None, start_new_session=True,
            preexec_fn=_die_with_parent() if die_with_parent else None,
        )

    @property
    def pid(self) -> int:
        """The child's PID."""
        return self.popen.pid

    def alive(self) -> bool:
        """Tell whether the child still runs."""
        return self.popen.poll() is None

    def log(self) -> str:
        """Return everything the child wrote so far."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def kill9(self) -> None:
        """Kill the child with SIGKILL."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            self.popen.wait(5)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the child by PID: SIGCONT (if frozen) and SIGTERM, then SIGKILL after timeout."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        self._log.close()


def _listed_in_proc(path: str, port: int) -> bool:
    try:
        with open(path, encoding="ascii") as fh:
            next(fh)
            return any(int(line.split()[1].rsplit(":", 1)[1], 16) == port for line in fh)
    except (OSError, StopIteration, ValueError, IndexError):
        return False


def _udp_in_use(host: str, port: int) -> bool:
    # ipmi_sim sets SO_REUSEADDR, so a plain bind can succeed beside it: bind without the
    # option and also look in /proc for anyone listening.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return _listed_in_proc("/proc/net/udp", port)


def free_port(host: str = "127.0.0.1") -> int:
    """Return a port on ``host`` free for both TCP and UDP and not handed out before."""
    with _lock:
        for _ in range(200):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
            if (host, port) in _handed_out or _udp_in_use(host, port):
                continue
            if _listed_in_proc("/proc/net/tcp", port):
                continue
            _handed_out.add((host, port))
            return port
    raise RuntimeError("no free loopback port found")
