"""The other routed prefixes: version probe, ``mining_nodes``, ``rent_orders``, VM endpoints.

The VM endpoints (``tasks``, ``images``, ``snapshot``, ``disk``, ``lan``, ``monitor``,
``mining_nodes/free_memory``) are reproduced as the HTTP layer sees them for a
bare-metal target: the prefix's own sub-routing (``invalid requests uri``), the common
envelope checks and the renter pre-check, then the relay. The node answers
``-3 "bare metal nodes are not supported"`` for its ids; unknown ids give ``create node
request failed``. Endpoint-specific ``additional`` validation is not reproduced.
``/stat`` and ``/config`` have empty handlers on the node (they never reply); so do
``/tasks/<unknown>/<x>`` and ``/lan/<not delete>/<x>``: the emulator holds such a
request for the relay timeout and then closes the connection without an answer.
"""

from __future__ import annotations

from collections.abc import Callable

from baremetal.emulator.context import HttpContext, HttpRequest
from baremetal.emulator.envelope import (
    check_multisig_wallets,
    check_wallet_sign,
    has_peer_nodeid,
    parse_json_body,
    renter_precheck,
    require_post,
)
from baremetal.emulator.http_bare_metal import prologue, split_path
from baremetal.emulator.replies import (
    HTTP_BAD_REQUEST,
    RPC_INVALID_PARAMS,
    RPC_INVALID_REQUEST,
    Reply,
    client_error,
    node_json,
    pretty_success,
)

__all__ = [
    "NO_REPLY",
    "Handler",
    "rest_mining_nodes",
    "rest_peers",
    "rest_rent_orders",
    "rest_silent",
    "rest_version",
    "rest_vm",
]

Handler = Callable[[HttpContext, HttpRequest, str], Reply]

NO_REPLY = Reply(0, b"", None)  # the node never answers: hold, then close

_TASK_OPS = {
    "start": "start task timeout", "restart": "restart task timeout",
    "shutdown": "shutdown task timeout", "poweroff": "stop task timeout",
    "stop": "stop task timeout", "reset": "reset task timeout",
    "delete": "delete task timeout", "logs": "task logs timeout",
    "modify": "modify task timeout", "passwd": "set task user password timeout",
}
_IMAGE_OPS = {
    "servers": "list images timeout", "download": "download image timeout",
    "downloadprogress": "query download image progress timeout",
    "download_stop": "download image timeout", "upload": "upload image timeout",
    "uploadprogress": "query upload image progress timeout",
    "upload_stop": "upload image timeout", "delete": "upload image timeout",
}
_DISK_OPS = {"list": "list disk timeout", "resize": "resize disk timeout",
             "add": "add disk timeout", "delete": "delete disk timeout"}
_SNAPSHOT_OPS = {"list": "list snapshot timeout", "create": "create snapshot timeout",
                 "delete": "delete snapshot timeout"}


def _bad(message: str, errcode: int = RPC_INVALID_PARAMS) -> Reply:
    return client_error(HTTP_BAD_REQUEST, errcode, message)


def rest_version(ctx: HttpContext, req: HttpRequest, path: str) -> Reply:
    """Answer ``/api/v1/`` (any method) with the pretty-printed version."""
    return pretty_success({"client_version": ctx.version})


def _route_vm(prefix: str, segs: list[str]) -> str | Reply:
    """Return the op's timeout text, or the router's own reply."""
    invalid = _bad("invalid requests uri", RPC_INVALID_REQUEST)
    if prefix == "tasks":
        if len(segs) == 0 or (len(segs) == 1 and segs[0] != "start"):
            return "list task timeout"
        if len(segs) == 1:
            return "create task timeout"
        if len(segs) == 2:
            return _TASK_OPS.get(segs[0], NO_REPLY)
        return invalid
    if prefix == "images":
        if not segs:
            return "list images timeout"
        return _IMAGE_OPS.get(segs[0], invalid) if len(segs) == 1 else invalid
    if prefix == "disk":
        return _DISK_OPS.get(segs[0], invalid) if len(segs) == 2 else invalid
    if prefix == "snapshot":
        ok = 1 <= len(segs) <= 3 and segs[0] in _SNAPSHOT_OPS
        return _SNAPSHOT_OPS[segs[0]] if ok else _bad("invalid uri", RPC_INVALID_REQUEST)
    if prefix == "lan":
        if len(segs) <= 1:
            create = segs == ["create"]
            return "create local area network timeout" if create else \
                "list local area network timeout"
        if len(segs) == 2:
            return "delete local area network timeout" if segs[0] == "delete" else NO_REPLY
        return invalid
    # monitor
    if len(segs) <= 1:
        return "set monitor server timeout" if segs == ["set"] else "list monitor server timeout"
    return invalid


def rest_vm(prefix: str) -> Handler:
    """Return the handler of one VM prefix (``tasks``, ``images``, ...)."""

    def handler(ctx: HttpContext, req: HttpRequest, path: str) -> Reply:
        segs = split_path(path)
        if prefix == "images" and segs == ["servers"]:
            return _list_image_servers(req)
        routed = _route_vm(prefix, segs)
        if isinstance(routed, Reply):
            return routed
        return _relay_vm(ctx, req, routed)

    return handler


def _list_image_servers(req: HttpRequest) -> Reply:
    # Answered by the client node itself from its configured image servers, which the
    # emulator has none of (rest_api_service.cpp:4360-4411); no envelope checks.
    refused = require_post(req.method)
    if refused:
        return refused
    doc = parse_json_body(req.body, with_offset=False)
    if isinstance(doc, Reply):
        return doc
    return node_json('{"errcode":0, "message":{"image_server":[]}}')


def _relay_vm(ctx: HttpContext, req: HttpRequest, timeout_message: str) -> Reply:
    refused = require_post(req.method)
    if refused:
        return refused
    parsed = prologue(req)
    if isinstance(parsed, Reply):
        return parsed
    body = parsed[1]
    if not has_peer_nodeid(body):
        return _bad("peer_nodeid is empty")
    return renter_precheck(body) or ctx.relay.forward("vm", body, timeout_message)


def rest_mining_nodes(ctx: HttpContext, req: HttpRequest, path: str) -> Reply:
    """Route ``/mining_nodes``: node info, ``session_id``, ``free_memory``."""
    segs = split_path(path)
    if not segs:
        return _node_info(ctx, req)
    if segs == ["session_id"]:
        return _session_id(ctx, req)
    if segs == ["free_memory"]:
        # rest_free_memory wants two segments but the router passes one (:8500-8509).
        return require_post(req.method) or _bad(
            "invalid uri, please use /mining_nodes/free_memory")
    return _bad("invalid requests uri", RPC_INVALID_REQUEST)


def _node_info(ctx: HttpContext, req: HttpRequest) -> Reply:
    refused = require_post(req.method)
    if refused:
        return refused
    parsed = prologue(req, prefix="parse req params failed: ")
    if isinstance(parsed, Reply):
        return parsed
    body = parsed[1]
    if not body.peer_nodes_list:
        # Only node_type 0/1 (compute) services are listed; this network has none.
        return node_json('{"errcode":0, "message":{"mining_nodes":[]}}')
    image_server = body.additional.get("image_server")
    if isinstance(image_server, str) and image_server:
        return _bad("image_server not exist")
    return ctx.relay.forward("node_info", body, "query node info timeout")


def _session_id(ctx: HttpContext, req: HttpRequest) -> Reply:
    refused = require_post(req.method)
    if refused:
        return refused
    parsed = prologue(req)
    if isinstance(parsed, Reply):
        return parsed
    body = parsed[1]
    if not has_peer_nodeid(body):
        return _bad("peer_nodeid is empty")
    if not check_wallet_sign(body) and not check_multisig_wallets(body):
        return _bad("wallet_sign and multisig_wallets all invalid")
    return ctx.relay.forward("session_id", body, "get session_id timeout")


def rest_rent_orders(ctx: HttpContext, req: HttpRequest, path: str) -> Reply:
    """Answer ``/rent_orders[/<order>]`` (relayed; no renter pre-check)."""
    segs = split_path(path)
    if len(segs) > 1:
        return _bad("invalid requests uri", RPC_INVALID_REQUEST)
    refused = require_post(req.method)
    if refused:
        return refused
    parsed = prologue(req, prefix="parse req params failed: ")
    if isinstance(parsed, Reply):
        return parsed
    doc, body = parsed
    if segs and "rent_order" not in doc:  # the body's rent_order wins over the path
        body.rent_order = segs[0]
    if not has_peer_nodeid(body):
        return _bad("peer_nodeid is empty")
    return ctx.relay.forward("rent_orders", body, "query node rent orders timeout")


def rest_peers(ctx: HttpContext, req: HttpRequest, path: str) -> Reply:
    """Answer ``/peers/<option>`` with this emulated network's (empty) peer lists."""
    segs = split_path(path)
    if len(segs) != 1:
        return _bad("invalid requests uri", RPC_INVALID_REQUEST)
    refused = require_post(req.method)
    if refused:
        return refused
    if segs[0] in ("active", "global", "lan"):
        return node_json('{"errcode":0, "message":{"peer_nodes":[]}}')
    return _bad("invalid option. the option is active or global")


def rest_silent(ctx: HttpContext, req: HttpRequest, path: str) -> Reply:
    """Answer nothing, like the node's commented-out ``/stat`` and ``/config``."""
    return NO_REPLY
