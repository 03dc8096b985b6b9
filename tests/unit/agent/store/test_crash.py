"""SIGKILL of a process writing to the store: nothing acknowledged is lost, integrity holds.

A child process commits audit events and outbox items (durable) and readings (not durable)
from two threads, printing ``ack`` lines only after each commit returned; it is killed with
SIGKILL mid-stream and the store is checked from this process.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from agent.models import EventKind, OutboxState
from agent.store import Store
from tests.support.procs import Proc
from tests.support.wait import wait_for

WRITER = r"""
import sys, threading
from agent.models import CheckResult, EventKind, ReadingRecord, Verdict
from agent.secrets import Sealer, Secret, generate_key
from agent.store import Store

store = Store.open(sys.argv[1], sealer=Sealer(generate_key()))
server = store.servers.add(uuid="gpu-1", ip="10.0.0.1", ipmi_host="h", ipmi_user="u",
                           ipmi_password=Secret("p"))
lock = threading.Lock()

def audit():
    n = 0
    while True:
        with store.transaction():
            event = store.events.append(actor="alice", kind=EventKind.AUDIT,
                                        action="power_on", detail={"n": n})
            item = store.outbox.enqueue(op="add", payload={"n": n}, key=str(event.id))
        with lock:
            print("ack", event.id, item.id, flush=True)
        n += 1

def readings():
    ts = 0.0
    while True:
        ts += 1
        store.checks.record(results=[CheckResult(ReadingRecord(server_id=server.id, ts=ts,
                            power="on"), Verdict.OK)], keep_per_server=50)

threading.Thread(target=readings, daemon=True).start()
audit()
"""


def acks(proc: Proc) -> list[tuple[int, int]]:
    lines = [ln.split() for ln in proc.log().splitlines() if ln.startswith("ack ")]
    return [(int(parts[1]), int(parts[2])) for parts in lines if len(parts) == 3]


def test_sigkill_loses_nothing_acknowledged(tmp_path: Path, spawn: Callable[..., Proc]) -> None:
    db = tmp_path / "agent.db"
    proc = spawn([sys.executable, "-c", WRITER, str(db)], name="writer")
    wait_for(lambda: len(acks(proc)) >= 40 or not proc.alive(), 30.0, every=0.02)
    assert proc.alive(), proc.log()
    proc.kill9()
    acknowledged = acks(proc)
    with Store.open(db) as store:
        assert store.integrity_check() == []
        for event_id, item_id in acknowledged:
            assert store.events.get(event_id=event_id).kind == EventKind.AUDIT
            item = store.outbox.get(item_id=item_id)
            assert item.key == str(event_id) and item.state == OutboxState.PENDING
        page = store.events.page(kinds=[EventKind.AUDIT], limit=500)
        # Whatever committed is whole: every audit event has its outbox item (same transaction).
        keys = {item.key for item in store.outbox.find(limit=10_000)}
        assert {str(e.id) for e in page.items} == keys
        assert store.checks.reading_count() <= 50
