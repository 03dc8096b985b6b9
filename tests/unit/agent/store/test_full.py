"""A full disk while writing: StoreFull with a clear message, the write rolled back, no
corruption, and writes work again once there is room.

Two ways to fill it: ``PRAGMA max_page_count`` (SQLite's own SQLITE_FULL, works anywhere)
and, when the test may mount one, a real 1 MiB tmpfs that runs out of space (ENOSPC).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.api.errors import agent_error_status
from agent.errors import StoreFull
from agent.models import CheckResult, EventKind, ReadingRecord, Verdict
from agent.secrets import Sealer, Secret, generate_key
from agent.store import Store

BIG = "x" * 8000


def cap_pages(store: Store, extra: int) -> None:
    conn = store._db.connection()  # max_page_count is per connection: cap the one we use
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + extra}")


def fill_until_full(store: Store) -> StoreFull:
    for i in range(10_000):
        try:
            store.events.append(actor="@system", kind=EventKind.SYSTEM, action="fill",
                                detail={"i": i, "pad": BIG})
        except StoreFull as exc:
            return exc
    raise AssertionError("never filled up")


def test_max_page_count_gives_store_full_and_stays_intact(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "agent.db", sealer=Sealer(generate_key()))
    kept = store.events.append(actor="alice", kind=EventKind.AUDIT, action="power_on")
    cap_pages(store, 20)
    before = store.events.latest_id()
    error = fill_until_full(store)
    assert error.code == "store_full" and agent_error_status(error) == 507
    assert "disk full" in str(error) and str(store.path) in str(error)
    written = store.events.latest_id()
    assert written >= before
    with pytest.raises(StoreFull), store.transaction():
        store.events.append(actor="alice", kind=EventKind.AUDIT, action="partial")
        store.events.append(actor="alice", kind=EventKind.AUDIT, action="big",
                            detail={"pad": BIG * 2})
    assert store.events.latest_id() == written  # the whole transaction was rolled back
    assert store.integrity_check() == []
    assert store.events.get(event_id=kept.id).action == "power_on"
    store._db.connection().execute("PRAGMA max_page_count = 1073741823")
    assert store.events.append(actor="alice", kind=EventKind.AUDIT, action="after").id > written
    store.close()
    with Store.open(tmp_path / "agent.db") as reopened:
        assert reopened.integrity_check() == []


def test_full_during_a_check_batch_stores_none_of_it(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "agent.db", sealer=Sealer(generate_key()))
    ids = [store.servers.add(uuid=f"s{i}", ip="10.0.0.1", ipmi_host="h", ipmi_user="u",
                             ipmi_password=Secret("p")).id for i in range(50)]
    cap_pages(store, 2)
    batch = [CheckResult(ReadingRecord(server_id=i, ts=1.0, power="on",
                                       error_detail=BIG[:2000]), Verdict.OK) for i in ids]
    with pytest.raises(StoreFull):
        store.checks.record(results=batch, keep_per_server=10)
    assert store.checks.reading_count() == 0
    assert store.checks.verdicts() == {}
    assert store.integrity_check() == []
    store.close()


@contextlib.contextmanager
def small_tmpfs(where: Path) -> Iterator[Path]:
    where.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
                          capture_output=True, check=False, timeout=10)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False,
                       timeout=10)


def test_real_full_filesystem(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "mnt") as mnt:
        store = Store.open(mnt / "agent.db", sealer=Sealer(generate_key()))
        kept = store.events.append(actor="alice", kind=EventKind.AUDIT, action="power_on")
        error = fill_until_full(store)
        assert "disk full" in str(error)
        assert store.integrity_check() == []
        assert store.events.get(event_id=kept.id).action == "power_on"
        store.close()
        with Store.open(mnt / "agent.db") as reopened:
            assert reopened.integrity_check() == []
            assert reopened.events.get(event_id=kept.id).action == "power_on"
