"""``bm-agent demo`` end to end: it serves /healthz, registers the café, and every process it
started is gone after --duration, Ctrl-C (SIGINT) or SIGTERM; the work dir is kept."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from tests.integration.cli_env import CliResult
from tests.support.procs import REPO_ROOT

pytestmark = pytest.mark.slow
READY_TIMEOUT_S = 120.0


def _start_demo(workdir: Path, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BM_AGENT_")}
    env.update({"PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"})
    with open(workdir.parent / "demo.err", "w") as err:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "agent", "--lang", "en", "demo", "--json", "--dir",
             str(workdir), *extra], stdout=subprocess.PIPE, stderr=err, text=True, env=env,
            cwd=str(workdir.parent))


def _summary(proc: subprocess.Popen[str]) -> dict:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT_S)
    assert ready, "the demo printed no summary line"
    line = proc.stdout.readline()
    assert line, f"demo exited early with {proc.wait(10)}"
    return json.loads(line)


def _gone(pids: list[int], timeout: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if psutil.pid_exists(p)
                 and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.1)
    return alive


def _cli(config: str, *args: str) -> CliResult:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("BM_AGENT_")},
           "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-m", "agent", "--config", config, *args],
                          capture_output=True, text=True, timeout=60, env=env, check=False)
    return CliResult(done.returncode, done.stdout, done.stderr)


def test_demo_runs_for_its_duration_and_stops_everything(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    proc = _start_demo(workdir, "--duration", "6")
    try:
        summary = _summary(proc)
        assert requests.get(summary["healthz"], timeout=5).status_code == 200
        assert summary["servers"] == 8 and summary["registered"] == 8
        assert len(summary["pids"]) == 8 + 1 + 8 + 1  # BMCs, emulator, DeepLinks, agent
        assert "admin_password" not in summary
        password_file = Path(summary["admin_password_file"])
        assert password_file.stat().st_mode & 0o777 == 0o600
        if summary["bmc_kind"] == "ipmi_sim":
            assert summary["verdicts"].get("dbc_path_broken") == 1
        listed = _cli(summary["config"], "--json", "servers", "list")
        assert listed.code == 0, listed.err
        assert {s["state"] for s in json.loads(listed.out)} == {"registered"}
        login = requests.post(summary["url"] + "api/v1/auth/tokens", timeout=10, json={
            "name": summary["admin_user"], "password": password_file.read_text().strip()})
        assert login.status_code in (200, 201), login.text
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _gone(summary["pids"]) == []
    assert (workdir / "agent.toml").exists() and (workdir / "logs" / "agent.log").exists()
    system = _cli(summary["config"], "--json", "events", "--kind", "system")
    actions = [e["action"] for e in json.loads(system.out)["events"]]
    assert actions[:2] == ["agent_stop", "agent_start"]  # SIGTERM stopped `serve` cleanly


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_demo_stops_every_child_on_a_signal(tmp_path: Path, signum: int) -> None:
    proc = _start_demo(tmp_path / "demo")
    try:
        summary = _summary(proc)
        assert all(psutil.pid_exists(p) for p in summary["pids"])
        proc.send_signal(signum)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _gone(summary["pids"]) == []
    assert "Stopped 18 processes" in (tmp_path / "demo.err").read_text()
