"""Servers, intents, status rows and DeepLink status on a real SQLite file."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from agent.errors import AlreadyExists, SecretsError, ServerNotFound, UnsealFailed, ValidationError
from agent.models import CheckResult, ReadingRecord, RegistrationState, Verdict
from agent.secrets import Sealer, Secret, generate_key
from agent.store import Store
from tests.support.clock import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock(1_000_000.0)


@pytest.fixture
def store_clock(clock: Clock) -> Clock:
    return clock


SPEC = {"uuid": "gpu-01", "ip": "192.168.1.11", "ipmi_host": "192.168.2.11",
        "ipmi_user": "admin", "ipmi_port": 623, "os": "win10", "desc": "row A seat 1",
        "mac": "aa:bb:cc:dd:ee:01", "labels": {"row": "A", "zone": "vip"}}


def add(store: Store, **over: object) -> int:
    spec = {**SPEC, **over}
    return store.servers.add(ipmi_password=Secret("ipmi-pw"), **spec).id  # type: ignore[arg-type]


def test_add_get_and_secrets_sealed_at_rest(store: Store) -> None:
    server_id = add(store)
    server = store.servers.get(server_id=server_id)
    assert server.uuid == "gpu-01" and server.labels == {"row": "A", "zone": "vip"}
    assert server.state == RegistrationState.PENDING and not server.has_node_key
    assert "ipmi-pw" not in repr(server)
    row = sqlite3.connect(store.path).execute(
        "SELECT ipmi_password_sealed FROM servers").fetchone()[0]
    assert row.startswith("s1:") and "ipmi-pw" not in row
    creds = store.servers.credentials(server_id=server_id)
    assert creds.ipmi_password.reveal() == "ipmi-pw" and "ipmi-pw" not in repr(creds)
    assert store.servers.get_by_uuid(uuid="gpu-01").id == server_id


def test_duplicate_uuid_and_missing_servers(store: Store) -> None:
    add(store)
    with pytest.raises(AlreadyExists):
        add(store)
    with pytest.raises(ServerNotFound):
        store.servers.get(server_id=99)
    with pytest.raises(ServerNotFound):
        store.servers.get_by_uuid(uuid="nope")
    with pytest.raises(ServerNotFound):
        store.servers.remove(server_id=99)


def test_upsert_is_idempotent_and_reports_changes(store: Store, clock: Clock) -> None:
    spec = {**SPEC, "ipmi_password": Secret("ipmi-pw")}
    first = store.servers.upsert(**spec)  # type: ignore[arg-type]
    assert first.created and not first.changed
    clock.now += 10
    again = store.servers.upsert(**spec)  # type: ignore[arg-type]
    assert not again.created and not again.changed
    assert again.server.updated_at == first.server.updated_at
    changed = store.servers.upsert(**{**spec, "ip": "192.168.1.99",  # type: ignore[arg-type]
                                      "ipmi_password": Secret("new-pw")})
    assert changed.changed == {"ip", "ipmi_password"}
    assert store.servers.credentials(server_id=first.server.id).ipmi_password == Secret("new-pw")


def test_update_and_registration_state(store: Store) -> None:
    server_id = add(store)
    server = store.servers.update(server_id=server_id, desc="moved", ipmi_port=None,
                                  labels={"row": "B"})
    assert (server.desc, server.ipmi_port, server.labels) == ("moved", None, {"row": "B"})
    with pytest.raises(ValidationError):
        store.servers.update(server_id=server_id, node_id="x")
    server = store.servers.set_registration(server_id=server_id,
                                            state=RegistrationState.REGISTERED,
                                            node_id="ab" * 32, node_private_key=Secret("cd" * 32))
    assert server.node_id == "ab" * 32 and server.has_node_key
    assert server.state == RegistrationState.REGISTERED
    assert store.servers.get_by_node_id(node_id="ab" * 32).id == server_id
    creds = store.servers.all_credentials()[0]
    assert creds.node_private_key is not None and creds.node_private_key.reveal() == "cd" * 32
    failed = store.servers.set_registration(server_id=server_id, state=RegistrationState.FAILED,
                                            detail="invalid uuid")
    assert failed.node_id == "ab" * 32 and failed.state_detail == "invalid uuid"


def test_find_by_state_labels_and_ip(store: Store) -> None:
    a = add(store, uuid="a", labels={"row": "A"})
    b = add(store, uuid="b", labels={"row": "B", "zone": "vip"}, ip="192.168.1.12")
    store.servers.set_registration(server_id=b, state=RegistrationState.REGISTERED)
    assert [s.id for s in store.servers.find(labels={"row": "A"})] == [a]
    assert [s.id for s in store.servers.find(labels={"row": "B", "zone": "vip"})] == [b]
    assert store.servers.find(labels={"row": "B", "zone": "std"}) == []
    assert [s.id for s in store.servers.find(state=RegistrationState.REGISTERED)] == [b]
    assert [s.id for s in store.servers.find_by_ip(ip="192.168.1.12")] == [b]
    with pytest.raises(ValidationError):
        store.servers.find(labels={'x") OR 1=1 --': "y"})


def test_hostile_values_are_stored_exactly(store: Store) -> None:
    hostile = "'; DROP TABLE servers; -- $(reboot) `id` \"\\ 中文" + "x" * 150
    server_id = add(store, uuid="evil", desc=hostile, os=hostile)
    server = store.servers.get(server_id=server_id)
    assert server.desc == hostile and server.os == hostile
    assert store.servers.count() == 1


def test_remove_cascades(store: Store) -> None:
    server_id = add(store)
    store.intents.set_power(server_id=server_id, power="on", actor="alice")
    store.checks.record(results=[CheckResult(ReadingRecord(server_id=server_id, ts=1.0,
                                                           power="on"), Verdict.OK)],
                        keep_per_server=10)
    store.deeplink.record(server_id=server_id, result="ok", device_id="123")
    store.servers.remove(server_id=server_id)
    assert store.checks.reading_count() == 0
    assert store.checks.verdicts() == {}
    assert store.intents.all() == {}
    assert store.deeplink.all() == []
    assert store.integrity_check() == []


def test_intents(store: Store, clock: Clock) -> None:
    server_id = add(store)
    assert store.intents.get(server_id=server_id).power is None
    store.intents.set_power(server_id=server_id, power="off", actor="alice")
    clock.now += 5
    intent = store.intents.set_boot(server_id=server_id, device="pxe", persistent=True,
                                    uefi=True, actor="bob")
    assert (intent.power, intent.power_at) == ("off", 1_000_000.0)
    assert (intent.boot_device, intent.boot_persistent, intent.boot_uefi) == ("pxe", True, True)
    assert intent.boot_at == 1_000_005.0 and intent.actor == "bob"
    assert store.intents.all()[server_id] == intent
    with pytest.raises(ServerNotFound):
        store.intents.set_power(server_id=42, power="on", actor="x")


def test_status_rows_join_verdict_and_newest_reading(store: Store) -> None:
    a, b = add(store, uuid="a"), add(store, uuid="b", labels={"row": "B"})
    results = [CheckResult(ReadingRecord(server_id=a, ts=t, power=p), v)
               for t, p, v in ((1.0, "on", Verdict.OK), (2.0, "off", Verdict.MISMATCH))]
    store.checks.record(results=results[:1], keep_per_server=10)
    store.checks.record(results=results[1:], keep_per_server=10)
    rows = store.status.find()
    assert [r.server.uuid for r in rows] == ["a", "b"]
    assert rows[0].verdict is not None and rows[0].verdict.verdict == Verdict.MISMATCH
    assert rows[0].reading is not None and rows[0].reading.power == "off"
    assert rows[0].reading.server_id == a and rows[0].reading.ts == 2.0
    assert rows[1].verdict is None and rows[1].reading is None
    assert [r.server.id for r in store.status.find(verdict=Verdict.UNKNOWN)] == [b]
    assert [r.server.id for r in store.status.find(verdict=Verdict.MISMATCH)] == [a]
    assert [r.server.id for r in store.status.find(labels={"row": "B"})] == [b]
    assert store.status.get(server_id=a).server.uuid == "a"
    with pytest.raises(ServerNotFound):
        store.status.get(server_id=77)


def test_deeplink_status_and_duplicates(store: Store, clock: Clock) -> None:
    a, b, c = (add(store, uuid=u) for u in "abc")
    assert store.deeplink.get(server_id=a) is None
    status = store.deeplink.record(server_id=a, result="ok", device_id="555", rotated=True,
                                   boot_seen=True)
    assert status.uuid == "a" and status.last_rotated_at == clock.now
    clock.now += 60
    status = store.deeplink.record(server_id=a, result="failed", error="deeplink service not"
                                   " connected")
    assert status.device_id == "555" and status.last_rotated_at == 1_000_000.0
    assert status.last_result == "failed"
    store.deeplink.record(server_id=b, result="ok", device_id="555")
    store.deeplink.record(server_id=c, result="ok", device_id="777")
    assert store.deeplink.duplicate_device_ids() == {"555": ["a", "b"]}
    with pytest.raises(ServerNotFound):
        store.deeplink.record(server_id=99, result="ok")


def test_nonces_remember_once_and_prune(store: Store) -> None:
    assert store.nonces.remember(nonce="n" * 20, ts=100.0)
    assert not store.nonces.remember(nonce="n" * 20, ts=200.0)
    assert store.nonces.remember(nonce="m" * 20, ts=300.0)
    assert store.nonces.prune(older_than=250.0) == 1
    assert store.nonces.count() == 1


def test_status_cache_sees_own_other_thread_and_other_process_commits(store: Store) -> None:
    a = add(store)
    assert store.status.find()[0].server.desc == SPEC["desc"]
    store.servers.update(server_id=a, desc="own write")
    assert store.status.find()[0].server.desc == "own write"
    thread = threading.Thread(target=store.servers.update, kwargs={"server_id": a,
                                                                   "desc": "other thread"})
    thread.start()
    thread.join()
    assert store.status.find()[0].server.desc == "other thread"
    other = sqlite3.connect(store.path, isolation_level=None)  # stands for another process
    other.execute("UPDATE servers SET description = 'other process'")
    other.close()
    assert store.status.find()[0].server.desc == "other process"
    assert store.status.find() == store.status.find()


def test_verify_sealer_and_store_without_key(tmp_path: Path) -> None:
    path = tmp_path / "agent.db"
    with Store.open(path, sealer=Sealer(generate_key())) as store:
        sid = add(store)
        store.servers.set_registration(server_id=sid, state=RegistrationState.REGISTERED,
                                       node_private_key=Secret("k" * 64))
        assert store.servers.verify_sealer() == 2
    with Store.open(path, sealer=Sealer(generate_key())) as other_key, \
            pytest.raises(UnsealFailed):
        other_key.servers.verify_sealer()
    with Store.open(path) as no_key:
        assert no_key.servers.get(server_id=sid).uuid == "gpu-01"  # non-secret reads work
        with pytest.raises(SecretsError):
            no_key.servers.credentials(server_id=sid)
