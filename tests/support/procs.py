"""Start helper processes for tests and stop every one of them by its PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


class Proc:
    """A child process started by a test, with its log file."""

    def __init__(self, args: Sequence[str], log_path: Path, env: dict[str, str] | None = None):
        self.args = list(args)
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        full_env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
        self.popen = subprocess.Popen(
            self.args, stdout=self._log, stderr=subprocess.STDOUT, env=full_env,
            cwd=str(REPO_ROOT), start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def kill9(self) -> None:
        """Kill the process with SIGKILL (crash tests)."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            self.popen.wait(5)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the process by PID: SIGTERM, then SIGKILL after ``timeout``."""
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        self._log.close()


def python_module(module: str, *args: str) -> list[str]:
    """Command line that runs ``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *args]
