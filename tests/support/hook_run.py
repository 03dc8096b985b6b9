"""Run bm-hook as a real subprocess for tests: write its config and key files, time it."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.procs import python_module

__all__ = ["HookRun", "register_pc", "run_hook", "write_hook_config", "write_key"]


@dataclass
class HookRun:
    returncode: int
    log: str
    elapsed_s: float
    peak_rss_kib: int


def register_pc(emu: Any, ip: str, uuid: str = "pc-23") -> tuple[str, str]:
    """Register one GPU PC with the manager key; return (node_id, node_private_key)."""
    from baremetal.client import Client, NodeKeyAuth
    from baremetal.models import NewServer

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


def run_hook(spawn: Any, config_path: str, timeout: float = 60.0,
             env: dict[str, str] | None = None) -> HookRun:
    """Run ``python -m boot_hooks --config FILE`` to completion; return code, log, time, RSS."""
    started = time.monotonic()
    proc = spawn(python_module("boot_hooks", "--config", config_path), name="hook", env=env)
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - started > timeout:
            proc.kill9()
            raise AssertionError(f"bm-hook still running after {timeout} s:\n{proc.log()}")
        time.sleep(0.005)
    elapsed = time.monotonic() - started
    proc.popen.returncode = os.waitstatus_to_exitcode(status)
    return HookRun(proc.popen.returncode, proc.log(), elapsed, rusage.ru_maxrss)
