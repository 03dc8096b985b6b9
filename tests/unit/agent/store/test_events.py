"""Readings, verdicts and the append-only event log on a real SQLite file."""

from __future__ import annotations

import sqlite3

import pytest

from agent.errors import NotFound, StoreIntegrityError, ValidationError
from agent.models import ACTOR_MONITOR, CheckResult, EventKind, ReadingRecord, Verdict
from agent.secrets import Secret
from agent.store import Store


def add(store: Store, uuid: str) -> int:
    return store.servers.add(uuid=uuid, ip="10.0.0.1", ipmi_host="10.1.0.1", ipmi_user="u",
                             ipmi_password=Secret("p")).id


def result(server_id: int, ts: float, verdict: Verdict, *, power: str = "on",
           error: str | None = None) -> CheckResult:
    reading = ReadingRecord(server_id=server_id, ts=ts, power=power, error_class=error,
                            boot_device="disk", boot_valid=True, dbc_path_ok=False,
                            latency_ms=12.5)
    return CheckResult(reading, verdict, ("why",) if verdict != Verdict.OK else ())


def test_record_tracks_since_last_ok_and_emits_events_on_change(store: Store) -> None:
    a = add(store, "a")
    first = store.checks.record(results=[result(a, 10.0, Verdict.OK)], keep_per_server=100)
    assert first[0].changed and first[0].previous is None
    same = store.checks.record(results=[result(a, 20.0, Verdict.OK)], keep_per_server=100)
    assert not same[0].changed and same[0].current.since == 10.0
    down = store.checks.record(results=[result(a, 30.0, Verdict.UNREACHABLE, power="",
                                               error="unreachable")], keep_per_server=100)
    change = down[0]
    assert change.changed and change.previous == Verdict.OK
    assert change.current.since == 30.0 and change.current.last_ok_at == 20.0
    events = store.events.page(kinds=[EventKind.VERDICT]).items
    assert [(e.result, e.detail["previous"]) for e in events] == [("unreachable", "ok"),
                                                                   ("ok", None)]
    assert events[0].actor == ACTOR_MONITOR and events[0].server_uuid == "a"
    assert store.checks.verdict(server_id=a) == change.current
    reading = store.checks.latest(server_id=a)
    assert reading is not None and reading.error_class == "unreachable"
    assert reading.boot_valid is True and reading.dbc_path_ok is False


def test_history_is_bounded_per_server(store: Store) -> None:
    a, b = add(store, "a"), add(store, "b")
    for i in range(25):
        store.checks.record(results=[result(a, float(i), Verdict.OK),
                                     result(b, float(i), Verdict.OK)], keep_per_server=10)
    history = store.checks.history(server_id=a, limit=100)
    assert [r.ts for r in history] == [float(i) for i in range(24, 14, -1)]
    assert store.checks.reading_count() == 20
    older = store.checks.history(server_id=a, limit=3, before_id=history[2].id)
    assert [r.ts for r in older] == [21.0, 20.0, 19.0]


def test_results_for_deleted_servers_are_skipped(store: Store) -> None:
    a, b = add(store, "a"), add(store, "b")
    store.servers.remove(server_id=b)
    changes = store.checks.record(results=[result(a, 1.0, Verdict.OK),
                                           result(b, 1.0, Verdict.OK)], keep_per_server=5)
    assert [c.server_id for c in changes] == [a]


def test_verdict_counts_include_never_checked(store: Store) -> None:
    a, _b = add(store, "a"), add(store, "b")
    store.checks.record(results=[result(a, 1.0, Verdict.MISMATCH)], keep_per_server=5)
    counts = store.checks.verdict_counts()
    assert counts[Verdict.MISMATCH] == 1 and counts[Verdict.UNKNOWN] == 1
    assert counts[Verdict.OK] == 0 and set(counts) == set(Verdict)


def test_events_paging_newest_first_with_filters(store: Store) -> None:
    for i in range(12):
        store.events.append(actor="alice", kind=EventKind.AUDIT, action="power_on",
                            server_uuid="a" if i % 2 else "b", result="ok",
                            verified=bool(i % 3), detail={"i": i})
    store.events.append(actor="@system", kind=EventKind.SYSTEM, action="start")
    page = store.events.page(limit=5)
    assert [e.id for e in page.items] == [13, 12, 11, 10, 9] and page.next_before_id == 9
    page2 = store.events.page(limit=5, before_id=page.next_before_id)
    assert [e.id for e in page2.items] == [8, 7, 6, 5, 4]
    last = store.events.page(limit=5, before_id=4)
    assert [e.id for e in last.items] == [3, 2, 1] and last.next_before_id is None
    only_a = store.events.page(limit=50, server_uuid="a")
    assert len(only_a.items) == 6 and all(e.server_uuid == "a" for e in only_a.items)
    audit = store.events.page(limit=50, kinds=[EventKind.AUDIT])
    assert len(audit.items) == 12 and audit.items[0].detail == {"i": 11}
    assert audit.items[0].verified is True and audit.items[2].verified is False
    assert store.events.get(event_id=13).action == "start"
    with pytest.raises(NotFound):
        store.events.get(event_id=999)
    with pytest.raises(ValidationError):
        store.events.page(limit=0)


def test_events_are_append_only_and_audit_is_never_pruned(store: Store) -> None:
    audit = store.events.append(actor="alice", kind=EventKind.AUDIT, action="power_off")
    store.events.append(actor="@system", kind=EventKind.SYSTEM, action="start")
    conn = sqlite3.connect(store.path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE events SET result = 'forged' WHERE id = ?", (audit.id,))
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
        conn.execute("DELETE FROM events WHERE id = ?", (audit.id,))
    conn.close()
    with pytest.raises(ValidationError):
        store.events.prune(older_than=1e12, kinds=[EventKind.AUDIT])
    assert store.events.prune(older_than=1e12, kinds=[EventKind.SYSTEM]) == 1
    assert store.events.page().items[0].id == audit.id


def test_event_ids_are_never_reused(store: Store) -> None:
    store.events.append(actor="@system", kind=EventKind.SYSTEM, action="a")
    store.events.prune(older_than=1e12, kinds=[EventKind.SYSTEM])
    assert store.events.append(actor="@system", kind=EventKind.SYSTEM, action="b").id == 2


def test_event_detail_refuses_secrets_and_junk(store: Store) -> None:
    with pytest.raises(ValidationError, match="Secret"):
        store.events.append(actor="alice", kind=EventKind.AUDIT,
                            detail={"password": Secret("pw")})
    with pytest.raises(ValidationError):
        store.events.append(actor="alice", kind=EventKind.AUDIT, detail={"x": float("nan")})
    with pytest.raises(ValidationError, match="larger"):
        store.events.append(actor="alice", kind=EventKind.AUDIT, detail={"x": "y" * 20000})
    with pytest.raises(ValidationError, match="actor"):
        store.events.append(actor="", kind=EventKind.AUDIT)
    assert store.events.latest_id() == 0


def test_unmapped_constraint_is_store_integrity_error(store: Store) -> None:
    a = add(store, "a")
    with pytest.raises(StoreIntegrityError):
        store.intents.set_power(server_id=a, power="sideways", actor="alice")
