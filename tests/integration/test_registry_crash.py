"""``kill -9`` of a process running the registry mid-registration: nothing lost, nothing twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from agent.models import OutboxState, RegistrationState
from baremetal.signing import node_id_from_private_key
from tests.integration.registry_driver import node_servers, open_store
from tests.support.emulator import EmulatorHandle
from tests.support.procs import Proc, python_module
from tests.support.wait import wait_for

COUNT = 30


def _driver(spawn: Callable[..., Proc], tmp_path: Path, emulator: EmulatorHandle,
            *extra: str) -> Proc:
    args = ["--store", str(tmp_path / "agent.db"), "--key-file", str(tmp_path / "secrets.key"),
            "--node-url", emulator.url, "--node-dat", str(emulator.data_dir / "dat" / "node.dat"),
            "--count", str(COUNT), "--batch-size", "3", *extra]
    return spawn(python_module("tests.integration.registry_driver", *args), name="driver")


def _node_uuids(emulator: EmulatorHandle) -> Counter[str]:
    uuids = [f"pc-{i:03d}" for i in range(1, COUNT + 1)]
    return Counter(s.uuid for s in node_servers(emulator.url, emulator.manager_key, uuids))


def test_kill9_mid_registration_loses_nothing_and_registers_nothing_twice(
        spawn: Callable[..., Proc], tmp_path: Path, emulator: EmulatorHandle) -> None:
    # 1. Dies right after the node answered the 2nd add, before recording anything.
    first = _driver(spawn, tmp_path, emulator, "--kill-after-adds", "2")
    assert first.popen.wait(30) == -9, first.log()[-2000:]
    assert "imported 30" in first.log()  # acknowledged: must survive the kill
    assert sum(_node_uuids(emulator).values()) == 6  # two batches of 3 reached the node
    with open_store(tmp_path / "agent.db", tmp_path / "secrets.key") as store:
        assert store.servers.count() == COUNT
        assert len([s for s in store.servers.find() if s.node_id]) == 3  # 2nd batch unrecorded
        assert store.integrity_check() == []

    # 2. Killed from outside while it works (a pause after each add widens the window).
    second = _driver(spawn, tmp_path, emulator, "--pause-after-add", "0.3")
    wait_for(lambda: "add ok 2" in second.log(), 30.0, every=0.01, what="add ok 2",
             alive=second.alive, detail=lambda: second.log()[-2000:])
    second.kill9()
    assert second.popen.returncode == -9
    # Its first run resent the batch whose answer was lost: the node said "already
    # existed" and the three servers were adopted by uuid.
    assert "run claimed=6 done=6 deferred=0 reconciled=3" in second.log()

    # 3. A clean run finishes the job.
    third = _driver(spawn, tmp_path, emulator)
    assert third.popen.wait(60) == 0, third.log()[-2000:]
    assert "finished" in third.log()

    on_node = node_servers(emulator.url, emulator.manager_key,
                           [f"pc-{i:03d}" for i in range(1, COUNT + 1)])
    counts = Counter(s.uuid for s in on_node)
    assert len(counts) == COUNT and set(counts.values()) == {1}
    node_ids = {s.uuid: s.node_id for s in on_node}
    with open_store(tmp_path / "agent.db", tmp_path / "secrets.key") as store:
        assert store.integrity_check() == []
        assert store.servers.count() == COUNT
        for server in store.servers.find():
            assert server.state == RegistrationState.REGISTERED
            assert server.node_id == node_ids[server.uuid]
            key = store.servers.credentials(server_id=server.id).node_private_key
            assert key is not None and node_id_from_private_key(key.reveal()) == server.node_id
        counts_by_state = store.outbox.counts()
        assert counts_by_state[OutboxState.PENDING] == counts_by_state[OutboxState.CLAIMED] == 0
        assert counts_by_state[OutboxState.DEAD] == 0
