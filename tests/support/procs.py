"""Start helper processes for tests and stop every one of them by its PID."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from baremetal.emulator.bmc_sim.procs import ChildProcess

REPO_ROOT = Path(__file__).resolve().parents[2]


class Proc(ChildProcess):
    """A child process started by a test, run from the repository with it on PYTHONPATH."""

    def __init__(self, args: Sequence[str], log_path: Path, env: dict[str, str] | None = None):
        inherited = (env or {}).get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
        path = str(REPO_ROOT) + os.pathsep + inherited
        super().__init__(args, log_path, env={**(env or {}), "PYTHONPATH": path}, cwd=REPO_ROOT)


def python_module(module: str, *args: str) -> list[str]:
    """Command line that runs ``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *args]
