"""Asking before ``power off|soft|reset`` and before any action on several seats.

On a terminal, ``bm-agent`` lists every target with its rental state (出租中 until … /
空闲 / 未知) and asks; only ``y``/``yes``/``是`` goes on. ``--yes`` skips the question (for
scripts). Without a terminal and without ``--yes`` it refuses (exit 8, ``UNCONFIRMED``)
when more than one seat is hit, or when off/soft/reset hits a rented seat; a single idle
(or unknown) seat goes ahead, as scripts always did.

Rental state comes from ``rental_of`` alone, so the source can be re-pointed in one place.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent.cli.context import CliError, Ctx, ExitCode
from agent.cli.output import format_table

__all__ = ["DISRUPTIVE", "Rental", "confirm_targets", "rental_of"]

DISRUPTIVE = frozenset({"off", "soft", "reset"})
_YES = {"y", "yes", "是", "确认"}


@dataclass(frozen=True)
class Rental:
    """What the agent knows of a seat's rental: rented / idle / unknown, and until when."""

    state: str
    until: float | None = None


def rental_of(agent: Any, node_id: str | None) -> Rental:
    """Ask the monitor's rental source about one seat (the one place to re-point).

    ``Monitor.rentals`` (chain, then rentals file: ``rental(node_id)`` gives the rent's end
    time) where it exists, else the monitor's rentals file (``rented(node_id)`` only).
    """
    monitor = getattr(agent, "monitor", None)
    source = getattr(monitor, "rentals", None) or getattr(monitor, "_rentals", None)
    if source is None or not node_id:
        return Rental("unknown")
    until: float | None = None
    try:
        state = source.rental(node_id) if callable(getattr(source, "rental", None)) else None
        if state is not None:  # the chain's answer (RentalState): with the rent's end time
            rented, until = state.rented, getattr(state, "rent_end_at", None)
        else:
            rented = source.rented(node_id)
    except Exception:  # a rental source that fails must not stop the question
        return Rental("unknown")
    if rented is None:
        return Rental("unknown")
    return Rental("rented" if rented else "idle", until if rented else None)


def rental_text(ctx: Ctx, rental: Rental) -> str:
    """出租中（至 …）/ 空闲 / 未知 in the run's language."""
    if rental.state == "rented" and rental.until is not None:
        return ctx.out.t("cli.rental.rented_until", until=ctx.out.ts(rental.until))
    return ctx.out.t(f"cli.rental.{rental.state}")


def confirm_targets(ctx: Ctx, uuids: Sequence[str], what: str, disruptive: bool) -> None:
    """Ask (or refuse) before acting on ``uuids``; return to go on."""
    several = len(uuids) > 1 or bool(ctx.args.label) or len(ctx.args.ids) > 1
    if getattr(ctx.args, "yes", False) or not (disruptive or several):
        return
    servers = [ctx.store().servers.get_by_uuid(uuid=uuid) for uuid in uuids]
    rentals = [rental_of(ctx.agent(), server.node_id) for server in servers]
    rented = sum(1 for rental in rentals if rental.state == "rented")
    if not sys.stdin.isatty():
        if len(uuids) > 1 or (disruptive and rented):
            raise CliError("cli.confirm_needs_yes", ExitCode.UNCONFIRMED, action=what,
                           count=len(uuids), rented=rented)
        return
    print(format_table(
        [ctx.out.t("ui.uuid"), ctx.out.t("ui.desc"), ctx.out.t("cli.col.rental")],
        [[s.uuid, s.desc, ("⚠ " if r.state == "rented" else "") + rental_text(ctx, r)]
         for s, r in zip(servers, rentals, strict=True)]), file=sys.stderr)
    if rented and disruptive:
        print(ctx.out.t("cli.confirm_rented_warning", rented=rented), file=sys.stderr)
    question = ctx.out.t("cli.confirm_question", action=what, count=len(uuids))
    try:
        answer = input(question + " ")
    except EOFError:
        answer = ""
    if answer.strip().lower() not in _YES:
        raise CliError("cli.confirm_declined", ExitCode.UNCONFIRMED)
