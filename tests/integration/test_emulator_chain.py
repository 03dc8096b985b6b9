"""``bm-node-emulator --chain``: the emulator's rental checks ask the chain simulator, and
the agent's chain client reads the same simulator: one truth (docs/protocol.md §4.4, §14).
"""

from __future__ import annotations

import json
import time

import pytest

from baremetal import signing
from baremetal.chain import ChainClient, ChainRentals
from tests.support.chain import rented
from tests.support.emulator import bm_post, register_servers, start_emulator
from tests.support.ports import free_port
from tests.support.procs import python_module

PREFIX = "check authority failed: "


def _renter():
    pair = signing.new_node_keypair()
    return signing.public_key_to_ss58(bytes.fromhex(pair.node_id)), pair.private_key


def _renter_fields(wallet: str, key: str) -> dict[str, str]:
    nonce = signing.make_nonce()
    return {"wallet": wallet, "nonce": nonce, "sign": signing.sign(key, nonce)}


def _server(uuid: str, **extra):
    item = {"uuid": uuid, "ip": "127.0.0.9", "os": "win10", "desc": "seat",
            "ipmi_hostname": "127.0.0.1", "ipmi_username": "admin", "ipmi_password": "secret12"}
    item.update(extra)
    return item


def _emulator(spawn, tmp_path, chain_sim, *extra):
    return start_emulator(spawn, tmp_path, deeplink=False,
                          extra_args=["--chain", chain_sim.url, *extra])


def test_renter_checks_follow_the_chain(spawn, tmp_path, chain_sim):
    emu = _emulator(spawn, tmp_path, chain_sim)
    node_id = register_servers(emu, [_server("x")])["x"]
    wallet, key = _renter()
    agent_view = ChainRentals(ChainClient([chain_sim.url]), ttl_s=0.0)

    def deeplink() -> dict:
        return bm_post(emu.client_url, "/deeplink", {
            "peer_nodes_list": [node_id], "additional": {}, **_renter_fields(wallet, key)}).json()

    assert deeplink()["message"] == PREFIX + "query machine_status failed"
    assert agent_view.rental(node_id).status == "unknown"
    chain_sim.state.load({"current_block": 10, "machines": {node_id: {"status": "online"}}})
    assert deeplink()["message"] == PREFIX + "machine is not be rented"
    assert agent_view.rental(node_id).status == "online"
    chain_sim.state.load(rented(node_id, wallet, rent_end=2000, block=1999))
    # the renter passes authority; no DeepLink session -> errcode 1
    assert deeplink() == {"errcode": 1, "message": "deeplink service not connected"}
    assert agent_view.rental(node_id).status == "rented"
    chain_sim.state.current_block = 2001
    assert deeplink()["message"] == PREFIX + "wallet not rented"
    assert agent_view.rental(node_id).status == "rent_ended"


def test_verifier_window_from_committee_ops(spawn, tmp_path, chain_sim):
    emu = _emulator(spawn, tmp_path, chain_sim)
    node_id = register_servers(emu, [_server("v")])["v"]
    wallet, key = _renter()
    other, other_key = _renter()
    chain_sim.state.load({"current_block": 5000, "machines": {
        node_id: {"status": "verify", "verifiers": [wallet]}}})

    def deeplink(fields) -> dict:
        return bm_post(emu.client_url, "/deeplink", {
            "peer_nodes_list": [node_id], "additional": {}, **fields}).json()

    assert deeplink(_renter_fields(wallet, key))["errcode"] == 1  # passed authority
    assert deeplink(_renter_fields(other, other_key))["message"] == (
        PREFIX + "not in verify time")


def test_chain_down_is_machine_status_failed(spawn, tmp_path, chain_sim):
    emu = _emulator(spawn, tmp_path, chain_sim, "--chain-timeout-s", "0.5")
    node_id = register_servers(emu, [_server("d")])["d"]
    wallet, key = _renter()
    chain_sim.state.load(rented(node_id, wallet, rent_end=2000, block=10))
    chain_sim.state.raw_answers["onlineProfile_getMachineInfo"] = b"<html>502</html>"
    reply = bm_post(emu.client_url, "/deeplink", {
        "peer_nodes_list": [node_id], "additional": {}, **_renter_fields(wallet, key)})
    assert reply.json()["message"] == PREFIX + "query machine_status failed"


def _bmc_server(bmc, uuid: str):
    return _server(uuid, ipmi_hostname=bmc.host, ipmi_port=bmc.port,
                   ipmi_username=bmc.user, ipmi_password=bmc.password)


@pytest.mark.ipmisim
def test_renter_power_allowed_while_rented_refused_after_rent_end(spawn, tmp_path, chain_sim,
                                                                   ipmi_sim):
    bmc = ipmi_sim(initial_power="off")
    emu = _emulator(spawn, tmp_path, chain_sim)
    node_id = register_servers(emu, [_bmc_server(bmc, "gpu1")])["gpu1"]
    wallet, key = _renter()
    chain_sim.state.load(rented(node_id, wallet, rent_end=2000, block=1000))

    def power(command: str) -> dict:
        return bm_post(emu.client_url, "/bare_metal/power", {
            "peer_nodes_list": [node_id], "additional": {"command": command},
            **_renter_fields(wallet, key)}).json()

    assert power("on") == {"errcode": 0, "message": "Chassis Power Control: Up/On"}
    assert bmc.power() == "on"
    chain_sim.state.current_block = 2001
    assert power("off") == {"errcode": -3, "message": PREFIX + "wallet not rented"}
    assert bmc.power() == "on"


@pytest.mark.ipmisim
@pytest.mark.slow
def test_idle_timer_powers_off_after_rent_end_on_chain(spawn, tmp_path, chain_sim, ipmi_sim):
    expired, live = ipmi_sim(initial_power="on"), ipmi_sim(initial_power="on")
    emu = start_emulator(spawn, tmp_path, client=False, deeplink=False, extra_args=[
        "--chain", chain_sim.url, "--prune-first-s", "0.5", "--prune-every-s", "1",
        "--prune-gap-s", "0.1"])
    ids = register_servers(emu, [_bmc_server(expired, "expired"), _bmc_server(live, "live")])
    chain_sim.state.load({"current_block": 100, "machines": {
        ids["expired"]: {"status": "rented", "renter": "5x", "rent_end": 99},
        ids["live"]: {"status": "rented", "renter": "5x", "rent_end": 101}}})
    deadline = time.monotonic() + 20
    while expired.power() == "on":
        assert time.monotonic() < deadline, emu.log()[-2000:]
        time.sleep(0.1)
    time.sleep(1.5)
    assert live.power() == "on"


def test_emulator_runs_the_simulator_on_its_rentals_file(spawn, tmp_path):
    sim_port = free_port()
    emu = start_emulator(spawn, tmp_path, deeplink=False,
                         extra_args=["--chain-sim-listen", f"127.0.0.1:{sim_port}"])
    chain_url = f"http://127.0.0.1:{sim_port}"
    assert f"chain={chain_url}" in emu.log()
    node_id = register_servers(emu, [_server("f")])["f"]
    wallet, key = _renter()
    emu.set_rentals(rented(node_id, wallet, rent_end=50, block=49))
    reply = bm_post(emu.client_url, "/deeplink", {
        "peer_nodes_list": [node_id], "additional": {}, **_renter_fields(wallet, key)})
    assert reply.json()["errcode"] == 1  # authority passed: rented on the (simulated) chain
    agent_view = ChainRentals(ChainClient([chain_url]), ttl_s=0.0)
    assert agent_view.rental(node_id).status == "rented"
    emu.set_rentals(rented(node_id, wallet, rent_end=50, block=51))
    assert agent_view.rental(node_id).status == "rent_ended"
    reply = bm_post(emu.client_url, "/deeplink", {
        "peer_nodes_list": [node_id], "additional": {}, **_renter_fields(wallet, key)})
    assert reply.json()["message"] == PREFIX + "wallet not rented"


def test_chain_sim_command_serves_a_state_file(spawn, tmp_path):
    state = tmp_path / "chain.json"
    state.write_text(json.dumps({"current_block": 7, "machines": {"ab12": {"status": "online"}}}))
    port = free_port()
    proc = spawn(python_module("baremetal.emulator.chain_sim", "--listen", f"127.0.0.1:{port}",
                               "--state", str(state)), name="chain-sim")
    deadline = time.monotonic() + 15
    while "bm-chain-sim ready" not in proc.log():
        assert proc.alive() and time.monotonic() < deadline, proc.log()
        time.sleep(0.02)
    client = ChainClient([f"http://127.0.0.1:{port}"])
    assert (client.current_block(), client.machine_status("ab12")) == (7, "online")
    state.write_text(json.dumps({"current_block": 8, "machines": {"ab12": {
        "status": "rented", "renter": "5x"}}}))
    assert (client.current_block(), client.machine_status("ab12")) == (8, "rented")
