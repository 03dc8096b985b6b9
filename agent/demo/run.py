"""The processes of ``bm-agent demo``: started in order, every one stopped by its PID.

``DemoRun(workdir)`` keeps the list of children. ``start_*`` methods add to it; ``stop()``
stops them in reverse order (agent, DeepLink sims, emulator, BMCs) and is safe to call
twice. Children get SIGTERM if the demo itself dies (``PR_SET_PDEATHSIG``), so even a
``kill -9`` of the demo leaves nothing running. The CLI steps (init, import, register,
check) run as ``python -m agent`` subprocesses with a deadline, so this process never
opens IPMI sessions itself (pyghmi keeps them process-global).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

import agent
from baremetal.emulator.bmc_sim.fleet import BmcSpec, SimBmc, start_fleet
from baremetal.emulator.bmc_sim.procs import ChildProcess, free_port

__all__ = ["DemoError", "DemoRun", "EmulatorUrls"]

_LOGGER = logging.getLogger(__name__)
_READY_TIMEOUT_S = 30.0
_STEP_TIMEOUT_S = 180.0


class DemoError(RuntimeError):
    """A demo step failed; the message says which and where its log is."""


@dataclass(frozen=True)
class EmulatorUrls:
    """Where the emulator listens."""

    node_url: str
    client_url: str
    deeplink: str
    node_dat: Path


@dataclass
class DemoRun:
    """Every process the demo started, and how to start and stop them."""

    workdir: Path
    lang: str = "zh_CN"
    children: list[ChildProcess] = field(default_factory=list)
    bmcs: list[SimBmc] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.logs = self.workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        package_root = str(Path(agent.__file__).resolve().parents[1])
        path = os.environ.get("PYTHONPATH", "")
        # Children import this very copy of the code, installed or run from a checkout.
        self.env = {"PYTHONPATH": package_root + (os.pathsep + path if path else "")}

    @property
    def pids(self) -> list[int]:
        """PIDs of every long-running child."""
        return [bmc.proc.pid for bmc in self.bmcs] + [child.pid for child in self.children]

    def alive_pids(self) -> list[int]:
        """PIDs of the children that still run."""
        procs = [bmc.proc for bmc in self.bmcs] + self.children
        return [proc.pid for proc in procs if proc.alive()]

    def _spawn(self, args: Sequence[str], name: str) -> ChildProcess:
        child = ChildProcess(args, self.logs / f"{name}.log", env=self.env,
                             die_with_parent=True)
        self.children.append(child)
        return child

    # --- peers ------------------------------------------------------------------------

    def start_bmcs(self, specs: Sequence[BmcSpec], kind: str) -> list[SimBmc]:
        """Start the simulated BMCs (all in parallel) and wait until each listens."""
        self.bmcs = start_fleet(specs, self.workdir / "bmcs", kind=kind)
        return self.bmcs

    def start_emulator(self, rentals: Path, *, prune_first_s: float,
                       prune_every_s: float) -> EmulatorUrls:
        """Start the node emulator (bare-metal + client roles, DeepLink LAN service)."""
        data_dir = self.workdir / "emulator"
        ports = [free_port() for _ in range(3)]
        child = self._spawn([
            sys.executable, "-m", "baremetal.emulator", "--listen", f"127.0.0.1:{ports[0]}",
            "--client-listen", f"127.0.0.1:{ports[1]}",
            "--deeplink-listen", f"127.0.0.1:{ports[2]}", "--data-dir", str(data_dir),
            "--rentals", str(rentals), "--prune-first-s", f"{prune_first_s:g}",
            "--prune-every-s", f"{prune_every_s:g}", "--prune-gap-s", "0.5"], "emulator")
        self._wait_for_text(child, "bm-node-emulator ready", "emulator")
        return EmulatorUrls(f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}",
                            f"127.0.0.1:{ports[2]}", data_dir / "dat" / "node.dat")

    def start_deeplink(self, node: str, source_ip: str, device_id: str, password: str,
                       name: str) -> ChildProcess:
        """Start one simulated DeepLink connecting to the node from ``source_ip``."""
        (self.workdir / "deeplink").mkdir(mode=0o700, exist_ok=True)
        return self._spawn([
            sys.executable, "-m", "baremetal.emulator.deeplink_client", "--node", node,
            "--source-ip", source_ip, "--device-id", device_id, "--password", password,
            "--reconnect", "--state-file", str(self.workdir / "deeplink" / f"{name}.json")],
            f"deeplink-{name}")

    def start_agent(self, config: Path, url: str) -> ChildProcess:
        """Start ``bm-agent serve`` and wait until /healthz answers."""
        child = self._spawn([sys.executable, "-m", "agent", "--config", str(config), "serve"],
                            "agent")
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if not child.alive():
                raise DemoError(f"the agent exited at start; see {child.log_path}")
            try:
                if requests.get(url + "healthz", timeout=1.0).status_code == 200:
                    return child
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise DemoError(f"the agent did not answer {url}healthz; see {child.log_path}")

    def _wait_for_text(self, child: ChildProcess, text: str, what: str) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while text not in child.log():
            if not child.alive() or time.monotonic() > deadline:
                raise DemoError(f"{what} did not start; see {child.log_path}")
            time.sleep(0.05)

    # --- CLI steps --------------------------------------------------------------------

    def cli(self, config: Path, *args: str, ok_codes: Sequence[int] = (0,)) -> str:
        """Run ``bm-agent --config CONFIG ARGS`` as a subprocess; return its stdout."""
        argv = [sys.executable, "-m", "agent", "--config", str(config), "--lang", self.lang,
                *args]
        log = self.logs / "setup.log"
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=_STEP_TIMEOUT_S,
                                  env={**os.environ, **self.env}, stdin=subprocess.DEVNULL,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise DemoError(f"`bm-agent {' '.join(args)}` took over {_STEP_TIMEOUT_S:g} s") \
                from None
        with log.open("a", encoding="utf-8") as handle:
            handle.write(f"$ bm-agent {' '.join(args)}  (exit {done.returncode})\n"
                         f"{done.stdout}{done.stderr}\n")
        if done.returncode not in ok_codes:
            raise DemoError(f"`bm-agent {' '.join(args)}` exited {done.returncode}: "
                            f"{done.stderr.strip()[-500:]} (see {log})")
        return done.stdout

    def cli_json(self, config: Path, *args: str) -> Any:
        """Run a CLI step with --json and parse its document."""
        return json.loads(self.cli(config, "--json", *args))

    # --- stop -------------------------------------------------------------------------

    def stop(self) -> list[int]:
        """Stop every child by PID, newest first; return the PIDs stopped."""
        stopped = []
        for child in reversed(self.children):
            stopped.append(child.pid)
            try:
                child.stop(timeout=10)
            except Exception:  # keep stopping the others
                _LOGGER.exception("could not stop pid %d", child.pid)
        for bmc in self.bmcs:
            stopped.append(bmc.proc.pid)
            try:
                bmc.stop()
            except Exception:
                _LOGGER.exception("could not stop BMC pid %d", bmc.proc.pid)
        self.children, self.bmcs = [], []
        return stopped
