"""Start N simulated BMCs behind one interface: ``ipmi_sim`` when installed, else the fake BMC.

``start_fleet(specs, work_dir)`` starts one BMC per ``BmcSpec`` (all in parallel, then waits
for each) and returns ``SimBmc`` handles: address, credentials, ``power()``/``set_power()``
behind every client's back, ``stop()`` by PID. Every process gets SIGTERM if its launcher
dies (``PR_SET_PDEATHSIG``), so a killed demo leaves no BMC behind.

The fake BMC speaks IPMI 2.0 only (pyghmi's server has no IPMI 1.5 sessions), so with it
the DBC node's own ``ipmitool`` path (IPMI 1.5 ``lan``) fails for every BMC; callers that
need that path check ``kind == "ipmi_sim"``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from baremetal.emulator.bmc_sim.ipmisim import (
    IpmiSimBmc,
    ipmi_sim_binary,
    launch_ipmi_sim,
    wait_ready,
)
from baremetal.emulator.bmc_sim.procs import ChildProcess, free_port

__all__ = ["BmcSpec", "SimBmc", "fleet_kind", "start_fleet", "stop_all"]

_READY_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class BmcSpec:
    """What one simulated BMC should look like."""

    user: str = "admin"
    password: str = "demopass1"  # noqa: S105 - a simulator's login, loopback only
    initial_power: str = "on"
    ipmi15: bool = True


class SimBmc(Protocol):
    """A running simulated BMC."""

    host: str
    port: int
    user: str
    password: str

    @property
    def proc(self) -> ChildProcess:
        """The BMC's process."""

    def power(self) -> str:
        """Power as the simulator holds it (``on``/``off``)."""

    def set_power(self, state: str) -> None:
        """Change power behind every client's back."""

    def stop(self) -> None:
        """Stop the BMC by PID."""


@dataclass
class FakeBmcProcess:
    """One ``python -m baremetal.emulator.bmc_sim.fakebmc`` process and its state file."""

    host: str
    port: int
    user: str
    password: str
    state_file: Path
    proc: ChildProcess

    def power(self) -> str:
        """Power as the state file holds it."""
        return str(json.loads(self.state_file.read_text()).get("power", "off"))

    def set_power(self, state: str) -> None:
        """Rewrite the state file atomically (the fake BMC re-reads it on change)."""
        data = json.loads(self.state_file.read_text())
        data["power"] = state
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.state_file)

    def stop(self) -> None:
        """Stop the process by PID."""
        self.proc.stop()


def fleet_kind() -> str:
    """Return ``ipmi_sim`` when the binary is installed, else ``fakebmc``."""
    return "ipmi_sim" if ipmi_sim_binary() else "fakebmc"


def _launch_fake(work_dir: Path, spec: BmcSpec) -> FakeBmcProcess:
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    state_file = work_dir / "state.json"
    args = [sys.executable, "-m", "baremetal.emulator.bmc_sim.fakebmc", "--port", str(port),
            "--user", spec.user, "--password", spec.password, "--state-file", str(state_file),
            "--initial-power", spec.initial_power]
    proc = ChildProcess(args, work_dir / "fakebmc.log", die_with_parent=True)
    return FakeBmcProcess("127.0.0.1", port, spec.user, spec.password, state_file, proc)


def _wait_fake(bmc: FakeBmcProcess) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while "fakebmc ready" not in bmc.proc.log():
        if not bmc.proc.alive() or time.monotonic() > deadline:
            raise RuntimeError(f"fake BMC did not start: {bmc.proc.log()[-500:]}")
        time.sleep(0.02)


def start_fleet(specs: Sequence[BmcSpec], work_dir: Path, *,
                kind: str | None = None) -> list[SimBmc]:
    """Start one BMC per spec (``kind``: ipmi_sim, fakebmc, or None to pick); wait for all."""
    kind = kind or fleet_kind()
    started: list[SimBmc] = []
    try:
        for index, spec in enumerate(specs):
            folder = work_dir / f"bmc{index + 1:02d}"
            if kind == "ipmi_sim":
                started.append(launch_ipmi_sim(
                    folder, user=spec.user, password=spec.password, ipmi15=spec.ipmi15,
                    initial_power=spec.initial_power, die_with_parent=True))
            else:
                started.append(_launch_fake(folder, spec))
        for bmc in started:
            if isinstance(bmc, IpmiSimBmc):
                wait_ready(bmc)
            elif isinstance(bmc, FakeBmcProcess):
                _wait_fake(bmc)
    except BaseException:
        stop_all(started)
        raise
    return started


def stop_all(fleet: Sequence[SimBmc]) -> None:
    """Stop every BMC of a fleet by PID."""
    for bmc in fleet:
        bmc.stop()
