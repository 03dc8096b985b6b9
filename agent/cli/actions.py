"""``bm-agent check``, ``power`` and ``bootdev``: straight to the BMCs over IPMI.

``check --once`` runs one cross-check pass (the service's monitor code, in this process)
and prints one object per server. ``power`` and ``bootdev`` run the service's actions
(per-server lock, read-back, audit event) on the ids given and/or a label selection.
An action the BMC took but whose state did not show before the deadline is reported as
``unverified``: it is not an error (exit 0); the reading says what the BMC showed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

from agent.cli.confirm import DISRUPTIVE, confirm_targets
from agent.cli.context import CliError, Ctx, ExitCode
from agent.cli.servers import resolve_server
from agent.models import Role

__all__ = ["exit_for_results", "register"]

_UNREACHABLE_CODES = {"ipmi_unreachable", "ipmi_timeout"}
_BOOT_DEVICES = ("none", "pxe", "disk", "cdrom", "bios")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the check, power and bootdev commands."""
    check = commands.add_parser("check", parents=[common],
                                help="cross-check every server over IPMI now")
    check.add_argument("--once", action="store_true",
                       help="one pass, then exit (default: a pass every [check] interval_s)")
    check.set_defaults(handler=cmd_check)

    power = commands.add_parser("power", parents=[common], help="power on/off/soft/reset")
    power.add_argument("action", choices=("on", "off", "soft", "reset"))
    power.add_argument("ids", nargs="*", metavar="ID", help="uuid, node_id or inventory id")
    power.add_argument("--label", metavar="K=V[,K=V]", help="every server with these labels")
    power.add_argument("-y", "--yes", action="store_true",
                       help="do not ask (off/soft/reset, several seats, rented seats)")
    power.set_defaults(handler=cmd_power)

    boot = commands.add_parser("bootdev", parents=[common], help="set the boot device")
    boot.add_argument("device", choices=_BOOT_DEVICES)
    boot.add_argument("ids", nargs="*", metavar="ID", help="uuid, node_id or inventory id")
    boot.add_argument("--label", metavar="K=V[,K=V]", help="every server with these labels")
    boot.add_argument("--persistent", action="store_true", help="every boot, not just the next")
    boot.add_argument("--uefi", action="store_true", help="UEFI boot (default: legacy BIOS)")
    boot.add_argument("-y", "--yes", action="store_true", help="do not ask (several seats)")
    boot.set_defaults(handler=cmd_bootdev)


# --- check ---------------------------------------------------------------------------


def cmd_check(ctx: Ctx) -> int:
    """Run one pass (or one per interval until Ctrl-C) and print every server's verdict."""
    monitor = ctx.agent().monitor
    while True:
        report = monitor.run_pass()
        _print_pass(ctx, report)
        if ctx.args.once:
            return int(ExitCode.OK)
        time.sleep(ctx.settings().check.interval_s)


def _print_pass(ctx: Ctx, report: Any) -> None:
    if ctx.out.json_mode:
        ctx.out.json([result.to_dict() for result in report.results])
        return
    if not report.results:
        ctx.out.say("cli.no_servers")
        return
    ctx.out.table(
        ["ui.uuid", "ui.node_id", "ui.verdict", "ui.power", "ui.boot_device", "ui.detail"],
        [[r.uuid, r.node_id[:12] + "…" if r.node_id else None,
          ctx.out.t(f"verdict.{r.verdict}"), _power_text(ctx, r.power),
          ctx.out.code(r.bootdev, "bootdev"), _check_detail(ctx, r)]
         for r in report.results])
    counts = ", ".join(f"{ctx.out.t(f'verdict.{v}')} {n}"
                       for v, n in sorted(report.counts().items()))
    ctx.out.say("cli.check_summary", count=len(report.results),
                seconds=f"{report.duration_s:.2f}")
    ctx.out.note(counts)


def _check_detail(ctx: Ctx, result: Any) -> str | None:
    """English: the monitor's line; Chinese: its reasons by name (the line is English)."""
    if ctx.out.lang == "en":
        return str(result.detail)
    return "，".join(ctx.out.t(f"reason.{reason}") for reason in result.reasons) or None


def _power_text(ctx: Ctx, power: str | None) -> str | None:
    return ctx.out.t_or(f"power.{power}", power) if power else None


# --- power / bootdev -----------------------------------------------------------------


def _selection(ctx: Ctx) -> list[str]:
    uuids = [resolve_server(ctx, ident).uuid for ident in ctx.args.ids]
    if not uuids and not ctx.args.label:
        raise CliError("cli.nothing_selected")
    chosen = ctx.agent().actions.select(uuids=uuids, label=ctx.args.label)
    if not chosen:
        raise CliError("cli.label_matches_nothing", ExitCode.NOT_FOUND, label=ctx.args.label)
    return list(chosen)


def cmd_power(ctx: Ctx) -> int:
    """Power the selected servers through IPMI and read the state back."""
    uuids = _selection(ctx)
    actor = ctx.actor(Role.OPERATOR)
    confirm_targets(ctx, uuids, ctx.out.t(f"action.power_{ctx.args.action}"),
                    disruptive=ctx.args.action in DISRUPTIVE)
    results = ctx.agent().actions.power(uuids=uuids, action=ctx.args.action, actor=actor)
    return _print_results(ctx, results)


def cmd_bootdev(ctx: Ctx) -> int:
    """Set the boot device of the selected servers through IPMI and read it back."""
    uuids = _selection(ctx)
    actor = ctx.actor(Role.OPERATOR)
    confirm_targets(ctx, uuids, ctx.out.t("action.bootdev"), disruptive=False)
    results = ctx.agent().actions.set_boot(uuids=uuids, device=ctx.args.device,
                                           persistent=ctx.args.persistent,
                                           uefi=ctx.args.uefi, actor=actor)
    return _print_results(ctx, results)


def _print_results(ctx: Ctx, results: Sequence[Any]) -> int:
    code = exit_for_results(results)
    if ctx.out.json_mode:
        ctx.out.json({"ok": code == ExitCode.OK, "exit_code": int(code),
                      "results": [r.to_dict() for r in results]})
        return int(code)
    ctx.out.table(["ui.uuid", "ui.action", "ui.result", "cli.col.reading", "ui.detail"],
                  [[r.uuid, ctx.out.t_or(f"action.{r.action}", r.action),
                    ctx.out.code(r.code, "result", "reason", "cli.result_code"),
                    _reading_text(ctx, r.reading), _result_note(ctx, r)] for r in results])
    done = sum(1 for r in results if r.ok)
    ctx.out.say("cli.action_summary", done=done, total=len(results),
                verified=sum(1 for r in results if r.verified))
    return int(code)


def _result_note(ctx: Ctx, result: Any) -> str | None:
    """English: the service's message; Chinese: a note per result code (no English)."""
    if ctx.out.lang == "en":
        return str(result.message)
    note = ctx.out.t(f"cli.result_note.{result.code}",
                     seconds=f"{ctx.settings().actions.verify_deadline_s:g}")
    return None if note.startswith("cli.result_note.") else note


def _reading_text(ctx: Ctx, reading: Any) -> str | None:
    """Say what the BMC showed, in words: ``电源 关机 · 启动设备 网络（PXE）（持久, UEFI）``."""
    if reading is None:
        return None
    out = ctx.out
    if reading.error:
        named = out.code(f"ipmi_{reading.error}", "reason")  # kinds: unreachable, auth…
        if named == f"ipmi_{reading.error}":
            named = out.code(reading.error, "reason", "result")
        return f"{out.t('cli.col.error')} {named}"
    parts = [f"{out.t('ui.power')} {_power_text(ctx, reading.power)}"] if reading.power else []
    if reading.boot_valid is not None:
        flags = [out.t(f"bootdev.{name}") for name, on in (
            ("persistent", reading.boot_persistent), ("uefi", reading.boot_uefi)) if on]
        device = out.code(reading.boot_selector or reading.boot_device, "bootdev")
        parts.append(f"{out.t('ui.boot_device')} {device}"
                     + (f" ({', '.join(flags)})" if flags else ""))
    return " · ".join(parts) or None


def exit_for_results(results: Sequence[Any]) -> ExitCode:
    """0 when the BMC took every command; 5 when some failed; 4/6/1 when all failed."""
    failed = [r for r in results if not r.ok]
    if not failed:
        return ExitCode.OK
    if len(failed) < len(results):
        return ExitCode.PARTIAL
    if all(r.code in _UNREACHABLE_CODES for r in failed):
        return ExitCode.UNREACHABLE
    if all(r.code == "conflict" for r in failed):
        return ExitCode.CONFLICT
    return ExitCode.ERROR
