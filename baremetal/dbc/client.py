"""Typed client for the DBC node HTTP API (docs/protocol.md §2-§4).

``Client(base_url)`` talks to either kind of node:

- a **bare-metal node** directly (LAN; pass ``timeout_s=LOCAL_TIMEOUT_S``): list, add,
  delete, modify and DeepLink are served locally; power and bootdev are refused there
  (``WrongNodeRole``, §3.6);
- a **client node**, which relays each request over P2P to ``peer_nodes_list[0]`` and
  answers within its own 30 s timer (``RelayTimeout``).

One method per endpoint, verb first. Bare-metal, DeepLink and node methods live here;
VM/disk/snapshot methods in ``client_vm``, image and LAN methods in ``client_images``.
Every method takes ``timeout_s`` to override the client's default deadline, validates
its input before sending (``InvalidInput``), checks the answer field by field
(``DecodeError``) and turns ``errcode != 0`` into the typed ``ApiError`` tree.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from baremetal.dbc.auth import (
    Auth,
    ManagerAuth,
    MultisigAuth,
    MultisigSign,
    NodeKeyAuth,
    SessionAuth,
    WalletAuth,
)
from baremetal.dbc.http import check_path_segment, request_body
from baremetal.dbc.images import ImageEndpoints
from baremetal.dbc.models import (
    ADD_CAP,
    BOOT_DEVICES,
    DEEPLINK_PASSWORD_MAX_BYTES,
    LIST_CAP,
    POWER_COMMANDS,
    AddedServer,
    BareMetalServer,
    BootdevResult,
    DeepLinkInfo,
    DeleteResult,
    NewServer,
    NodeInfo,
    NodeSummary,
    NodeVersion,
    PowerResult,
    RenterServerView,
    ServerChanges,
    ServerListing,
    check_wire_text,
)
from baremetal.dbc.parse import (
    parse_added_servers,
    parse_deeplink,
    parse_delete_result,
    parse_node_info,
    parse_renter_view,
    parse_server_list,
    parse_session_id,
    parse_summaries,
    parse_text,
    parse_version,
)
from baremetal.dbc.vm import VmEndpoints
from baremetal.errors import DecodeError, InvalidInput, api_error_from_reply

# The auth types are re-exported so callers need only ``baremetal.dbc.client``.
__all__ = [
    "BOOTDEV_UNCONFIRMED",
    "Auth",
    "Client",
    "ManagerAuth",
    "MultisigAuth",
    "MultisigSign",
    "NodeKeyAuth",
    "SessionAuth",
    "WalletAuth",
]

_LOGGER = logging.getLogger(__name__)

# SetBootDeviceOrder drops the backend's result and always returns this (§3.7).
BOOTDEV_UNCONFIRMED = "bare metal client not existed"
# One-segment sub-paths the node routes to other handlers (rest_api_service.cpp:11884-11897).
_BARE_METAL_ROUTES = frozenset({"add", "delete", "power", "bootdev"})


def _manager_peers(auth: Auth | None, manager_id: str | None) -> list[str]:
    """Pick ``peer_nodes_list`` for manager calls: explicit id, else the signing wallet."""
    if manager_id is not None:
        return [check_path_segment("manager_id", manager_id)]
    if isinstance(auth, NodeKeyAuth | WalletAuth):
        # wallet == manager node_id is what the node demands anyway (§4.3); on the
        # bare-metal node itself it also selects the local path (rest_api_service.cpp:12396).
        return [auth.wallet]
    return []


def _match_server(servers: Iterable[BareMetalServer], server_id: str) -> BareMetalServer | None:
    listed = list(servers)
    by_node_id = [s for s in listed if s.node_id == server_id]
    by_uuid = [s for s in listed if s.uuid == server_id]
    matches = by_node_id or by_uuid
    return matches[0] if matches else None


class Client(VmEndpoints, ImageEndpoints):
    """Typed DBC HTTP client with per-call deadlines (see ``baremetal.dbc.http``).

    Holds one ``requests.Session`` (connection pool); share a Client between threads
    only for concurrent calls, never reconfigure it while in use. ``close()`` or a
    ``with`` block releases the pool.
    """

    # -- node ---------------------------------------------------------------------------

    def version(self, *, timeout_s: float | None = None) -> NodeVersion:
        """Probe ``/api/v1/`` (any method, no body): the node's version (§2.2)."""
        reply = self._exchange("version", "/", None, timeout_s, method="GET")
        if reply.errcode != 0:
            raise api_error_from_reply("version", reply.http_status, reply.errcode, reply.message)
        return parse_version("version", reply.message)

    def list_mining_nodes(self, *, timeout_s: float | None = None) -> list[NodeSummary]:
        """List the compute nodes a client node knows (bare-metal ids are hidden, §3.10)."""
        body = request_body([], {}, None)
        message = self._call("list_mining_nodes", "/mining_nodes", body, timeout_s)
        return parse_summaries("list_mining_nodes", message, "mining_nodes")

    def node_info(self, node_id: str, *, timeout_s: float | None = None) -> NodeInfo:
        """Return one node's info, no auth needed: ``mining_nodes`` (§3.10)."""
        body = request_body([check_path_segment("node_id", node_id)], {}, None)
        message = self._call("node_info", "/mining_nodes", body, timeout_s)
        return parse_node_info("node_info", message)

    def session_id(self, node_id: str, auth: Auth, *, timeout_s: float | None = None) -> str:
        """Fetch the renter's session_id for a rented node: ``mining_nodes/session_id``."""
        body = request_body([check_path_segment("node_id", node_id)], {}, auth)
        message = self._call("session_id", "/mining_nodes/session_id", body, timeout_s)
        return parse_session_id("session_id", message)

    # -- bare metal: listing ------------------------------------------------------------

    def list_bare_metal_nodes(self, *, timeout_s: float | None = None) -> list[NodeSummary]:
        """List the bare-metal server ids a client node has seen (node_id, name, version)."""
        body = request_body([], {}, None)
        message = self._call("list_bare_metal_nodes", "/bare_metal", body, timeout_s)
        return parse_summaries("list_bare_metal_nodes", message, "bare_metal_nodes")

    def list_bare_metal(
        self, auth: ManagerAuth | None = None, *, manager_id: str | None = None,
        timeout_s: float | None = None,
    ) -> list[BareMetalServer]:
        """List the manager's servers (at most ``LIST_CAP``); secrets unmasked with its key."""
        body = request_body(_manager_peers(auth, manager_id), {}, auth)
        message = self._call("list_bare_metal", "/bare_metal", body, timeout_s)
        return parse_server_list("list_bare_metal", message)

    def get_bare_metal(
        self, server_id: str, auth: ManagerAuth | None = None, *, manager_id: str | None = None,
        timeout_s: float | None = None,
    ) -> BareMetalServer | None:
        """Return one server by node_id or uuid (``bare_metal/<id>``), None if unknown.

        Through a client node the answer also carries ``power_status``: the node runs a
        live power status for a one-server list (node_request_service.cpp:7187-7193).
        """
        check_path_segment("server_id", server_id)
        if server_id in _BARE_METAL_ROUTES:
            raise InvalidInput(f"server_id {server_id!r} would be routed as another endpoint")
        body = request_body(_manager_peers(auth, manager_id), {}, auth)
        message = self._call("get_bare_metal", f"/bare_metal/{server_id}", body, timeout_s)
        servers = parse_server_list("get_bare_metal", message)
        if not servers:
            return None
        match = _match_server(servers, server_id)
        if match is None:
            raise DecodeError("get_bare_metal", "answer is about another server", 200)
        return match

    def list_all_bare_metal(
        self, auth: ManagerAuth | None = None, expected: Iterable[str] = (), *,
        manager_id: str | None = None, timeout_s: float | None = None,
    ) -> ServerListing:
        """List every server despite the 51-item cap, given the ids/uuids you expect.

        The node's list has no paging and stops at ``LIST_CAP`` items sorted by node_id
        (§3.1). When the cap is hit, each expected node_id or uuid not in the list is
        fetched with ``bare_metal/<id>``. Servers beyond the cap that nobody expected
        stay invisible: ``capped`` says so. ``missing`` holds the expected ids the node
        does not have. Through a client node each extra fetch also runs a live power
        status on the node (up to its 30 s timer), so prefer the bare-metal node's own
        HTTP for large inventories.
        """
        servers = self.list_bare_metal(auth, manager_id=manager_id, timeout_s=timeout_s)
        capped = len(servers) >= LIST_CAP
        seen = {s.node_id: s for s in servers}
        missing: list[str] = []
        for wanted in dict.fromkeys(expected):
            if any(wanted in (s.node_id, s.uuid) for s in seen.values()):
                continue
            found = self._fetch_beyond_cap(wanted, auth, manager_id, timeout_s) if capped else None
            if found is None:
                missing.append(wanted)
            else:
                seen[found.node_id] = found
        ordered = tuple(seen[k] for k in sorted(seen))
        return ServerListing(ordered, capped, tuple(missing))

    def _fetch_beyond_cap(
        self, wanted: str, auth: ManagerAuth | None, manager_id: str | None,
        timeout_s: float | None,
    ) -> BareMetalServer | None:
        _LOGGER.debug("list capped at %d; fetching %s on its own", LIST_CAP, wanted)
        return self.get_bare_metal(wanted, auth, manager_id=manager_id, timeout_s=timeout_s)

    def get_bare_metal_as_renter(
        self, node_id: str, auth: Auth, *, timeout_s: float | None = None,
    ) -> RenterServerView:
        """Return the renter's view of a rented server through a client node (§3.1 case 4)."""
        body = request_body([check_path_segment("node_id", node_id)], {}, auth)
        message = self._call("get_bare_metal_as_renter", "/bare_metal", body, timeout_s)
        return parse_renter_view("get_bare_metal_as_renter", message)

    # -- bare metal: manager changes ----------------------------------------------------

    def add_bare_metal(
        self, servers: Sequence[NewServer], auth: ManagerAuth, *, timeout_s: float | None = None,
    ) -> list[AddedServer]:
        """Register servers with the manager key: ``bare_metal/add`` (§3.2)."""
        uuids = [s.uuid for s in servers]
        if not servers or not all(isinstance(s, NewServer) for s in servers):
            raise InvalidInput("servers must be a non-empty sequence of NewServer")
        if len(set(uuids)) != len(uuids):
            raise InvalidInput("duplicate uuid in one request: the node keeps only the last")
        if len(servers) > ADD_CAP:
            raise InvalidInput(f"at most {ADD_CAP} servers per call (the answer stops there)")
        additional = {"bare_metal_nodes": [s.to_wire() for s in servers]}
        body = request_body(_manager_peers(auth, None), additional, auth)
        message = self._call("add_bare_metal", "/bare_metal/add", body, timeout_s)
        added = parse_added_servers("add_bare_metal", message)
        if sorted(a.uuid for a in added) != sorted(uuids):
            raise DecodeError("add_bare_metal", "answer does not list exactly the uuids sent", 200)
        return added

    def delete_bare_metal(
        self, node_ids: Sequence[str], auth: ManagerAuth, *, timeout_s: float | None = None,
    ) -> DeleteResult:
        """Delete servers by node_id (not uuid): ``bare_metal/delete`` (§3.3).

        The node answers errcode 0 when at least one was deleted; when none was, the
        last failure text arrives as ``OperationFailed``.
        """
        if isinstance(node_ids, str) or not node_ids:
            raise InvalidInput("node_ids must be a non-empty sequence of node ids")
        for node_id in node_ids:
            check_wire_text("node_id", node_id)
        additional = {"bare_metal_node_ids": list(node_ids)}
        body = request_body(_manager_peers(auth, None), additional, auth)
        message = self._call("delete_bare_metal", "/bare_metal/delete", body, timeout_s)
        return parse_delete_result("delete_bare_metal", message)

    def modify_bare_metal(
        self, node_id: str, changes: ServerChanges, auth: ManagerAuth, *,
        timeout_s: float | None = None,
    ) -> None:
        """Change a server's stored fields: ``bare_metal/modify/<node_id>`` (§3.4)."""
        path = f"/bare_metal/modify/{check_path_segment('node_id', node_id)}"
        if not isinstance(changes, ServerChanges):
            raise InvalidInput("changes must be a ServerChanges")
        body = request_body(_manager_peers(auth, None), changes.to_wire(), auth)
        parse_text("modify_bare_metal", self._call("modify_bare_metal", path, body, timeout_s))

    # -- bare metal: power and boot device (client node only) ---------------------------

    def power(
        self, node_id: str, command: str, auth: Auth, *, timeout_s: float | None = None,
    ) -> PowerResult:
        """Run on/off/reset/status through a client node: ``bare_metal/power`` (§3.6).

        A backend failure (e.g. ipmitool "Error: Unable to establish LAN session")
        arrives as ``NodeRejected`` (errcode -3) carrying the backend's text.
        """
        if command not in POWER_COMMANDS:
            raise InvalidInput(f"command must be one of {POWER_COMMANDS}")
        body = request_body([check_path_segment("node_id", node_id)], {"command": command}, auth)
        message = self._call("power", "/bare_metal/power", body, timeout_s)
        return PowerResult(command, parse_text("power", message))

    def set_boot_device(
        self, node_id: str, device: str, auth: Auth, *, timeout_s: float | None = None,
    ) -> BootdevResult:
        """Set the next boot device through a client node: ``bare_metal/bootdev`` (§3.7).

        The node answers ``-3 "bare metal client not existed"`` even when the BMC took
        the change; that answer becomes ``BootdevResult(confirmed=False)``, not an error.
        """
        if device not in BOOT_DEVICES:
            raise InvalidInput(f"device must be one of {BOOT_DEVICES}")
        body = request_body([check_path_segment("node_id", node_id)], {"device": device}, auth)
        reply = self._exchange("set_boot_device", "/bare_metal/bootdev", body, timeout_s)
        if reply.errcode == 0:
            return BootdevResult(device, True, parse_text("set_boot_device", reply.message))
        unconfirmed = (reply.http_status, reply.errcode, reply.message) == (
            200, -3, BOOTDEV_UNCONFIRMED)
        if unconfirmed:
            return BootdevResult(device, False, reply.message)
        raise api_error_from_reply("set_boot_device", reply.http_status, reply.errcode,
                                   reply.message)

    # -- DeepLink -----------------------------------------------------------------------

    def get_deeplink(
        self, node_id: str, auth: Auth | None = None, *, timeout_s: float | None = None,
    ) -> DeepLinkInfo:
        """Read a server's DeepLink device code and verification code (§3.8).

        On the bare-metal node no auth is needed and the password comes back masked,
        unless ``auth`` is ``NodeKeyAuth`` with that server's own key. Through a client
        node renter auth is required and the password is clear.
        """
        body = request_body([check_path_segment("node_id", node_id)], {}, auth)
        return parse_deeplink("get_deeplink", self._call("get_deeplink", "/deeplink", body,
                                                         timeout_s))

    def set_deeplink(
        self, node_id: str, *, device_id: str | None = None, device_password: str | None = None,
        auth: Auth, timeout_s: float | None = None,
    ) -> None:
        """Push a new DeepLink verification code: ``deeplink/set`` (§3.9).

        "ok" means queued on the LAN socket, not applied: read it back with
        ``get_deeplink``. Since 0.4.1.7 the node ignores ``device_id`` (older nodes
        store both); ``device_password`` is always required.
        """
        if device_password is None:
            # Since 0.4.1.7 the node always pushes setDevicePassword with the password
            # field, so a device_id-only set would push an empty code to DeepLink
            # (deeplink_session.cpp set_device_info, docs/protocol.md §7.2).
            raise InvalidInput("device_password is required (device_id alone pushes an "
                               "empty verification code)")
        additional = {}
        for name, value in (("device_id", device_id), ("device_password", device_password)):
            if value is not None:
                check_wire_text(name, value)  # the node relays both unescaped (§7.2)
                additional[name] = value
        if len(device_password.encode("utf-8")) > DEEPLINK_PASSWORD_MAX_BYTES:
            raise InvalidInput(f"device_password longer than {DEEPLINK_PASSWORD_MAX_BYTES} "
                               "bytes overflows the node's 512-byte DeepLink frame (§7.2)")
        body = request_body([check_path_segment("node_id", node_id)], additional, auth)
        parse_text("set_deeplink", self._call("set_deeplink", "/deeplink/set", body, timeout_s))
