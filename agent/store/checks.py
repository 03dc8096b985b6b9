"""Readings (bounded history per server) and current verdicts, written once per check.

``CheckRepo.record`` stores a batch of ``CheckResult`` in one transaction: the readings, the
new verdicts (``since`` kept while the verdict holds), a ``verdict`` event for every change,
and the pruning of history beyond ``keep_per_server``. It commits with synchronous=NORMAL
(see ``_db``): on power loss the last pass may be lost and is simply read again.
Results for servers deleted meanwhile are skipped, not an error.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from agent.errors import ValidationError
from agent.models import (
    ACTOR_MONITOR,
    CheckResult,
    EventKind,
    ReadingRecord,
    Verdict,
    VerdictChange,
    VerdictRecord,
)
from agent.store._base import Repo, RowLike, dump_json, load_json, opt_bool
from agent.store.events import insert_event

__all__ = ["CheckRepo", "reading_from_row", "verdict_from_row"]

_READING_COLUMNS = ("server_id", "ts", "power", "boot_device", "boot_valid", "boot_persistent",
                    "boot_uefi", "dbc_path_ok", "dbc_path_message", "dbc_power_status",
                    "error_class", "error_detail", "latency_ms", "path", "watts")
_INSERT_READING = (f"INSERT INTO readings ({', '.join(_READING_COLUMNS)})"  # noqa: S608
                   f" VALUES ({', '.join(['?'] * len(_READING_COLUMNS))})")
_UPSERT_VERDICT = (
    "INSERT INTO verdicts (server_id, verdict, reasons, discrepant_passes, since, checked_at,"
    " last_ok_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (server_id) DO UPDATE SET"
    " verdict = excluded.verdict, reasons = excluded.reasons,"
    " discrepant_passes = excluded.discrepant_passes, since = excluded.since,"
    " checked_at = excluded.checked_at, last_ok_at = excluded.last_ok_at")
# Keeps the newest ``keep`` readings of one server: an index walk of at most keep+1 rows.
_PRUNE = ("DELETE FROM readings WHERE server_id = ? AND id <= (SELECT id FROM readings"
          " WHERE server_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)")


def reading_from_row(row: RowLike) -> ReadingRecord:
    """Build a ReadingRecord from a ``readings`` row."""
    return ReadingRecord(
        id=row["id"], server_id=row["server_id"], ts=row["ts"], power=row["power"],
        boot_device=row["boot_device"], boot_valid=opt_bool(row["boot_valid"]),
        boot_persistent=opt_bool(row["boot_persistent"]), boot_uefi=opt_bool(row["boot_uefi"]),
        dbc_path_ok=opt_bool(row["dbc_path_ok"]), dbc_path_message=row["dbc_path_message"],
        dbc_power_status=row["dbc_power_status"], error_class=row["error_class"],
        error_detail=row["error_detail"], latency_ms=row["latency_ms"], path=row["path"],
        watts=row["watts"])


def verdict_from_row(row: RowLike) -> VerdictRecord:
    """Build a VerdictRecord from a ``verdicts`` row."""
    return VerdictRecord(
        server_id=row["server_id"], verdict=Verdict(row["verdict"]),
        reasons=tuple(load_json(row["reasons"])), discrepant_passes=row["discrepant_passes"],
        since=row["since"], checked_at=row["checked_at"], last_ok_at=row["last_ok_at"])


def _reading_params(reading: ReadingRecord) -> tuple[object, ...]:
    values = [getattr(reading, name) for name in _READING_COLUMNS]
    return tuple(int(v) if isinstance(v, bool) else v for v in values)


class CheckRepo(Repo):
    """Readings history and current verdicts."""

    def record(self, *, results: Sequence[CheckResult], keep_per_server: int,
               actor: str = ACTOR_MONITOR) -> list[VerdictChange]:
        """Store one batch of check results; return the verdict before/after per server."""
        if keep_per_server < 1:
            raise ValidationError(field="keep_per_server", reason="must be at least 1")
        changes: list[VerdictChange] = []
        with self._db.write(durable=False) as conn:
            uuids = dict(conn.execute("SELECT id, uuid FROM servers").fetchall())
            previous = {r["server_id"]: verdict_from_row(r)
                        for r in conn.execute("SELECT * FROM verdicts").fetchall()}
            for result in results:
                server_id = result.reading.server_id
                if server_id not in uuids:
                    continue
                change = self._record_one(conn, result, previous.get(server_id),
                                          uuids[server_id], actor)
                conn.execute(_PRUNE, (server_id, server_id, keep_per_server))
                changes.append(change)
        return changes

    def _record_one(self, conn: sqlite3.Connection, result: CheckResult,
                    prior: VerdictRecord | None, uuid: str, actor: str) -> VerdictChange:
        reading = result.reading
        conn.execute(_INSERT_READING, _reading_params(reading))
        same = prior is not None and prior.verdict == result.verdict
        since = prior.since if same and prior is not None else reading.ts
        answered = reading.error_class is None
        last_ok = reading.ts if answered else (prior.last_ok_at if prior else None)
        record = VerdictRecord(server_id=reading.server_id, verdict=Verdict(result.verdict),
                               reasons=tuple(result.reasons),
                               discrepant_passes=result.discrepant_passes, since=since,
                               checked_at=reading.ts, last_ok_at=last_ok)
        conn.execute(_UPSERT_VERDICT, (
            record.server_id, str(record.verdict), dump_json(list(record.reasons), field="reasons"),
            record.discrepant_passes, record.since, record.checked_at, record.last_ok_at))
        change = VerdictChange(server_id=reading.server_id, uuid=uuid,
                               previous=prior.verdict if prior else None, current=record)
        if change.changed:
            insert_event(conn, ts=reading.ts, actor=actor, kind=EventKind.VERDICT,
                         action="verdict", server_uuid=uuid, result=str(record.verdict),
                         detail={"previous": str(change.previous) if change.previous else None,
                                 "reasons": list(record.reasons)})
        return change

    def history(self, *, server_id: int, limit: int = 100,
                before_id: int | None = None) -> list[ReadingRecord]:
        """Return a server's readings, newest first."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT * FROM readings WHERE server_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
                (server_id, before_id if before_id is not None else 2**62, limit)).fetchall()
        return [reading_from_row(r) for r in rows]

    def latest(self, *, server_id: int) -> ReadingRecord | None:
        """Return a server's newest reading, or None before the first pass."""
        found = self.history(server_id=server_id, limit=1)
        return found[0] if found else None

    def verdict(self, *, server_id: int) -> VerdictRecord | None:
        """Return a server's current verdict, or None before the first pass."""
        with self._db.read() as conn:
            row = conn.execute("SELECT * FROM verdicts WHERE server_id = ?",
                               (server_id,)).fetchone()
        return verdict_from_row(row) if row else None

    def verdicts(self) -> dict[int, VerdictRecord]:
        """Return every current verdict by server id (the monitor's priors)."""
        with self._db.read() as conn:
            rows = conn.execute("SELECT * FROM verdicts").fetchall()
        return {r["server_id"]: verdict_from_row(r) for r in rows}

    def verdict_counts(self) -> dict[Verdict, int]:
        """Count servers per verdict (servers never checked count as unknown)."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT coalesce(v.verdict, 'unknown'), count(*) FROM servers s"
                " LEFT JOIN verdicts v ON v.server_id = s.id GROUP BY 1").fetchall()
        counts = dict.fromkeys(Verdict, 0)
        counts.update({Verdict(name): n for name, n in rows})
        return counts

    def prune_history(self, *, keep_per_server: int) -> int:
        """Delete every server's readings beyond its newest ``keep_per_server``; return count."""
        if keep_per_server < 1:
            raise ValidationError(field="keep_per_server", reason="must be at least 1")
        with self._db.write(durable=False) as conn:
            return conn.execute(
                "DELETE FROM readings WHERE id IN (SELECT id FROM (SELECT id, row_number()"
                " OVER (PARTITION BY server_id ORDER BY id DESC) AS newer FROM readings)"
                " WHERE newer > ?)", (keep_per_server,)).rowcount

    def reading_count(self) -> int:
        """Count stored readings (for tests and metrics)."""
        with self._db.read() as conn:
            return int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])
