"""``bm-agent demo`` (= ``make demo``): a whole café on loopback, on embedded defaults.

It starts 8 simulated BMCs (``ipmi_sim`` when installed, else the project's fake BMC),
the node emulator (bare-metal + client roles, DeepLink LAN service), writes an agent
config into a fresh temp dir, creates the admin user with a generated one-time password
(also written to a 0600 file there), imports and registers the 8 PCs, connects one
simulated DeepLink per PC from its registered 127.0.0.N address, runs one cross-check
pass, starts the agent and prints its URL. Ctrl-C (or SIGTERM, or ``--duration``) stops
every process it started, by PID; the temp dir is kept (config, store, logs).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import signal
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from agent.cli.context import Ctx, ExitCode, os_login
from agent.cli.setup import write_private_text
from agent.demo.cafe import (
    BROKEN_DBC_UUID,
    CAFE,
    IDLE_UUID,
    agent_config,
    inventory_csv,
    new_password,
    rentals,
    specs_for,
)
from agent.demo.run import DemoError, DemoRun
from baremetal.emulator.bmc_sim.fleet import fleet_kind
from baremetal.emulator.bmc_sim.procs import free_port

__all__ = ["cmd_demo", "register"]

ADMIN_USER = "admin"


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the demo command."""
    demo = commands.add_parser("demo", parents=[common],
                               help="run a simulated café: emulator, 8 BMCs, agent")
    demo.add_argument("--dir", metavar="DIR", help="work directory (default: a new temp dir)")
    demo.add_argument("--duration", type=float, metavar="S", help="stop by itself after S s")
    demo.add_argument("--bmc", choices=("auto", "ipmi_sim", "fakebmc"), default="auto",
                      help="BMC simulator (default: ipmi_sim when installed)")
    demo.add_argument("--idle-after", type=float, default=20.0, metavar="S",
                      help="first run of the node's idle power-off timer (default %(default)s s;"
                           " the real node waits 180 s)")
    demo.set_defaults(handler=cmd_demo)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def cmd_demo(ctx: Ctx) -> int:
    """Run the demo until Ctrl-C, SIGTERM or --duration; stop every child by PID."""
    workdir = Path(ctx.args.dir).absolute() if ctx.args.dir else \
        Path(tempfile.mkdtemp(prefix="bm-agent-demo-"))
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    run = DemoRun(workdir, lang=ctx.out.lang)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    # Explicitly: a demo started from a background job inherits SIGINT ignored.
    previous_int = signal.signal(signal.SIGINT, _interrupt)
    code = ExitCode.OK
    try:
        summary = _setup(ctx, run)
        _announce(ctx, summary)
        _wait(ctx, run, ctx.args.duration)
    except KeyboardInterrupt:
        ctx.out.say("cli.demo_stopping")
    except DemoError as exc:
        ctx.out.warn("cli.demo_failed", detail=str(exc))
        code = ExitCode.ERROR
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip cleanup
        stopped = run.stop()
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous)
        ctx.out.say("cli.demo_stopped", count=len(stopped), dir=workdir)
    return int(code)


def _setup(ctx: Ctx, run: DemoRun) -> dict[str, Any]:
    out, workdir = ctx.out, run.workdir
    kind = fleet_kind() if ctx.args.bmc == "auto" else ctx.args.bmc
    passwords = {pc.uuid: new_password(12) for pc in CAFE}
    out.say("cli.demo_bmcs", count=len(CAFE), kind=kind)
    bmcs = run.start_bmcs(specs_for(CAFE, user="admin", passwords=passwords,
                                    ipmi15_off=kind == "ipmi_sim"), kind)
    rentals_path = workdir / "rentals.json"
    rentals_path.write_text(rentals(CAFE, {}), encoding="utf-8")
    urls = run.start_emulator(rentals_path, prune_first_s=ctx.args.idle_after,
                              prune_every_s=60.0)
    out.say("cli.demo_emulator", url=urls.node_url, client=urls.client_url)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    config = workdir / "agent.toml"
    write_private_text(config, agent_config(
        node_url=urls.node_url, client_url=urls.client_url, node_dat=urls.node_dat,
        listen=f"127.0.0.1:{port}", rentals_file=rentals_path,
        dbc_path_probe=kind == "ipmi_sim", lang=out.lang,
        # The CLI logs which staff member acts: whoever runs the demo acts as its admin.
        os_users=f"{os_login()}={ADMIN_USER}"), mode=0o640)
    password_file = workdir / "admin-password.txt"
    admin_password = new_password(16)
    write_private_text(password_file, admin_password + "\n")
    run.cli(config, "init", "--admin", ADMIN_USER, "--password-file", str(password_file))
    inventory = workdir / "servers.csv"  # holds IPMI passwords: 0600 like the key file
    write_private_text(inventory, inventory_csv(CAFE, bmcs))
    run.cli(config, "servers", "import", str(inventory))
    registered = run.cli_json(config, "register")
    node_ids = {s["uuid"]: s["node_id"] for s in registered["servers"] if s["node_id"]}
    out.say("cli.demo_registered", count=len(node_ids), total=len(CAFE))
    _replace(rentals_path, rentals(CAFE, node_ids))
    for pc in CAFE:
        device_id = str(100_000_000 + secrets.randbelow(900_000_000))
        run.start_deeplink(urls.deeplink, pc.source_ip, device_id, new_password(8), pc.uuid)
    checks = run.cli_json(config, "check", "--once")
    _print_checks(ctx, checks)
    run.start_agent(config, url)
    dashboard = url + "ui/" if importlib.util.find_spec("agent.web") else None
    return {"ok": True, "url": url, "dashboard": dashboard, "healthz": url + "healthz",
            "docs": url + "docs",
            "admin_user": ADMIN_USER, "admin_password": admin_password,
            "admin_password_file": str(password_file), "workdir": str(workdir),
            "config": str(config), "logs": str(run.logs), "bmc_kind": kind,
            "servers": len(CAFE), "registered": len(node_ids), "pids": run.pids,
            "verdicts": _counts(checks)}


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _counts(checks: list[dict[str, Any]]) -> dict[str, int]:
    found: dict[str, int] = {}
    for check in checks:
        found[check["verdict"]] = found.get(check["verdict"], 0) + 1
    return found


def _print_checks(ctx: Ctx, checks: list[dict[str, Any]]) -> None:
    if ctx.out.json_mode:
        return
    ctx.out.say("cli.demo_first_pass")
    ctx.out.table(["ui.uuid", "ui.verdict", "ui.power", "ui.boot_device", "ui.detail"],
                  [[c["uuid"], ctx.out.t(f"verdict.{c['verdict']}"),
                    ctx.out.t_or(f"power.{c['power']}", c["power"]) if c["power"] else None,
                    c["bootdev"], c["detail"]] for c in checks])


def _announce(ctx: Ctx, summary: dict[str, Any]) -> None:
    out = ctx.out
    if out.json_mode:
        public = {k: v for k, v in summary.items() if k != "admin_password"}
        out.json(public)
        out.stdout.flush()
    out.note("")
    out.say("cli.demo_ready")
    out.fields([("cli.demo_url", summary["dashboard"] or summary["url"]),
                ("cli.demo_api_docs", summary["docs"]),
                ("ui.username", summary["admin_user"]),
                ("ui.password", summary["admin_password"]),
                ("cli.demo_password_file", summary["admin_password_file"]),
                ("cli.demo_config", summary["config"]), ("cli.demo_logs", summary["logs"]),
                ("cli.demo_workdir", summary["workdir"])])
    if summary["bmc_kind"] == "ipmi_sim":
        out.say("cli.demo_interesting", broken=BROKEN_DBC_UUID, idle=IDLE_UUID,
                seconds=f"{ctx.args.idle_after:g}")
    else:
        out.say("cli.demo_fakebmc_note")
    out.say("cli.demo_try", config=summary["config"])
    out.say("cli.demo_stop_hint")
    if out.json_mode:
        out.stderr.flush()


def _wait(ctx: Ctx, run: DemoRun, duration: float | None) -> None:
    end = time.monotonic() + duration if duration is not None else None
    agent_proc = run.children[-1]
    while end is None or time.monotonic() < end:
        if not agent_proc.alive():
            raise DemoError(f"the agent stopped; see {agent_proc.log_path}")
        time.sleep(0.2)
