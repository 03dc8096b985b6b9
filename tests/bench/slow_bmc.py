"""Benchmark: do healthy BMCs' answers wait while one BMC's session retransmits?

Run ``python -m tests.bench.slow_bmc [--trials 10]``. Each trial warms a fresh BmcClient on
16 healthy ipmi_sim BMCs and one more, freezes that one for 6 s (its chassis helper
sleeps, so ipmi_sim answers nothing and pyghmi retransmits), starts a read of it, then reads
the 16 healthy BMCs five times in parallel with a 2 s deadline. Prints the worst read time
of each round and the failures. Each trial uses a BMC not frozen before (a frozen ipmi_sim
keeps sleeping for the requests queued behind the first).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from baremetal.errors import IpmiError
from baremetal.ipmi.client import BmcClient
from tests.peers.ipmisim import IpmiSimBmc, start_ipmi_sim_fleet, stop_fleet

__all__ = ["main"]

HEALTHY, ROUNDS, FROZEN_S, DEADLINE_S = 16, 5, 6.0, 2.0


def _timed_read(client: BmcClient, bmc: IpmiSimBmc) -> tuple[bool, float]:
    started = time.monotonic()
    try:
        client.read_power(bmc.address(), DEADLINE_S)
    except IpmiError:
        return False, time.monotonic() - started
    return True, time.monotonic() - started


def _trial(healthy: list[IpmiSimBmc], frozen: IpmiSimBmc) -> list[tuple[bool, float]]:
    client = BmcClient(max_workers=32)
    try:
        for bmc in [*healthy, frozen]:
            client.read_power(bmc.address(), 5.0)
        frozen.set_slow(FROZEN_S)
        with ThreadPoolExecutor(HEALTHY + 1) as pool:
            pool.submit(_timed_read, client, frozen)
            time.sleep(0.2)  # let the frozen BMC's request go out and start retransmitting
            reads: list[tuple[bool, float]] = []
            for _ in range(ROUNDS):
                reads += pool.map(lambda bmc: _timed_read(client, bmc), healthy)
        return reads
    finally:
        client.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the trials; return the worst and median-worst read times and the failures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--trials", type=int, default=10)
    trials = parser.parse_args(argv).trials
    with tempfile.TemporaryDirectory(prefix="bm-slow-") as tmp:
        fleet = start_ipmi_sim_fleet(HEALTHY + trials, Path(tmp), initial_power="on")
        try:
            reads = [r for t in range(trials) for r in _trial(fleet[:HEALTHY], fleet[HEALTHY + t])]
        finally:
            stop_fleet(fleet)
    rounds = [reads[i:i + HEALTHY] for i in range(0, len(reads), HEALTHY)]
    worst = [max(seconds for _, seconds in r) for r in rounds]
    result = {"trials": trials, "reads": len(reads),
              "failed": sum(1 for ok, _ in reads if not ok),
              "worst_ms": round(1000 * max(worst), 1),
              "median_round_worst_ms": round(1000 * statistics.median(worst), 1)}
    for key, value in result.items():
        print(f"{key:<24}{value:>10}")
    return result


if __name__ == "__main__":
    main()
