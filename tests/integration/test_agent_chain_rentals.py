"""The agent's rental state from the chain simulator over real HTTP: verdicts, stale, fallback.

docs/protocol.md §6.4, §14; settings in docs/operations.md §10.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.config.settings import ChainSettings
from agent.monitor.crosscheck import Verdict
from agent.monitor.loop import Monitor
from agent.monitor.rental_source import RentalSource
from agent.monitor.rentals import RentalsFile
from baremetal.chain import ChainClient, ChainRentals
from tests.integration.test_monitor_verdicts import Rig, add_server, rigs
from tests.support.chain import rented

RENTER = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"


def test_chain_first_then_stale_then_rentals_file(chain_sim, tmp_path: Path) -> None:
    chain_sim.state.load(rented("n1", RENTER, rent_end=2000, block=1000))
    path = tmp_path / "rentals.json"
    path.write_text(json.dumps({"machines": {"n1": {"status": "online"},
                                             "n2": {"status": "rented"}}}))
    chain = ChainRentals(ChainClient([chain_sim.url], timeout_s=0.5), ttl_s=0.0)
    source = RentalSource(chain, RentalsFile(path))
    assert source.rented("n1") is True  # the chain wins over the file
    chain_sim.state.delay_s = 2.0  # chain down
    state = source.rental("n1")
    assert state is not None and state.stale and state.status == "rented"
    assert source.rented("n1") is True  # last chain answer, marked stale
    assert source.rented("n2") is True  # never answered by the chain: the file
    assert source.rented("n3") is None


@pytest.fixture
def rig_factory(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    with rigs(tmp_path) as make:
        yield make


@pytest.mark.ipmisim
def test_monitor_reads_rentals_from_the_chain(chain_sim, ipmi_sim, rig_factory) -> None:
    idle, ended, live = (ipmi_sim(initial_power="off") for _ in range(3))
    ids = {"idle": "a1" * 32, "ended": "b2" * 32, "live": "c3" * 32}
    chain_sim.state.load({"current_block": 1000, "machines": {
        ids["idle"]: {"status": "online"},
        ids["ended"]: {"status": "rented", "renter": RENTER, "rent_end": 999},
        ids["live"]: {"status": "rented", "renter": RENTER, "rent_end": 1001}}})
    rig = rig_factory()
    settings = dataclasses.replace(rig.settings, chain=ChainSettings(hosts=(chain_sim.url,)))
    monitor = Monitor(store=rig.store, bmc=rig.bmc, settings=settings, client_node=None,
                      metrics=rig.metrics)
    for uuid, bmc in (("idle", idle), ("ended", ended), ("live", live)):
        add_server(rig.store, uuid, bmc, node_id=ids[uuid])
    by_uuid = {r.uuid: r for r in monitor.run_pass().results}
    assert by_uuid["idle"].verdict == Verdict.EXPECTED_OFF
    assert by_uuid["ended"].verdict == Verdict.EXPECTED_OFF
    assert by_uuid["ended"].reasons == ("idle_power_off",)
    assert by_uuid["live"].verdict != Verdict.EXPECTED_OFF


def test_a_pass_asks_the_chain_for_many_servers_at_once(chain_sim) -> None:
    machines = {f"{i:02x}" * 32: {"status": "online"} for i in range(16)}
    chain_sim.state.load({"current_block": 10, "machines": machines})
    chain_sim.state.delay_s = 0.2
    source = RentalSource(ChainRentals(ChainClient([chain_sim.url]), ttl_s=30.0), None)
    started = time.monotonic()
    answers = source.rented_many([*machines, None, ""])
    elapsed = time.monotonic() - started
    assert answers == dict.fromkeys(machines, False)
    assert elapsed < 16 * 0.2 / 2  # 8 at a time: about 0.4 s, not 3.2 s
