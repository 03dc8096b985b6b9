"""Local bare-metal management on the emulator (docs/protocol.md §3.1-3.4; §10 items 6-9)."""

from __future__ import annotations

import json

from baremetal import signing
from tests.support.emulator import bm_post, register_servers, signed_fields, start_emulator


def _server(uuid: str, **extra):
    item = {"uuid": uuid, "ip": "127.0.0.9", "os": "win10", "desc": "seat " + uuid,
            "ipmi_hostname": "127.0.0.1", "ipmi_username": "admin", "ipmi_password": "secret12"}
    item.update(extra)
    return item


def _manager(emu, **fields):
    return {"peer_nodes_list": [], "additional": {}, **signed_fields(emu.manager_key), **fields}


def test_node_dat_written_like_the_node(emulator):
    lines = (emulator.data_dir / "dat" / "node.dat").read_text().splitlines()
    assert lines == [f"node_id={emulator.manager_id}",
                     f"node_private_key={emulator.manager_key}"]
    assert signing.node_id_from_private_key(emulator.manager_key) == emulator.manager_id


def test_add_requires_manager_signature(emulator):
    payload = {"peer_nodes_list": [], "additional": {"bare_metal_nodes": [_server("a")]}}
    unsigned = bm_post(emulator.url, "/bare_metal/add", payload)
    assert (unsigned.status_code, unsigned.json()) == (400, {"errcode": -25,
                                                            "message": "invalid wallet sign"})
    other = signing.new_node_keypair()
    bad = bm_post(emulator.url, "/bare_metal/add", {**payload, **signed_fields(other.private_key)})
    assert bad.status_code == 400
    assert bad.content == b'{\n    "errcode": -25,\n    "message": "verify sign failed"\n}\r\n'
    forged = {**payload, **signed_fields(emulator.manager_key), "sign": "00" * 64}
    assert bm_post(emulator.url, "/bare_metal/add", forged).json()["message"] == (
        "verify sign failed")


def test_add_validation_messages(emulator):
    def add(items):
        return bm_post(emulator.url, "/bare_metal/add", _manager(
            emulator, additional={"bare_metal_nodes": items})).json()["message"]

    assert add([_server("a", ipmi_port=0)]) == "invalid ipmi port"
    assert add([_server("a b")]) == "bare metal node info a b invalid"
    assert add([_server("a", ip="")]) == "bare metal node info a invalid"
    assert add([]) == "additional bare_metal_nodes is empty"
    register_servers(emulator, [_server("a")])
    assert add([_server("a")]) == "bare metal node uuid a already existed"
    no_key = bm_post(emulator.url, "/bare_metal/add", _manager(emulator))
    assert no_key.json()["message"] == "parse json additional bare_metal_nodes failed"


def test_add_list_mask_and_port(emulator):
    ids = register_servers(emulator, [_server("b-2"), _server("a-1", ipmi_port=6230),
                                      _server("c-3", ipmi_port="623")])
    reply = bm_post(emulator.url, "/bare_metal", {"peer_nodes_list": [], "additional": {}})
    text = reply.content.decode()
    assert text.startswith('{"errcode":0, "message":{"bare_metal_nodes":[{"node_id":"')
    assert text.endswith("]}}\r\n")
    items = reply.json()["message"]["bare_metal_nodes"]
    assert [i["node_id"] for i in items] == sorted(ids.values())
    by_uuid = {i["uuid"]: i for i in items}
    assert by_uuid["a-1"]["ipmi_port"] == 6230 and '"ipmi_port":6230' in text
    assert "ipmi_port" not in by_uuid["b-2"] and "ipmi_port" not in by_uuid["c-3"]
    first = by_uuid["a-1"]
    assert first["node_private_key"] == "*" * 64
    assert first["ipmi_username"] == "*****" and first["ipmi_password"] == "********"
    assert "power_status" not in first and "deeplink_device_id" not in first
    assert list(first) == ["node_id", "node_private_key", "uuid", "ip", "os", "description",
                           "ipmi_hostname", "ipmi_username", "ipmi_password", "ipmi_port"]
    unmasked = bm_post(emulator.url, "/bare_metal/a-1", _manager(emulator)).json()
    (item,) = unmasked["message"]["bare_metal_nodes"]
    assert item["ipmi_password"] == "secret12"
    assert signing.node_id_from_private_key(item["node_private_key"]) == ids["a-1"]


def test_list_caps_at_51_items(emulator):
    register_servers(emulator, [_server(f"s{i:02d}") for i in range(60)])
    items = bm_post(emulator.url, "/bare_metal", {"peer_nodes_list": [], "additional": {}}).json()
    assert len(items["message"]["bare_metal_nodes"]) == 51


def test_modify_and_delete_messages(emulator):
    ids = register_servers(emulator, [_server("m1"), _server("m2")])
    modify = bm_post(emulator.url, f"/bare_metal/modify/{ids['m1']}", _manager(
        emulator, additional={"desc": "moved", "ipmi_port": 624, "ip": ""}))
    assert modify.content == b'{"errcode": 0,"message": ""}\r\n'
    listed = bm_post(emulator.url, "/bare_metal/m1", {"peer_nodes_list": [], "additional": {}})
    (item,) = listed.json()["message"]["bare_metal_nodes"]
    assert (item["description"], item["ipmi_port"], item["ip"]) == ("moved", 624, "127.0.0.9")
    clash = bm_post(emulator.url, f"/bare_metal/modify/{ids['m1']}", _manager(
        emulator, additional={"uuid": "m2"}))
    assert clash.content == b'{"errcode": -1,"message": "bare metal node uuid m2 already existed"}\r\n'
    unknown = bm_post(emulator.url, "/bare_metal/modify/nope", _manager(emulator))
    assert (unknown.status_code, unknown.json()["message"]) == (400, "node id not existed")
    bad_uuid = bm_post(emulator.url, f"/bare_metal/modify/{ids['m1']}", _manager(
        emulator, additional={"uuid": "a_b"}))
    assert bad_uuid.json()["message"] == "invalid uuid"
    delete = bm_post(emulator.url, "/bare_metal/delete", _manager(
        emulator, additional={"bare_metal_node_ids": [ids["m1"], "nope"]}))
    assert delete.content == b'{"errcode": 0,"message": "1 were successfully deleted, 1 failed"}\r\n'
    again = bm_post(emulator.url, "/bare_metal/delete", _manager(
        emulator, additional={"bare_metal_node_ids": ["nope"]}))
    assert again.content == b'{"errcode": -1,"message": "bare metal node id nope not existed"}\r\n'
    empty = bm_post(emulator.url, "/bare_metal/delete", _manager(
        emulator, additional={"bare_metal_node_ids": []}))
    assert empty.json()["message"] == "additional bare_meta_node_ids is an empty array"


def test_no_replay_protection(emulator):
    fields = signed_fields(emulator.manager_key)
    payload = {"peer_nodes_list": [], **fields}
    for uuid in ("r1", "r2"):
        reply = bm_post(emulator.url, "/bare_metal/add", {
            **payload, "additional": {"bare_metal_nodes": [_server(uuid)]}})
        assert reply.json()["errcode"] == 0


def test_servers_survive_restart(spawn, tmp_path):
    first = start_emulator(spawn, tmp_path, client=False, deeplink=False)
    ids = register_servers(first, [_server("keep")])
    first.proc.stop()
    db = json.loads((first.data_dir / "db" / "bare_metal.json").read_text())
    assert list(db) == list(ids.values())
    second = start_emulator(spawn, tmp_path, client=False, deeplink=False,
                            data_dir=first.data_dir)
    assert second.manager_id == first.manager_id
    items = bm_post(second.url, "/bare_metal", {"peer_nodes_list": [], "additional": {}}).json()
    assert [i["uuid"] for i in items["message"]["bare_metal_nodes"]] == ["keep"]


def test_unescaped_desc_is_sent_as_is_locally(emulator):
    register_servers(emulator, [_server("q", desc='say "hi"')])
    reply = bm_post(emulator.url, "/bare_metal", {"peer_nodes_list": [], "additional": {}})
    assert reply.status_code == 200
    assert b'"description":"say "hi""' in reply.content
