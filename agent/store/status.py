"""Read model for the dashboard and the API list: each server with verdict and newest reading."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from agent.errors import ServerNotFound
from agent.models import RegistrationState, ServerStatus, Verdict
from agent.store._base import Repo
from agent.store.checks import reading_from_row, verdict_from_row
from agent.store.servers import label_filter, server_from_row

__all__ = ["StatusRepo"]

# One indexed max(id) lookup per server: cheap at 500 servers x 1440 readings each.
_SELECT = (
    "SELECT s.*, v.server_id AS v_server_id, v.verdict, v.reasons, v.discrepant_passes,"
    " v.since, v.checked_at, v.last_ok_at, r.id AS r_id, r.ts AS r_ts, r.power,"
    " r.boot_device, r.boot_valid, r.boot_persistent, r.boot_uefi, r.dbc_path_ok,"
    " r.dbc_path_message, r.dbc_power_status, r.error_class, r.error_detail, r.latency_ms"
    " FROM servers s LEFT JOIN verdicts v ON v.server_id = s.id"
    " LEFT JOIN readings r ON r.id = (SELECT max(id) FROM readings WHERE server_id = s.id)")


def _status(row: sqlite3.Row) -> ServerStatus:
    data = dict(zip(row.keys(), tuple(row), strict=True))
    verdict = reading = None
    if data["v_server_id"] is not None:
        verdict = verdict_from_row({**data, "server_id": data["v_server_id"]})
    if data["r_id"] is not None:
        reading = reading_from_row({**data, "id": data["r_id"], "ts": data["r_ts"],
                                    "server_id": data["id"]})
    return ServerStatus(server=server_from_row(row), verdict=verdict, reading=reading)


class StatusRepo(Repo):
    """Servers joined with their verdict and newest reading."""

    def find(self, *, verdict: Verdict | None = None, state: RegistrationState | None = None,
             labels: Mapping[str, str] | None = None) -> list[ServerStatus]:
        """Return rows by id, filtered by verdict (unknown: never checked), state and labels."""
        clauses, params = ["1"], []
        if verdict is not None:
            clauses.append("coalesce(v.verdict, 'unknown') = ?")
            params.append(str(Verdict(verdict)))
        if state is not None:
            clauses.append("s.state = ?")
            params.append(str(state))
        if labels:
            sql, extra = label_filter(labels)
            clauses.append(sql.replace("json_extract(labels", "json_extract(s.labels"))
            params += extra
        with self._db.read() as conn:
            rows = conn.execute(f"{_SELECT} WHERE {' AND '.join(clauses)} ORDER BY s.id",
                                params).fetchall()
        return [_status(r) for r in rows]

    def get(self, *, server_id: int) -> ServerStatus:
        """Return one server's row."""
        with self._db.read() as conn:
            row = conn.execute(f"{_SELECT} WHERE s.id = ?", (server_id,)).fetchone()
        if row is None:
            raise ServerNotFound(str(server_id))
        return _status(row)
