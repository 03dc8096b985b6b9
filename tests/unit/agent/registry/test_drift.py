"""Drift comparison between inventory and node (pure)."""

from __future__ import annotations

import dataclasses

from agent.models import RegistrationState, Server, ServerCredentials
from agent.registry.drift import DriftReport, UnknownServer, compare, node_differences
from agent.secrets import Secret
from baremetal.dbc.models import BareMetalServer

KEY = "1" * 64


def _server(index: int, **changes: object) -> Server:
    base = Server(id=index, uuid=f"pc-{index}", ip=f"10.0.0.{index}", ipmi_host=f"10.1.0.{index}",
                  ipmi_user="admin", ipmi_port=623, os="Windows 10", desc=f"seat {index}",
                  node_id=f"{index:064x}", has_node_key=True,
                  state=RegistrationState.REGISTERED)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _creds(server: Server, password: str = "pw", key: str | None = KEY) -> ServerCredentials:
    return ServerCredentials(server_id=server.id, uuid=server.uuid, ipmi_host=server.ipmi_host,
                             ipmi_port=server.ipmi_port, ipmi_user=server.ipmi_user,
                             ipmi_password=Secret(password), node_id=server.node_id,
                             node_private_key=None if key is None else Secret(key))


def _listed(server: Server, *, masked: bool = False, **changes: object) -> BareMetalServer:
    item = BareMetalServer(
        node_id=server.node_id or "", uuid=server.uuid, ip=server.ip, os=server.os,
        description=server.desc, ipmi_hostname=server.ipmi_host, ipmi_username="admin",
        ipmi_password="pw", ipmi_port=server.ipmi_port, node_private_key=KEY)
    if masked:
        item = dataclasses.replace(item, ipmi_username="*****", ipmi_password="**",
                                   node_private_key="*" * 64)
    return dataclasses.replace(item, **changes)  # type: ignore[arg-type]


def test_identical_records_are_clean() -> None:
    servers = [_server(1), _server(2)]
    report = compare(servers, {s.id: _creds(s) for s in servers},
                     [_listed(s) for s in servers], capped=False, now=10.0)
    assert report.clean and report.compared == 2 and report.node_count == 2


def test_field_differences_are_named_never_valued() -> None:
    server = _server(1)
    listed = _listed(server, ip="10.9.9.9", ipmi_port=None, ipmi_password="other",
                     node_private_key="2" * 64)
    assert node_differences(server, _creds(server), listed) == (
        "ip", "ipmi_port", "ipmi_password", "node_key")
    report = compare([server], {1: _creds(server)}, [listed], capped=False, now=0.0)
    assert "other" not in repr(report.event_detail()) and "2" * 64 not in repr(report)


def test_masked_lists_compare_only_public_fields() -> None:
    server = _server(1)
    listed = _listed(server, masked=True)
    assert node_differences(server, _creds(server), listed) == ()
    assert node_differences(server, _creds(server), _listed(server, masked=True,
                                                             os="Linux")) == ("os",)


def test_missing_unknown_unrecorded_and_moved_servers() -> None:
    registered, gone, pending = _server(1), _server(2), _server(3, node_id=None,
                                                              has_node_key=False,
                                                              state=RegistrationState.PENDING)
    moved = _server(4)
    stranger = _listed(_server(9))
    on_node = [_listed(registered), _listed(pending, node_id="c" * 64),
               _listed(moved, node_id="d" * 64), stranger]
    servers = [registered, gone, pending, moved]
    report = compare(servers, {s.id: _creds(s) for s in servers}, on_node, capped=True, now=0)
    assert report.missing_on_node == ("pc-2",)
    assert report.unrecorded == ("pc-3",)
    assert report.unknown_on_node == (UnknownServer(stranger.node_id, "pc-9"),)
    assert [(d.uuid, d.node_id, d.fields[0]) for d in report.differences] == [
        ("pc-4", "d" * 64, "node_id")]
    assert report.capped and not report.clean


def test_queued_changes_are_not_drift() -> None:
    updating = _server(1, state=RegistrationState.UPDATING)
    deleting = _server(2, state=RegistrationState.DELETING)
    deleted = _server(3, state=RegistrationState.DELETING)
    on_node = [_listed(updating, ip="1.1.1.1"), _listed(deleting)]
    servers = [updating, deleting, deleted]
    report = compare(servers, {s.id: _creds(s) for s in servers}, on_node, capped=False, now=0)
    assert report.clean and report.compared == 0


def test_fingerprint_follows_the_findings_only() -> None:
    a = DriftReport(checked_at=1.0, missing_on_node=("pc-1", "pc-2"), node_count=3)
    b = DriftReport(checked_at=2.0, missing_on_node=("pc-2", "pc-1"), node_count=5)
    c = DriftReport(checked_at=2.0, missing_on_node=("pc-1",))
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    detail = a.event_detail()
    assert detail["missing_on_node"] == ["pc-1", "pc-2"] and detail["missing_on_node_count"] == 2
