"""Fixtures: real IPMI peers on loopback (the repo's fake BMC and OpenIPMI's ipmi_sim).

- ``fake_bmc(**knobs)`` starts ``python -m tests.peers.fakebmc`` (knobs: ``slow``, ``busy``,
  ``drop_rate``, ``initial_power``, ``valid_timeout``, ``reject_timer_param``, ``user``,
  ``password``) and returns a ``FakeBmcHandle``.
- ``ipmi_sim(**knobs)`` starts ``ipmi_sim`` (knobs: ``ipmi15``, ``ipmi20``,
  ``initial_power``, ``user``, ``password``) and returns a ``tests.peers.ipmisim.IpmiSimBmc``;
  the test is skipped when the binary is missing (CI installs openipmi).
- ``run_ipmitool(peer, *args, interface=...)`` runs ipmitool against either peer.
- ``bmc_client``: a ``BmcClient`` closed after the test; ``timed(fn, ...)`` returns
  (result or IpmiError, seconds); ``SELECTOR_TEXT``: ipmitool's words for each boot device.

Every process is stopped by PID at teardown. Ports come from ``free_port()``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from baremetal.errors import IpmiError
from baremetal.ipmi.client import BmcAddress, BmcClient
from tests.peers.ipmisim import IpmiSimBmc, ipmi_sim_binary, start_ipmi_sim
from tests.support.ports import free_port
from tests.support.procs import Proc, python_module

READY_TIMEOUT_S = 10.0
# What ``ipmitool chassis bootparam get 5`` prints for each DBC boot device.
SELECTOR_TEXT = {
    "none": "No override",
    "pxe": "Force PXE",
    "disk": "Force Boot from default Hard-Drive",
    "cdrom": "Force Boot from CD/DVD",
    "bios": "Force Boot into BIOS Setup",
}


class Peer(Protocol):
    host: str
    port: int
    user: str
    password: str


def address_of(peer: Peer, *, username: str | None = None,
               password: str | None = None) -> BmcAddress:
    """BmcAddress for a peer, optionally with other credentials."""
    return BmcAddress(host=peer.host, port=peer.port, username=username or peer.user,
                      password=peer.password if password is None else password)


@dataclass
class FakeBmcHandle:
    """A running fake BMC subprocess and its state file."""

    host: str
    port: int
    user: str
    password: str
    state_file: Path
    proc: Proc

    def address(self, **override: str) -> BmcAddress:
        return address_of(self, **override)

    def state(self) -> dict[str, Any]:
        return json.loads(self.state_file.read_text())

    def set_state(self, **fields: Any) -> None:
        """Change the BMC's state behind the client's back (atomic replace)."""
        state = {**self.state(), **fields}
        tmp = self.state_file.with_suffix(".test-tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.state_file)

    def set_power(self, power: str) -> None:
        self.set_state(power=power)

    def stop(self) -> None:
        if self.proc.alive():
            os.kill(self.proc.pid, signal.SIGCONT)
        self.proc.stop()

    def freeze(self) -> None:
        """SIGSTOP: port bound, nothing answers."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)


def start_fake_bmc(work_dir: Path, *, user: str = "admin", password: str = "fakepass1",
                   slow: float = 0.0, busy: bool = False, drop_rate: float = 0.0,
                   initial_power: str = "off", valid_timeout: float = 60.0,
                   reject_timer_param: bool = False) -> FakeBmcHandle:
    """Start one fake BMC subprocess and wait until it listens."""
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    state_file = work_dir / "state.json"
    args = ["--port", str(port), "--user", user, "--password", password,
            "--state-file", str(state_file), "--initial-power", initial_power,
            "--valid-timeout", str(valid_timeout)]
    args += ["--slow", str(slow)] if slow else []
    args += ["--drop-rate", str(drop_rate)] if drop_rate else []
    args += ["--busy"] if busy else []
    args += ["--reject-timer-param"] if reject_timer_param else []
    proc = Proc(python_module("tests.peers.fakebmc", *args), work_dir / "fakebmc.log")
    handle = FakeBmcHandle("127.0.0.1", port, user, password, state_file, proc)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while "fakebmc ready" not in proc.log():
        if not proc.alive() or time.monotonic() > deadline:
            handle.stop()
            raise RuntimeError(f"fake BMC did not start: {proc.log()[-800:]}")
        time.sleep(0.02)
    return handle


@pytest.fixture
def fake_bmc(tmp_path: Path) -> Iterator[Callable[..., FakeBmcHandle]]:
    """Factory: start fake BMCs with knobs; all are stopped at teardown."""
    started: list[FakeBmcHandle] = []

    def _start(**knobs: Any) -> FakeBmcHandle:
        handle = start_fake_bmc(tmp_path / f"fakebmc{len(started)}", **knobs)
        started.append(handle)
        return handle

    yield _start
    for handle in started:
        handle.stop()


@pytest.fixture
def ipmi_sim(tmp_path: Path) -> Iterator[Callable[..., IpmiSimBmc]]:
    """Factory: start ipmi_sim BMCs with knobs; skips the test if ipmi_sim is missing."""
    if ipmi_sim_binary() is None:
        pytest.skip("ipmi_sim not installed (Debian package openipmi; CI installs it)")
    started: list[IpmiSimBmc] = []

    def _start(**knobs: Any) -> IpmiSimBmc:
        bmc = start_ipmi_sim(tmp_path / f"ipmisim{len(started)}", **knobs)
        started.append(bmc)
        return bmc

    yield _start
    for bmc in started:
        bmc.stop()


@pytest.fixture
def dead_bmc() -> BmcAddress:
    """An address where no BMC listens (a checked-free loopback port)."""
    return BmcAddress(host="127.0.0.1", port=free_port(), username="admin", password="nobody1")


def run_ipmitool(peer: Peer, *args: str, interface: str | None = "lanplus",
                 password: str | None = None, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run ipmitool against a peer: ``lanplus`` adds ``-C 3``; None runs it as DBC does (no -I)."""
    if shutil.which("ipmitool") is None:
        pytest.skip("ipmitool not installed")
    cmd = ["ipmitool"]
    if interface is not None:
        cmd += ["-I", interface] + (["-C", "3"] if interface == "lanplus" else [])
    cmd += ["-H", peer.host, "-p", str(peer.port), "-U", peer.user,
            "-P", peer.password if password is None else password, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def bmc_client() -> Iterator[BmcClient]:
    """A BmcClient with default settings, closed (logged out) after the test."""
    client = BmcClient()
    yield client
    client.close()


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[object, float]:
    """Call ``fn``; return (its result, or the IpmiError it raised) and the seconds taken."""
    started = time.monotonic()
    try:
        outcome = fn(*args, **kwargs)
    except IpmiError as exc:
        outcome = exc
    return outcome, time.monotonic() - started
