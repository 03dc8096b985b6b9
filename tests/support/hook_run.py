"""Run bm-hook as a real subprocess for tests: write its config and key files, time it."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["HookRun", "register_pc", "run_hook", "write_hook_config", "write_key"]


@dataclass
class HookRun:
    returncode: int
    log: str
    elapsed_s: float
    peak_rss_kib: int


def register_pc(emu: Any, ip: str, uuid: str = "pc-23") -> tuple[str, str]:
    """Register one GPU PC with the manager key; return (node_id, node_private_key)."""
    from baremetal.dbc.client import Client, NodeKeyAuth
    from baremetal.dbc.models import NewServer

    client = Client(emu.url, timeout_s=5)
    manager = NodeKeyAuth(emu.manager_key)
    [added] = client.add_bare_metal(
        [NewServer(uuid=uuid, ip=ip, ipmi_hostname="127.0.0.1", ipmi_username="admin",
                   ipmi_password="ipmi-secret-1")], manager)
    server = client.get_bare_metal(added.node_id, manager)
    assert server is not None and not server.secrets_masked
    return added.node_id, server.node_private_key


def write_key(path: Path, seed_hex: str) -> str:
    """Write a key file the way an installer would: mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(seed_hex + "\n")
    return str(path)


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def write_hook_config(path: Path, sections: dict[str, dict[str, Any]]) -> str:
    """Write a TOML config from ``{"node": {"url": ...}, ...}``."""
    lines = []
    for section, table in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in table.items())
    path.write_text("\n".join(lines) + "\n")
    return str(path)


# Runs the hook's main() in a fresh interpreter and records its own peak RSS (VmHWM) at
# exit. wait4's ru_maxrss is no good here: Linux carries the forking parent's high-water
# mark across fork/vfork and exec, so a big test process would inflate the figure.
_LAUNCHER = """
import atexit, os, sys
def _peak():
    with open('/proc/self/status') as fh:
        kib = next(int(line.split()[1]) for line in fh if line.startswith('VmHWM:'))
    with open(os.environ['BM_BENCH_PEAK_FILE'], 'w') as out:
        out.write(str(kib))
atexit.register(_peak)
from boot_hooks.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def run_hook(spawn: Any, config_path: str, timeout: float = 60.0,
             env: dict[str, str] | None = None) -> HookRun:
    """Run bm-hook's main with ``--config FILE`` to completion; return code, log, time, RSS."""
    peak_file = Path(config_path).with_suffix(".peak")
    env = {**(env or {}), "BM_BENCH_PEAK_FILE": str(peak_file)}
    started = time.monotonic()
    proc = spawn([sys.executable, "-c", _LAUNCHER, "--config", config_path], name="hook", env=env)
    while True:
        pid, status, _rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - started > timeout:
            proc.kill9()
            raise AssertionError(f"bm-hook still running after {timeout} s:\n{proc.log()}")
        time.sleep(0.005)
    elapsed = time.monotonic() - started
    proc.popen.returncode = os.waitstatus_to_exitcode(status)
    peak_kib = int(peak_file.read_text()) if peak_file.exists() else 0
    return HookRun(proc.popen.returncode, proc.log(), elapsed, peak_kib)
