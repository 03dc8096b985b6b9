"""``bm-agent servers import|list|show|rm``, ``register`` and ``events``.

Registration and deletion go through the registry's outbox: the command queues the work,
then runs the outbox once in this process so the result shows at once. When the node does
not answer, the work stays queued (exit 6) and the service retries it with backoff.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agent.cli.argtext import coded
from agent.cli.context import CliError, Ctx, ExitCode
from agent.cli.events import action_family, detail_text
from agent.errors import ServerNotFound
from agent.models import (
    EventKind,
    EventRecord,
    OutboxState,
    RegistrationState,
    Role,
    Server,
    Verdict,
)
from agent.registry.inventory import RowError, parse_inventory

__all__ = ["event_dict", "label_text", "register", "resolve_server", "row_error_text"]

_OUTBOX_ROUNDS = 50  # bound on outbox runs per command (each run handles up to 100 items)
_WAITING_MAX = 100_000


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the servers, register and events commands."""
    servers = commands.add_parser("servers", parents=[common], help="the server inventory")
    sub = servers.add_subparsers(dest="servers_command", metavar="ACTION")
    sub.required = True
    imp = sub.add_parser("import", parents=[common], help="import servers from CSV or JSON")
    imp.add_argument("file", metavar="FILE", help="CSV (header row) or JSON list; '-' = stdin")
    imp.set_defaults(handler=cmd_import)
    listing = sub.add_parser("list", parents=[common], help="list servers with their verdict")
    listing.add_argument("--verdict", type=coded("verdict", [v.value for v in Verdict]),
                         metavar="VERDICT",
                         help="a verdict code or its name as the table prints it (无法连接…)")
    listing.add_argument("--state",
                         type=coded("registration", [s.value for s in RegistrationState]),
                         metavar="STATE", help="a registration state code or its name")
    listing.add_argument("--label", metavar="K=V[,K=V]", help="only servers with these labels")
    listing.set_defaults(handler=cmd_list)
    show = sub.add_parser("show", parents=[common], help="one server, readings and events")
    show.add_argument("id", metavar="ID", help="uuid, node_id or inventory id")
    show.add_argument("--history", type=int, default=10, metavar="N",
                      help="readings to show (default %(default)s)")
    show.set_defaults(handler=cmd_show)
    remove = sub.add_parser("rm", parents=[common], help="remove a server (and from the node)")
    remove.add_argument("id", metavar="ID", help="uuid, node_id or inventory id")
    remove.set_defaults(handler=cmd_rm)

    reg = commands.add_parser("register", parents=[common],
                              help="register pending servers with the DBC node")
    reg.set_defaults(handler=cmd_register)

    events = commands.add_parser("events", parents=[common], help="the event and audit log")
    events.add_argument("--limit", type=int, default=20, metavar="N")
    events.add_argument("--before", type=int, metavar="EVENT_ID", help="older than this id")
    events.add_argument("--server", metavar="ID", help="only this server")
    events.add_argument("--kind", action="append", metavar="KIND",
                        type=coded("event_kind", [k.value for k in EventKind]),
                        help="an event kind code or its name (审计…)")
    events.add_argument("--action", help="only this action or family: power_on, power (all "
                                          "power_*), bootdev, ... or its translated name")
    events.set_defaults(handler=cmd_events)


# --- shared helpers ------------------------------------------------------------------


def resolve_server(ctx: Ctx, ident: str) -> Server:
    """Find a server by uuid, node_id or numeric inventory id."""
    servers = ctx.store().servers
    finders: tuple[Callable[[], Server | None], ...] = (
        lambda: servers.get_by_uuid(uuid=ident),
        lambda: servers.get_by_node_id(node_id=ident.lower().removeprefix("0x")),
        lambda: servers.get(server_id=int(ident)) if ident.isdigit() else None)
    for finder in finders:
        try:
            found = finder()
        except ServerNotFound:
            continue
        if found is not None:
            return found
    raise ServerNotFound(ident)


def label_text(labels: Any) -> str:
    """Render labels as ``k=v,k=v`` (sorted)."""
    return ",".join(f"{k}={v}" for k, v in sorted(dict(labels).items()))


def row_error_text(ctx: Ctx, error: RowError) -> str:
    """Translate one refused import row: line, uuid, field and reason."""
    detail = _header_detail(ctx, error.detail) if error.code == "bad_header" else error.detail
    reason = ctx.out.t(f"import.{error.code}", field=error.field, detail=detail)
    if reason == f"import.{error.code}":  # a code only the registry knows: English text
        reason = f"{error.field}: {error.code}" + (f" ({error.detail})" if error.detail else "")
    if error.line <= 0:
        return f"{error.uuid}: {reason}"
    where = f"{error.line}" + (f" ({error.uuid})" if error.uuid else "")
    return ctx.out.t("import.row", line=where, message=reason)


def _header_detail(ctx: Ctx, detail: str | None) -> str | None:
    """``unknown ip地址, missing ip`` (the registry's words) -> ``未知的列 ip地址，缺少列 ip``."""
    if not detail:
        return detail
    parts = []
    for item in detail.split(", "):
        word, _sep, name = item.partition(" ")
        parts.append(ctx.out.t(f"cli.header_{word}", name=name)
                     if word in ("unknown", "missing") else item)
    return ctx.out.t("cli.list_sep").join(parts)


def event_dict(event: EventRecord) -> dict[str, Any]:
    """JSON form of an event (details never hold secrets)."""
    return {"id": event.id, "ts": event.ts, "actor": event.actor, "kind": str(event.kind),
            "action": event.action, "server_uuid": event.server_uuid, "result": event.result,
            "verified": event.verified, "detail": dict(event.detail)}


def _server_dict(server: Server) -> dict[str, Any]:
    return {"id": server.id, "uuid": server.uuid, "ip": server.ip, "os": server.os,
            "desc": server.desc, "ipmi_host": server.ipmi_host, "ipmi_port": server.ipmi_port,
            "ipmi_user": server.ipmi_user, "mac": server.mac, "labels": dict(server.labels),
            "node_id": server.node_id, "has_node_key": server.has_node_key,
            "state": str(server.state), "state_detail": server.state_detail}


def _drain_outbox(ctx: Ctx) -> dict[str, int]:
    """Make waiting outbox work due now (staff asked), run it; count what still waits."""
    store = ctx.store()
    for item in store.outbox.find(states=[OutboxState.PENDING], limit=_WAITING_MAX):
        store.outbox.retry(item_id=item.id)
    totals = {"done": 0, "deferred": 0, "failed": 0, "reconciled": 0}
    registry = ctx.agent().registry
    for _ in range(_OUTBOX_ROUNDS):
        run = registry.process_outbox(limit=100)
        for name in totals:
            totals[name] += int(getattr(run, name, 0))
        if run.claimed == 0 or run.deferred:
            break
    counts = store.outbox.counts()
    totals["waiting"] = counts[OutboxState.PENDING] + counts[OutboxState.CLAIMED]
    return totals


# --- servers import ------------------------------------------------------------------


def cmd_import(ctx: Ctx) -> int:
    """Validate and import a CSV/JSON inventory; report every row; idempotent by uuid."""
    data = _read_input(ctx.args.file)
    report = parse_inventory(data, "" if ctx.args.file == "-" else ctx.args.file)
    actor = ctx.actor(Role.OPERATOR)
    outcome = ctx.agent().registry.import_servers(report, actor=actor)
    errors: Sequence[RowError] = outcome.errors
    good = len(outcome.created) + len(outcome.updated) + len(outcome.unchanged)
    if ctx.out.json_mode:
        ctx.out.json({"ok": not errors, "created": list(outcome.created),
                      "updated": list(outcome.updated), "unchanged": list(outcome.unchanged),
                      "errors": [{"line": e.line, "field": e.field, "code": e.code,
                                  "detail": e.detail, "uuid": e.uuid,
                                  "message": row_error_text(ctx, e)} for e in errors]})
    else:
        rows = [[uuid, ctx.out.t(code)] for code, uuids in (
            ("cli.row_created", outcome.created), ("cli.row_updated", outcome.updated),
            ("cli.row_unchanged", outcome.unchanged)) for uuid in uuids]
        if rows:
            ctx.out.table(["ui.uuid", "ui.result"], rows)
        for error in errors:
            ctx.out.note(row_error_text(ctx, error))
        ctx.out.say("cli.import_summary", created=len(outcome.created),
                    updated=len(outcome.updated), unchanged=len(outcome.unchanged),
                    rejected=len(errors))
        if outcome.created or outcome.updated:
            ctx.out.say("cli.import_next")
    if errors:
        return int(ExitCode.PARTIAL if good else ExitCode.USAGE)
    return int(ExitCode.OK)


def _read_input(name: str) -> bytes:
    import sys

    try:
        return sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        raise CliError("cli.cannot_read", path=name, detail=exc.strerror) from None


# --- register ------------------------------------------------------------------------


def cmd_register(ctx: Ctx) -> int:
    """Queue every pending server for bare_metal/add and run the outbox now."""
    actor = ctx.actor(Role.OPERATOR)
    queued = ctx.agent().registry.register_pending(actor=actor)
    totals = _drain_outbox(ctx)
    servers = ctx.store().servers.find()
    if ctx.out.json_mode:
        ctx.out.json({"ok": not (totals["waiting"] or totals["failed"]), "queued": queued,
                      **totals, "servers": [{"uuid": s.uuid, "node_id": s.node_id,
                                             "state": str(s.state),
                                             "state_detail": s.state_detail} for s in servers]})
    else:
        ctx.out.table(["ui.uuid", "ui.registration", "ui.node_id", "ui.detail"],
                      [[s.uuid, ctx.out.t(f"registration.{s.state}"), _short(s.node_id),
                        s.state_detail] for s in servers])
        ctx.out.say("cli.register_summary", queued=queued, **totals)
    if totals["waiting"]:
        ctx.out.warn("cli.outbox_waiting", count=totals["waiting"])
        return int(ExitCode.UNREACHABLE)
    if totals["failed"]:
        return int(ExitCode.PARTIAL if totals["done"] else ExitCode.ERROR)
    return int(ExitCode.OK)


def _short(node_id: str | None) -> str | None:
    return None if node_id is None else node_id[:12] + "…"


# --- servers list / show / rm --------------------------------------------------------


def cmd_list(ctx: Ctx) -> int:
    """List servers with their registration state, verdict and newest reading."""
    from agent.labels import parse_selector

    labels = parse_selector(ctx.args.label) if ctx.args.label else None
    rows = ctx.store().status.find(
        verdict=Verdict(ctx.args.verdict) if ctx.args.verdict else None,
        state=RegistrationState(ctx.args.state) if ctx.args.state else None, labels=labels)
    if ctx.out.json_mode:
        ctx.out.json([{**_server_dict(r.server), **_status_dict(r)} for r in rows])
        return int(ExitCode.OK)
    if not rows:
        ctx.out.say("cli.no_servers")
        return int(ExitCode.OK)
    ctx.out.table(
        ["ui.uuid", "ui.ip", "ui.labels", "ui.registration", "ui.verdict", "ui.power",
         "ui.boot_device", "ui.last_checked", "ui.desc"],
        [[r.server.uuid, r.server.ip, label_text(r.server.labels),
          ctx.out.t(f"registration.{r.server.state}"), _verdict_text(ctx, r.verdict),
          _power_text(ctx, r.reading.power if r.reading else None),
          ctx.out.code(r.reading.boot_device, "bootdev") if r.reading else None,
          ctx.out.ts(r.verdict.checked_at) if r.verdict else None, r.server.desc]
         for r in rows])
    return int(ExitCode.OK)


def _power_text(ctx: Ctx, power: str | None) -> str | None:
    return ctx.out.t_or(f"power.{power}", power) if power else None


def _verdict_text(ctx: Ctx, verdict: Any) -> str:
    return ctx.out.t(f"verdict.{verdict.verdict if verdict else Verdict.UNKNOWN}")


def _status_dict(row: Any) -> dict[str, Any]:
    verdict, reading = row.verdict, row.reading
    return {
        "verdict": str(verdict.verdict) if verdict else str(Verdict.UNKNOWN),
        "reasons": list(verdict.reasons) if verdict else [],
        "verdict_since": verdict.since if verdict else None,
        "checked_at": verdict.checked_at if verdict else None,
        "power": reading.power if reading else None,
        "bootdev": reading.boot_device if reading else None,
    }


def cmd_show(ctx: Ctx) -> int:
    """Show one server: inventory fields, verdict, recent readings and events."""
    server = resolve_server(ctx, ctx.args.id)
    store = ctx.store()
    status = store.status.get(server_id=server.id)
    readings = store.checks.history(server_id=server.id, limit=max(1, ctx.args.history))
    events = store.events.page(server_uuid=server.uuid, limit=10).items
    if ctx.out.json_mode:
        ctx.out.json({**_server_dict(server), **_status_dict(status),
                      "readings": [_reading_dict(r) for r in readings],
                      "events": [event_dict(e) for e in events]})
        return int(ExitCode.OK)
    ctx.out.fields([
        ("ui.uuid", server.uuid), ("ui.node_id", server.node_id), ("ui.ip", server.ip),
        ("ui.os", server.os), ("ui.desc", server.desc),
        ("ui.ipmi_host", f"{server.ipmi_host}:{server.ipmi_port or 623}"),
        ("ui.ipmi_user", server.ipmi_user), ("ui.mac", server.mac),
        ("ui.labels", label_text(server.labels)),
        ("ui.registration", ctx.out.t(f"registration.{server.state}")
         + (f" ({server.state_detail})" if server.state_detail else "")),
        ("ui.verdict", _verdict_text(ctx, status.verdict)),
        ("cli.col.reasons", ", ".join(ctx.out.t(f"reason.{r}") for r in
                                      (status.verdict.reasons if status.verdict else ()))),
    ])
    if readings:
        ctx.out.note("")
        ctx.out.table(["ui.time", "ui.power", "ui.boot_device", "cli.col.dbc_path",
                       "cli.col.error", "ui.latency"],
                      [[ctx.out.ts(r.ts), _power_text(ctx, r.power),
                        ctx.out.code(r.boot_device, "bootdev"), r.dbc_path_ok,
                        ctx.out.code(r.error_class, "reason", "result"),
                        f"{r.latency_ms:.0f} ms" if r.latency_ms else None]
                       for r in readings])
    if events:
        ctx.out.note("")
        _events_table(ctx, events)
    return int(ExitCode.OK)


def _reading_dict(r: Any) -> dict[str, Any]:
    return {"ts": r.ts, "power": r.power, "bootdev": r.boot_device, "boot_valid": r.boot_valid,
            "boot_persistent": r.boot_persistent, "boot_uefi": r.boot_uefi,
            "dbc_path_ok": r.dbc_path_ok, "dbc_power_status": r.dbc_power_status,
            "error_class": r.error_class, "error_detail": r.error_detail,
            "latency_ms": r.latency_ms}


def cmd_rm(ctx: Ctx) -> int:
    """Remove a server from the inventory and, through the outbox, from the node."""
    server = resolve_server(ctx, ctx.args.id)
    actor = ctx.actor(Role.OPERATOR)
    ctx.agent().registry.remove_server(server.uuid, actor=actor)
    totals = _drain_outbox(ctx) if server.node_id else {"waiting": 0}
    if ctx.out.json_mode:
        ctx.out.json({"ok": True, "uuid": server.uuid, "waiting": totals["waiting"]})
    else:
        ctx.out.say("cli.server_removed", uuid=server.uuid)
    if totals["waiting"]:
        ctx.out.warn("cli.outbox_waiting", count=totals["waiting"])
        return int(ExitCode.UNREACHABLE)
    return int(ExitCode.OK)


# --- events --------------------------------------------------------------------------


def cmd_events(ctx: Ctx) -> int:
    """Show the newest events (paged with --before)."""
    uuid = resolve_server(ctx, ctx.args.server).uuid if ctx.args.server else None
    page = ctx.store().events.page(
        before_id=ctx.args.before, limit=ctx.args.limit, server_uuid=uuid,
        kinds=[EventKind(k) for k in ctx.args.kind] if ctx.args.kind else None,
        action=action_family(ctx, ctx.args.action) if ctx.args.action else None)
    if ctx.out.json_mode:
        ctx.out.json({"events": [event_dict(e) for e in page.items],
                      "next_before_id": page.next_before_id})
        return int(ExitCode.OK)
    if not page.items:
        ctx.out.say("cli.no_events")
        return int(ExitCode.OK)
    _events_table(ctx, page.items)
    if page.next_before_id is not None:
        ctx.out.say("cli.events_more", before=page.next_before_id)
    return int(ExitCode.OK)


def _events_table(ctx: Ctx, events: Sequence[EventRecord]) -> None:
    ctx.out.table(
        ["cli.col.id", "ui.time", "ui.actor", "ui.kind", "ui.action", "ui.server", "ui.result",
         "ui.detail"],
        [[e.id, ctx.out.ts(e.ts), e.actor, ctx.out.t(f"event_kind.{e.kind}"),
          ctx.out.t_or(f"action.{e.action}", e.action) if e.action else None, e.server_uuid,
          _result_text(ctx, e), detail_text(ctx, e.detail)] for e in events])


def _result_text(ctx: Ctx, event: EventRecord) -> str | None:
    if not event.result:
        return None
    if event.kind == EventKind.VERDICT:
        return ctx.out.t_or(f"verdict.{event.result}", event.result)
    return ctx.out.t_or(f"result.{event.result}", event.result)
