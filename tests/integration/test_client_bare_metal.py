"""The client against the node emulator over real HTTP: every bare-metal endpoint.

Both roles run in one emulator process: ``local`` is the bare-metal node's own HTTP,
``relay`` the client node that forwards over "P2P". Power and bootdev run the real
``ipmitool`` inside the emulator against ``ipmi_sim`` on loopback (``ipmisim`` marker).
Helpers here are shared with test_client_deeplink.py.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from baremetal import signing
from baremetal.dbc.auth import MultisigAuth, MultisigSign, NodeKeyAuth, SessionAuth, WalletAuth
from baremetal.dbc.client import Client
from baremetal.dbc.http import LOCAL_TIMEOUT_S
from baremetal.dbc.models import NewServer, ServerChanges, is_masked
from baremetal.emulator.rentals import multisig_account
from baremetal.errors import (
    AuthorityRefused,
    DecodeError,
    InvalidRequest,
    NodeRejected,
    NodeTimeout,
    OperationFailed,
    RelayTimeout,
    SignatureRejected,
    WrongNodeRole,
)
from tests.support.emulator import EmulatorHandle, start_emulator


@dataclass
class Rig:
    """An emulator with a client on each role and the manager's key."""

    handle: EmulatorHandle
    local: Client
    relay: Client
    manager: NodeKeyAuth


@dataclass(frozen=True)
class Renter:
    """A renter wallet (SS58) with its key, signing fresh nonces on demand."""

    seed: str
    wallet: str

    @classmethod
    def new(cls) -> Renter:
        pair = signing.new_node_keypair()
        return cls(pair.private_key, signing.public_key_to_ss58(bytes.fromhex(pair.node_id)))

    def auth(self) -> WalletAuth:
        nonce = signing.make_nonce()
        return WalletAuth(self.wallet, nonce, signing.sign(self.seed, nonce))

    def multisig_sign(self) -> MultisigSign:
        auth = self.auth()
        return MultisigSign(auth.wallet, auth.nonce, auth.sign)


def make_rig(handle: EmulatorHandle) -> Rig:
    assert handle.client_url is not None
    return Rig(handle, Client(handle.url, timeout_s=LOCAL_TIMEOUT_S),
               Client(handle.client_url, timeout_s=35), NodeKeyAuth(handle.manager_key))


@pytest.fixture
def rig(emulator: EmulatorHandle) -> Rig:
    return make_rig(emulator)


def server(n: int, **overrides: Any) -> NewServer:
    fields: dict[str, Any] = {
        "uuid": f"seat-{n:03d}", "ip": f"127.0.0.{10 + n % 200}", "ipmi_hostname": "127.0.0.1",
        "ipmi_username": "admin", "ipmi_password": f"pw-{n:03d}", "os": "Windows 10",
        "desc": f"seat {n}",
    }
    fields.update(overrides)
    return NewServer(**fields)


def unchecked_server(**fields: Any) -> NewServer:
    """A NewServer that skips client-side checks, to see the node's own refusal."""
    item = object.__new__(NewServer)
    for name, value in {"os": "", "desc": "", "ipmi_port": None, **fields}.items():
        object.__setattr__(item, name, value)
    return item


def rent(rig: Rig, node_id: str, renter: Renter | None = None, **machine: Any) -> None:
    entry = {"status": "rented", "rent_status": "renting", **machine}
    if renter is not None:
        entry["renter"] = renter.wallet
    rig.handle.set_rentals({"machines": {node_id: entry}})


# -- version and listing -----------------------------------------------------------------

def test_version_probe_on_both_roles(rig):
    assert rig.local.version().client_version == "0.4.1.8"
    assert rig.relay.version().at_least("0.4.1.7")


def test_add_list_get_with_and_without_the_manager_key(rig):
    added = rig.local.add_bare_metal([server(1, ipmi_port=6230), server(2)], rig.manager)
    ids = {a.uuid: a.node_id for a in added}
    masked = {s.uuid: s for s in rig.local.list_bare_metal()}
    clear = {s.uuid: s for s in rig.local.list_bare_metal(rig.manager)}
    assert set(masked) == set(clear) == {"seat-001", "seat-002"}
    one, two = masked["seat-001"], clear["seat-001"]
    assert one.secrets_masked and one.ipmi_password == "******" and is_masked(one.ipmi_username)
    assert not two.secrets_masked and two.ipmi_password == "pw-001"
    assert signing.node_id_from_private_key(two.node_private_key) == ids["seat-001"]
    assert (one.ipmi_port, masked["seat-002"].ipmi_port) == (6230, None)
    assert one.power_status is None and one.deeplink_device_id is None
    assert one.description == "seat 1" and one.os == "Windows 10"
    by_uuid = rig.local.get_bare_metal("seat-002")
    assert by_uuid is not None and by_uuid.node_id == ids["seat-002"]
    assert rig.local.get_bare_metal(ids["seat-001"], rig.manager).ipmi_password == "pw-001"
    assert rig.local.get_bare_metal("no-such-seat") is None


def test_list_all_reaches_servers_beyond_the_51_cap(rig):
    rig.local.add_bare_metal([server(n) for n in range(60)], rig.manager)
    assert len(rig.local.list_bare_metal(rig.manager)) == 51
    expected = [f"seat-{n:03d}" for n in range(60)] + ["seat-999"]
    listing = rig.local.list_all_bare_metal(rig.manager, expected)
    assert listing.capped and listing.missing == ("seat-999",)
    assert sorted(s.uuid for s in listing.servers) == expected[:-1]
    assert not any(s.secrets_masked for s in listing.servers)
    node_ids = [s.node_id for s in listing.servers]
    assert node_ids == sorted(node_ids)


def test_list_all_below_the_cap_needs_no_extra_calls(rig):
    rig.local.add_bare_metal([server(1)], rig.manager)
    listing = rig.local.list_all_bare_metal(rig.manager, ["seat-001", "gone"])
    assert not listing.capped and listing.missing == ("gone",)
    assert [s.uuid for s in listing.servers] == ["seat-001"]


def test_client_role_listing(rig):
    added = rig.local.add_bare_metal([server(1), server(2)], rig.manager)
    summaries = rig.relay.list_bare_metal_nodes()
    assert sorted(s.node_id for s in summaries) == sorted(a.node_id for a in added)
    with pytest.raises(DecodeError, match="pass manager_id"):
        rig.relay.list_bare_metal()
    # Two servers: the manager view skips the live power status of a one-server list.
    clear = rig.relay.list_bare_metal(rig.manager)
    masked = rig.relay.list_bare_metal(manager_id=rig.handle.manager_id)
    assert sorted(s.ipmi_password for s in clear) == ["pw-001", "pw-002"]
    assert all(s.secrets_masked for s in masked)


# -- add, delete, modify -----------------------------------------------------------------

def test_add_refusals_local_and_relayed(rig):
    rig.local.add_bare_metal([server(1)], rig.manager)
    stranger = NodeKeyAuth(signing.new_node_keypair().private_key)
    forged = WalletAuth(rig.handle.manager_id, "nonce-1", "00" * 64)
    with pytest.raises(SignatureRejected) as local:
        rig.local.add_bare_metal([server(2)], forged)
    assert (local.value.http_status, local.value.errcode) == (400, -25)
    with pytest.raises(SignatureRejected) as relayed:
        rig.relay.add_bare_metal([server(2)], forged)
    assert (relayed.value.http_status, relayed.value.errcode) == (200, -3)
    with pytest.raises(InvalidRequest, match="create node request failed"):
        rig.relay.add_bare_metal([server(2)], stranger)  # peer = an id nobody announced
    with pytest.raises(InvalidRequest, match="seat-001 already existed"):
        rig.local.add_bare_metal([server(1)], rig.manager)
    with pytest.raises(NodeRejected, match="seat-001 already existed"):
        rig.relay.add_bare_metal([server(1)], rig.manager)
    missing = unchecked_server(uuid="seat-x", ip="127.0.0.9", ipmi_hostname="h",
                               ipmi_username="admin", ipmi_password="")
    with pytest.raises(InvalidRequest, match="seat-x invalid"):
        rig.local.add_bare_metal([missing], rig.manager)
    assert [s.uuid for s in rig.local.list_bare_metal()] == ["seat-001"]


def test_delete_counts_and_failures(rig):
    added = rig.local.add_bare_metal([server(1), server(2), server(3)], rig.manager)
    unknown = "f" * 64
    result = rig.local.delete_bare_metal([added[0].node_id, unknown], rig.manager)
    assert (result.succeeded, result.failed) == (1, 1)
    with pytest.raises(OperationFailed, match="not existed") as info:
        rig.local.delete_bare_metal([unknown], rig.manager)
    assert (info.value.http_status, info.value.errcode) == (200, -1)
    relayed = rig.relay.delete_bare_metal([added[1].node_id], rig.manager)
    assert (relayed.succeeded, relayed.failed) == (1, 0)
    # A server's own key names that server as the peer: the node relays it there and
    # the server id answers "Not supported" (node_request_service.cpp, docs/protocol.md §3.2).
    with pytest.raises(NodeRejected, match="Not supported"):
        rig.local.delete_bare_metal([added[2].node_id], NodeKeyAuth(added_key(rig, added[2])))
    assert [s.uuid for s in rig.local.list_bare_metal()] == ["seat-003"]


def added_key(rig: Rig, added: Any) -> str:
    found = rig.local.get_bare_metal(added.node_id, rig.manager)
    assert found is not None
    return found.node_private_key


def test_modify_changes_fields_and_reports_failures(rig):
    first, second = rig.local.add_bare_metal([server(1), server(2)], rig.manager)
    rig.local.modify_bare_metal(first.node_id, ServerChanges(ip="127.0.0.99", ipmi_port=624,
                                                             desc="moved"), rig.manager)
    rig.relay.modify_bare_metal(second.node_id, ServerChanges(ipmi_password="new-pw-2"),
                                rig.manager)
    one = rig.local.get_bare_metal(first.node_id, rig.manager)
    two = rig.local.get_bare_metal(second.node_id, rig.manager)
    assert one is not None and two is not None
    assert (one.ip, one.ipmi_port, one.description) == ("127.0.0.99", 624, "moved")
    assert (two.ipmi_password, two.ip) == ("new-pw-2", "127.0.0.12")
    with pytest.raises(InvalidRequest, match="node id not existed"):
        rig.local.modify_bare_metal("e" * 64, ServerChanges(os="x"), rig.manager)
    with pytest.raises(NodeRejected, match="node id not existed"):
        rig.relay.modify_bare_metal("e" * 64, ServerChanges(os="x"), rig.manager)
    with pytest.raises(OperationFailed, match="seat-002 already existed"):
        rig.local.modify_bare_metal(first.node_id, ServerChanges(uuid="seat-002"), rig.manager)


# -- power and boot device ---------------------------------------------------------------

def test_power_and_bootdev_are_refused_on_the_bare_metal_node(rig):
    (added,) = rig.local.add_bare_metal([server(1)], rig.manager)
    renter = Renter.new()
    for call in (lambda: rig.local.power(added.node_id, "on", renter.auth()),
                 lambda: rig.local.set_boot_device(added.node_id, "pxe", renter.auth())):
        with pytest.raises(WrongNodeRole, match="only client node support") as info:
            call()
        assert (info.value.http_status, info.value.errcode) == (400, -32600)


def test_rental_refusals_through_the_client_node(rig):
    (added,) = rig.local.add_bare_metal([server(1)], rig.manager)
    renter, other = Renter.new(), Renter.new()
    with pytest.raises(AuthorityRefused, match="query machine_status failed"):
        rig.relay.power(added.node_id, "status", renter.auth())
    rig.handle.set_rentals({"machines": {added.node_id: {"status": "online"}}})
    with pytest.raises(AuthorityRefused, match="machine is not be rented"):
        rig.relay.power(added.node_id, "on", renter.auth())
    rent(rig, added.node_id, renter)
    with pytest.raises(AuthorityRefused, match="wallet not rented"):
        rig.relay.set_boot_device(added.node_id, "pxe", other.auth())
    with pytest.raises(InvalidRequest, match="create node request failed"):
        rig.relay.power("d" * 64, "on", renter.auth())
    with pytest.raises(AuthorityRefused, match="nonce check failed"):
        rig.relay.power(added.node_id, "on", WalletAuth(renter.wallet, "nonce", "00" * 64))


@pytest.mark.ipmisim
def test_power_bootdev_and_renter_view_through_the_client_node(rig, ipmi_sim):
    bmc = ipmi_sim(initial_power="off")
    (added,) = rig.local.add_bare_metal([server(1, ipmi_hostname=bmc.host, ipmi_port=bmc.port,
                                                ipmi_username=bmc.user,
                                                ipmi_password=bmc.password)], rig.manager)
    renter = Renter.new()
    rent(rig, added.node_id, renter)
    status = rig.relay.power(added.node_id, "status", renter.auth())
    assert (status.message, status.power_state) == ("Chassis Power is off", "off")
    assert rig.relay.power(added.node_id, "on", renter.auth()).message == \
        "Chassis Power Control: Up/On"
    assert bmc.power() == "on"
    result = rig.relay.set_boot_device(added.node_id, "pxe", renter.auth())
    assert (result.confirmed, result.device) == (False, "pxe")
    assert bmc.boot() == "pxe"  # the node's error text notwithstanding, the BMC took it
    view = rig.relay.get_bare_metal_as_renter(added.node_id, renter.auth())
    assert (view.ip, view.power_status) == ("127.0.0.11", "Chassis Power is on")
    one = rig.relay.get_bare_metal("seat-001", rig.manager)
    assert one is not None and one.power_status == "Chassis Power is on"


@pytest.mark.ipmisim
def test_session_and_multisig_auth_drive_power(rig, ipmi_sim):
    bmc = ipmi_sim(initial_power="on")
    first, second = rig.local.add_bare_metal([
        server(1, ipmi_hostname=bmc.host, ipmi_port=bmc.port, ipmi_username=bmc.user,
               ipmi_password=bmc.password),
        server(2, ipmi_hostname=bmc.host, ipmi_port=bmc.port, ipmi_username=bmc.user,
               ipmi_password=bmc.password)], rig.manager)
    renter, signer_a, signer_b = Renter.new(), Renter.new(), Renter.new()
    wallets = (signer_a.wallet, signer_b.wallet)
    rig.handle.set_rentals({"machines": {
        first.node_id: {"status": "rented", "rent_status": "renting", "renter": renter.wallet},
        second.node_id: {"status": "rented", "rent_status": "renting",
                         "renter": multisig_account(list(wallets), 2),
                         "multisig": {"wallets": list(wallets), "threshold": 2}},
    }})
    session_id = rig.relay.session_id(first.node_id, renter.auth())
    session = SessionAuth(session_id, signing.sign(renter.seed, session_id))
    assert rig.relay.power(first.node_id, "status", session).power_state == "on"
    multisig = MultisigAuth(wallets, 2, (signer_a.multisig_sign(), signer_b.multisig_sign()))
    assert rig.relay.power(second.node_id, "status", multisig).power_state == "on"
    with pytest.raises(AuthorityRefused):
        rig.relay.power(first.node_id, "status",
                        SessionAuth(session_id, signing.sign(Renter.new().seed, session_id)))


@pytest.mark.ipmisim
def test_backend_failure_is_node_rejected_with_ipmitool_text(rig, ipmi_sim):
    bmc = ipmi_sim()
    # An unknown user fails at once; a wrong password makes ipmitool retry for ~8 s.
    (added,) = rig.local.add_bare_metal([server(1, ipmi_hostname=bmc.host, ipmi_port=bmc.port,
                                                ipmi_username="nobody",
                                                ipmi_password=bmc.password)], rig.manager)
    renter = Renter.new()
    rent(rig, added.node_id, renter)
    with pytest.raises(NodeRejected) as info:
        rig.relay.power(added.node_id, "status", renter.auth())
    assert type(info.value) is NodeRejected
    assert "Error: Unable to establish LAN session" in info.value.message
    assert " <line> " in info.value.message  # node joins lines so: docs/protocol.md §6.2
    assert bmc.password not in str(info.value)


# -- relay timeouts ------------------------------------------------------------------------

def test_relay_timeout_and_client_deadline(spawn, tmp_path: Path):
    handle = start_emulator(spawn, tmp_path, env={**os.environ, "BM_EMULATOR_RELAY_TIMEOUT_S": "1"})
    rig = make_rig(handle)
    (added,) = rig.local.add_bare_metal([server(1)], rig.manager)
    renter = Renter.new()
    rent(rig, added.node_id, renter, offline=True)
    started = time.monotonic()
    with pytest.raises(RelayTimeout, match="bare metal power timeout") as info:
        rig.relay.power(added.node_id, "on", renter.auth(), timeout_s=10)
    assert (info.value.http_status, info.value.errcode) == (500, -1)
    assert 0.9 < time.monotonic() - started < 5
    # Both DeepLink endpoints reuse the list's text (rest_api_service.cpp:14374, :14710).
    with pytest.raises(RelayTimeout, match="list bare metal timeout"):
        rig.relay.get_deeplink(added.node_id, renter.auth(), timeout_s=10)
    with pytest.raises(RelayTimeout, match="list bare metal timeout"):
        rig.relay.set_deeplink(added.node_id, device_password="abc123", auth=renter.auth())
    # A client deadline below the node's timer sees its own NodeTimeout instead.
    with pytest.raises(NodeTimeout):
        rig.relay.power(added.node_id, "on", renter.auth(), timeout_s=0.3)
