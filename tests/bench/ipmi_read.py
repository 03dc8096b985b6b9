"""Benchmark: signing throughput, IPMI warm power read vs one ipmitool process, BMC fleet.

Run ``python -m tests.bench.ipmi_read [--reads N] [--ipmitool-runs M] [--fleet K]``.
``main()`` prints the figures and returns them as a dict (a bench runner collects them).

All IPMI figures come from the same ipmi_sim BMC on loopback in the same run, so the ratio
compares client overhead only (docs/ipmi.md §2.2): ``baremetal.ipmi.client`` keeps a session and
sends raw Get Chassis Status; ipmitool starts a process and logs in for every call.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from baremetal import signing
from baremetal.ipmi.client import BmcClient
from tests.peers.ipmisim import (
    ipmi_sim_binary,
    rss_kib,
    start_ipmi_sim,
    start_ipmi_sim_fleet,
    stop_fleet,
)
from tests.support.bmc import Peer, address_of, start_fake_bmc

__all__ = ["main"]


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def bench_signing(seconds: float = 1.0) -> float:
    """Sign and verify one request-sized message repeatedly; return pairs per second."""
    keys = signing.new_node_keypair()
    message = "bare_metal/list" + signing.make_nonce()
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        signature = signing.sign(keys.private_key, message)
        if not signing.verify(signature, message, keys.node_id):
            raise RuntimeError("signature did not verify")
        count += 1
    return count / elapsed


def bench_warm_reads(client: BmcClient, bmc: Peer, reads: int) -> list[float]:
    """Latencies of warm ``read_power`` calls (one login first, not counted)."""
    addr = address_of(bmc)
    client.read_power(addr, 5)
    samples = []
    for _ in range(reads):
        started = time.perf_counter()
        client.read_power(addr, 5)
        samples.append(time.perf_counter() - started)
    return samples


def bench_ipmitool(bmc: Peer, runs: int) -> list[float]:
    """Latencies of one ``ipmitool -I lanplus -C 3 ... chassis power status`` process each."""
    cmd = ["ipmitool", "-I", "lanplus", "-C", "3", "-H", bmc.host, "-p", str(bmc.port),
           "-U", bmc.user, "-P", bmc.password, "chassis", "power", "status"]
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
        samples.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise RuntimeError(f"ipmitool failed: {result.stderr.strip()}")
    return samples


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def bench_fleet(work_dir: Path, size: int, workers: int = 8) -> dict[str, float]:
    """Start ``size`` ipmi_sim BMCs; time the start, memory, cold and warm sweeps, the stop."""
    started = time.perf_counter()
    fleet = start_ipmi_sim_fleet(size, work_dir)
    figures = {"fleet_size": float(size), "fleet_start_s": time.perf_counter() - started}
    try:
        figures["fleet_rss_mib"] = sum(rss_kib(b.proc.pid) for b in fleet) / 1024
        figures["fleet_pss_mib"] = sum(_pss_kib(b.proc.pid) for b in fleet) / 1024
        client = BmcClient(max_workers=workers)
        try:
            with ThreadPoolExecutor(workers) as pool:
                for label in ("cold", "warm"):
                    started = time.perf_counter()
                    states = list(pool.map(lambda b: client.read_power(b.address(), 8), fleet))
                    figures[f"fleet_sweep_{label}_s"] = time.perf_counter() - started
                    if len(states) != size:
                        raise RuntimeError("sweep lost answers")
        finally:
            client.close()
    finally:
        started = time.perf_counter()
        stop_fleet(fleet)
        figures["fleet_stop_s"] = time.perf_counter() - started
    return figures


def bench_fake_bmc(work_dir: Path, reads: int) -> dict[str, float]:
    """Warm reads against the pyghmi fake BMC: client cost without ipmi_sim's helper fork."""
    bmc = start_fake_bmc(work_dir, initial_power="on")
    client = BmcClient()
    try:
        samples = bench_warm_reads(client, bmc, reads)
    finally:
        client.close()
        bmc.stop()
    return {
        "fakebmc_warm_read_p50_ms": statistics.median(samples) * 1000,
        "fakebmc_warm_read_p90_ms": _percentile(samples, 0.9) * 1000,
    }


def run(reads: int, ipmitool_runs: int, fleet: int) -> dict[str, float]:
    """Collect every figure; IPMI ones only when ipmi_sim is installed."""
    figures = {"sign_verify_per_s": bench_signing()}
    if ipmi_sim_binary() is None:
        print("ipmi_sim not installed: IPMI figures skipped", file=sys.stderr)
        return figures
    with tempfile.TemporaryDirectory(prefix="bench-ipmi-") as tmp:
        bmc = start_ipmi_sim(Path(tmp) / "bmc", initial_power="on")
        client = BmcClient()
        try:
            ours = bench_warm_reads(client, bmc, reads)
            theirs = bench_ipmitool(bmc, ipmitool_runs)
        finally:
            client.close()
            bmc.stop()
        figures.update({
            "ipmi_warm_read_p50_ms": statistics.median(ours) * 1000,
            "ipmi_warm_read_p90_ms": _percentile(ours, 0.9) * 1000,
            "ipmi_warm_read_max_ms": max(ours) * 1000,
            "ipmitool_read_p50_ms": statistics.median(theirs) * 1000,
            "ipmitool_read_p90_ms": _percentile(theirs, 0.9) * 1000,
        })
        figures["ipmitool_over_ipmi_p50_ratio"] = (
            figures["ipmitool_read_p50_ms"] / figures["ipmi_warm_read_p50_ms"]
        )
        figures.update(bench_fake_bmc(Path(tmp) / "fake", reads))
        if fleet:
            figures.update(bench_fleet(Path(tmp) / "fleet", fleet))
    return figures


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the benchmark, print one figure per line, return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=500)
    parser.add_argument("--ipmitool-runs", type=int, default=40)
    parser.add_argument("--fleet", type=int, default=100, help="0 skips the fleet figures")
    args = parser.parse_args(argv)
    figures = run(args.reads, args.ipmitool_runs, args.fleet)
    width = max(len(name) for name in figures)
    for name, value in figures.items():
        print(f"{name:<{width}}  {value:12.3f}")
    return figures


if __name__ == "__main__":
    main()
