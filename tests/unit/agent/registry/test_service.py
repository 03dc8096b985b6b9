"""Registry use cases that touch only the store: import, update, remove, queueing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent.errors import Conflict, ServerNotFound, ValidationError
from agent.models import EventKind, OutboxState, RegistrationState
from agent.registry.inventory import parse_inventory
from agent.registry.outbox import OP_DELETE, OP_MODIFY, OP_REGISTER
from agent.registry.service import Registry
from agent.secrets import Secret
from agent.store import Store
from baremetal.dbc.client import Client
from baremetal.signing import new_node_keypair

HEADER = "uuid,ip,os,desc,ipmi_hostname,ipmi_username,ipmi_password,ipmi_port,mac,labels\n"
ROWS = ("pc-1,10.0.0.1,Windows 10,seat 1,10.1.0.1,admin,pw1,623,,row=A;zone=vip\n"
        "pc-2,10.0.0.2,Windows 10,seat 2,10.1.0.2,admin,pw2,,,row=B\n")
NODE_ID = "ab" * 32


@pytest.fixture
def registry(store: Store) -> Iterator[Registry]:
    # The node is never called in these tests: nothing listens on this port.
    with Client("http://127.0.0.1:9", timeout_s=0.5) as node:
        yield Registry(store=store, node=node, manager_key=new_node_keypair().private_key)


def _import(registry: Registry, text: str = ROWS) -> None:
    registry.import_servers(parse_inventory((HEADER + text).encode()), actor="alice")


def test_import_with_a_rejected_header_is_logged_failed(registry: Registry, store: Store) -> None:
    # Found: a CSV whose header was refused (nothing imported) was logged "partial".
    outcome = registry.import_servers(parse_inventory(b"name,addr\nPC-1,1.2.3.4\n", "x.csv"),
                                      actor="alice")
    assert [e.code for e in outcome.errors] == ["bad_header"] and outcome.created == []
    event = store.events.page(kinds=[EventKind.AUDIT], action="import").items[0]
    assert event.result == "failed" and event.detail["refused"] == 1


def test_preview_reports_like_an_import_and_stores_nothing(registry: Registry,
                                                           store: Store) -> None:
    _import(registry, ROWS.splitlines(keepends=True)[0])
    events = len(store.events.page().items)
    changed = ROWS.replace("seat 1", "seat one")
    bad = "pc 3,10.0.0.3,,,10.1.0.3,admin,pw3,,,\n"
    preview = registry.preview_import(parse_inventory((HEADER + changed + bad).encode()))
    assert (preview.created, preview.updated, preview.unchanged) == (["pc-2"], ["pc-1"], [])
    assert [e.code for e in preview.errors] == ["bad_uuid"]
    assert store.servers.get_by_uuid(uuid="pc-1").desc == "seat 1"
    with pytest.raises(ServerNotFound):
        store.servers.get_by_uuid(uuid="pc-2")
    assert len(store.events.page().items) == events


def _registered(store: Store, uuid: str) -> None:
    server = store.servers.get_by_uuid(uuid=uuid)
    store.servers.set_registration(server_id=server.id, state=RegistrationState.REGISTERED,
                                   node_id=NODE_ID, node_private_key=Secret("k" * 64))


def test_import_reports_refused_rows_and_is_idempotent(registry: Registry, store: Store) -> None:
    bad = "pc 3,10.0.0.3,,,10.1.0.3,admin,pw3,,,\n"
    outcome = registry.import_servers(parse_inventory((HEADER + ROWS + bad).encode()),
                                      actor="alice")
    assert outcome.created == ["pc-1", "pc-2"] and outcome.updated == []
    assert [(e.line, e.code) for e in outcome.errors] == [(4, "bad_uuid")]
    again = registry.import_servers(parse_inventory((HEADER + ROWS).encode()), actor="alice")
    assert (again.created, again.updated, again.unchanged) == ([], [], ["pc-1", "pc-2"])
    event = store.events.page(kinds=[EventKind.AUDIT], action="import").items[1]
    assert event.actor == "alice" and event.result == "partial" and event.detail["refused"] == 1
    assert "pw1" not in repr(store.events.page().items)
    assert store.outbox.counts()[OutboxState.PENDING] == 0  # import alone never calls the node


def test_register_pending_queues_each_server_once(registry: Registry, store: Store) -> None:
    _import(registry)
    assert registry.register_pending(actor="alice") == 2
    assert registry.register_pending(actor="alice") == 0
    items = store.outbox.find(states=[OutboxState.PENDING])
    assert sorted((i.op, i.key) for i in items) == [(OP_REGISTER, "pc-1"), (OP_REGISTER, "pc-2")]


def test_update_validates_like_an_import_row(registry: Registry) -> None:
    _import(registry)
    with pytest.raises(ValidationError) as bad_ip:
        registry.update_server("pc-1", {"ip": "10.0.0"}, actor="bob")
    assert bad_ip.value.field == "ip"
    with pytest.raises(ValidationError) as unsafe:
        registry.update_server("pc-1", {"ipmi_password": "a b"}, actor="bob")
    assert unsafe.value.field == "ipmi_password" and "a b" not in str(unsafe.value)
    with pytest.raises(ValidationError):
        registry.update_server("pc-1", {"uuid": "pc-9"}, actor="bob")
    with pytest.raises(ValidationError):
        registry.update_server("pc-1", {"node_id": NODE_ID}, actor="bob")
    with pytest.raises(ValidationError):
        registry.update_server("pc-1", {"labels": {"zone": "a;b"}}, actor="bob")
    with pytest.raises(ServerNotFound):
        registry.update_server("pc-7", {"ip": "10.0.0.7"}, actor="bob")


def test_update_of_a_pending_server_needs_no_modify(registry: Registry, store: Store) -> None:
    _import(registry)
    server = registry.update_server("pc-1", {"ipmi_host": "bmc-1.lan", "labels": {"zone": "b"},
                                             "mac": "AA-BB-CC-DD-EE-FF"}, actor="bob")
    assert (server.ipmi_host, dict(server.labels), server.mac) == (
        "bmc-1.lan", {"zone": "b"}, "aa:bb:cc:dd:ee:ff")
    assert server.state == RegistrationState.PENDING
    assert store.outbox.find() == []
    unchanged = registry.update_server("pc-1", {"ip": "10.0.0.1"}, actor="bob")
    assert unchanged.updated_at == server.updated_at


def test_update_of_a_registered_server_queues_one_modify(registry: Registry,
                                                         store: Store) -> None:
    _import(registry)
    _registered(store, "pc-1")
    assert registry.update_server("pc-1", {"labels": "row=C"}, actor="bob").state == \
        RegistrationState.REGISTERED  # labels stay in the agent
    server = registry.update_server("pc-1", {"ipmi_password": Secret("n3w")}, actor="bob")
    assert server.state == RegistrationState.UPDATING
    registry.update_server("pc-1", {"desc": "seat 1b"}, actor="bob")
    items = store.outbox.find()
    assert [(i.op, i.key) for i in items] == [(OP_MODIFY, "pc-1")]  # coalesced
    creds = store.servers.credentials(server_id=server.id)
    assert creds.ipmi_password == Secret("n3w")
    audit = store.events.page(kinds=[EventKind.AUDIT], action="modify").items
    assert audit[0].detail == {"fields": ["desc"]} and audit[1].detail == {
        "fields": ["ipmi_password"]}


def test_remove_is_immediate_for_servers_the_node_never_saw(registry: Registry,
                                                            store: Store) -> None:
    _import(registry)
    registry.remove_server("pc-2", actor="bob")
    assert [s.uuid for s in store.servers.find()] == ["pc-1"]
    _registered(store, "pc-1")
    registry.remove_server("pc-1", actor="bob")
    registry.remove_server("pc-1", actor="bob")  # idempotent
    server = store.servers.get_by_uuid(uuid="pc-1")
    assert server.state == RegistrationState.DELETING
    items = store.outbox.find()
    assert [(i.op, dict(i.payload)) for i in items] == [
        (OP_DELETE, {"uuid": "pc-1", "node_id": NODE_ID})]
    with pytest.raises(Conflict):
        registry.update_server("pc-1", {"ip": "10.0.0.9"}, actor="bob")
    outcome = registry.import_servers(parse_inventory((HEADER + ROWS).encode()), actor="bob")
    assert outcome.created == ["pc-2"] and [e.code for e in outcome.errors] == ["being_deleted"]


def test_remove_after_an_add_was_sent_goes_through_the_node(registry: Registry,
                                                            store: Store) -> None:
    _import(registry)
    registry.register_pending(actor="alice")
    store.outbox.claim(limit=1)  # an add for pc-1 may be on its way to the node
    registry.remove_server("pc-1", actor="bob")
    assert store.servers.get_by_uuid(uuid="pc-1").state == RegistrationState.DELETING
    delete = store.outbox.find(key="pc-1")[-1]
    assert (delete.op, dict(delete.payload)) == (OP_DELETE, {"uuid": "pc-1", "node_id": None})
