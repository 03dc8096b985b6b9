"""Shared fixtures. Every process a test starts is stopped by PID at teardown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import Proc

# Fixture modules contributed by each area of the suite.
pytest_plugins = ["tests.support.emulator", "tests.support.bmc", "tests.support.agentproc",
                  "tests.support.chain"]

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[callable]:  # type: ignore[valid-type]
    """Start processes for one test; all are stopped afterwards."""
    started: list[Proc] = []

    def _spawn(args: list[str], name: str = "proc", env: dict[str, str] | None = None) -> Proc:
        proc = Proc(args, tmp_path / f"{name}-{len(started)}.log", env=env)
        started.append(proc)
        return proc

    yield _spawn
    for proc in reversed(started):
        proc.stop()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Folder for screenshots and reports kept after the run."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
