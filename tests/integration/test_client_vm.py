"""VM, disk, snapshot, image and LAN calls against the emulator's client node.

The emulator has no GPU (compute) node: relayed to a bare-metal server id these calls
get the node's ``-3`` refusal, and to an id nobody announced ``create node request
failed``. Request shapes are pinned separately in test_client_requests.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from baremetal.dbc.auth import Auth
from baremetal.dbc.client import Client
from baremetal.errors import InvalidRequest, NodeRejected
from tests.integration.test_client_bare_metal import Renter, Rig, make_rig, rent, server
from tests.support.emulator import EmulatorHandle

Call = Callable[[Client, str, Auth], Any]

VM_CALLS: list[Call] = [
    lambda c, n, a: c.create_task(n, {"image_name": "ubuntu.qcow2"}, a),
    lambda c, n, a: c.get_task(n, "vm_1", a),
    lambda c, n, a: c.list_tasks(n, a),
    lambda c, n, a: c.shutdown_task(n, "vm_1", a),
    lambda c, n, a: c.poweroff_task(n, "vm_1", a),
    lambda c, n, a: c.start_task(n, "vm_1", a),
    lambda c, n, a: c.delete_task(n, "vm_1", a),
    lambda c, n, a: c.restart_task(n, "vm_1", a, force=True),
    lambda c, n, a: c.task_logs(n, "vm_1", a, flag="head", line_num=5),
    lambda c, n, a: c.modify_task(n, "vm_1", {"new_cpu_cores": "4"}, a),
    lambda c, n, a: c.set_task_password(n, "vm_1", "dbc", "vm123456", a),
    lambda c, n, a: c.list_disks(n, "vm_1", a),
    lambda c, n, a: c.resize_disk(n, "vm_1", "vdb", 20, a),
    lambda c, n, a: c.add_disk(n, "vm_1", 20, a),
    lambda c, n, a: c.delete_disk(n, "vm_1", "vdb", a),
    lambda c, n, a: c.list_snapshots(n, "vm_1", a),
    lambda c, n, a: c.get_snapshot(n, "vm_1", "snap1", a),
    lambda c, n, a: c.create_snapshot(n, "vm_1", "snap1", a, image_server="ID_1"),
    lambda c, n, a: c.delete_snapshot(n, "vm_1", "snap1", a),
    lambda c, n, a: c.list_images(node_id=n, image_server="ID_1", auth=a),
    lambda c, n, a: c.upload_image("ubuntu.qcow2", "ID_1", node_id=n, auth=a),
    lambda c, n, a: c.download_image(n, "ubuntu.qcow2", "ID_1", "/data", a),
    lambda c, n, a: c.image_download_progress(n, "ubuntu.qcow2", a),
    lambda c, n, a: c.image_upload_progress(n, "ubuntu.qcow2", a),
    lambda c, n, a: c.stop_image_download(n, "ubuntu.qcow2", a),
    lambda c, n, a: c.stop_image_upload(n, "ubuntu.qcow2", a),
    lambda c, n, a: c.delete_image(n, "ubuntu.qcow2", a),
    lambda c, n, a: c.create_lan(n, "testnet1", "192.168.66.0/24", a),
    lambda c, n, a: c.delete_lan(n, "testnet1", a),
]


@pytest.fixture
def rig(emulator: EmulatorHandle) -> Rig:
    return make_rig(emulator)


def test_vm_calls_to_a_bare_metal_server_are_refused_by_the_node(rig):
    (added,) = rig.local.add_bare_metal([server(1)], rig.manager)
    renter = Renter.new()
    rent(rig, added.node_id, renter)
    for index, call in enumerate(VM_CALLS):
        with pytest.raises(NodeRejected) as info:
            call(rig.relay, added.node_id, renter.auth())
        assert (info.value.http_status, info.value.errcode) == (200, -3), index


def test_vm_calls_to_an_unknown_node_fail_fast(rig):
    renter = Renter.new()
    for call in VM_CALLS:
        with pytest.raises(InvalidRequest, match="create node request failed"):
            call(rig.relay, "9" * 64, renter.auth())


def test_node_info_of_the_manager_id_is_refused(rig):
    with pytest.raises(NodeRejected, match="bare metal node has no machine info"):
        rig.relay.node_info(rig.handle.manager_id)
    assert rig.relay.list_mining_nodes() == []


def test_image_servers_are_listed_by_the_client_node_itself(rig):
    reply = rig.relay.list_image_servers()
    assert reply.message == {"image_server": []}
