"""Run every benchmark in one process, one after the other, and print one JSON summary.

``make bench`` runs this. Each module's ``main()`` runs its competitor in the same run
(e.g. one ipmitool subprocess per server) and returns its figures as a dict.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
import time
from typing import Any

BENCHES = ("ipmi_read", "crosscheck", "slow_bmc", "hook", "dashboard", "load", "slowloris")


def run(names: tuple[str, ...] = BENCHES) -> dict[str, Any]:
    """Run the named benchmarks; a missing or failing one is reported, not fatal."""
    results: dict[str, Any] = {}
    for name in names:
        started = time.monotonic()
        try:
            module = importlib.import_module(f"tests.bench.{name}")
        except ModuleNotFoundError:
            results[name] = {"skipped": "not present"}
            continue
        try:
            # Benches with their own argument parser get an empty argv (their defaults).
            takes_argv = "argv" in inspect.signature(module.main).parameters
            results[name] = module.main([]) if takes_argv else module.main()
        except Exception as exc:  # one broken bench must not hide the others
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"[bench] {name} took {time.monotonic() - started:.1f}s", file=sys.stderr)
    return results


if __name__ == "__main__":
    names = tuple(sys.argv[1:]) or BENCHES
    print(json.dumps(run(names), indent=2, ensure_ascii=False, default=str))
