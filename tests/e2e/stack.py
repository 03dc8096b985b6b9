"""A demo café for browser tests: emulator, fake BMCs, the real agent process, staff users.

``start_cafe(work_dir)`` returns a ``Cafe``: the agent's base URL, the fake BMC handles by
server uuid, the CSV inventory to import (one deliberately bad row), the staff passwords.
``Cafe.stop()`` stops every process it started, by PID.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from agent.accounts.auth import Authenticator
from agent.models import ACTOR_SYSTEM, Role
from agent.secrets import Sealer, Secret, create_key_file
from agent.store import Store
from tests.support.agentconfig import write_agent_config
from tests.support.bmc import FakeBmcHandle, start_fake_bmc
from tests.support.emulator import EmulatorHandle, start_emulator
from tests.support.ports import free_port
from tests.support.procs import Proc, python_module
from tests.support.wait import wait_for as support_wait_for

USERS = {"admin": ("admin", "admin-pass-123"), "operator": ("operator", "oper-pass-123"),
         "viewer": ("viewer", "viewer-pass-123")}
BMC_PASSWORD = "fakepass1"
# uuid, row, zone, initial power of its BMC
LAYOUT = [("pc-a01", "A", "vip", "on"), ("pc-a02", "A", "vip", "off"),
          ("pc-a03", "A", "vip", "on"), ("pc-b01", "B", "standard", "on"),
          ("pc-b02", "B", "standard", "off"), ("pc-b03", "B", "standard", "on")]
RENTED = ("pc-a01", "pc-b01", "pc-b02")
CSV_HEADER = "uuid,ip,os,desc,ipmi_hostname,ipmi_username,ipmi_password,ipmi_port,labels"
READY_TIMEOUT_S = 30.0


@dataclass
class Cafe:
    """A running demo café."""

    url: str
    bmcs: dict[str, FakeBmcHandle]
    csv_path: Path
    agent: Proc
    emulator: EmulatorHandle
    store_path: Path
    procs: list[Proc] = field(default_factory=list)

    def token(self, role: str = "admin") -> str:
        """Return a bearer token of the user with ``role`` (POST /api/v1/auth/tokens)."""
        name, password = USERS[role]
        answer = requests.post(f"{self.url}/api/v1/auth/tokens", timeout=10,
                               json={"name": name, "password": password, "label": "e2e"})
        answer.raise_for_status()
        return str(answer.json()["token"])

    def import_inventory(self) -> dict[str, str]:
        """Import the demo CSV through the API and register it with the node (bad row kept
        out); mark the rented PCs in the rentals file; return node_id by uuid."""
        headers = {"Authorization": f"Bearer {self.token()}"}
        answer = requests.post(f"{self.url}/api/v1/servers/import",
                               params={"filename": "cafe.csv", "register": "true"},
                               data=self.csv_path.read_bytes(), timeout=30,
                               headers={**headers, "Content-Type": "text/csv"})
        answer.raise_for_status()
        report: dict[str, Any] = answer.json()
        assert len(report["created"]) + len(report["unchanged"]) == len(LAYOUT), report

        def registered() -> dict[str, str] | None:
            rows = requests.get(f"{self.url}/api/v1/servers", headers=headers,
                                timeout=10).json()["items"]
            found = {r["uuid"]: r["node_id"] for r in rows if r["node_id"]}
            return found if len(found) == len(LAYOUT) else None
        node_ids: dict[str, str] = wait_for(registered, timeout=60, every=0.3)
        machines = {node_ids[uuid]: {"status": "rented" if uuid in RENTED else "online"}
                    for uuid, *_ in LAYOUT}
        self.emulator.set_rentals({"current_block": 1000, "machines": machines})
        self._rotated_codes()
        return node_ids

    def _rotated_codes(self) -> None:
        """Record DeepLink rotations as the boot hooks would (a second writer, like the CLI)."""
        key = self.store_path.parent / "secrets.key"
        with Store.open(self.store_path, sealer=Sealer.from_key_file(key)) as store:
            for n, (uuid, *_rest) in enumerate(LAYOUT):
                if uuid in ("pc-a02", "pc-b02"):
                    continue
                server = store.servers.get_by_uuid(uuid=uuid)
                store.deeplink.record(server_id=server.id, result="ok", rotated=True,
                                      boot_seen=True, device_id=f"{731000100 + n}")

    def stop(self) -> None:
        """Stop the agent first (it talks to the others), then the BMCs and the emulator."""
        self.agent.stop(timeout=15)
        for handle in self.bmcs.values():
            handle.stop()
        for proc in reversed(self.procs):
            proc.stop()


def _csv(bmcs: dict[str, FakeBmcHandle]) -> str:
    lines = [CSV_HEADER]
    for n, (uuid, row, zone, _power) in enumerate(LAYOUT):
        bmc = bmcs[uuid]
        lines.append(f"{uuid},10.0.8.{n + 11},win10,GPU PC {uuid[-3:].upper()},{bmc.host},"
                     f"{bmc.user},{bmc.password},{bmc.port},row={row};zone={zone}")
    lines.append("bad uuid!,10.0.8.99,win10,broken row,127.0.0.1,admin,x,623,row=C")
    return "\n".join(lines) + "\n"


def _config(work: Path, emulator: EmulatorHandle, port: int,
            extra: dict[str, Any] | None = None) -> Path:
    return write_agent_config(work, {
        "node.url": emulator.url, "node.node_dat": str(emulator.data_dir / "dat" / "node.dat"),
        "node.timeout_s": 5, "store.path": str(work / "agent.db"),
        "secrets.key_file": str(work / "secrets.key"), "api.listen": f"127.0.0.1:{port}",
        "check.interval_s": 1.0, "check.jitter_s": 0, "check.deadline_s": 0.8,
        "check.pool_size": 8, "check.dbc_path_probe": False, "check.mismatch_confirmations": 2,
        "check.transition_grace_s": 3, "check.rentals_file": str(emulator.rentals_path),
        "actions.verify_deadline_s": 5, "actions.verify_interval_s": 0.2,
        "ui.default_lang": "zh_CN", **(extra or {})})


def _create_users(work: Path) -> None:
    key = create_key_file(work / "secrets.key")
    with Store.open(work / "agent.db", sealer=Sealer.from_key_file(key)) as store:
        auth = Authenticator(store)
        for role, (name, password) in USERS.items():
            auth.create_user(name=name, password=Secret(password), role=Role(role),
                             actor=ACTOR_SYSTEM)


def _wait_healthy(url: str, proc: Proc) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"agent exited: {proc.log()[-3000:]}")
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"agent not healthy in time: {proc.log()[-3000:]}")


def start_cafe(work: Path, *, chain: bool = False, config: dict[str, Any] | None = None,
               agent_env: dict[str, str] | None = None) -> Cafe:
    """Start the emulator, one fake BMC per server, and the agent (stopped by Cafe.stop).

    ``chain``: the emulator also serves its rentals file as a chain simulator
    (``--chain-sim-listen``) and the agent asks it (``[chain] hosts``): one rental truth.
    ``config``: agent settings over the defaults below (``"section.key": value``);
    ``agent_env``: the agent's environment.
    """
    work.mkdir(parents=True, exist_ok=True)
    procs: list[Proc] = []

    def spawn(args: list[str], name: str = "proc", env: dict[str, Any] | None = None) -> Proc:
        proc = Proc(args, work / f"{name}-{len(procs)}.log", env=env)
        procs.append(proc)
        return proc

    bmcs: dict[str, FakeBmcHandle] = {}
    try:
        config = dict(config or {})
        chain_args: list[str] = []
        if chain:
            chain_port = free_port()
            chain_args = ["--chain-sim-listen", f"127.0.0.1:{chain_port}"]
            config.setdefault("chain.hosts", [f"http://127.0.0.1:{chain_port}"])
            config.setdefault("chain.ttl_s", 0.5)
        emulator = start_emulator(spawn, work, extra_args=chain_args)
        for uuid, _row, _zone, power in LAYOUT:
            bmcs[uuid] = start_fake_bmc(work / f"bmc-{uuid}", password=BMC_PASSWORD,
                                        initial_power=power)
        csv_path = work / "cafe.csv"
        csv_path.write_text(_csv(bmcs))
        _create_users(work)
        port = free_port()
        agent = spawn(python_module("tests.e2e.agent_server",
                                    str(_config(work, emulator, port, config))),
                      name="agent", env=agent_env)
        cafe = Cafe(f"http://127.0.0.1:{port}", bmcs, csv_path, agent, emulator,
                    work / "agent.db", procs)
        procs.remove(agent)
        _wait_healthy(cafe.url, agent)
        return cafe
    except BaseException:
        for handle in bmcs.values():
            handle.stop()
        for proc in reversed(procs):
            proc.stop()
        raise


def wait_for(check: Callable[[], Any], timeout: float = 20.0, every: float = 0.2) -> Any:
    """tests.support.wait.wait_for with the browser tests' slower defaults."""
    return support_wait_for(check, timeout, every)
