"""``bm-agent seats list|approve|reject|approve-device``: staff decisions on GPU PCs' seat keys.

A PC's bm-hook enrolls its own seat key on first boot; it waits (``pending``) until staff
approve it here, in the dashboard or through the API (agent.hook.seats). ``approve-device`` pins
a changed DeepLink device_id. Works on the local store, like the other store commands.
"""

from __future__ import annotations

import argparse
from typing import Any

from agent.cli.argtext import coded
from agent.cli.context import Ctx, ExitCode
from agent.hook.seats import Decision, Seats
from agent.models import Role, SeatState

__all__ = ["register"]


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the seats command and its actions."""
    seats = commands.add_parser("seats", parents=[common],
                                help="GPU PCs' seat keys waiting for approval / 座位密钥审批")
    sub = seats.add_subparsers(dest="seats_command", metavar="ACTION")
    sub.required = True
    listing = sub.add_parser("list", parents=[common], help="seat keys and device_id changes")
    listing.add_argument("--state", type=coded("seat_state", [s.value for s in SeatState]),
                         metavar="STATE", help="a state code or its name (待批准…)")
    listing.set_defaults(handler=cmd_list)
    for name, handler, text in (
            ("approve", cmd_approve, "approve the pending seat key of these servers"),
            ("reject", cmd_reject, "reject the pending seat key of these servers"),
            ("approve-device", cmd_approve_device,
             "pin the changed DeepLink device_id of these servers")):
        action = sub.add_parser(name, parents=[common], help=text)
        action.add_argument("ids", nargs="*", metavar="ID", help="uuid or node_id")
        action.add_argument("--label", metavar="K=V", help="every server with this label")
        if name != "approve-device":
            action.add_argument("--fingerprint", action="append", default=[], metavar="FP",
                                help="only the seat key with this fingerprint (repeatable)")
        action.set_defaults(handler=handler)


def cmd_list(ctx: Ctx) -> int:
    """Print seat keys (newest first) and pending device_id changes."""
    state = SeatState(ctx.args.state) if ctx.args.state else None
    listing = Seats(ctx.store()).listing(state=state)
    if ctx.out.json_mode:
        ctx.out.json(listing)
        return int(ExitCode.OK)
    if not listing["items"] and not listing["device_id_changes"]:
        ctx.out.say("cli.no_seats")
        return int(ExitCode.OK)
    if listing["items"]:
        ctx.out.table(
            ["ui.uuid", "ui.ip", "ui.labels", "ui.seat_state", "ui.fingerprint",
             "ui.enrolled_at", "ui.decided_by"],
            [[s["uuid"], s["ip"], ",".join(f"{k}={v}" for k, v in sorted(s["labels"].items())),
              ctx.out.t(f"seat_state.{s['state']}"), s["fingerprint"],
              ctx.out.ts(s["created_at"]), s["decided_by"]] for s in listing["items"]])
    for change in listing["device_id_changes"]:
        ctx.out.say("cli.device_id_change", uuid=change["uuid"],
                    pinned=change["pinned_device_id"], seen=change["pending_device_id"])
    return int(ExitCode.OK)


def cmd_approve(ctx: Ctx) -> int:
    """Approve pending seat keys."""
    actor = ctx.actor(Role.OPERATOR)
    return _report(ctx, Seats(ctx.store()).decide(uuids=ctx.args.ids, label=ctx.args.label,
                                                  approve=True, actor=actor,
                                                  fingerprints=ctx.args.fingerprint))


def cmd_reject(ctx: Ctx) -> int:
    """Reject pending seat keys."""
    actor = ctx.actor(Role.OPERATOR)
    return _report(ctx, Seats(ctx.store()).decide(uuids=ctx.args.ids, label=ctx.args.label,
                                                  approve=False, actor=actor,
                                                  fingerprints=ctx.args.fingerprint))


def cmd_approve_device(ctx: Ctx) -> int:
    """Pin changed DeepLink device_ids."""
    actor = ctx.actor(Role.OPERATOR)
    return _report(ctx, Seats(ctx.store()).approve_device_ids(
        uuids=ctx.args.ids, label=ctx.args.label, actor=actor))


def _report(ctx: Ctx, decisions: list[Decision]) -> int:
    done = sum(d.ok for d in decisions)
    if ctx.out.json_mode:
        ctx.out.json({"ok": done == len(decisions), "done": done,
                      "results": [d.to_dict() for d in decisions]})
    else:
        ctx.out.table(["ui.uuid", "ui.result", "ui.fingerprint", "ui.detail"],
                      [[d.uuid, ctx.out.t("cli.row_ok") if d.ok else d.code, d.fingerprint,
                        "" if d.ok else ctx.out.t(d.code, **d.params)]
                       for d in decisions])
        ctx.out.say("cli.seats_summary", done=done, total=len(decisions))
    if done == len(decisions):
        return int(ExitCode.OK)
    return int(ExitCode.PARTIAL if done else ExitCode.CONFLICT)
