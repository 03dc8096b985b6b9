"""expected_off from a real idle power-off: the emulator's prune timer runs the DBC node's
ipmitool against a real ipmi_sim BMC, and the agent reads the same rentals file.

The agent also asks the emulator's client node for DBC's own ``power_status`` (a
manager-targeted one-server list, docs/protocol.md §3.1 case 3).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.monitor.crosscheck import Verdict
from baremetal.dbc.client import Client
from tests.integration.test_monitor_verdicts import Rig, add_server, rigs
from tests.support.emulator import register_servers, start_emulator

pytestmark = pytest.mark.ipmisim


@pytest.fixture
def rig_factory(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    """Monitor/Actions rigs on a temp store, closed after the test."""
    with rigs(tmp_path) as make:
        yield make


def _item(bmc, uuid: str) -> dict:
    return {"uuid": uuid, "ip": "127.0.0.9", "os": "win10", "desc": uuid,
            "ipmi_hostname": bmc.host, "ipmi_port": bmc.port, "ipmi_username": bmc.user,
            "ipmi_password": bmc.password}


def test_idle_power_off_by_dbc_is_expected_off(spawn, tmp_path, ipmi_sim, rig_factory) -> None:
    idle, rented = ipmi_sim(initial_power="on"), ipmi_sim(initial_power="on")
    # The timer repeats (as the node's does, every 900 s): a first run that comes before the
    # rentals file is written (a loaded machine) must not leave the test waiting 60 s.
    emu = start_emulator(spawn, tmp_path, deeplink=False, extra_args=[
        "--prune-first-s", "0.3", "--prune-every-s", "0.5", "--prune-gap-s", "0.05"])
    ids = register_servers(emu, [_item(idle, "seat-idle"), _item(rented, "seat-rented")])
    emu.set_rentals({"current_block": 100, "machines": {
        ids["seat-idle"]: {"status": "online"},
        ids["seat-rented"]: {"status": "rented", "renter": "5x", "rent_end": 200}}})
    assert emu.client_url is not None
    client = Client(emu.client_url, timeout_s=10)
    rig = rig_factory(rentals_file=emu.rentals_path, client_node=client,
                      manager_id=emu.manager_id, deadline_s=5.0)
    add_server(rig.store, "seat-idle", idle, node_id=ids["seat-idle"])
    add_server(rig.store, "seat-rented", rented, node_id=ids["seat-rented"])
    deadline = time.monotonic() + 20
    while idle.power() == "on":  # the node's idle timer: "chassis power off" via ipmitool
        assert time.monotonic() < deadline, emu.log()[-2000:]
        time.sleep(0.05)
    report = rig.monitor.run_pass()
    client.close()
    by_uuid = {r.uuid: r for r in report.results}
    off = by_uuid["seat-idle"]
    assert (off.verdict, off.reasons, off.power) == (Verdict.EXPECTED_OFF, ("idle_power_off",),
                                                     "off")
    assert off.dbc_power_status == "Chassis Power is off"  # DBC agrees: no mismatch
    assert "not rented" in off.detail
    live = by_uuid["seat-rented"]
    assert (live.verdict, live.power, live.dbc_power_status) == (Verdict.OK, "on",
                                                                 "Chassis Power is on")
    assert rented.power() == "on"  # the timer spares rented machines
    (event,) = rig.verdict_events("seat-idle")
    assert (event.result, event.detail["reasons"]) == ("expected_off", ["idle_power_off"])


def test_off_without_rental_knowledge_is_plain_ok(rig_factory, ipmi_sim) -> None:
    bmc = ipmi_sim(initial_power="off")
    rig = rig_factory()  # no rentals_file: rented is unknown
    add_server(rig.store, "seat-unknown", bmc, node_id="ab" * 32)
    check = rig.check("seat-unknown")
    assert (check.verdict, check.power) == (Verdict.OK, "off")
