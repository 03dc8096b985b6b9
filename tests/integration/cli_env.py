"""A café for the CLI tests: the emulator, ipmi_sim BMCs, an initialised agent dir, and ``bm-agent``
run as a real subprocess (``python -m agent``) with its exit code, stdout and stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.emulator import EmulatorHandle
from tests.support.procs import REPO_ROOT

ADMIN = "boss"
ADMIN_PASSWORD = "boss-password-1"
# Short deadlines so failures show within seconds; the DBC-path probe on.
FAST_ENV = {
    "BM_AGENT_CHECK_DEADLINE_S": "2",
    "BM_AGENT_CHECK_DBC_PATH_PROBE": "true",
    "BM_AGENT_ACTIONS_VERIFY_DEADLINE_S": "5",
    "BM_AGENT_ACTIONS_VERIFY_INTERVAL_S": "0.2",
    "BM_AGENT_NODE_TIMEOUT_S": "5",
}
CSV_HEADER = "uuid,ip,os,desc,ipmi_hostname,ipmi_username,ipmi_password,ipmi_port,mac,labels\n"


@dataclass
class CliResult:
    """What one ``bm-agent`` run did."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class AgentDir:
    """An initialised agent (config, key, store, admin) pointing at one emulator."""

    path: Path
    emulator: EmulatorHandle
    env: dict[str, str] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.path / "agent.toml"

    def cli(self, *args: str, lang: str | None = "en", env: dict[str, str] | None = None,
            stdin: str | None = None, timeout: float = 120.0) -> CliResult:
        """Run ``bm-agent --config CONFIG [--lang L] ARGS`` and return code, stdout, stderr."""
        argv = [sys.executable, "-m", "agent", "--config", str(self.config)]
        argv += ["--lang", lang] if lang else []
        full_env = {k: v for k, v in os.environ.items()
                    if not k.startswith("BM_AGENT_") and k not in ("LANG", "LC_ALL",
                                                                     "LC_MESSAGES")}
        full_env.update({"PYTHONPATH": str(REPO_ROOT), "LANG": "C.UTF-8", **FAST_ENV,
                         **self.env, **(env or {})})
        done = subprocess.run([*argv, *args], capture_output=True, text=True, timeout=timeout,
                              env=full_env, input=stdin, check=False, cwd=str(self.path))
        return CliResult(done.returncode, done.stdout, done.stderr)

    def write_csv(self, name: str, rows: list[str]) -> Path:
        path = self.path / name
        path.write_text(CSV_HEADER + "".join(row + "\n" for row in rows), encoding="utf-8")
        return path


def init_agent(path: Path, emulator: EmulatorHandle) -> AgentDir:
    """``bm-agent init`` against ``emulator`` with an admin from a password file."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "admin.pw").write_text(ADMIN_PASSWORD + "\n")
    agent_dir = AgentDir(path, emulator)
    args = ["init", "--admin", ADMIN, "--password-file", str(path / "admin.pw"),
            "--node-url", emulator.url, "--node-dat", str(emulator.data_dir / "dat" / "node.dat")]
    if emulator.client_url:
        args += ["--client-url", emulator.client_url]
    result = agent_dir.cli(*args)
    assert result.code == 0, result.err
    return agent_dir


def bmc_row(uuid: str, ip: str, bmc: Any, *, password: str | None = None, port: int | None = None,
            labels: str = "zone=hall") -> str:
    """One CSV row for a server behind ``bmc`` (host, port, user, password)."""
    return ",".join([uuid, ip, "Windows 10", f"{uuid} 电竞主机", bmc.host, bmc.user,
                     password or bmc.password, str(port or bmc.port), "", labels])
