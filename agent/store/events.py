"""The append-only event log: audit (staff actions), verdict changes, registry, auth, system.

Rows cannot be updated (trigger) and audit rows cannot be deleted (trigger); other kinds may
be pruned by age. Pages are newest first by id (keyset paging: pass ``next_before_id``).
``detail`` is a JSON object; a ``Secret`` inside it is refused, so a secret cannot reach the
log by accident.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Mapping
from typing import Any

from agent.errors import NotFound, ValidationError
from agent.event_filters import match_action
from agent.models import EventKind, EventPage, EventRecord
from agent.store._base import Repo, dump_json, load_json, opt_bool

__all__ = ["EventRepo", "insert_event"]

_MAX_PAGE = 500
_MAX_TEXT = 200
# A seat filter matches part of the uuid, the description or a label value of the server.
_SEAT_CLAUSE = ("(server_uuid LIKE ? ESCAPE '\\' OR server_uuid IN (SELECT uuid FROM servers"
                " WHERE description LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM"
                " json_each(servers.labels) WHERE json_each.value LIKE ? ESCAPE '\\')))")


def _like(text: str, *, anywhere: bool = True) -> str:
    """Return a LIKE pattern matching ``text`` literally (``%`` and ``_`` escaped)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%" if anywhere else f"{escaped}%"


def _event(row: sqlite3.Row) -> EventRecord:
    return EventRecord(
        id=row["id"], ts=row["ts"], actor=row["actor"], kind=EventKind(row["kind"]),
        action=row["action"], server_uuid=row["server_uuid"], result=row["result"],
        verified=opt_bool(row["verified"]), detail=load_json(row["detail"]))


def insert_event(conn: sqlite3.Connection, *, ts: float, actor: str, kind: EventKind,
                 action: str = "", server_uuid: str | None = None, result: str = "",
                 verified: bool | None = None,
                 detail: Mapping[str, Any] | None = None) -> int:
    """Insert one event inside the caller's transaction; return its id."""
    if not actor:
        raise ValidationError(field="actor", reason="every event needs an actor")
    texts = {"actor": actor, "action": action, "result": result}
    for name, value in texts.items():
        if len(value) > _MAX_TEXT:
            raise ValidationError(field=name, reason=f"longer than {_MAX_TEXT} characters")
    cursor = conn.execute(
        "INSERT INTO events (ts, actor, kind, action, server_uuid, result, verified, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (ts, actor, str(EventKind(kind)), action, server_uuid, result,
         None if verified is None else int(verified), dump_json(dict(detail or {}),
                                                                field="detail")))
    return int(cursor.lastrowid or 0)


class EventRepo(Repo):
    """Append and page through events."""

    def append(self, *, actor: str, kind: EventKind, action: str = "",
               server_uuid: str | None = None, result: str = "", verified: bool | None = None,
               detail: Mapping[str, Any] | None = None) -> EventRecord:
        """Append one event durably (fsynced before this returns)."""
        with self._db.write() as conn:
            event_id = insert_event(conn, ts=self._clock(), actor=actor, kind=kind,
                                    action=action, server_uuid=server_uuid, result=result,
                                    verified=verified, detail=detail)
            return _event(conn.execute("SELECT * FROM events WHERE id = ?",
                                       (event_id,)).fetchone())

    def get(self, *, event_id: int) -> EventRecord:
        """Return one event."""
        with self._db.read() as conn:
            row = conn.execute("SELECT * FROM events WHERE id = ?", (event_id,)).fetchone()
        if row is None:
            raise NotFound(str(event_id), kind="event")
        return _event(row)

    def page(self, *, before_id: int | None = None, limit: int = 50,
             server_uuid: str | None = None, kinds: Collection[EventKind] | None = None,
             action: str | None = None, since_ts: float | None = None,
             until_ts: float | None = None, seat: str | None = None,
             actor: str | None = None) -> EventPage:
        """Return up to ``limit`` events older than ``before_id``, newest first, filtered.

        ``action``: an action or a family (``agent.event_filters``); ``seat``: part of a
        server's uuid, description or a label value; ``actor``: a name (any case);
        ``until_ts``: before that instant.
        """
        if not 1 <= limit <= _MAX_PAGE:
            raise ValidationError(field="limit", reason=f"must be 1..{_MAX_PAGE}")
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("id <", before_id), ("server_uuid =", server_uuid),
                              ("ts >=", since_ts), ("ts <", until_ts),
                              ("actor COLLATE NOCASE =", actor.strip() if actor else None)):
            if value is not None:
                clauses.append(f"{column} ?")
                params.append(value)
        if kinds:
            clauses.append(f"kind IN ({', '.join(['?'] * len(kinds))})")
            params += [str(EventKind(k)) for k in kinds]
        if seat and seat.strip():
            clauses.append(_SEAT_CLAUSE)
            params += [_like(seat.strip())] * 3
        with self._db.read() as conn:
            if action:
                self._action_clause(conn, action, clauses, params)
            where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
            rows = conn.execute(f"SELECT * FROM events {where} ORDER BY id DESC LIMIT ?",  # noqa: S608 - fixed fragments
                                (*params, limit + 1)).fetchall()
        items = tuple(_event(r) for r in rows[:limit])
        next_before = items[-1].id if len(rows) > limit else None
        return EventPage(items=items, next_before_id=next_before)

    @staticmethod
    def _action_clause(conn: sqlite3.Connection, action: str, clauses: list[str],
                       params: list[Any]) -> None:
        exists = conn.execute("SELECT 1 FROM events WHERE action = ? LIMIT 1",
                              (action.strip(),)).fetchone() is not None
        match = match_action(action, exists=exists)
        marks = ", ".join(["?"] * len(match.actions))
        if match.prefix is None:
            clauses.append(f"action IN ({marks})")
        else:
            clauses.append(f"(action IN ({marks}) OR action LIKE ? ESCAPE '\\')")
        params += list(match.actions)
        if match.prefix is not None:
            params.append(_like(match.prefix, anywhere=False))

    def action_names(self) -> set[str]:
        """Return every action name the log holds (for ``--action`` checks)."""
        with self._db.read() as conn:
            rows = conn.execute("SELECT DISTINCT action FROM events WHERE action IS NOT NULL")
            return {str(row[0]) for row in rows.fetchall()}

    def latest_id(self) -> int:
        """Return the highest event id (0 when empty)."""
        with self._db.read() as conn:
            return int(conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])

    def prune(self, *, older_than: float, kinds: Collection[EventKind]) -> int:
        """Delete events of ``kinds`` (never audit) older than ``older_than``; return count."""
        if EventKind.AUDIT in kinds:
            raise ValidationError(field="kinds", reason="audit events are never pruned")
        if not kinds:
            return 0
        marks = ", ".join(["?"] * len(kinds))
        with self._db.write(durable=False) as conn:
            cursor = conn.execute(f"DELETE FROM events WHERE ts < ? AND kind IN ({marks})",  # noqa: S608
                                  (older_than, *[str(k) for k in kinds]))
            return cursor.rowcount

    def prune_sampled(self, *, older_than: float) -> int:
        """Delete sampled events (detail ``"sampled": true``, never audit) older than that."""
        with self._db.write(durable=False) as conn:
            return conn.execute(
                "DELETE FROM events WHERE ts < ? AND kind != ? AND"
                " json_extract(detail, '$.sampled') = 1",
                (older_than, str(EventKind.AUDIT))).rowcount
