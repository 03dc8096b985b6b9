"""Staff actions against real BMCs: read-back, audit, conflicts, batches; ipmitool as witness."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.api.errors import agent_error_status
from agent.errors import ActionInProgress, Conflict, ServerNotFound
from agent.models import EventKind
from tests.integration.test_monitor_verdicts import Rig, add_server, rigs
from tests.support.bmc import run_ipmitool

pytestmark = pytest.mark.ipmisim


@pytest.fixture
def rig_factory(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    """Monitor/Actions rigs on a temp store, closed after the test."""
    with rigs(tmp_path) as make:
        yield make


def _audit(rig, uuid: str) -> list:
    page = rig.store.events.page(kinds=[EventKind.AUDIT], server_uuid=uuid, limit=100)
    return list(reversed(page.items))


def test_power_actions_are_verified_and_audited(rig_factory, ipmi_sim) -> None:
    bmc = ipmi_sim(initial_power="off")
    rig = rig_factory()
    server = add_server(rig.store, "seat-01", bmc)
    for action, power in (("on", "on"), ("reset", "on"), ("soft", "off"), ("on", "on"),
                          ("off", "off")):
        (result,) = rig.actions.power(uuids=["seat-01"], action=action, actor="alice")
        assert (result.ok, result.verified, result.code) == (True, True, "verified"), result
        assert result.reading is not None and result.reading.power == power
        witness = run_ipmitool(bmc, "chassis", "power", "status").stdout.strip()
        assert witness == f"Chassis Power is {power}"
    assert bmc.controls() == ["power 1", "reset 1", "shutdown 1", "power 1", "power 0"]
    events = _audit(rig, "seat-01")
    assert [(e.actor, e.action, e.result, e.verified) for e in events] == [
        ("alice", "power_on", "verified", True), ("alice", "power_reset", "verified", True),
        ("alice", "power_soft", "verified", True), ("alice", "power_on", "verified", True),
        ("alice", "power_off", "verified", True)]
    assert events[0].detail["reading"]["power"] == "on" and events[0].ts > 0
    intent = rig.store.intents.get(server_id=server.id)
    assert (intent.power, intent.actor) == ("off", "alice")
    assert rig.metrics.actions.value(action="power_on", result="verified") == 2


def test_reset_of_a_machine_that_stays_off_is_unverified(rig_factory, ipmi_sim) -> None:
    bmc = ipmi_sim(initial_power="off")
    rig = rig_factory(actions={"verify_deadline_s": 1.0, "verify_interval_s": 0.2})
    add_server(rig.store, "seat-02", bmc)
    started = time.monotonic()
    (result,) = rig.actions.power(uuids=["seat-02"], action="reset", actor="bob")
    assert time.monotonic() - started < 2.5
    assert (result.ok, result.verified, result.code) == (True, False, "unverified")
    assert result.reading is not None and result.reading.power == "off"
    (event,) = _audit(rig, "seat-02")
    assert (event.result, event.verified) == ("unverified", False)


def test_boot_device_verified_on_fake_bmc(rig_factory, fake_bmc) -> None:
    bmc = fake_bmc(initial_power="on")
    rig = rig_factory()
    server = add_server(rig.store, "seat-03", bmc)
    (result,) = rig.actions.set_boot(uuids=["seat-03"], device="pxe", persistent=True,
                                     uefi=True, actor="carol")
    assert (result.verified, result.code) == (True, "verified"), result
    reading = result.reading
    assert reading is not None
    assert (reading.boot_device, reading.boot_persistent, reading.boot_uefi) == ("pxe", True,
                                                                                  True)
    witness = run_ipmitool(bmc, "chassis", "bootparam", "get", "5").stdout
    assert "Force PXE" in witness and "Options apply to all future boots" in witness
    assert "BIOS EFI boot" in witness
    intent = rig.store.intents.get(server_id=server.id)
    assert (intent.boot_device, intent.boot_persistent, intent.boot_uefi) == ("pxe", True,
                                                                              True)
    (event,) = _audit(rig, "seat-03")
    assert (event.action, event.result, event.detail["device"]) == ("bootdev", "verified",
                                                                     "pxe")


def test_boot_device_on_ipmi_sim_is_unverified_with_the_truth(rig_factory, ipmi_sim) -> None:
    # ipmi_sim keeps the selector but reports the valid bit clear and drops persistence.
    bmc = ipmi_sim(initial_power="on")
    rig = rig_factory(actions={"verify_deadline_s": 1.0, "verify_interval_s": 0.2})
    add_server(rig.store, "seat-04", bmc)
    (result,) = rig.actions.set_boot(uuids=["seat-04"], device="cdrom", persistent=True,
                                     uefi=False, actor="carol")
    assert (result.ok, result.verified, result.code) == (True, False, "unverified")
    assert result.reading is not None
    assert (result.reading.boot_selector, result.reading.boot_valid) == ("cdrom", False)
    assert bmc.boot() == "cdrom"


def test_second_action_on_a_busy_server_is_a_conflict(rig_factory, fake_bmc) -> None:
    bmc = fake_bmc(initial_power="off", slow=0.4)  # every request takes 0.4 s
    rig = rig_factory(deadline_s=3.0)
    add_server(rig.store, "seat-05", bmc)
    first: list = []
    worker = threading.Thread(target=lambda: first.extend(
        rig.actions.power(uuids=["seat-05"], action="on", actor="alice")))
    worker.start()
    deadline = time.monotonic() + 5
    while "seat-05" not in rig.actions.in_flight():
        assert time.monotonic() < deadline
        time.sleep(0.005)
    with pytest.raises(ActionInProgress) as caught:
        rig.actions.set_boot(uuids=["seat-05"], device="pxe", persistent=False, uefi=False,
                             actor="bob")
    assert isinstance(caught.value, Conflict) and agent_error_status(caught.value) == 409
    assert caught.value.action == "power_on"
    batch = rig.actions.power(uuids=["seat-05", "ghost"], action="off", actor="bob")
    assert [(r.uuid, r.code) for r in batch] == [("seat-05", "conflict"), ("ghost", "not_found")]
    worker.join(timeout=20)
    assert first and first[0].verified
    results = [(e.actor, e.action, e.result) for e in _audit(rig, "seat-05")]
    assert sorted(results) == [("alice", "power_on", "verified"), ("bob", "bootdev", "conflict"),
                               ("bob", "power_off", "conflict")]
    assert bmc.state()["power"] == "on"  # the conflicting "off" never reached the BMC
    assert rig.actions.in_flight() == {}


_HOLD_IN_OTHER_PROCESS = """
import sys, time
from pathlib import Path
from agent.actions.lock import ServerLocks, lock_file_for
locks = ServerLocks.shared(lock_file_for(Path(sys.argv[1])))
assert locks.acquire(sys.argv[2], "power_off") is None
print("held", flush=True)
time.sleep(60)
"""


def test_action_held_by_another_process_is_a_conflict_until_it_dies(rig_factory,
                                                                      ipmi_sim) -> None:
    """The CLI and the service build their own Actions: the lock must span processes."""
    bmc = ipmi_sim(initial_power="off")
    rig = rig_factory()
    add_server(rig.store, "seat-06", bmc)
    other = subprocess.Popen([sys.executable, "-c", _HOLD_IN_OTHER_PROCESS,
                              str(rig.store.path), "seat-06"], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "held"
        with pytest.raises(ActionInProgress) as caught:
            rig.actions.power(uuids=["seat-06"], action="on", actor="alice")
        assert agent_error_status(caught.value) == 409 and "another bm-agent process" in caught.value.action
        assert bmc.controls() == []  # nothing reached the BMC
    finally:
        other.kill()  # SIGKILL: the kernel drops its locks, nothing is left stale
        other.wait(10)
    (result,) = rig.actions.power(uuids=["seat-06"], action="on", actor="alice")
    assert result.code == "verified" and bmc.controls() == ["power 1"]
    assert [e.result for e in _audit(rig, "seat-06")] == ["conflict", "verified"]


def test_batch_by_label_has_one_result_per_server(rig_factory, ipmi_sim, dead_bmc) -> None:
    vip = [ipmi_sim(initial_power="off") for _ in range(3)]
    other = ipmi_sim(initial_power="off")
    rig = rig_factory(deadline_s=1.0)
    for index, bmc in enumerate(vip):
        add_server(rig.store, f"vip-{index}", bmc, zone="vip")
    add_server(rig.store, "std-0", other, zone="std")
    add_server(rig.store, "vip-dead", dead_bmc, zone="vip")
    add_server(rig.store, "vip-badpw", other, password="wrong-pass1", zone="vip")
    uuids = rig.actions.select(label="zone=vip")
    assert uuids == ["vip-0", "vip-1", "vip-2", "vip-dead", "vip-badpw"]
    started = time.monotonic()
    results = rig.actions.power(uuids=uuids, action="on", actor="dave")
    assert time.monotonic() - started < 3.0  # in parallel: the dead one costs one deadline
    codes = {r.uuid: r.code for r in results}
    assert codes == {"vip-0": "verified", "vip-1": "verified", "vip-2": "verified",
                     "vip-dead": "ipmi_unreachable", "vip-badpw": "ipmi_auth"}, \
        [(r.uuid, r.code, r.message) for r in results]  # once seen: vip-badpw ipmi_protocol
    assert [b.power() for b in vip] == ["on", "on", "on"] and other.power() == "off"
    failed = _audit(rig, "vip-badpw")
    assert failed[0].result == "failed" and failed[0].detail["code"] == "ipmi_auth"
    assert "wrong-pass1" not in json.dumps([r.to_dict() for r in results])
    with pytest.raises(ServerNotFound):
        rig.actions.power(uuids=["nobody"], action="on", actor="dave")
