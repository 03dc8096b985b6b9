"""Security issue 10, finding 13, as found: ``bm-agent register`` killed with SIGKILL after
its first batch was posted made the rerun exit 6 ("waiting for the DBC node") for the
300 s lease of the dead process's claims. Claims now name their owner; the rerun takes a
dead owner's claims over at once.

The real CLI runs against the emulator through a gate on loopback that relays every
request, and holds the answer to the SECOND ``bare_metal/add`` (which the node did carry
out) until the CLI is killed: the first batch is posted and recorded, the second is on
the node but unrecorded. The rerun registers the rest at once (exit 0), adopting the
second batch by uuid: every server is on the node exactly once.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.integration.cli_env import FAST_ENV, AgentDir, init_agent
from tests.integration.registry_driver import node_servers
from tests.support.http_relay import HttpRelay
from tests.support.ports import free_port
from tests.support.procs import REPO_ROOT

COUNT = 30  # the service's batch size is 20: two adds
ADD_PATH = b" /api/v1/bare_metal/add "


class AddGate(HttpRelay):
    """Relays HTTP to the node; holds the answer to the ``hold_at``-th add until opened."""

    def __init__(self, upstream_port: int, hold_at: int = 2) -> None:
        self.hold_at = hold_at
        self.adds = 0
        self.holding = threading.Event()
        self.opened = threading.Event()
        self._lock = threading.Lock()
        super().__init__(upstream_port, upstream_timeout_s=10)

    def close(self) -> None:
        self.opened.set()
        super().close()

    def deliver(self, conn: socket.socket, request: bytes, answer: bytes) -> bool:
        if self._is_held_add(request):
            self.holding.set()
            self.opened.wait(60)
            return False  # the answer is lost with the killed client
        return super().deliver(conn, request, answer)

    def _is_held_add(self, request: bytes) -> bool:
        if ADD_PATH not in request.split(b"\r\n", 1)[0]:
            return False
        with self._lock:
            self.adds += 1
            return self.adds == self.hold_at and not self.opened.is_set()


def _rows(count: int) -> list[str]:
    port = free_port()  # nothing listens: registration does not need the BMCs
    return [f"pc-{n:03d},10.9.0.{n},win10,seat {n},127.0.0.1,admin,pw-{n},{port},,"
            for n in range(1, count + 1)]


def _start_cli(spawn: Any, agent: AgentDir, *args: str) -> Any:
    env = {"PYTHONPATH": str(REPO_ROOT), "LANG": "C.UTF-8", **FAST_ENV, **agent.env}
    argv = [sys.executable, "-m", "agent", "--config", str(agent.config), "--lang", "en", *args]
    return spawn(argv, name="register", env=env)


def test_rerun_after_sigkill_registers_the_rest_at_once(emulator, spawn, tmp_path: Path
                                                        ) -> None:
    agent = init_agent(tmp_path / "agent", emulator)
    gate = AddGate(urlsplit(emulator.url).port or 0)
    agent.env["BM_AGENT_NODE_URL"] = gate.url
    try:
        imported = agent.cli("servers", "import", str(agent.write_csv("pcs.csv", _rows(COUNT))))
        assert imported.code == 0, imported.out + imported.err

        first = _start_cli(spawn, agent, "register")
        assert gate.holding.wait(60), first.log()
        first.kill9()  # the first batch is posted and recorded, the second is in flight
        assert first.popen.returncode == -9
        gate.opened.set()

        started = time.monotonic()
        rerun = agent.cli("--json", "register")
        elapsed = time.monotonic() - started
        assert rerun.code == 0, rerun.out + rerun.err
        assert elapsed < 30, elapsed  # not the dead process's 300 s lease
    finally:
        gate.close()
    doc = rerun.json()
    assert doc["waiting"] == 0 and doc["failed"] == 0
    assert doc["reconciled"] == COUNT - 20  # the lost second batch, adopted by uuid
    assert all(s["state"] == "registered" and s["node_id"] for s in doc["servers"])
    uuids = [f"pc-{n:03d}" for n in range(1, COUNT + 1)]
    on_node = Counter(s.uuid for s in node_servers(emulator.url, emulator.manager_key, uuids))
    assert sorted(on_node) == uuids and set(on_node.values()) == {1}  # nothing twice
