"""Benchmark: one cross-check pass over N ipmi_sim BMCs, the agent's way vs the DBC node's way.

Run ``python -m tests.bench.crosscheck [--size 100] [--dead 10] [--deadline 3]``; ``main()``
prints the figures and returns them as a dict.

- agent: ``Monitor.run_pass()`` on a fresh store holding every BMC: power and raw boot flags
  over IPMI 2.0 in a bounded pool, verdicts judged and stored (the whole pass, not just the
  reads). Cold = first pass (every session logs in), warm = the next one (cached sessions).
- DBC node: what ``bare_metal/<id>`` costs the node per server: one ``ipmitool`` process
  per BMC, in sequence, through ``sh -c`` with the exact command line the node builds
  (no ``-I``: IPMI 1.5 ``lan``; ``chassis power status``; docs/protocol.md §6.2).
- power-only: warm ``read_power`` of every BMC through the same pool, which is exactly the
  DBC loop's work (the pass also reads boot flags: two BMC round trips per server);
- dead: ``--dead`` BMCs frozen (SIGSTOP: bound port, no answer, the costly kind of dead),
  then one more agent pass; it must end within the deadline plus 1 s.

Everything runs on this machine: the BMCs (one ipmi_sim process each, forking a shell
helper for every chassis request) compete with the agent for the same cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agent.config import load_settings
from agent.metrics import Metrics
from agent.monitor.loop import Monitor, PassReport
from agent.secrets import Sealer, Secret, generate_key
from agent.store import Store
from baremetal.ipmi.client import BmcClient
from baremetal.ipmi.ipmitool import dbc_command_line
from tests.peers.ipmisim import IpmiSimBmc, ipmi_sim_binary, start_ipmi_sim_fleet, stop_fleet

__all__ = ["main"]


def _monitor(work: Path, fleet: list[IpmiSimBmc], *, deadline_s: float,
             pool_size: int) -> tuple[Monitor, BmcClient, Store]:
    base = load_settings(None, environ={"BM_AGENT_NODE_NODE_DAT": str(work / "node.dat")})
    settings = dataclasses.replace(base, check=dataclasses.replace(
        base.check, deadline_s=deadline_s, pool_size=pool_size))
    store = Store.open(work / "agent.db", sealer=Sealer(generate_key()))
    for index, bmc in enumerate(fleet):
        store.servers.add(uuid=f"seat-{index:03d}", ip="127.0.0.9", ipmi_host=bmc.host,
                          ipmi_port=bmc.port, ipmi_user=bmc.user,
                          ipmi_password=Secret(bmc.password))
    metrics = Metrics()
    bmc_client = BmcClient(max_workers=pool_size, on_call=metrics.observe_ipmi)
    monitor = Monitor(store=store, bmc=bmc_client, settings=settings, client_node=None,
                      metrics=metrics)
    return monitor, bmc_client, store


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _timed_pass(monitor: Monitor, figures: dict[str, Any] | None = None,
                name: str = "") -> tuple[float, PassReport]:
    cpu, started = _cpu(resource.RUSAGE_SELF), time.perf_counter()
    report = monitor.run_pass()
    elapsed = time.perf_counter() - started
    if figures is not None:
        figures[f"{name}_cpu_s"] = _cpu(resource.RUSAGE_SELF) - cpu
    return elapsed, report


def power_sweep(client: BmcClient, fleet: list[IpmiSimBmc], pool_size: int,
                deadline_s: float) -> float:
    """Seconds for warm power reads of every BMC in a pool: the DBC loop's work, no more."""
    with ThreadPoolExecutor(pool_size) as pool:
        started = time.perf_counter()
        list(pool.map(lambda bmc: client.read_power(bmc.address(), deadline_s), fleet))
        return time.perf_counter() - started


def dbc_loop(fleet: list[IpmiSimBmc], timeout_s: float = 60.0) -> tuple[float, int, float]:
    """Run the node's ipmitool command once per BMC, in sequence: seconds, ok count, CPU s.

    The CPU figure is what the sh + ipmitool processes used (ipmi_sim is not reaped, so
    the BMCs' own work is not in it).
    """
    cpu, started = _cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    ok = 0
    for bmc in fleet:
        line = dbc_command_line(bmc.host, bmc.port, bmc.user, bmc.password, "power", "status")
        done = subprocess.run(["sh", "-c", line + " 2>&1"], capture_output=True, text=True,
                              timeout=timeout_s, check=False)
        ok += "Error:" not in done.stdout and "error:" not in done.stdout
    return time.perf_counter() - started, ok, _cpu(resource.RUSAGE_CHILDREN) - cpu


def run(size: int, dead: int, deadline_s: float, pool_size: int) -> dict[str, Any]:
    """Collect every figure (empty when ipmi_sim is missing)."""
    if ipmi_sim_binary() is None:
        print("ipmi_sim not installed: nothing to measure", file=sys.stderr)
        return {}
    figures: dict[str, Any] = {"bmcs": size, "pool_size": pool_size, "deadline_s": deadline_s}
    with tempfile.TemporaryDirectory(prefix="bench-crosscheck-") as tmp:
        work = Path(tmp)
        fleet = start_ipmi_sim_fleet(size, work / "fleet", initial_power="on")
        monitor, client, store = _monitor(work, fleet, deadline_s=deadline_s,
                                          pool_size=pool_size)
        try:
            figures["agent_cold_pass_s"], cold = _timed_pass(monitor, figures, "agent_cold")
            figures["agent_warm_pass_s"], warm = _timed_pass(monitor, figures, "agent_warm")
            figures["agent_ok_servers"] = warm.counts().get("ok", 0)
            figures["agent_cold_ok_servers"] = cold.counts().get("ok", 0)
            loop = dbc_loop(fleet)
            figures["dbc_loop_s"], figures["dbc_ok_servers"], figures["dbc_loop_cpu_s"] = loop
            figures["speedup_warm"] = figures["dbc_loop_s"] / figures["agent_warm_pass_s"]
            figures["speedup_cold"] = figures["dbc_loop_s"] / figures["agent_cold_pass_s"]
            figures["agent_power_only_sweep_s"] = power_sweep(client, fleet, pool_size,
                                                              deadline_s)
            figures["speedup_power_only"] = (figures["dbc_loop_s"]
                                             / figures["agent_power_only_sweep_s"])
            figures["client_cpu_ratio_warm"] = (figures["dbc_loop_cpu_s"]
                                                / max(figures["agent_warm_cpu_s"], 1e-6))
            for bmc in fleet[:dead]:
                bmc.freeze()
            figures["dead_bmcs"] = dead
            figures["agent_pass_with_dead_s"], with_dead = _timed_pass(monitor)
            figures["dead_reported_unreachable"] = with_dead.counts().get("unreachable", 0)
            figures["agent_ok_servers_with_dead"] = with_dead.counts().get("ok", 0)
            figures["dead_pass_within_deadline_plus_1s"] = (
                figures["agent_pass_with_dead_s"] <= deadline_s + 1.0)
        finally:
            for bmc in fleet[:dead]:
                if bmc.alive():
                    bmc.thaw()
            monitor.stop()
            client.close()
            store.close()
            stop_fleet(fleet)
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print one figure per line, return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--dead", type=int, default=10)
    parser.add_argument("--deadline", type=float, default=3.0, help="[check] deadline_s")
    parser.add_argument("--pool", type=int, default=32, help="[check] pool_size")
    args = parser.parse_args(argv)
    figures = run(args.size, args.dead, args.deadline, args.pool)
    width = max((len(name) for name in figures), default=0)
    for name, value in figures.items():
        shown = f"{value:12.3f}" if isinstance(value, float) else f"{value!s:>12}"
        print(f"{name:<{width}}  {shown}")
    return figures


if __name__ == "__main__":
    main()
