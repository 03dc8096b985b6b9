"""The client's DeepLink calls against the emulator and a simulated DeepLink on the LAN.

The simulated DeepLink connects to the emulator's DeepLink LAN service from its own
127.0.0.N source address; the server is registered with that ``ip``, which is how the
node pairs them (docs/protocol.md §7.2). Every spelling of "deeplink service not connected"
must come out as ``DeepLinkNotConnected``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from baremetal.dbc.auth import NodeKeyAuth, WalletAuth
from baremetal.emulator.deeplink_client import SimulatedDeepLink
from baremetal.errors import (
    DeepLinkNotConnected,
    InvalidRequest,
    NodeRejected,
    SignatureRejected,
)
from tests.integration.test_client_bare_metal import (
    Renter,
    Rig,
    make_rig,
    rent,
    server,
)
from tests.support.emulator import EmulatorHandle
from tests.support.wait import poll

SOURCE_IP = "127.0.0.42"


def _device_id(rig: Rig, node_id: str) -> str | None:
    # "connected" is set when DeepLink has sent its report; the node may not have
    # read it yet, so "not connected" still means "not yet" here.
    try:
        return rig.local.get_deeplink(node_id).device_id
    except DeepLinkNotConnected:
        return None


@pytest.fixture
def rig(emulator: EmulatorHandle) -> Rig:
    return make_rig(emulator)


@pytest.fixture
def seat(rig: Rig) -> Iterator[tuple[str, NodeKeyAuth, SimulatedDeepLink]]:
    """One registered server at 127.0.0.42 with DeepLink connected and reported."""
    (added,) = rig.local.add_bare_metal([server(1, ip=SOURCE_IP)], rig.manager)
    record = rig.local.get_bare_metal(added.node_id, rig.manager)
    assert record is not None
    host, port = rig.handle.deeplink_host, rig.handle.deeplink_port
    assert host is not None and port is not None
    link = SimulatedDeepLink((host, port), device_id="700100200", password="Start123",
                             source_ip=SOURCE_IP)
    link.start()
    try:
        assert link.wait_until(lambda d: d.connected, 5.0)
        assert poll(lambda: _device_id(rig, added.node_id) == "700100200")
        yield added.node_id, NodeKeyAuth(record.node_private_key), link
    finally:
        link.stop()


def test_local_query_masks_unless_signed_by_the_server_key(rig, seat):
    node_id, server_key, _link = seat
    masked = rig.local.get_deeplink(node_id)
    assert (masked.device_id, masked.device_password) == ("700100200", "********")
    assert masked.password_masked
    clear = rig.local.get_deeplink(node_id, server_key)
    assert clear.device_password == "Start123" and not clear.password_masked
    # The manager key is not the server's key: masked, not refused.
    assert rig.local.get_deeplink(node_id, rig.manager).password_masked


def test_local_set_pushes_to_deeplink_and_reads_back(rig, seat):
    node_id, server_key, link = seat
    rig.local.set_deeplink(node_id, device_password="Fresh456", auth=server_key)
    assert link.wait_until(lambda d: d.password == "Fresh456", 5.0)
    assert poll(lambda: rig.local.get_deeplink(node_id, server_key).device_password
                      == "Fresh456")
    listed = rig.local.get_bare_metal(node_id, rig.manager)
    assert listed is not None
    assert (listed.deeplink_device_id, listed.deeplink_device_password) == ("700100200",
                                                                           "Fresh456")
    info = rig.relay.node_info(node_id)
    assert info.node_type == "2" and info.ip == SOURCE_IP
    assert info.deeplink is not None and info.deeplink.password_masked


def test_local_set_needs_the_server_key(rig, seat):
    node_id, _server_key, link = seat
    with pytest.raises(SignatureRejected, match="verify sign failed") as info:
        rig.local.set_deeplink(node_id, device_password="Nope1234", auth=rig.manager)
    assert (info.value.http_status, info.value.errcode) == (400, -25)
    forged = WalletAuth(node_id, "nonce", "00" * 64)
    with pytest.raises(SignatureRejected):
        rig.local.set_deeplink(node_id, device_password="Nope1234", auth=forged)
    assert link.password == "Start123"


def test_renter_reads_and_sets_through_the_client_node(rig, seat):
    node_id, _server_key, link = seat
    renter = Renter.new()
    rent(rig, node_id, renter)
    info = rig.relay.get_deeplink(node_id, renter.auth())
    assert (info.device_id, info.device_password) == ("700100200", "Start123")
    rig.relay.set_deeplink(node_id, device_id="ignored", device_password="Renter77",
                           auth=renter.auth())
    assert link.wait_until(lambda d: d.password == "Renter77", 5.0)
    assert link.device_id == "700100200"  # device_id is ignored since 0.4.1.7 (§3.9)
    with pytest.raises(NodeRejected, match="check authority failed"):
        rig.relay.get_deeplink(node_id, Renter.new().auth())


def test_every_not_connected_spelling_is_typed(rig):
    (added,) = rig.local.add_bare_metal([server(2, ip="127.0.0.43")], rig.manager)
    record = rig.local.get_bare_metal(added.node_id, rig.manager)
    assert record is not None
    server_key, renter = NodeKeyAuth(record.node_private_key), Renter.new()
    rent(rig, added.node_id, renter)
    spellings = []
    calls = [
        lambda: rig.local.get_deeplink(added.node_id),                       # 400 / -32600
        lambda: rig.local.set_deeplink(added.node_id, device_password="Abc12345",
                                       auth=server_key),                      # 200 / -1
        lambda: rig.relay.get_deeplink(added.node_id, renter.auth()),         # 200 / 1
        lambda: rig.relay.set_deeplink(added.node_id, device_password="Abc12345",
                                       auth=renter.auth()),                   # 200 / -3
    ]
    for call in calls:
        with pytest.raises(DeepLinkNotConnected) as info:
            call()
        spellings.append((info.value.http_status, info.value.errcode))
    assert spellings == [(400, -32600), (200, -1), (200, 1), (200, -3)]
    assert record.deeplink_device_id is None


def test_unknown_server_id(rig):
    renter = Renter.new()
    with pytest.raises(InvalidRequest, match="create node request failed"):
        rig.local.get_deeplink("c" * 64, renter.auth())
    with pytest.raises(InvalidRequest, match="create node request failed"):
        rig.relay.set_deeplink("c" * 64, device_password="Abc12345", auth=renter.auth())
