"""The chain client against the chain simulator over real HTTP (docs/protocol.md §14).

Rental states as the node's idle timer decides them, the node's exact request bytes,
deadline, host failover, stale cache while the chain is down, hostile answers.
"""

from __future__ import annotations

import json
import time

import pytest

from baremetal.chain import (
    ChainBadAnswer,
    ChainClient,
    ChainRentals,
    ChainUnreachable,
    MachineUnknown,
)
from baremetal.chain.rental import BLOCK_TIME_S
from tests.support.chain import rented
from tests.support.drip import body_drip, header_drip
from tests.support.ports import free_port

NODE = "4b1d3c6a0e3f8a9c2b7d5e1f0a4c6b8d9e2f1a3c5b7d9e0f2a4c6e8b1d3f5a79"
RENTER = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"


def _rentals(sim, **kwargs) -> ChainRentals:
    return ChainRentals(ChainClient([sim.url], timeout_s=kwargs.pop("timeout_s", 2.0)),
                        **kwargs)


def _dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_online(chain_sim):
    chain_sim.state.load({"machines": {NODE: {"status": "online"}}})
    state = _rentals(chain_sim).rental(NODE)
    assert (state.status, state.machine_status, state.rented) == ("online", "online", False)


def test_rented_with_end_estimate(chain_sim):
    chain_sim.state.load(rented(NODE, RENTER, rent_end=2000, block=1000))
    before = time.time()
    state = _rentals(chain_sim).rental(NODE)
    assert (state.status, state.rented, state.renter) == ("rented", True, RENTER)
    assert (state.rent_end_block, state.current_block) == (2000, 1000)
    assert state.rent_end_at == pytest.approx(before + 1000 * BLOCK_TIME_S, abs=5)
    assert not state.stale


@pytest.mark.parametrize(("block", "status", "is_rented"), [
    (1999, "rented", True), (2000, "rented", True), (2001, "rent_ended", False)])
def test_rent_ended_only_when_current_block_passes_rent_end(chain_sim, block, status, is_rented):
    chain_sim.state.load(rented(NODE, RENTER, rent_end=2000, block=block))
    state = _rentals(chain_sim).rental(NODE)
    assert (state.status, state.rented) == (status, is_rented)


def test_rented_without_rent_end_stays_rented(chain_sim):
    # BareMetalTaskManager.cpp:82: rent_end 0 never counts as ended
    chain_sim.state.load(rented(NODE, RENTER, rent_end=0, block=10**6))
    assert _rentals(chain_sim).rental(NODE).status == "rented"


@pytest.mark.parametrize(("machine", "status"), [
    ({"status": "verify"}, "verify"),
    ({"status": "online", "chain_status": "creating"}, "rented"),
    ({"status": "online", "chain_status": "waitingFulfill"}, "online"),
    ({"status": "online", "chain_status": "fulfillingOnChain"}, "unknown"),
])
def test_status_categories(chain_sim, machine, status):
    chain_sim.state.load({"current_block": 5, "machines": {NODE: machine}})
    assert _rentals(chain_sim).rental(NODE).status == status


def test_unknown_machine(chain_sim):
    chain_sim.state.load({"machines": {}})
    state = _rentals(chain_sim).rental(NODE)
    assert (state.status, state.rented, state.stale) == ("unknown", None, False)
    with pytest.raises(MachineUnknown):
        ChainClient([chain_sim.url]).machine_status(NODE)


def test_requests_are_the_nodes_bytes(chain_sim):
    chain_sim.state.load(rented(NODE, RENTER, rent_end=2000, block=1000, rent_order="42"))
    client = ChainClient([chain_sim.url])
    order = client.rent_order(NODE, "42")
    assert (order.renter, order.rent_end, order.gpu_index) == (RENTER, 2000, (0,))
    assert chain_sim.state.requests[-1] == (
        b'{"jsonrpc": "2.0", "id": 1, "method":"rentMachine_getRentOrder", "params": [42]}')
    _rentals(chain_sim).rental(NODE)
    assert [json.loads(r)["method"] for r in list(chain_sim.state.requests)[-3:]] == [
        "onlineProfile_getMachineInfo", "rentMachine_getRentOrder", "chain_getBlock"]


def test_rent_order_expires_on_chain_after_rent_end(chain_sim):
    chain_sim.state.load(rented(NODE, RENTER, rent_end=2000, block=2000, rent_status="renting"))
    client = ChainClient([chain_sim.url])
    assert client.rent_order(NODE).rent_status == "renting"
    chain_sim.state.current_block = 2001
    assert client.rent_order(NODE).rent_status == "rentExpired"


def test_chain_down_no_cache_is_unreachable_within_deadline():
    client = ChainClient([_dead_url(), _dead_url()], timeout_s=1.0)
    started = time.monotonic()
    with pytest.raises(ChainUnreachable):
        ChainRentals(client).rental(NODE)
    assert time.monotonic() - started < 1.5


def test_silent_chain_deadline_honoured(chain_sim):
    chain_sim.state.load({"machines": {NODE: {"status": "online"}}})
    chain_sim.state.delay_s = 5.0
    client = ChainClient([chain_sim.url], timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(ChainUnreachable, match=r"no answer within 0\.5s"):
        client.machine_status(NODE)
    assert time.monotonic() - started < 1.2


@pytest.mark.parametrize("make_peer", [header_drip, body_drip])
def test_dripping_host_cut_at_the_deadline(make_peer):
    peer = make_peer(0.1)
    try:
        started = time.monotonic()
        with pytest.raises(ChainUnreachable):
            ChainClient([peer.url], timeout_s=0.8).current_block()
        assert time.monotonic() - started < 1.5
    finally:
        peer.close()


def test_chain_down_serves_the_cached_value_marked_stale(chain_sim):
    chain_sim.state.load(rented(NODE, RENTER, rent_end=2000, block=1000))
    now = [1000.0]
    rentals = _rentals(chain_sim, ttl_s=10.0, retry_after_s=30.0, timeout_s=0.5,
                       clock=lambda: now[0])
    fresh = rentals.rental(NODE)
    asked = len(chain_sim.state.requests)
    now[0] += 5
    cached = rentals.rental(NODE)  # within the TTL: no call
    assert (cached.stale, cached.age_s, len(chain_sim.state.requests)) == (False, 5.0, asked)
    chain_sim.state.delay_s = 3.0  # the chain stops answering within the deadline
    now[0] += 10
    started = time.monotonic()
    stale = rentals.rental(NODE)
    assert time.monotonic() - started < 1.2
    assert (stale.status, stale.stale, stale.age_s) == ("rented", True, 15.0)
    assert stale.rent_end_at == fresh.rent_end_at and "no answer" in (stale.error or "")
    # while the chain is down, nothing is asked: a whole pass costs one deadline
    asked = len(chain_sim.state.requests)
    now[0] += 1
    started = time.monotonic()
    assert rentals.rental(NODE).stale and time.monotonic() - started < 0.1
    assert len(chain_sim.state.requests) == asked
    with pytest.raises(ChainUnreachable):
        rentals.rental("ffff")  # never cached: no value to fall back on
    chain_sim.state.delay_s = 0.0
    now[0] += 30
    again = rentals.rental(NODE)
    assert (again.stale, again.age_s) == (False, 0.0)


def test_failover_to_the_next_host_and_stick_to_it(chain_sims):
    good = chain_sims()
    good.state.load({"machines": {NODE: {"status": "online"}}})
    bad = chain_sims()
    bad.state.raw_answers["onlineProfile_getMachineInfo"] = b"<html>502</html>"
    dead = _dead_url()
    client = ChainClient([dead, bad.url, good.url], timeout_s=2.0)
    assert client.machine_status(NODE) == "online"
    assert len(bad.state.requests) == 1
    assert client.machine_status(NODE) == "online"
    assert len(bad.state.requests) == 1  # the host that answered is asked first


def test_every_host_answering_badly_is_a_bad_answer(chain_sims):
    first, second = chain_sims(), chain_sims()
    first.state.raw_answers["chain_getBlock"] = b'{"result": {"block": {}}}'
    second.state.raw_answers["chain_getBlock"] = b"not json"
    with pytest.raises(ChainBadAnswer, match="no 'header'"):
        ChainClient([first.url, second.url]).current_block()


@pytest.mark.parametrize("body", [
    b"", b"\xff\xfe", b"null", b"[]", b'{"result": []}', b'{"result": {"machineStatus": 1}}',
    b'{"result": {"machineStatus": null}}', b'{"jsonrpc": "2.0", "error": "boom"}',
    b"[" * 100_000, b'{"result": {"machineStatus": "' + b"x" * (2 * 1024 * 1024) + b'"}}',
])
def test_malformed_answers_are_typed_errors(chain_sim, body):
    chain_sim.state.raw_answers["onlineProfile_getMachineInfo"] = body
    rentals = _rentals(chain_sim)
    with pytest.raises(ChainBadAnswer):
        rentals.rental(NODE)


def test_malformed_rent_order_of_a_rented_machine(chain_sim):
    chain_sim.state.load(rented(NODE, RENTER, rent_end=2000, block=1000))
    chain_sim.state.raw_answers["rentMachine_getRentOrder"] = (
        b'{"jsonrpc":"2.0","result":{"renter":"x","rentEnd":"2000"},"id":1}')
    with pytest.raises(ChainBadAnswer, match="'rentEnd' is not"):
        _rentals(chain_sim).rental(NODE)


def test_verify_window_through_committee_ops(chain_sim):
    chain_sim.state.load({"current_block": 5000, "machines": {
        NODE: {"status": "verify", "verifiers": [RENTER]}}})
    client = ChainClient([chain_sim.url])
    assert client.in_verify_time(NODE, RENTER)
    assert not client.in_verify_time(NODE, "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty")


def test_https_host_certificate_is_verified(tmp_path):
    import ssl

    from agent.tls import make_self_signed
    from baremetal.emulator.chain_sim import ChainSimServer, ChainState

    make_self_signed(tmp_path / "c.crt", tmp_path / "c.key", ["127.0.0.1"])
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(tmp_path / "c.crt", tmp_path / "c.key")
    server = ChainSimServer("127.0.0.1", free_port(), ChainState(current_block=77), tls=tls)
    server.start()
    try:
        assert server.url.startswith("https://")
        with pytest.raises(ChainUnreachable, match="SSLError"):
            ChainClient([server.url], timeout_s=2.0).current_block()
        # the node itself never verifies (docs/protocol.md §14.1): verify_tls=False does as it does
        assert ChainClient([server.url], verify_tls=False).current_block() == 77
    finally:
        server.stop()


def test_one_block_call_per_block_time_for_many_machines(chain_sim):
    machines = {f"{i:02x}" * 32: {"status": "rented", "renter": RENTER, "rent_end": 2000}
                for i in range(5)}
    chain_sim.state.load({"current_block": 1000, "machines": machines})
    rentals = _rentals(chain_sim)
    assert {rentals.rental(node).status for node in machines} == {"rented"}
    methods = [json.loads(r)["method"] for r in chain_sim.state.requests]
    assert methods.count("chain_getBlock") == 1
    assert methods.count("onlineProfile_getMachineInfo") == 5


def test_chain_down_pass_over_many_machines_costs_one_deadline(chain_sim):
    chain_sim.state.delay_s = 3.0
    rentals = _rentals(chain_sim, ttl_s=0.0, timeout_s=0.4)  # retry window: 5 s at least
    started = time.monotonic()
    for i in range(10):
        with pytest.raises(ChainUnreachable):
            rentals.rental(f"{i:02x}" * 32)
    assert time.monotonic() - started < 0.8
    assert len(chain_sim.state.requests) == 1
