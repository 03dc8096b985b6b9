"""The client-node role: relay, rental authorization, sessions, timeouts.

Reference: docs/protocol.md §2.6, §3, §4.4-4.5.
"""

from __future__ import annotations

import json
import socket
import struct
import time

import pytest

from baremetal import signing
from tests.support.emulator import bm_post, register_servers, signed_fields, start_emulator


def _server(uuid: str, ip: str = "127.0.0.9", **extra):
    item = {"uuid": uuid, "ip": ip, "os": "win10", "desc": "seat", "ipmi_hostname": "127.0.0.1",
            "ipmi_username": "admin", "ipmi_password": "secret12"}
    item.update(extra)
    return item


def _renter():
    pair = signing.new_node_keypair()
    return signing.public_key_to_ss58(bytes.fromhex(pair.node_id)), pair.private_key


def _renter_fields(wallet: str, key: str) -> dict[str, str]:
    nonce = signing.make_nonce()
    return {"wallet": wallet, "nonce": nonce, "sign": signing.sign(key, nonce)}


def _rented(node_id: str, renter: str, **extra):
    return {"machines": {node_id: {"status": "rented", "renter": renter, **extra}}}


def test_client_lists_announced_servers_even_deleted(emulator):
    ids = register_servers(emulator, [_server("a"), _server("b")])
    bm_post(emulator.url, "/bare_metal/delete", {
        "peer_nodes_list": [], "additional": {"bare_metal_node_ids": [ids["a"]]},
        **signed_fields(emulator.manager_key)})
    reply = bm_post(emulator.client_url, "/bare_metal", {"peer_nodes_list": [], "additional": {}})
    name = reply.json()["message"]["bare_metal_nodes"][0]["name"]
    expected = ",".join(
        f'{{"node_id":"{i}","name":"{name}","version":"0.4.1.8"}}' for i in sorted(ids.values()))
    assert reply.content == (
        '{"errcode":0, "message":{"bare_metal_nodes":[' + expected + "]}}\r\n").encode()


def test_unknown_target_and_wrong_role_answers(emulator):
    body = {"peer_nodes_list": ["ab" * 32], "additional": {"command": "status"},
            **_renter_fields(*_renter())}
    unknown = bm_post(emulator.client_url, "/bare_metal/power", body)
    assert (unknown.status_code, unknown.json()) == (
        400, {"errcode": -32701, "message": "create node request failed"})
    add = bm_post(emulator.client_url, "/bare_metal/add", {
        "peer_nodes_list": [], "additional": {}, **signed_fields(emulator.manager_key)})
    assert add.json() == {"errcode": -32600, "message": "only bare metal node support"}
    manager = bm_post(emulator.client_url, "/bare_metal/power", {
        **body, "peer_nodes_list": [emulator.manager_id]})
    assert manager.content == b'{"errcode":-3, "message":"Not supported"}\r\n'
    bad_command = bm_post(emulator.client_url, "/bare_metal/power", {
        **body, "additional": {"command": "cycle"}})
    assert bad_command.json() == {"errcode": -25, "message": "invalid command"}


def test_manager_ops_over_p2p(emulator):
    ids = register_servers(emulator, [_server("p1"), _server("p2")])
    signed = signed_fields(emulator.manager_key)
    # two servers: no power_status (a single one would run ipmitool against a dead BMC)
    listed = bm_post(emulator.client_url, "/bare_metal", {
        "peer_nodes_list": [emulator.manager_id], "additional": {}})
    assert listed.status_code == 200
    items = listed.json()["message"]["bare_metal_nodes"]
    assert [i["node_private_key"] for i in items] == ["*" * 64] * 2
    assert all("power_status" not in i for i in items)
    bad = bm_post(emulator.client_url, "/bare_metal/add", {
        "peer_nodes_list": [emulator.manager_id], "additional": {"bare_metal_nodes": []},
        **signed_fields(signing.new_node_keypair().private_key)})
    assert bad.content == b'{"errcode":-3, "message":"verify sign failed"}\r\n'
    modify = bm_post(emulator.client_url, f"/bare_metal/modify/{ids['p1']}", {
        "peer_nodes_list": [emulator.manager_id], "additional": {"os": "linux"}, **signed})
    assert modify.content == b'{"errcode":0, "message":""}\r\n'
    delete = bm_post(emulator.client_url, "/bare_metal/delete", {
        "peer_nodes_list": [emulator.manager_id],
        "additional": {"bare_metal_node_ids": [ids["p1"]]}, **signed})
    assert delete.content == b'{"errcode":0, "message":"1 were successfully deleted, 0 failed"}\r\n'


def test_authority_refusals_are_http_200_minus_3(emulator):
    node_id = register_servers(emulator, [_server("x")])["x"]
    wallet, key = _renter()
    other, other_key = _renter()

    def query(fields, **rental):
        emulator.set_rentals({"machines": {node_id: rental}} if rental else {"machines": {}})
        reply = bm_post(emulator.client_url, "/deeplink", {
            "peer_nodes_list": [node_id], "additional": {}, **fields})
        assert reply.status_code == 200
        return reply.content

    prefix = b'{"errcode":-3, "message":"check authority failed: '
    assert query(_renter_fields(wallet, key)) == prefix + b'query machine_status failed"}\r\n'
    assert query(_renter_fields(wallet, key), status="online") == (
        prefix + b'machine is not be rented"}\r\n')
    assert query(_renter_fields(other, other_key), status="rented", renter=wallet) == (
        prefix + b'wallet not rented"}\r\n')
    assert query({}, status="rented", renter=wallet) == prefix + b'nonce check failed"}\r\n'
    assert query({"session_id": "nope", "session_id_sign": "00"}, status="rented",
                 renter=wallet) == prefix + b'session_id is invalid"}\r\n'
    assert query(_renter_fields(wallet, key), status="rented", renter=wallet,
                 rent_status="rentExpired") == prefix + b'wallet not rented"}\r\n'
    # the renter passes; no DeepLink session -> errcode 1 (not -3)
    assert query(_renter_fields(wallet, key), status="rented", renter=wallet) == (
        b'{"errcode":1, "message":"deeplink service not connected"}\r\n')


def test_session_id_one_per_wallet_and_usable(emulator):
    node_id = register_servers(emulator, [_server("s")])["s"]
    wallet, key = _renter()
    emulator.set_rentals(_rented(node_id, wallet))
    first = bm_post(emulator.client_url, "/mining_nodes/session_id", {
        "peer_nodes_list": [node_id], "additional": {}, **_renter_fields(wallet, key)})
    session_id = first.json()["message"]["session_id"]
    assert first.content == (
        '{"errcode":0, "message":{"session_id":"' + session_id + '"}}\r\n').encode()
    again = bm_post(emulator.client_url, "/mining_nodes/session_id", {
        "peer_nodes_list": [node_id], "additional": {}, **_renter_fields(wallet, key)})
    assert again.json()["message"]["session_id"] == session_id
    stored = json.loads((emulator.data_dir / "db" / "sessionid.json").read_text())
    assert stored[wallet]["session_id"] == session_id
    via_session = bm_post(emulator.client_url, "/deeplink", {
        "peer_nodes_list": [node_id], "additional": {}, "session_id": session_id,
        "session_id_sign": signing.sign(key, session_id)})
    assert via_session.json() == {"errcode": 1, "message": "deeplink service not connected"}
    emulator.set_rentals(_rented(node_id, wallet, rent_status="rentExpired"))
    expired = bm_post(emulator.client_url, "/deeplink", {
        "peer_nodes_list": [node_id], "additional": {}, "session_id": session_id,
        "session_id_sign": signing.sign(key, session_id)})
    assert expired.json()["message"] == "check authority failed: machine has already expired"


def test_multisig_renter(emulator):
    from baremetal.emulator.rentals import multisig_account

    node_id = register_servers(emulator, [_server("ms")])["ms"]
    signers = [_renter() for _ in range(3)]
    wallets = [w for w, _ in signers]
    emulator.set_rentals({"machines": {node_id: {
        "status": "rented", "multisig": {"wallets": wallets, "threshold": 2}}}})
    signs = [_renter_fields(w, k) for w, k in signers[:2]]
    reply = bm_post(emulator.client_url, "/mining_nodes/session_id", {
        "peer_nodes_list": [node_id], "additional": {},
        "multisig_accounts": {"wallets": wallets, "threshold": "2", "signs": signs}})
    assert reply.json()["errcode"] == 0
    stored = json.loads((emulator.data_dir / "db" / "sessionid.json").read_text())
    assert multisig_account(wallets, 2) in stored


@pytest.mark.slow  # five relays that each wait out a 1 s timer
def test_relay_timeouts(spawn, tmp_path):
    emu = start_emulator(spawn, tmp_path, env={"BM_EMULATOR_RELAY_TIMEOUT_S": "1"})
    ids = register_servers(emu, [_server("off"), _server("gone")])
    wallet, key = _renter()
    emu.set_rentals({"machines": {ids["off"]: {"status": "rented", "renter": wallet,
                                               "offline": True}}})
    base = {"peer_nodes_list": [ids["off"]], **_renter_fields(wallet, key)}
    cases = [
        ("/bare_metal/power", {"command": "status"}, "bare metal power timeout"),
        ("/bare_metal/bootdev", {"device": "pxe"}, "bare metal bootdev timeout"),
        ("/bare_metal", {}, "list bare metal timeout"),
        ("/deeplink", {}, "list bare metal timeout"),
        ("/deeplink/set", {"device_password": "x"}, "list bare metal timeout"),
    ]
    for path, additional, message in cases:
        started = time.monotonic()
        reply = bm_post(emu.client_url, path, {**base, "additional": additional})
        assert time.monotonic() - started >= 0.9
        assert reply.status_code == 500
        assert reply.content == (
            b'{\n    "errcode": -1,\n    "message": "' + message.encode() + b'"\n}\r\n')
    # a deleted server stays in the service list: the node no longer answers for it
    bm_post(emu.url, "/bare_metal/delete", {"peer_nodes_list": [], "additional": {
        "bare_metal_node_ids": [ids["gone"]]}, **signed_fields(emu.manager_key)})
    gone = bm_post(emu.client_url, "/mining_nodes", {"peer_nodes_list": [ids["gone"]],
                                                     "additional": {}})
    assert (gone.status_code, gone.json()["message"]) == (500, "query node info timeout")


def test_node_info_and_unescaped_json_over_p2p(emulator):
    ids = register_servers(emulator, [_server("n1"), _server("n2", os='w"10')])
    info = bm_post(emulator.client_url, "/mining_nodes", {
        "peer_nodes_list": [ids["n1"]], "additional": {}})
    assert info.content == (b'{"errcode":0,"message":{"version":"0.4.1.8","node_type":"2",'
                            b'"ip":"127.0.0.9","os":"win10"}}\r\n')
    manager = bm_post(emulator.client_url, "/mining_nodes", {
        "peer_nodes_list": [emulator.manager_id], "additional": {}})
    assert manager.content == (
        b'{"errcode":-3, "message":"bare metal node has no machine info for now"}\r\n')
    broken = bm_post(emulator.client_url, "/mining_nodes", {
        "peer_nodes_list": [ids["n2"]], "additional": {}})
    assert (broken.status_code, broken.json()) == (500, {"errcode": -1,
                                                         "message": "response parse error"})
    empty = bm_post(emulator.client_url, "/mining_nodes", {"peer_nodes_list": [],
                                                           "additional": {}})
    assert empty.content == b'{"errcode":0, "message":{"mining_nodes":[]}}\r\n'


def test_vm_endpoints_for_bare_metal_ids(emulator):
    node_id = register_servers(emulator, [_server("vm")])["vm"]
    fields = _renter_fields(*_renter())
    for path in ("/tasks", "/tasks/abc", "/disk/list/abc", "/snapshot/list/abc", "/lan",
                 "/images", "/monitor"):
        reply = bm_post(emulator.client_url, path, {
            "peer_nodes_list": [node_id], "additional": {}, **fields})
        assert reply.content == b'{"errcode":-3, "message":"bare metal nodes are not supported"}\r\n'
    unknown = bm_post(emulator.client_url, "/tasks", {
        "peer_nodes_list": ["cd" * 32], "additional": {}, **fields})
    assert unknown.json()["message"] == "create node request failed"
    routed = bm_post(emulator.client_url, "/disk/list", {"peer_nodes_list": [node_id],
                                                         "additional": {}})
    assert routed.json() == {"errcode": -32600, "message": "invalid requests uri"}


def _frame(payload: dict) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return struct.pack("<I", len(body)) + body


def _wait_session(emulator, node_id: str, expect_id: str) -> dict:
    deadline = time.monotonic() + 5
    while True:
        reply = bm_post(emulator.url, "/deeplink", {"peer_nodes_list": [node_id],
                                                     "additional": {}})
        if reply.status_code == 200 and reply.json()["message"]["device_id"] == expect_id:
            return reply.json()
        assert time.monotonic() < deadline, reply.text
        time.sleep(0.05)


def test_deeplink_local_paths(emulator):
    node_id = register_servers(emulator, [_server("dl", ip="127.0.0.1")])["dl"]
    record = bm_post(emulator.url, "/bare_metal/dl", {
        "peer_nodes_list": [], "additional": {}, **signed_fields(emulator.manager_key)})
    server_key = record.json()["message"]["bare_metal_nodes"][0]["node_private_key"]
    missing = bm_post(emulator.url, "/deeplink", {"peer_nodes_list": [node_id], "additional": {}})
    assert (missing.status_code, missing.content) == (400, (
        b'{\n    "errcode": -32600,\n    "message": "deeplink service not connected"\n}\r\n'))
    unsigned = bm_post(emulator.url, "/deeplink/set", {
        "peer_nodes_list": [node_id], "additional": {"device_password": "p"}})
    assert unsigned.json() == {"errcode": -25, "message": "verify sign failed"}
    not_connected = bm_post(emulator.url, "/deeplink/set", {
        "peer_nodes_list": [node_id], "additional": {"device_password": "p"},
        **signed_fields(server_key)})
    assert not_connected.content == b'{"errcode": -1,"message": "deeplink service not connected"}\r\n'
    with socket.create_connection((emulator.deeplink_host, emulator.deeplink_port), 5) as lan:
        lan.sendall(_frame({"method": "setDeviceInfo",
                            "data": {"device_id": "dev-1", "password": "pw1234"}}))
        shown = _wait_session(emulator, node_id, "dev-1")
        assert shown["message"] == {"device_id": "dev-1", "device_password": "******"}
        full = bm_post(emulator.url, "/deeplink", {"peer_nodes_list": [node_id],
                                                   "additional": {}, **signed_fields(server_key)})
        assert full.content == (b'{"errcode":0, "message":{"device_id":"dev-1",'
                                b'"device_password":"pw1234"}}\r\n')
        listed = bm_post(emulator.url, "/bare_metal", {"peer_nodes_list": [], "additional": {}})
        item = listed.json()["message"]["bare_metal_nodes"][0]
        assert (item["deeplink_device_id"], item["deeplink_device_password"]) == ("dev-1",
                                                                                  "******")
        ok = bm_post(emulator.url, "/deeplink/set", {
            "peer_nodes_list": [node_id], "additional": {"device_password": "new9"},
            **signed_fields(server_key)})
        assert ok.content == b'{"errcode": 0,"message": "ok"}\r\n'
        lan.settimeout(5)
        header = lan.recv(4, socket.MSG_WAITALL)
        body = lan.recv(struct.unpack("<I", header)[0], socket.MSG_WAITALL)
        assert body == b'{"method":"setDevicePassword","data":{"password":"new9"}}'
        # the renter, over the client node, sees the password unmasked and may set it
        wallet, key = _renter()
        emulator.set_rentals(_rented(node_id, wallet))
        relayed = bm_post(emulator.client_url, "/deeplink", {
            "peer_nodes_list": [node_id], "additional": {}, **_renter_fields(wallet, key)})
        assert relayed.content == (b'{"errcode":0, "message":{"device_id":"dev-1",'
                                   b'"device_password":"pw1234"}}\r\n')
        renter_set = bm_post(emulator.client_url, "/deeplink/set", {
            "peer_nodes_list": [node_id], "additional": {"device_password": "r3nt"},
            **_renter_fields(wallet, key)})
        assert renter_set.content == b'{"errcode":0, "message":"ok"}\r\n'
        header = lan.recv(4, socket.MSG_WAITALL)
        body = lan.recv(struct.unpack("<I", header)[0], socket.MSG_WAITALL)
        assert body == b'{"method":"setDevicePassword","data":{"password":"r3nt"}}'


@pytest.mark.parametrize("version", ["0.4.1.6"])
def test_legacy_deeplink_stored_in_record(spawn, tmp_path, version):
    emu = start_emulator(spawn, tmp_path, deeplink=False, node_version=version)
    node_id = register_servers(emu, [_server("old")])["old"]
    record = bm_post(emu.url, "/bare_metal/old", {
        "peer_nodes_list": [], "additional": {}, **signed_fields(emu.manager_key)})
    item = record.json()["message"]["bare_metal_nodes"][0]
    assert (item["deeplink_device_id"], item["deeplink_device_password"]) == ("", "")
    server_key = item["node_private_key"]
    stored = bm_post(emu.url, "/deeplink/set", {
        "peer_nodes_list": [node_id], "additional": {"device_id": "d9", "device_password": "pp"},
        **signed_fields(server_key)})
    assert stored.content == b'{"errcode": 0,"message": "ok"}\r\n'
    query = bm_post(emu.url, "/deeplink", {"peer_nodes_list": [node_id], "additional": {}})
    assert query.json()["message"] == {"device_id": "d9", "device_password": "**"}
    db = json.loads((emu.data_dir / "db" / "bare_metal.json").read_text())
    assert db[node_id]["deeplink_device_password"] == "pp"
