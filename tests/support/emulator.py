"""Fixtures: the ``bm-node-emulator`` as a real subprocess on free loopback ports.

- ``start_emulator(spawn, tmp_path, ...)`` starts one and waits for its ready line;
- the ``emulator`` fixture is ``start_emulator`` with defaults (client role and the
  DeepLink LAN service on, empty rentals file);
- ``signed_fields(private_key)`` returns ``wallet``/``nonce``/``sign`` for a node key.

The rentals file format is documented in ``baremetal/emulator/rentals.py``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from baremetal import signing
from tests.support.ports import free_port
from tests.support.procs import Proc, python_module

READY_TEXT = "bm-node-emulator ready"
READY_TIMEOUT_S = 15.0

__all__ = [
    "EmulatorHandle",
    "bm_post",
    "emulator",
    "register_servers",
    "signed_fields",
    "start_emulator",
]
HTTP_TIMEOUT_S = 60.0


@dataclass
class EmulatorHandle:
    """A running emulator: its URLs, data dir, manager identity and rentals file."""

    url: str
    client_url: str | None
    deeplink_host: str | None
    deeplink_port: int | None
    data_dir: Path
    manager_id: str
    manager_key: str = field(repr=False)
    rentals_path: Path
    proc: Proc

    def set_rentals(self, rentals: dict[str, Any]) -> None:
        """Rewrite the rentals file atomically; the emulator re-reads it on change."""
        tmp = self.rentals_path.with_name(self.rentals_path.name + ".tmp")
        tmp.write_text(json.dumps(rentals))
        os.replace(tmp, self.rentals_path)
        now = time.time_ns()
        os.utime(self.rentals_path, ns=(now, now))  # always a new stamp, even within 1 ns

    def log(self) -> str:
        """Return the emulator's stderr so far."""
        return self.proc.log()


def signed_fields(private_key: str, nonce: str | None = None) -> dict[str, str]:
    """Return ``wallet``/``nonce``/``sign`` proving ``private_key`` (a node key)."""
    nonce = nonce or signing.make_nonce()
    return {
        "wallet": signing.node_id_from_private_key(private_key),
        "nonce": nonce,
        "sign": signing.sign(private_key, nonce),
    }


def bm_post(base_url: str, path: str, payload: dict[str, Any] | bytes,
            timeout: float = HTTP_TIMEOUT_S) -> requests.Response:
    """POST ``payload`` (a dict is sent as compact JSON) to ``base_url + /api/v1 + path``."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return requests.post(base_url + "/api/v1" + path, data=data, timeout=timeout)


def register_servers(handle: EmulatorHandle, items: list[dict[str, Any]]) -> dict[str, str]:
    """Add servers through the local manager-signed ``bare_metal/add``; return uuid -> id."""
    reply = bm_post(handle.url, "/bare_metal/add", {
        "peer_nodes_list": [], "additional": {"bare_metal_nodes": items},
        **signed_fields(handle.manager_key)})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["errcode"] == 0, body
    return {item["uuid"]: item["node_id"] for item in body["message"]["bare_metal_nodes"]}


def _read_identity(data_dir: Path) -> tuple[str, str]:
    values = dict(
        line.split("=", 1)
        for line in (data_dir / "dat" / "node.dat").read_text().splitlines() if "=" in line
    )
    return values["node_id"], values["node_private_key"]


def start_emulator(
    spawn: Callable[..., Proc],
    tmp_path: Path,
    *,
    client: bool = True,
    deeplink: bool = True,
    rentals: dict[str, Any] | None = None,
    node_version: str | None = None,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    data_dir: Path | None = None,
    port: int | None = None,
) -> EmulatorHandle:
    """Start the emulator on free ports and wait until it prints its ready line.

    ``port`` (with the same ``data_dir``) restarts a stopped emulator where it was.
    """
    data_dir = data_dir or tmp_path / "emulator-data"
    rentals_path = tmp_path / "rentals.json"
    if rentals is not None or not rentals_path.exists():
        rentals_path.write_text(json.dumps(rentals or {"machines": {}}))
    port = port or free_port()
    args = ["--listen", f"127.0.0.1:{port}", "--data-dir", str(data_dir),
            "--rentals", str(rentals_path)]
    client_port = free_port() if client else None
    if client_port:
        args += ["--client-listen", f"127.0.0.1:{client_port}"]
    deeplink_port = free_port() if deeplink else None
    if deeplink_port:
        args += ["--deeplink-listen", f"127.0.0.1:{deeplink_port}"]
    if node_version:
        args += ["--node-version", node_version]
    proc = spawn(python_module("baremetal.emulator", *args, *extra_args), name="emulator",
                 env=env)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while READY_TEXT not in proc.log():
        if not proc.alive() or time.monotonic() > deadline:
            proc.stop()
            raise RuntimeError(f"emulator did not start: {proc.log()[-2000:]}")
        time.sleep(0.02)
    manager_id, manager_key = _read_identity(data_dir)
    return EmulatorHandle(
        url=f"http://127.0.0.1:{port}",
        client_url=f"http://127.0.0.1:{client_port}" if client_port else None,
        deeplink_host="127.0.0.1" if deeplink_port else None,
        deeplink_port=deeplink_port,
        data_dir=data_dir,
        manager_id=manager_id,
        manager_key=manager_key,
        rentals_path=rentals_path,
        proc=proc,
    )


@pytest.fixture
def emulator(spawn: Callable[..., Proc], tmp_path: Path) -> EmulatorHandle:
    """A fresh emulator (bare-metal + client roles, DeepLink LAN) for one test."""
    return start_emulator(spawn, tmp_path)
