"""Power and boot device through the emulator against a real BMC (ipmi_sim, IPMI 1.5 ``lan``).

Reference: docs/protocol.md §3.6-3.7, §6.2-6.4, §7.4 and §10 items 5 and 12.
"""

from __future__ import annotations

import time

import pytest

from baremetal import signing
from tests.support.emulator import bm_post, register_servers, signed_fields, start_emulator

pytestmark = pytest.mark.ipmisim


def _renter():
    pair = signing.new_node_keypair()
    return signing.public_key_to_ss58(bytes.fromhex(pair.node_id)), pair.private_key


def _renter_fields(wallet: str, key: str) -> dict[str, str]:
    nonce = signing.make_nonce()
    return {"wallet": wallet, "nonce": nonce, "sign": signing.sign(key, nonce)}


def _server_for(bmc, uuid: str = "gpu1", **extra):
    item = {"uuid": uuid, "ip": "127.0.0.9", "os": "win10", "desc": "seat 1",
            "ipmi_hostname": bmc.host, "ipmi_port": bmc.port, "ipmi_username": bmc.user,
            "ipmi_password": bmc.password}
    item.update(extra)
    return item


def _rented_setup(emu, bmc, **extra):
    node_id = register_servers(emu, [_server_for(bmc, **extra)])["gpu1"]
    wallet, key = _renter()
    emu.set_rentals({"machines": {node_id: {"status": "rented", "renter": wallet}}})
    return node_id, wallet, key


def _power(emu, node_id, wallet, key, command):
    return bm_post(emu.client_url, "/bare_metal/power", {
        "peer_nodes_list": [node_id], "additional": {"command": command},
        **_renter_fields(wallet, key)})


def test_power_through_client_role(emulator, ipmi_sim):
    bmc = ipmi_sim(initial_power="off")
    node_id, wallet, key = _rented_setup(emulator, bmc)
    status = _power(emulator, node_id, wallet, key, "status")
    assert status.content == b'{"errcode":0, "message":"Chassis Power is off"}\r\n'
    on = _power(emulator, node_id, wallet, key, "on")
    assert on.content == b'{"errcode":0, "message":"Chassis Power Control: Up/On"}\r\n'
    assert bmc.power() == "on"
    view = bm_post(emulator.client_url, "/bare_metal", {
        "peer_nodes_list": [node_id], "additional": {}, **_renter_fields(wallet, key)})
    assert view.content == (b'{"errcode":0, "message":{"version":"0.4.1.8","ip":"127.0.0.9",'
                            b'"os":"win10","description":"seat 1",'
                            b'"power_status":"Chassis Power is on"}}\r\n')
    single = bm_post(emulator.client_url, "/bare_metal/gpu1", {
        "peer_nodes_list": [emulator.manager_id], "additional": {}})
    assert single.json()["message"]["bare_metal_nodes"][0]["power_status"] == (
        "Chassis Power is on")
    assert bmc.password not in emulator.log()


@pytest.mark.slow  # ipmitool's own retries on a refused login take about 8 s
def test_power_failure_is_minus_3_with_ipmitool_text(emulator, ipmi_sim):
    bmc = ipmi_sim()
    node_id, wallet, key = _rented_setup(emulator, bmc, ipmi_password="wrongpass")
    reply = _power(emulator, node_id, wallet, key, "status")
    body = reply.json()
    assert reply.status_code == 200 and body["errcode"] == -3
    assert "Error:" in body["message"] or "error:" in body["message"]
    assert "\n" not in body["message"]
    assert "wrongpass" not in emulator.log()


def test_bootdev_runs_but_always_answers_error(emulator, ipmi_sim):
    bmc = ipmi_sim()
    node_id, wallet, key = _rented_setup(emulator, bmc)
    reply = bm_post(emulator.client_url, "/bare_metal/bootdev", {
        "peer_nodes_list": [node_id], "additional": {"device": "pxe"},
        **_renter_fields(wallet, key)})
    assert reply.content == b'{"errcode":-3, "message":"bare metal client not existed"}\r\n'
    assert bmc.boot() == "pxe"
    local = bm_post(emulator.url, "/bare_metal/bootdev", {
        "peer_nodes_list": [node_id], "additional": {"device": "pxe"}})
    assert (local.status_code, local.json()) == (400, {"errcode": -32600,
                                                      "message": "only client node support"})


def test_legacy_power_on_clears_stored_deeplink_password(spawn, tmp_path, ipmi_sim):
    bmc = ipmi_sim(initial_power="off")
    emu = start_emulator(spawn, tmp_path, deeplink=False, node_version="0.4.1.6")
    node_id, wallet, key = _rented_setup(emu, bmc)
    listed = bm_post(emu.url, "/bare_metal", {"peer_nodes_list": [], "additional": {},
                                             **signed_fields(emu.manager_key)})
    server_key = listed.json()["message"]["bare_metal_nodes"][0]["node_private_key"]
    bm_post(emu.url, "/deeplink/set", {"peer_nodes_list": [node_id], "additional": {
        "device_id": "dev", "device_password": "pw12"}, **signed_fields(server_key)})
    assert _power(emu, node_id, wallet, key, "on").json()["errcode"] == 0
    query = bm_post(emu.url, "/deeplink", {"peer_nodes_list": [node_id], "additional": {},
                                          **signed_fields(server_key)})
    assert query.json()["message"] == {"device_id": "dev", "device_password": ""}


@pytest.mark.slow
def test_prune_timer_powers_idle_servers_off_once(spawn, tmp_path, ipmi_sim):
    idle, expired, live = ipmi_sim(initial_power="on"), ipmi_sim(initial_power="on"), \
        ipmi_sim(initial_power="on")
    emu = start_emulator(spawn, tmp_path, client=False, deeplink=False, extra_args=[
        "--prune-first-s", "0.5", "--prune-every-s", "1", "--prune-gap-s", "0.1"])
    ids = register_servers(emu, [_server_for(idle, "idle"), _server_for(expired, "expired"),
                                 _server_for(live, "live")])
    emu.set_rentals({"current_block": 100, "machines": {
        ids["idle"]: {"status": "online"},
        ids["expired"]: {"status": "rented", "renter": "5x", "rent_end": 99},
        ids["live"]: {"status": "rented", "renter": "5x", "rent_end": 101},
    }})
    deadline = time.monotonic() + 20
    while idle.power() == "on" or expired.power() == "on":
        assert time.monotonic() < deadline, emu.log()[-2000:]
        time.sleep(0.1)
    idle.set_power("on")
    time.sleep(3)  # at least two more passes
    assert idle.power() == "on"  # only once per node run
    assert live.power() == "on"
