"""Request shapes of every endpoint, recorded by a real HTTP peer on loopback.

Each call is checked for method, path and JSON body against the wiki's http-api.md and
the handlers of rest_api_service.cpp; answers are scripted where the emulator cannot
produce them (e.g. a bootdev that the node would confirm).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from baremetal.dbc.auth import MultisigAuth, MultisigSign, NodeKeyAuth, SessionAuth, WalletAuth
from baremetal.dbc.client import Client
from baremetal.dbc.models import NewServer, ServerChanges
from baremetal.errors import AuthorityRefused, InvalidInput, OperationFailed, SignatureRejected
from baremetal.signing import verify
from tests.integration.test_client_peer import ScriptedPeer

MANAGER_KEY = "398f0c28f98885e046333d4a41c19cee4c37368a9832c6502f6cfd182e2aef89"
MANAGER_ID = "8eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a48"
GPU = "58fb618aa482c41114eb3cfdaefd3ba183172da9e25251449d045043fbd37f45"
SERVER = "fcf2cd8b99958606d260ca00c5ac00c88c242bcf8eb38e7cc3f29e9719a73f39"
SESSION = SessionAuth("3QRjS1PsbDReGJKVBBRqxUh9RqXB5jbfHJ8bMgGoJ3C9HHHHm9rCmmh", "ca89d0ad")
SESSION_FIELDS = {"session_id": SESSION.session_id, "session_id_sign": "ca89d0ad"}


@pytest.fixture
def peer() -> Iterator[ScriptedPeer]:
    server = ScriptedPeer()
    yield server
    server.close()


def only(peer: ScriptedPeer) -> tuple[str, str, Any]:
    (request,) = peer.requests
    assert request.headers.get("Content-Type") == "application/json"
    return request.method, request.path, request.json()


def renter_body(additional: dict[str, Any], node: str = GPU) -> dict[str, Any]:
    return {"peer_nodes_list": [node], "additional": additional, **SESSION_FIELDS}


# -- VM, disk, snapshot, image and LAN endpoints (http-api.md) --------------------------

VM_CASES = [
    (lambda c: c.create_task(GPU, {"image_name": "ubuntu.qcow2", "cpu_cores": "8"}, SESSION),
     "/api/v1/tasks/start", {"image_name": "ubuntu.qcow2", "cpu_cores": "8"}),
    (lambda c: c.get_task(GPU, "vm_1", SESSION), "/api/v1/tasks/vm_1", {}),
    (lambda c: c.list_tasks(GPU, SESSION), "/api/v1/tasks", {}),
    (lambda c: c.shutdown_task(GPU, "vm_1", SESSION), "/api/v1/tasks/shutdown/vm_1", {}),
    (lambda c: c.poweroff_task(GPU, "vm_1", SESSION), "/api/v1/tasks/poweroff/vm_1", {}),
    (lambda c: c.start_task(GPU, "vm_1", SESSION), "/api/v1/tasks/start/vm_1", {}),
    (lambda c: c.delete_task(GPU, "vm_1", SESSION), "/api/v1/tasks/delete/vm_1", {}),
    (lambda c: c.restart_task(GPU, "vm_1", SESSION), "/api/v1/tasks/restart/vm_1", {}),
    (lambda c: c.restart_task(GPU, "vm_1", SESSION, force=True),
     "/api/v1/tasks/restart/vm_1?force_reboot=true", {}),
    (lambda c: c.task_logs(GPU, "vm_1", SESSION), "/api/v1/tasks/logs/vm_1?flag=tail&line_num=100",
     {}),
    (lambda c: c.task_logs(GPU, "vm_1", SESSION, flag="head", line_num=10),
     "/api/v1/tasks/logs/vm_1?flag=head&line_num=10", {}),
    (lambda c: c.modify_task(GPU, "vm_1", {"new_ssh_port": "5586"}, SESSION),
     "/api/v1/tasks/modify/vm_1", {"new_ssh_port": "5586"}),
    (lambda c: c.set_task_password(GPU, "vm_1", "dbc", "vm123456", SESSION),
     "/api/v1/tasks/passwd/vm_1", {"username": "dbc", "password": "vm123456"}),
    (lambda c: c.list_disks(GPU, "vm_1", SESSION), "/api/v1/disk/list/vm_1", {}),
    (lambda c: c.resize_disk(GPU, "vm_1", "vdb", 20, SESSION), "/api/v1/disk/resize/vm_1",
     {"disk": "vdb", "size": 20}),
    (lambda c: c.add_disk(GPU, "vm_1", 20, SESSION), "/api/v1/disk/add/vm_1",
     {"size": 20, "mount_dir": "/data"}),
    (lambda c: c.delete_disk(GPU, "vm_1", "vdb", SESSION), "/api/v1/disk/delete/vm_1",
     {"disk": "vdb"}),
    (lambda c: c.list_snapshots(GPU, "vm_1", SESSION), "/api/v1/snapshot/list/vm_1", {}),
    (lambda c: c.get_snapshot(GPU, "vm_1", "snap1", SESSION), "/api/v1/snapshot/list/vm_1/snap1",
     {}),
    (lambda c: c.create_snapshot(GPU, "vm_1", "snap1", SESSION, desc="d", image_server="ID_2"),
     "/api/v1/snapshot/create/vm_1", {"snapshot_name": "snap1", "desc": "d", "image_server": "ID_2"}),
    (lambda c: c.delete_snapshot(GPU, "vm_1", "snap1", SESSION),
     "/api/v1/snapshot/delete/vm_1/snap1", {}),
    (lambda c: c.list_images(node_id=GPU, image_server="ID_1", auth=SESSION), "/api/v1/images",
     {"image_server": "ID_1"}),
    (lambda c: c.download_image(GPU, "ubuntu.qcow2", "ID_1", "/my_local_dir", SESSION),
     "/api/v1/images/download",
     {"image_server": "ID_1", "image_filename": "ubuntu.qcow2", "local_dir": "/my_local_dir"}),
    (lambda c: c.upload_image("ubuntu.qcow2", "ID_1", node_id=GPU, auth=SESSION),
     "/api/v1/images/upload", {"image_filename": "ubuntu.qcow2", "image_server": "ID_1"}),
    (lambda c: c.image_download_progress(GPU, "ubuntu.qcow2", SESSION),
     "/api/v1/images/downloadprogress", {"image_filename": "ubuntu.qcow2"}),
    (lambda c: c.image_upload_progress(GPU, "ubuntu.qcow2", SESSION),
     "/api/v1/images/uploadprogress", {"image_filename": "ubuntu.qcow2"}),
    (lambda c: c.stop_image_download(GPU, "ubuntu.qcow2", SESSION),
     "/api/v1/images/download_stop", {"image_filename": "ubuntu.qcow2"}),
    (lambda c: c.stop_image_upload(GPU, "ubuntu.qcow2", SESSION),
     "/api/v1/images/upload_stop", {"image_filename": "ubuntu.qcow2"}),
    (lambda c: c.delete_image(GPU, "ubuntu.qcow2", SESSION), "/api/v1/images/delete",
     {"image_filename": "ubuntu.qcow2"}),
    (lambda c: c.create_lan(GPU, "testnet", "192.168.66.0/24", SESSION), "/api/v1/lan/create",
     {"network_name": "testnet", "ip_cidr": "192.168.66.0/24"}),
    (lambda c: c.delete_lan(GPU, "testnet", SESSION), "/api/v1/lan/delete/testnet", {}),
]


@pytest.mark.parametrize(("call", "path", "additional"), VM_CASES)
def test_vm_image_and_lan_requests(peer, call, path, additional):
    peer.queue_json({"task_id": "vm_1"})
    reply = call(Client(peer.url, timeout_s=2))
    assert reply.message == {"task_id": "vm_1"}
    assert only(peer) == ("POST", path, renter_body(additional))


def test_image_center_requests_without_a_node(peer):
    client = Client(peer.url, timeout_s=2)
    client.list_image_servers()
    client.list_images(image_server="ID_1")
    client.upload_image("ubuntu.qcow2", "ID_1")
    bodies = [(r.path, r.json()) for r in peer.requests]
    assert bodies == [
        ("/api/v1/images/servers", {"peer_nodes_list": [], "additional": {}}),
        ("/api/v1/images", {"peer_nodes_list": [], "additional": {"image_server": "ID_1"}}),
        ("/api/v1/images/upload", {"peer_nodes_list": [], "additional": {
            "image_filename": "ubuntu.qcow2", "image_server": "ID_1"}}),
    ]


@pytest.mark.parametrize("call", [
    lambda c: c.get_task(GPU, "start", SESSION),
    lambda c: c.get_task(GPU, "a/b", SESSION),
    lambda c: c.start_task(GPU, "vm 1", SESSION),
    lambda c: c.task_logs(GPU, "vm_1", SESSION, flag="middle"),
    lambda c: c.task_logs(GPU, "vm_1", SESSION, line_num=0),
    lambda c: c.task_logs(GPU, "vm_1", SESSION, line_num=101),
    lambda c: c.resize_disk(GPU, "vm_1", "vdb", 0, SESSION),
    lambda c: c.add_disk(GPU, "vm_1", True, SESSION),
    lambda c: c.modify_task(GPU, "vm_1", {}, SESSION),
    lambda c: c.create_lan(GPU, "net", "192.168.66.0/24", SESSION),
    lambda c: c.create_lan(GPU, "testnet", "192.168.66.0/24; rm -rf /", SESSION),
    lambda c: c.list_images(),
    lambda c: c.delete_snapshot(GPU, "vm_1", "a?b", SESSION),
    lambda c: c.set_task_password(GPU, "vm_1", "dbc", 'pa"ss', SESSION),
])
def test_bad_input_never_reaches_the_wire(peer, call):
    with pytest.raises(InvalidInput):
        call(Client(peer.url, timeout_s=2))
    assert peer.requests == []


# -- node, bare metal and DeepLink ------------------------------------------------------

def test_version_probe_is_a_bodiless_get(peer):
    peer.queue_json({"client_version": "0.4.1.8"})
    assert Client(peer.url + "/api/v1/", timeout_s=2).version().at_least("0.4.1.7")
    (request,) = peer.requests
    assert (request.method, request.path, request.body) == ("GET", "/api/v1/", b"")


def test_node_endpoints(peer):
    client = Client(peer.url, timeout_s=2)
    peer.queue_json({"mining_nodes": [{"node_id": GPU, "name": "n", "version": "0.4.1.8"}]})
    assert client.list_mining_nodes()[0].node_id == GPU
    peer.queue_json({"version": "0.4.1.8", "node_type": "2", "ip": "127.0.0.5", "os": "W"})
    assert client.node_info(SERVER).node_type == "2"
    peer.queue_json({"session_id": "3QRj"})
    assert client.session_id(SERVER, WalletAuth("5Dy8", "nonce", "sig")) == "3QRj"
    assert [(r.path, r.json()) for r in peer.requests] == [
        ("/api/v1/mining_nodes", {"peer_nodes_list": [], "additional": {}}),
        ("/api/v1/mining_nodes", {"peer_nodes_list": [SERVER], "additional": {}}),
        ("/api/v1/mining_nodes/session_id", {"peer_nodes_list": [SERVER], "additional": {},
                                             "wallet": "5Dy8", "nonce": "nonce", "sign": "sig"}),
    ]


def test_manager_calls_target_the_signing_wallet_and_sign_fresh_nonces(peer):
    client, auth = Client(peer.url, timeout_s=2), NodeKeyAuth(MANAGER_KEY)
    peer.queue_json({"bare_metal_nodes": [{"node_id": SERVER, "uuid": "u-1"}]})
    server = NewServer("u-1", "127.0.0.5", "127.0.0.1", "admin", "pw", ipmi_port=6230)
    assert client.add_bare_metal([server], auth)[0].node_id == SERVER
    peer.queue_json("1 were successfully deleted, 0 failed")
    assert client.delete_bare_metal([SERVER], auth).succeeded == 1
    peer.queue_json("")
    client.modify_bare_metal(SERVER, ServerChanges(ip="127.0.0.6"), auth)
    paths = [r.path for r in peer.requests]
    assert paths == ["/api/v1/bare_metal/add", "/api/v1/bare_metal/delete",
                     f"/api/v1/bare_metal/modify/{SERVER}"]
    bodies = [r.json() for r in peer.requests]
    assert [b["additional"] for b in bodies] == [
        {"bare_metal_nodes": [server.to_wire()]}, {"bare_metal_node_ids": [SERVER]},
        {"ip": "127.0.0.6"}]
    assert all(b["peer_nodes_list"] == [MANAGER_ID] == [b["wallet"]] for b in bodies)
    assert len({b["nonce"] for b in bodies}) == 3
    assert all(verify(b["sign"], b["nonce"], MANAGER_ID) for b in bodies)


def test_list_targets_follow_auth_and_manager_id(peer):
    client = Client(peer.url, timeout_s=2)
    for _ in range(4):
        peer.queue_json({"bare_metal_nodes": []})
    client.list_bare_metal()
    client.list_bare_metal(NodeKeyAuth(MANAGER_KEY))
    client.list_bare_metal(manager_id=MANAGER_ID)
    assert client.get_bare_metal("uuid-7", manager_id=MANAGER_ID) is None
    bodies = [r.json() for r in peer.requests]
    assert [b["peer_nodes_list"] for b in bodies] == [[], [MANAGER_ID], [MANAGER_ID], [MANAGER_ID]]
    assert "wallet" not in bodies[0] and bodies[1]["wallet"] == MANAGER_ID
    assert peer.requests[3].path == "/api/v1/bare_metal/uuid-7"


@pytest.mark.parametrize("call", [
    lambda c: c.add_bare_metal([], NodeKeyAuth(MANAGER_KEY)),
    lambda c: c.add_bare_metal([NewServer("u", "i", "h", "a", "p")] * 2, NodeKeyAuth(MANAGER_KEY)),
    lambda c: c.add_bare_metal([NewServer(f"u{i}", "i", "h", "a", "p") for i in range(102)],
                               NodeKeyAuth(MANAGER_KEY)),
    lambda c: c.delete_bare_metal([], NodeKeyAuth(MANAGER_KEY)),
    lambda c: c.delete_bare_metal(SERVER, NodeKeyAuth(MANAGER_KEY)),
    lambda c: c.delete_bare_metal([""], NodeKeyAuth(MANAGER_KEY)),
    lambda c: c.get_bare_metal("add"),
    lambda c: c.get_bare_metal("a/b"),
    lambda c: c.power(SERVER, "cycle", SESSION),
    lambda c: c.set_boot_device(SERVER, "usb", SESSION),
    lambda c: c.set_deeplink(SERVER, auth=SESSION),
    lambda c: c.set_deeplink(SERVER, device_id="123", auth=SESSION),
    lambda c: c.set_deeplink(SERVER, device_id='1"2', device_password="abc123", auth=SESSION),
    lambda c: c.set_deeplink(SERVER, device_password="", auth=SESSION),
    lambda c: c.set_deeplink(SERVER, device_password="x" * 465, auth=SESSION),
    lambda c: c.set_deeplink(SERVER, device_password='a"b', auth=SESSION),
])
def test_bad_bare_metal_input_never_reaches_the_wire(peer, call):
    with pytest.raises(InvalidInput):
        call(Client(peer.url, timeout_s=2))
    assert peer.requests == []


def test_power_bootdev_and_deeplink_requests(peer):
    client = Client(peer.url, timeout_s=2)
    peer.queue_json("Chassis Power is on")
    assert client.power(SERVER, "status", SESSION).power_state == "on"
    peer.queue_json("bare metal client not existed", errcode=-3)
    unconfirmed = client.set_boot_device(SERVER, "pxe", SESSION)
    peer.queue_json("Set Boot Device to disk")
    confirmed = client.set_boot_device(SERVER, "disk", SESSION)
    peer.queue_json({"device_id": "123", "device_password": "aAbBcC"})
    assert client.get_deeplink(SERVER, SESSION).device_password == "aAbBcC"
    peer.queue_json("ok")
    client.set_deeplink(SERVER, device_password="n3w", auth=SESSION)
    assert (unconfirmed.confirmed, confirmed.confirmed) == (False, True)
    assert unconfirmed.message == "bare metal client not existed"
    assert [(r.path, r.json()) for r in peer.requests] == [
        ("/api/v1/bare_metal/power", renter_body({"command": "status"}, SERVER)),
        ("/api/v1/bare_metal/bootdev", renter_body({"device": "pxe"}, SERVER)),
        ("/api/v1/bare_metal/bootdev", renter_body({"device": "disk"}, SERVER)),
        ("/api/v1/deeplink", renter_body({}, SERVER)),
        ("/api/v1/deeplink/set", renter_body({"device_password": "n3w"}, SERVER)),
    ]


def test_bootdev_refusals_other_than_the_constant_are_errors(peer):
    client = Client(peer.url, timeout_s=2)
    peer.queue_json("check authority failed: wallet not rented", errcode=-3)
    with pytest.raises(AuthorityRefused):
        client.set_boot_device(SERVER, "pxe", SESSION)
    peer.queue_json("bare metal client not existed", errcode=1)
    with pytest.raises(OperationFailed):  # only the -3 spelling is the known quirk
        client.set_boot_device(SERVER, "pxe", SESSION)


def test_node_side_signature_rejection_is_typed(peer):
    peer.queue_json("verify sign failed", errcode=-3)
    with pytest.raises(SignatureRejected) as info:
        Client(peer.url, timeout_s=2).delete_bare_metal([SERVER], NodeKeyAuth(MANAGER_KEY))
    assert (info.value.http_status, info.value.errcode) == (200, -3)


def test_multisig_body_carries_threshold_as_a_string(peer):
    auth = MultisigAuth(("5A", "5B", "5C"), 2, (MultisigSign("5A", "n1", "s1"),
                                                 MultisigSign("5B", "n2", "s2")))
    peer.queue_json("Chassis Power Control: Up/On")
    Client(peer.url, timeout_s=2).power(SERVER, "on", auth)
    body = peer.requests[0].json()
    assert body["multisig_accounts"]["threshold"] == "2"
    assert body["peer_nodes_list"] == [SERVER] and body["additional"] == {"command": "on"}
    assert "wallet" not in body and "session_id" not in body


def test_list_all_fetches_expected_servers_beyond_the_cap(peer):
    def item(n: int) -> dict[str, Any]:
        return {"node_id": f"{n:064x}", "node_private_key": "*", "uuid": f"u-{n}", "ip": "i",
                "os": "", "description": "", "ipmi_hostname": "h", "ipmi_username": "*",
                "ipmi_password": "*"}

    peer.queue_json({"bare_metal_nodes": [item(n) for n in range(51)]})
    peer.queue_json({"bare_metal_nodes": [item(60)]})
    peer.queue_json({"bare_metal_nodes": []})
    listing = Client(peer.url, timeout_s=2).list_all_bare_metal(
        NodeKeyAuth(MANAGER_KEY), ["u-3", "u-60", f"{61:064x}", "u-60"])
    assert listing.capped and len(listing.servers) == 52
    assert listing.missing == (f"{61:064x}",)
    assert [r.path for r in peer.requests] == [
        "/api/v1/bare_metal", "/api/v1/bare_metal/u-60", f"/api/v1/bare_metal/{61:064x}"]
    assert [s.uuid for s in listing.servers][-1] == "u-60"
