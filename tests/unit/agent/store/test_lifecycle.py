"""Store lifecycle on real SQLite files: WAL, migrations, refusal of newer stores, threads,
integrity, online backup and restore."""

from __future__ import annotations

import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest

from agent.errors import StoreCorrupt, StoreError, StoreTooNew
from agent.models import EventKind
from agent.secrets import Sealer, Secret, generate_key
from agent.store import SCHEMA_VERSION, Store, restore_backup
from agent.store._schema import MIGRATIONS

TABLES = {"servers", "server_intents", "readings", "verdicts", "events", "outbox", "users",
          "api_tokens", "web_sessions", "hook_nonces", "deeplink_status"}


@pytest.fixture
def sealer() -> Sealer:
    return Sealer(generate_key())


def add_server(store: Store, uuid: str = "gpu-1") -> int:
    return store.servers.add(uuid=uuid, ip="10.0.0.1", ipmi_host="10.1.0.1", ipmi_user="admin",
                             ipmi_password=Secret("pw")).id


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_open_creates_private_wal_store_with_full_schema(tmp_path: Path) -> None:
    path = tmp_path / "agent.db"
    with Store.open(path) as store:
        assert store.journal_mode() == "wal"
        assert store.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
        assert store.integrity_check() == []
        conn = store._db.connection()
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    names = {r[0] for r in raw(path).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert names >= TABLES


def test_reopen_keeps_data_and_does_not_remigrate(tmp_path: Path, sealer: Sealer) -> None:
    path = tmp_path / "agent.db"
    with Store.open(path, sealer=sealer) as store:
        add_server(store)
    with Store.open(path, sealer=sealer) as store:
        assert store.servers.get_by_uuid(uuid="gpu-1").ip == "10.0.0.1"
        assert store.schema_version() == SCHEMA_VERSION


@pytest.mark.parametrize("start", range(len(MIGRATIONS)))
def test_migrations_from_every_older_version(tmp_path: Path, start: int) -> None:
    path = tmp_path / "agent.db"
    if start:
        with Store.open(path, migrations=MIGRATIONS[:start]) as store:
            assert store.schema_version() == start
    else:
        raw(path).close()  # an empty file: version 0
    with Store.open(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.integrity_check() == []


def test_failed_migration_rolls_back_and_keeps_version(tmp_path: Path) -> None:
    path = tmp_path / "agent.db"
    Store.open(path).close()
    broken = (*MIGRATIONS, ("CREATE TABLE extra (x INTEGER)", "THIS IS NOT SQL"))
    with pytest.raises(StoreError):
        Store.open(path, migrations=broken)
    conn = raw(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'extra'").fetchone()[0] == 0


def test_newer_store_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "agent.db"
    Store.open(path).close()
    raw(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = path.read_bytes()
    with pytest.raises(StoreTooNew) as info:
        Store.open(path)
    assert info.value.found == SCHEMA_VERSION + 1 and info.value.supported == SCHEMA_VERSION
    assert "newer" in str(info.value) and str(path) in str(info.value)
    assert path.read_bytes() == before


def test_garbage_file_is_corrupt_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "agent.db"
    path.write_bytes(b"this is not a database" * 500)
    with pytest.raises(StoreCorrupt):
        Store.open(path)


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="directory does not exist"):
        Store.open(tmp_path / "nope" / "agent.db")


def test_transaction_is_atomic(tmp_path: Path, sealer: Sealer) -> None:
    with Store.open(tmp_path / "agent.db", sealer=sealer) as store:
        with pytest.raises(RuntimeError), store.transaction():
            add_server(store, "a")
            store.events.append(actor="alice", kind=EventKind.AUDIT, action="import")
            raise RuntimeError("boom")
        assert store.servers.count() == 0
        assert store.events.latest_id() == 0


def test_nested_failure_rolls_back_only_the_savepoint(tmp_path: Path, sealer: Sealer) -> None:
    with Store.open(tmp_path / "agent.db", sealer=sealer) as store:
        with store.transaction():
            add_server(store, "a")
            with pytest.raises(RuntimeError), store.transaction():
                add_server(store, "b")
                raise RuntimeError("inner")
            add_server(store, "c")
        assert [s.uuid for s in store.servers.find()] == ["a", "c"]


def test_concurrent_writers_and_readers_from_threads(tmp_path: Path, sealer: Sealer) -> None:
    store = Store.open(tmp_path / "agent.db", sealer=sealer)
    writers, per_writer = 6, 20
    errors: list[BaseException] = []
    stop = threading.Event()
    reads = [0]

    def write(n: int) -> None:
        try:
            for i in range(per_writer):
                with store.transaction():
                    store.events.append(actor="@system", kind=EventKind.SYSTEM,
                                        action=f"w{n}", detail={"i": i})
                    store.outbox.enqueue(op="test", payload={"n": n, "i": i})
        except BaseException as exc:
            errors.append(exc)

    def read() -> None:
        try:
            while not stop.is_set():
                page = store.events.page(limit=20)
                assert len(page.items) <= 20
                reads[0] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in readers + threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    stop.set()
    for thread in readers:
        thread.join(timeout=10)
    assert errors == []
    assert store.events.latest_id() == writers * per_writer
    assert store.outbox.counts()["pending"] == writers * per_writer
    assert reads[0] > 0
    assert store.integrity_check() == []
    store.close()


def test_connections_of_finished_threads_are_closed(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "agent.db")
    for _ in range(20):
        thread = threading.Thread(target=store.events.latest_id)
        thread.start()
        thread.join()
    store.events.latest_id()  # the main thread's own connection
    extra = threading.Thread(target=store.events.latest_id)
    extra.start()
    extra.join()
    # Opening a connection closes those of dead threads: main + the last one remain.
    assert store._db.open_connections() <= 2
    store.close()
    assert store._db.open_connections() == 0


def test_closed_store_refuses_new_work(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "agent.db")
    store.close()
    thread_error: list[BaseException] = []

    def use() -> None:
        try:
            store.events.latest_id()
        except StoreError as exc:
            thread_error.append(exc)

    thread = threading.Thread(target=use)
    thread.start()
    thread.join()
    assert len(thread_error) == 1


def test_backup_is_consistent_private_single_file(tmp_path: Path, sealer: Sealer) -> None:
    with Store.open(tmp_path / "agent.db", sealer=sealer) as store:
        add_server(store)
        store.events.append(actor="alice", kind=EventKind.AUDIT, action="power_on")
        dest = store.backup_to(tmp_path / "b.db")
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert not Path(f"{dest}-wal").exists()
    conn = raw(dest)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert conn.execute("SELECT uuid FROM servers").fetchone()[0] == "gpu-1"
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_backup_while_writers_run(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "agent.db")
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            store.events.append(actor="@system", kind=EventKind.SYSTEM, action="tick")

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        time.sleep(0.05)
        dest = store.backup_to(tmp_path / "b.db")
    finally:
        stop.set()
        thread.join()
    count = raw(dest).execute("SELECT count(*) FROM events").fetchone()[0]
    assert 0 < count <= store.events.latest_id()
    store.close()


def test_restore_replaces_store_and_checks_the_backup(tmp_path: Path, sealer: Sealer) -> None:
    live = tmp_path / "agent.db"
    with Store.open(live, sealer=sealer) as store:
        add_server(store, "kept")
        store.backup_to(tmp_path / "b.db")
        add_server(store, "after-backup")
    assert restore_backup(tmp_path / "b.db", live) == SCHEMA_VERSION
    with Store.open(live, sealer=sealer) as store:
        assert [s.uuid for s in store.servers.find()] == ["kept"]
        assert store.servers.credentials(server_id=1).ipmi_password == Secret("pw")
        assert store.integrity_check() == []


def test_restore_refuses_bad_backups(tmp_path: Path) -> None:
    live = tmp_path / "agent.db"
    Store.open(live).close()
    newer = tmp_path / "newer.db"
    Store.open(newer).close()
    raw(newer).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    with pytest.raises(StoreTooNew):
        restore_backup(newer, live)
    foreign = tmp_path / "foreign.db"
    raw(foreign).execute("CREATE TABLE t (x)")
    with pytest.raises(StoreCorrupt, match="not a bm-agent store"):
        restore_backup(foreign, live)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"junk" * 1000)
    with pytest.raises(StoreCorrupt):
        restore_backup(junk, live)
    with pytest.raises(StoreError, match="not found"):
        restore_backup(tmp_path / "absent.db", live)
