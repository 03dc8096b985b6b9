"""Registry against the real emulator over HTTP: 60 servers, modify, delete, drift."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.models import EventKind, OutboxState, RegistrationState
from agent.registry.inventory import parse_inventory
from agent.registry.service import Registry
from agent.store import Store
from baremetal.errors import DecodeError
from baremetal.signing import node_id_from_private_key
from tests.integration.registry_driver import (
    inventory_csv,
    make_registry,
    node_servers,
    open_store,
)
from tests.support.emulator import EmulatorHandle, bm_post, register_servers, signed_fields


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "agent.db", tmp_path / "secrets.key") as opened:
        yield opened


@pytest.fixture
def registry(store: Store, emulator: EmulatorHandle) -> Registry:
    return make_registry(store, emulator.url, emulator.manager_key)


def _register(registry: Registry, count: int) -> None:
    registry.import_servers(parse_inventory(inventory_csv(count)), actor="alice")
    registry.register_pending(actor="alice")
    run = registry.process_outbox()
    assert run.failed == 0 and run.deferred == 0


def test_sixty_servers_register_past_the_list_cap_with_sealed_keys(
        registry: Registry, store: Store, emulator: EmulatorHandle, tmp_path: Path) -> None:
    outcome = registry.import_servers(parse_inventory(inventory_csv(60)), actor="alice")
    assert len(outcome.created) == 60 and outcome.errors == []
    assert registry.register_pending(actor="alice") == 60
    started = time.monotonic()
    run = registry.process_outbox()
    elapsed = time.monotonic() - started
    print(f"registered 60 servers in {elapsed:.2f} s")  # reported in the closing note
    assert (run.claimed, run.done, run.deferred, run.failed) == (60, 60, 0, 0)

    servers = store.servers.find()
    uuids = [s.uuid for s in servers]
    on_node = node_servers(emulator.url, emulator.manager_key, uuids)
    assert len(on_node) == 60 and Counter(s.uuid for s in on_node) == Counter(uuids)
    by_uuid = {s.uuid: s for s in on_node}
    for server in servers:
        assert server.state == RegistrationState.REGISTERED and server.has_node_key
        assert server.node_id == by_uuid[server.uuid].node_id
        creds = store.servers.credentials(server_id=server.id)
        assert creds.node_private_key is not None
        assert node_id_from_private_key(creds.node_private_key.reveal()) == server.node_id
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("agent.db*"))
    assert not any(s.node_private_key.encode() in raw for s in on_node)  # sealed at rest

    report = registry.check_drift()
    assert report.clean and report.capped and report.node_count == 60
    assert report.compared == 60

    # Change one server behind the agent's back, beyond the first page of 51.
    last = max(on_node, key=lambda s: s.node_id)
    reply = bm_post(emulator.url, f"/bare_metal/modify/{last.node_id}", {
        "peer_nodes_list": [], "additional": {"ip": "10.9.9.9", "ipmi_port": 6230},
        **signed_fields(emulator.manager_key)})
    assert reply.json()["errcode"] == 0
    report = registry.check_drift()
    assert [(d.uuid, d.fields) for d in report.differences] == [
        (last.uuid, ("ip", "ipmi_port"))]
    assert report.changed


def test_modify_and_delete_are_mirrored_to_the_node(
        registry: Registry, store: Store, emulator: EmulatorHandle) -> None:
    _register(registry, 3)
    updated = registry.update_server("pc-002", {"ip": "10.0.5.5", "desc": "moved to row F",
                                                "ipmi_password": "n3wpass"}, actor="bob")
    assert updated.state == RegistrationState.UPDATING
    run = registry.process_outbox()
    assert (run.done, run.deferred, run.failed) == (1, 0, 0)
    assert store.servers.get_by_uuid(uuid="pc-002").state == RegistrationState.REGISTERED
    node = {s.uuid: s for s in node_servers(emulator.url, emulator.manager_key)}
    assert (node["pc-002"].ip, node["pc-002"].description) == ("10.0.5.5", "moved to row F")
    assert node["pc-002"].ipmi_password == "n3wpass"
    assert node["pc-001"].ip == "10.0.0.11"  # others untouched
    assert registry.check_drift().clean

    registry.remove_server("pc-003", actor="bob")
    assert store.servers.get_by_uuid(uuid="pc-003").state == RegistrationState.DELETING
    registry.process_outbox()
    assert [s.uuid for s in store.servers.find()] == ["pc-001", "pc-002"]
    on_node = node_servers(emulator.url, emulator.manager_key)
    assert sorted(s.uuid for s in on_node) == ["pc-001", "pc-002"]
    audit = store.events.page(kinds=[EventKind.AUDIT]).items
    assert [e.action for e in audit][:2] == ["delete", "modify"]
    assert "n3wpass" not in repr(audit)


def test_remove_before_registration_needs_no_node(registry: Registry, store: Store) -> None:
    registry.import_servers(parse_inventory(inventory_csv(2)), actor="alice")
    registry.register_pending(actor="alice")
    registry.remove_server("pc-001", actor="alice")
    assert [s.uuid for s in store.servers.find()] == ["pc-002"]
    run = registry.process_outbox()
    assert run.done == 2  # pc-001's register item is skipped, pc-002 registered
    assert store.servers.get_by_uuid(uuid="pc-002").state == RegistrationState.REGISTERED


def test_reimport_is_idempotent_and_mirrors_changes(
        registry: Registry, store: Store, emulator: EmulatorHandle) -> None:
    _register(registry, 4)
    again = registry.import_servers(parse_inventory(inventory_csv(4)), actor="alice")
    assert (len(again.created), len(again.updated), len(again.unchanged)) == (0, 0, 4)
    assert store.outbox.counts()[OutboxState.PENDING] == 0
    changed = inventory_csv(4).replace(b"seat 4,", b"seat 4 (new GPU),")
    again = registry.import_servers(parse_inventory(changed), actor="alice")
    assert again.updated == ["pc-004"]
    assert store.servers.get_by_uuid(uuid="pc-004").state == RegistrationState.UPDATING
    registry.process_outbox()
    node = {s.uuid: s for s in node_servers(emulator.url, emulator.manager_key)}
    assert node["pc-004"].description == "seat 4 (new GPU)"
    assert len(node) == 4 and registry.check_drift().clean


def test_drift_reports_servers_added_removed_and_changed_behind_the_agent(
        registry: Registry, store: Store, emulator: EmulatorHandle) -> None:
    _register(registry, 5)
    assert registry.check_drift().clean
    stranger = register_servers(emulator, [{
        "uuid": "stranger-1", "ip": "10.7.0.1", "ipmi_hostname": "10.7.1.1",
        "ipmi_username": "root", "ipmi_password": "x"}])
    gone = store.servers.get_by_uuid(uuid="pc-002")
    reply = bm_post(emulator.url, "/bare_metal/delete", {
        "peer_nodes_list": [], "additional": {"bare_metal_node_ids": [gone.node_id]},
        **signed_fields(emulator.manager_key)})
    assert reply.json()["errcode"] == 0
    changed = store.servers.get_by_uuid(uuid="pc-004")
    bm_post(emulator.url, f"/bare_metal/modify/{changed.node_id}", {
        "peer_nodes_list": [], "additional": {"os": "Ubuntu", "ipmi_password": "other"},
        **signed_fields(emulator.manager_key)})

    report = registry.check_drift()
    assert not report.clean and report.changed
    assert report.missing_on_node == ("pc-002",)
    assert [(u.uuid, u.node_id) for u in report.unknown_on_node] == [
        ("stranger-1", stranger["stranger-1"])]
    assert [(d.uuid, d.fields) for d in report.differences] == [
        ("pc-004", ("os", "ipmi_password"))]
    event = store.events.page(kinds=[EventKind.REGISTRY], action="drift").items[0]
    assert event.result == "drift" and event.detail["missing_on_node"] == ["pc-002"]
    assert "other" not in repr(event.detail)

    again = registry.check_drift()  # same findings: no second event
    assert not again.changed
    assert len(store.events.page(kinds=[EventKind.REGISTRY], action="drift").items) == 1


def test_a_server_deleted_behind_the_agent_fails_its_modify_and_can_be_registered_again(
        registry: Registry, store: Store, emulator: EmulatorHandle) -> None:
    _register(registry, 2)
    old = store.servers.get_by_uuid(uuid="pc-001")
    bm_post(emulator.url, "/bare_metal/delete", {
        "peer_nodes_list": [], "additional": {"bare_metal_node_ids": [old.node_id]},
        **signed_fields(emulator.manager_key)})
    registry.update_server("pc-001", {"os": "Windows 11"}, actor="bob")
    run = registry.process_outbox()
    assert run.failed == 1
    failed = store.servers.get_by_uuid(uuid="pc-001")
    assert failed.state == RegistrationState.FAILED and failed.node_id is None
    assert "node id not existed" in failed.state_detail
    assert store.outbox.find(states=[OutboxState.DEAD])[0].key == "pc-001"

    assert registry.register_pending(actor="bob") == 1
    assert registry.process_outbox().done == 1
    again = store.servers.get_by_uuid(uuid="pc-001")
    assert again.state == RegistrationState.REGISTERED and again.node_id != old.node_id
    node = {s.uuid: s for s in node_servers(emulator.url, emulator.manager_key)}
    assert node["pc-001"].os == "Windows 11" and len(node) == 2
    assert registry.check_drift().clean


def test_no_secret_reaches_logs_or_events(registry: Registry, store: Store,
                                          emulator: EmulatorHandle,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _register(registry, 3)
    registry.update_server("pc-001", {"ipmi_password": "T0pSecret"}, actor="bob")
    registry.process_outbox()
    registry.check_drift()
    keys = [s.node_private_key for s in node_servers(emulator.url, emulator.manager_key)]
    secrets = ["pw001x", "pw002x", "pw003x", "T0pSecret", emulator.manager_key, *keys]
    events = repr(store.events.page(limit=500).items)
    outbox = repr(store.outbox.find(limit=500))
    for secret in secrets:
        assert secret not in caplog.text and secret not in events and secret not in outbox


def test_a_foreign_record_that_breaks_the_nodes_json_does_not_stop_registration(
        registry: Registry, store: Store, emulator: EmulatorHandle) -> None:
    # The node writes JSON unescaped (docs/protocol.md §2.5): this desc makes its whole list
    # invalid.
    register_servers(emulator, [{"uuid": "odd-1", "ip": "10.8.0.1", "desc": 'say "hi"',
                                 "ipmi_hostname": "10.8.1.1", "ipmi_username": "root",
                                 "ipmi_password": "x"}])
    with pytest.raises(DecodeError):
        node_servers(emulator.url, emulator.manager_key)
    _register(registry, 3)
    for server in store.servers.find():
        assert server.state == RegistrationState.REGISTERED and server.has_node_key
    report = registry.check_drift()
    assert report.clean and report.unreadable and report.compared == 3
