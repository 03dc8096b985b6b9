"""Exactly-once registration through the outbox: node down, lost answers, existing uuids."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from agent.models import EventKind, OutboxState, RegistrationState
from agent.registry.inventory import parse_inventory
from agent.registry.service import Registry
from agent.registry.worker import RegistryWorker
from agent.store import Store
from tests.integration.registry_driver import (
    inventory_csv,
    make_registry,
    node_servers,
    open_store,
)
from tests.support.clock import WallClockWithOffset
from tests.support.emulator import EmulatorHandle, register_servers, start_emulator
from tests.support.http_relay import HttpRelay
from tests.support.procs import Proc


class DelayProxy(HttpRelay):
    """A TCP peer in front of the emulator that relays requests but can hold the answers.

    With ``delay_s`` above the client's deadline the node acts but its answer is lost:
    the "did it happen?" case the registry must reconcile.
    """

    def __init__(self, upstream_port: int) -> None:
        self.delay_s = 0.0
        super().__init__(upstream_port)

    def deliver(self, conn: socket.socket, request: bytes, answer: bytes) -> bool:
        time.sleep(self.delay_s)
        return super().deliver(conn, request, answer)


@pytest.fixture
def clock() -> WallClockWithOffset:
    return WallClockWithOffset()


@pytest.fixture
def store(tmp_path: Path, clock: WallClockWithOffset) -> Iterator[Store]:
    with open_store(tmp_path / "agent.db", tmp_path / "secrets.key", clock=clock) as opened:
        yield opened


def _import(registry: Registry, count: int) -> None:
    registry.import_servers(parse_inventory(inventory_csv(count)), actor="alice")
    registry.register_pending(actor="alice")


def _assert_registered_once(store: Store, emulator: EmulatorHandle, count: int) -> None:
    servers = store.servers.find()
    on_node = node_servers(emulator.url, emulator.manager_key, [s.uuid for s in servers])
    assert len(servers) == count and len(on_node) == count
    assert Counter(s.uuid for s in on_node) == Counter(s.uuid for s in servers)
    node_ids = {s.uuid: s.node_id for s in on_node}
    for server in servers:
        assert server.state == RegistrationState.REGISTERED and server.has_node_key
        assert server.node_id == node_ids[server.uuid]


def test_node_down_then_up_defers_with_backoff_and_registers_each_once(
        spawn: Callable[..., Proc], tmp_path: Path, store: Store, clock: WallClockWithOffset,
        emulator: EmulatorHandle) -> None:
    port = urlsplit(emulator.url).port
    emulator.proc.stop()
    registry = make_registry(store, emulator.url, emulator.manager_key, clock=clock)
    _import(registry, 25)
    started = time.monotonic()
    run = registry.process_outbox()
    assert (run.claimed, run.deferred, run.done) == (25, 25, 0)
    assert time.monotonic() - started < 5.0  # one refused connection, not 25 deadlines
    items = store.outbox.find(states=[OutboxState.PENDING])
    assert len(items) == 25 and all("NodeUnreachable" in i.last_error for i in items)
    assert all(4.0 <= i.next_attempt_at - i.updated_at <= 6.0 for i in items)  # 5 s +/- 20 %
    server = store.servers.get_by_uuid(uuid="pc-007")
    assert server.state == RegistrationState.PENDING
    assert "waiting for the node" in server.state_detail
    deferred = store.events.page(kinds=[EventKind.REGISTRY], server_uuid="pc-007").items
    assert [e.result for e in deferred] == ["deferred"]
    assert registry.process_outbox().claimed == 0  # backoff: nothing due yet

    start_emulator(spawn, tmp_path, data_dir=emulator.data_dir, port=port, client=False,
                   deeplink=False)
    clock.offset += 10
    run = registry.process_outbox()
    assert (run.done, run.deferred, run.failed) == (25, 0, 0)
    _assert_registered_once(store, emulator, 25)
    assert registry.check_drift().clean


def test_lost_add_answer_is_adopted_by_uuid_not_registered_twice(
        store: Store, clock: WallClockWithOffset, emulator: EmulatorHandle) -> None:
    proxy = DelayProxy(urlsplit(emulator.url).port or 0)
    try:
        proxy.delay_s = 1.5
        registry = make_registry(store, proxy.url, emulator.manager_key, clock=clock,
                                 timeout_s=0.5)
        _import(registry, 6)
        run = registry.process_outbox()
        assert (run.deferred, run.done) == (6, 0)
        assert len(node_servers(emulator.url, emulator.manager_key)) == 6  # the node acted
        assert all(s.node_id is None for s in store.servers.find())
        assert "NodeTimeout" in store.outbox.find()[0].last_error

        proxy.delay_s = 0.0
        clock.offset += 10
        run = registry.process_outbox()
        assert (run.done, run.reconciled, run.deferred) == (6, 6, 0)
        _assert_registered_once(store, emulator, 6)
        results = {e.result for e in store.events.page(kinds=[EventKind.REGISTRY]).items}
        assert "adopted" in results
    finally:
        proxy.close()


def test_uuid_already_on_the_node_is_adopted_and_brought_in_line(
        store: Store, emulator: EmulatorHandle) -> None:
    by_hand = register_servers(emulator, [
        {"uuid": "pc-002", "ip": "10.0.0.12", "os": "Windows 10", "desc": "seat 2",
         "ipmi_hostname": "10.1.0.12", "ipmi_username": "admin", "ipmi_password": "pw002x",
         "ipmi_port": 623},
        {"uuid": "pc-004", "ip": "192.168.9.4", "ipmi_hostname": "10.1.0.14",
         "ipmi_username": "admin", "ipmi_password": "old"},
    ])
    registry = make_registry(store, emulator.url, emulator.manager_key)
    _import(registry, 5)
    run = registry.process_outbox()
    assert (run.done, run.reconciled, run.deferred, run.failed) == (5, 2, 0, 0)
    assert store.servers.get_by_uuid(uuid="pc-002").node_id == by_hand["pc-002"]
    assert store.servers.get_by_uuid(uuid="pc-002").state == RegistrationState.REGISTERED
    pc4 = store.servers.get_by_uuid(uuid="pc-004")
    assert pc4.node_id == by_hand["pc-004"] and pc4.state == RegistrationState.UPDATING

    assert registry.process_outbox().done == 1  # the queued modify
    _assert_registered_once(store, emulator, 5)
    node = {s.uuid: s for s in node_servers(emulator.url, emulator.manager_key)}
    assert node["pc-004"].ip == "10.0.0.14" and node["pc-004"].ipmi_password == "pw004x"
    assert registry.check_drift().clean


def test_worker_registers_in_the_background_and_survives_a_dead_node(
        store: Store, emulator: EmulatorHandle, tmp_path: Path) -> None:
    registry = make_registry(store, emulator.url, emulator.manager_key)
    worker = RegistryWorker(registry, drift_every_s=0.2, first_drift_s=0.0, poll_s=0.1,
                            error_pause_s=0.1)
    worker.start()
    try:
        _import(registry, 8)
        deadline = time.monotonic() + 10
        while (time.monotonic() < deadline
               and len(store.servers.find(state=RegistrationState.REGISTERED)) < 8):
            time.sleep(0.05)
        _assert_registered_once(store, emulator, 8)
        emulator.proc.stop()  # drift checks now fail: logged, recorded once, loop goes on
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not store.events.page(action="worker_error").items:
            time.sleep(0.05)
        time.sleep(1.0)
        errors = store.events.page(action="worker_error").items
        assert len(errors) == 1 and "NodeUnreachable" in errors[0].detail["error"]
        assert worker.running and worker.errors >= 2
    finally:
        worker.stop()
    assert not worker.running


def test_removal_while_the_add_is_in_flight_ends_with_nothing_on_the_node(
        store: Store, emulator: EmulatorHandle) -> None:
    proxy = DelayProxy(urlsplit(emulator.url).port or 0)
    try:
        proxy.delay_s = 0.6
        registry = make_registry(store, proxy.url, emulator.manager_key, timeout_s=3.0)
        _import(registry, 2)
        worker = threading.Thread(target=registry.process_outbox)
        worker.start()
        deadline = time.monotonic() + 5
        while not store.outbox.find(states=[OutboxState.CLAIMED]):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.2)  # the add is now on its way: the node will act on it
        registry.remove_server("pc-001", actor="bob")
        worker.join(10)
        pc1 = store.servers.get_by_uuid(uuid="pc-001")
        assert pc1.state == RegistrationState.DELETING and pc1.node_id is not None
        assert len(node_servers(emulator.url, emulator.manager_key)) == 2

        proxy.delay_s = 0.0
        assert registry.process_outbox().done == 1
        assert [s.uuid for s in store.servers.find()] == ["pc-002"]
        assert [s.uuid for s in node_servers(emulator.url, emulator.manager_key)] == ["pc-002"]
        assert registry.check_drift().clean
    finally:
        proxy.close()
