"""Drift between the agent's inventory and what the DBC bare-metal node holds.

``DriftChecker.check()`` lists the node with the manager key (secrets unmasked,
docs/protocol.md §3.1), pages past the node's 51-item cap by fetching every inventory server
the first page lacks with ``bare_metal/<id>`` (the node has no paging;
``Client.list_all_bare_metal``), compares with the inventory (``compare``, pure) and appends
a ``registry`` event (action ``drift``) whenever the findings differ from the last recorded
ones.

Findings:

- ``missing_on_node``: registered in the inventory (has a node_id), absent on the node;
- ``unknown_on_node``: on the node, neither its node_id nor its uuid in the inventory
  (only servers the node lists can be seen: beyond the cap, ``capped`` says so, and
  ``unreadable`` when a foreign record with a quote broke the node's list, §2.5);
- ``unrecorded``: on the node under a uuid whose inventory row has no node_id yet (a
  registration whose answer was lost; the outbox adopts it by uuid);
- ``differences``: per server, the names of the fields that differ: ``node_id`` (the
  uuid sits under another node_id), ``ip``, ``os``, ``desc``, ``ipmi_hostname``,
  ``ipmi_port`` and, only when the list came back unmasked, ``ipmi_username``,
  ``ipmi_password`` and ``node_key``. Secret values are compared in constant time and
  never reported, only named. Servers with a modify or delete queued are not compared
  field by field (they are expected to differ until the outbox catches up). The node
  cannot clear a field (empty = keep, §3.4), so an ``os`` or ``desc`` emptied in the
  inventory stays a difference until staff set a value.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.models import (
    ACTOR_REGISTRY,
    EventKind,
    RegistrationState,
    Server,
    ServerCredentials,
)
from agent.secrets import Secret
from agent.store import Store
from baremetal.dbc.auth import ManagerAuth
from baremetal.dbc.client import Client
from baremetal.dbc.models import BareMetalServer
from baremetal.errors import DecodeError

__all__ = [
    "DRIFT_ACTION",
    "DriftChecker",
    "DriftReport",
    "FieldDrift",
    "NodeView",
    "UnknownServer",
    "compare",
    "list_node_servers",
    "node_differences",
]

_LOGGER = logging.getLogger(__name__)

DRIFT_ACTION = "drift"
_DETAIL_LIMIT = 50  # items per list in an event (the detail column holds at most 16 KiB)
_NOT_COMPARED = (RegistrationState.UPDATING, RegistrationState.DELETING)


@dataclass(frozen=True)
class FieldDrift:
    """One server whose node record differs from the inventory: the differing fields."""

    uuid: str
    node_id: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class UnknownServer:
    """A server the node holds that the inventory does not know."""

    node_id: str
    uuid: str


@dataclass(frozen=True)
class DriftReport:
    """Differences between the node and the inventory at ``checked_at``."""

    checked_at: float
    missing_on_node: tuple[str, ...] = ()
    unknown_on_node: tuple[UnknownServer, ...] = ()
    unrecorded: tuple[str, ...] = ()
    differences: tuple[FieldDrift, ...] = ()
    capped: bool = False
    unreadable: bool = False
    node_count: int = 0
    inventory_count: int = 0
    compared: int = 0
    changed: bool = field(default=False, compare=False)

    @property
    def clean(self) -> bool:
        """True when node and inventory agree on everything that was compared."""
        return not (self.missing_on_node or self.unknown_on_node or self.unrecorded
                    or self.differences)

    def findings(self) -> dict[str, Any]:
        """Return the findings as JSON-ready lists (no secrets: fields are only named)."""
        return {
            "missing_on_node": sorted(self.missing_on_node),
            "unknown_on_node": sorted([u.node_id, u.uuid] for u in self.unknown_on_node),
            "unrecorded": sorted(self.unrecorded),
            "differences": sorted([d.uuid, d.node_id, list(d.fields)] for d in self.differences),
        }

    def fingerprint(self) -> str:
        """Return a stable hash of the findings: equal reports, equal fingerprints."""
        text = json.dumps(self.findings(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def event_detail(self) -> dict[str, Any]:
        """Event detail: counts, the fingerprint and the first findings of each kind."""
        findings = self.findings()
        detail: dict[str, Any] = {
            "fingerprint": self.fingerprint(), "capped": self.capped,
            "unreadable": self.unreadable,
            "node_count": self.node_count, "inventory_count": self.inventory_count,
        }
        for name, items in findings.items():
            detail[name] = items[:_DETAIL_LIMIT]
            detail[f"{name}_count"] = len(items)
        return detail


@dataclass(frozen=True)
class NodeView:
    """What the node showed: its servers, and whether some may have stayed invisible."""

    servers: tuple[BareMetalServer, ...]
    capped: bool           # the list hit the 51 cap: unexpected servers beyond it unseen
    unreadable: bool       # the full list was not valid JSON: fetched one by one
    missing: tuple[str, ...] = ()  # expected ids the node does not have


def list_node_servers(node: Client, auth: ManagerAuth, expected: Sequence[str]) -> NodeView:
    """List the node (manager-signed), fetching the expected ids beyond the 51 cap.

    The node writes its JSON without escaping (§2.5): one stored quote or backslash (from
    a server registered by other means) makes the whole list unparseable. Then each
    expected id is fetched alone, so only the broken record stays unreadable.
    """
    try:
        listing = node.list_all_bare_metal(auth, expected)
    except DecodeError as exc:
        _LOGGER.warning("the node's list is not valid JSON (%s); fetching %d servers one "
                        "by one", exc.reason, len(expected))
    else:
        return NodeView(listing.servers, listing.capped, False, listing.missing)
    found: dict[str, BareMetalServer] = {}
    missing = []
    for wanted in dict.fromkeys(expected):
        try:
            server = node.get_bare_metal(wanted, auth)
        except DecodeError:
            continue  # this very record is unreadable: neither found nor missing
        if server is None:
            missing.append(wanted)
        else:
            found[server.node_id] = server
    return NodeView(tuple(found.values()), False, True, tuple(missing))


def node_differences(server: Server, creds: ServerCredentials | None,
                     listed: BareMetalServer) -> tuple[str, ...]:
    """Name the fields where the node's record of ``server`` differs from the inventory."""
    pairs = (("ip", server.ip, listed.ip), ("os", server.os, listed.os),
             ("desc", server.desc, listed.description),
             ("ipmi_hostname", server.ipmi_host, listed.ipmi_hostname),
             ("ipmi_port", server.ipmi_port, listed.ipmi_port))
    diffs = [name for name, ours, theirs in pairs if ours != theirs]
    if listed.secrets_masked:
        return tuple(diffs)  # masked: the node hides user, password and key (§3.1)
    if server.ipmi_user != listed.ipmi_username:
        diffs.append("ipmi_username")
    if creds is not None:
        if creds.ipmi_password != Secret(listed.ipmi_password):
            diffs.append("ipmi_password")
        ours_key = creds.node_private_key
        if ours_key is not None and ours_key != Secret(listed.node_private_key):
            diffs.append("node_key")
    return tuple(diffs)


def compare(servers: Sequence[Server], creds: Mapping[int, ServerCredentials],
            listed: Iterable[BareMetalServer], *, capped: bool, now: float) -> DriftReport:
    """Compare the inventory with the node's servers (pure)."""
    on_node = {s.node_id: s for s in listed}
    node_by_uuid = {s.uuid: s for s in on_node.values()}
    claimed: set[str] = set()
    missing, unrecorded, differences = [], [], []
    compared = 0
    for server in servers:
        found = on_node.get(server.node_id or "") or node_by_uuid.get(server.uuid)
        if found is not None:
            claimed.add(found.node_id)
        if server.node_id is None:
            if found is not None and server.state != RegistrationState.DELETING:
                unrecorded.append(server.uuid)
            continue
        if found is None:
            if server.state != RegistrationState.DELETING:
                missing.append(server.uuid)
            continue
        if server.state in _NOT_COMPARED:
            continue
        compared += 1
        fields = node_differences(server, creds.get(server.id), found)
        if found.node_id != server.node_id:
            fields = ("node_id", *fields)
        if fields:
            differences.append(FieldDrift(server.uuid, found.node_id, fields))
    unknown = [UnknownServer(s.node_id, s.uuid) for s in on_node.values()
               if s.node_id not in claimed]
    return DriftReport(
        checked_at=now, missing_on_node=tuple(missing), unknown_on_node=tuple(unknown),
        unrecorded=tuple(unrecorded), differences=tuple(differences), capped=capped,
        node_count=len(on_node), inventory_count=len(servers), compared=compared)


class DriftChecker:
    """Lists the node with the manager key, compares, records an event on change."""

    def __init__(self, *, store: Store, node: Client, auth: ManagerAuth,
                 clock: Callable[[], float]) -> None:
        self._store = store
        self._node = node
        self._auth = auth
        self._clock = clock

    def check(self) -> DriftReport:
        """Compare node and inventory now; raise the client's error if the node fails."""
        servers = self._store.servers.find()
        creds = {c.server_id: c for c in self._store.servers.all_credentials()}
        listed, view = self._list(servers)
        report = compare(servers, creds, listed, capped=view.capped, now=self._clock())
        report = dataclasses.replace(report, unreadable=view.unreadable)
        changed = self._record(report)
        if not report.clean:
            _LOGGER.warning("drift: %d missing on node, %d unknown on node, %d unrecorded, "
                            "%d differing", len(report.missing_on_node),
                            len(report.unknown_on_node), len(report.unrecorded),
                            len(report.differences))
        return dataclasses.replace(report, changed=changed)

    def _list(self, servers: Sequence[Server]) -> tuple[list[BareMetalServer], NodeView]:
        expected = [s.node_id or s.uuid for s in servers]
        listing = list_node_servers(self._node, self._auth, expected)
        found = {s.node_id: s for s in listing.servers}
        if listing.capped or listing.unreadable:
            # A registered server missing by node_id may sit under another node_id now
            # (deleted and re-added behind our back): look it up by uuid as well.
            known_uuids = {s.uuid for s in found.values()}
            for server in servers:
                if server.node_id in listing.missing and server.uuid not in known_uuids:
                    extra = self._node.get_bare_metal(server.uuid, self._auth)
                    if extra is not None:
                        found[extra.node_id] = extra
        return list(found.values()), listing

    def _record(self, report: DriftReport) -> bool:
        """Append a drift event when the findings changed since the last one recorded."""
        fingerprint = report.fingerprint()
        last = self._store.events.page(limit=1, kinds=[EventKind.REGISTRY],
                                       action=DRIFT_ACTION).items
        if last and last[0].detail.get("fingerprint") == fingerprint:
            return False
        if not last and report.clean:
            return False  # the first check found nothing: nothing changed worth an event
        self._store.events.append(
            actor=ACTOR_REGISTRY, kind=EventKind.REGISTRY, action=DRIFT_ACTION,
            result="clean" if report.clean else "drift", detail=report.event_detail())
        return True
