"""``/api/v1/bare_metal...`` on both roles (docs/protocol.md §3.1-3.7).

Source: ``rest_api_service.cpp:11874-14050``.

A request whose ``peer_nodes_list`` is empty or names the listener's own node id is
served locally; anything else is relayed over the (in-process) P2P hop. On the
bare-metal node's own HTTP that relay reaches the node itself, as it would when the
flooded request comes back to it through a peer [inferred].
"""

from __future__ import annotations

from typing import Any

from baremetal.emulator import nodejson
from baremetal.emulator.context import HttpContext, HttpRequest
from baremetal.emulator.envelope import (
    ReqBody,
    check_wallet_sign,
    has_peer_nodeid,
    parse_json_body,
    parse_req_params,
    renter_precheck,
    require_post,
    verify_sign,
)
from baremetal.emulator.node_side import NodeSide, parse_add_items, parse_delete_ids
from baremetal.emulator.node_side import parse_modify_info as _parse_modify_info
from baremetal.emulator.replies import (
    HTTP_BAD_REQUEST,
    RPC_INVALID_PARAMS,
    RPC_INVALID_REQUEST,
    Reply,
    client_error,
    local_result,
    node_error,
    node_json,
)

__all__ = ["prologue", "rest_bare_metal", "split_path"]


def split_path(path: str) -> list[str]:
    """Split a sub-path like ``util::split_path``: query dropped, inner empties kept."""
    if not path:
        return []
    text = path.split("?", 1)[0].removeprefix("/")
    parts = text.split("/")
    if parts[-1] == "":
        parts.pop()
    return parts


def _bad(message: str, errcode: int = RPC_INVALID_PARAMS) -> Reply:
    return client_error(HTTP_BAD_REQUEST, errcode, message)


def prologue(req: HttpRequest, *, prefix: str = "") -> tuple[dict[str, Any], ReqBody] | Reply:
    """Run the body checks and ``parse_req_params``; errors get ``prefix`` prepended."""
    doc = parse_json_body(req.body)
    if isinstance(doc, Reply):
        return doc
    body = parse_req_params(doc)
    if isinstance(body, str):
        return _bad(prefix + body)
    return doc, body


def _is_local(ctx: HttpContext, body: ReqBody) -> bool:
    return not body.peer_nodes_list or body.target == ctx.node_id


def _manager_signed(ctx: HttpContext, body: ReqBody) -> bool:
    return body.wallet == ctx.node_id and verify_sign(body.sign, body.nonce, body.wallet)


def rest_bare_metal(ctx: HttpContext, req: HttpRequest, path: str) -> Reply:
    """Route ``/bare_metal<path>`` by its segments (prefix routing, §2.2)."""
    segs = split_path(path)
    if not segs:
        return _list(ctx, req, segs)
    if len(segs) == 1:
        handlers = {"add": _add, "delete": _delete, "power": _power, "bootdev": _bootdev}
        return handlers.get(segs[0], _list)(ctx, req, segs)
    if len(segs) == 2 and segs[0] == "modify":
        return _modify(ctx, req, segs)
    return _bad("invalid requests uri", RPC_INVALID_REQUEST)


def _client_server_list(ctx: HttpContext) -> str:
    items = [
        '{"node_id":"' + node_id + '","name":"' + ctx.node_name + '","version":"'
        + ctx.version + '"}'
        for node_id in ctx.services.servers()
    ]
    return '{"errcode":0, "message":{"bare_metal_nodes":[' + ",".join(items) + "]}}"


def _local_list(node: NodeSide, ctx: HttpContext, body: ReqBody) -> str:
    records = node.store.snapshot()
    if body.node_id:
        records = {k: r for k, r in records.items() if body.node_id in (k, r.uuid)}
    return nodejson.bare_metal_list(records.values(), _manager_signed(ctx, body),
                                    node.deeplink.get)


def _list(ctx: HttpContext, req: HttpRequest, segs: list[str]) -> Reply:
    refused = require_post(req.method)
    if refused:
        return refused
    parsed = prologue(req, prefix="parse req params failed: ")
    if isinstance(parsed, Reply):
        return parsed
    _doc, body = parsed
    body.node_id = segs[0] if segs else ""
    if _is_local(ctx, body):
        if ctx.node is None:
            return node_json(_client_server_list(ctx))
        return node_json(_local_list(ctx.node, ctx, body))
    return ctx.relay.forward("list", body, "list bare metal timeout")


def _manager_prologue(ctx: HttpContext, req: HttpRequest, segs: list[str], expect: int,
                      usage: str) -> tuple[dict[str, Any], ReqBody] | Reply:
    refused = require_post(req.method)
    if refused:
        return refused
    if len(segs) != expect:
        return _bad(usage)
    parsed = prologue(req)
    if isinstance(parsed, Reply):
        return parsed
    if not check_wallet_sign(parsed[1]):
        return _bad("invalid wallet sign")
    return parsed


def _local_manager_check(ctx: HttpContext, body: ReqBody) -> Reply | None:
    if ctx.node is None:
        return _bad("only bare metal node support", RPC_INVALID_REQUEST)
    if not _manager_signed(ctx, body):
        return _bad("verify sign failed")
    return None


def _add(ctx: HttpContext, req: HttpRequest, segs: list[str]) -> Reply:
    parsed = _manager_prologue(ctx, req, segs, 1, "invalid uri, please use: /bare_metal/add")
    if isinstance(parsed, Reply):
        return parsed
    _doc, body = parsed
    if not _is_local(ctx, body):
        if not has_peer_nodeid(body):
            return _bad("peer_nodeid is empty")
        return ctx.relay.forward("add", body, "add bare metal timeout")
    refused = _local_manager_check(ctx, body)
    if refused or ctx.node is None:
        return refused or _bad("only bare metal node support", RPC_INVALID_REQUEST)
    if "bare_metal_nodes" not in body.additional:
        return _bad("parse json additional bare_metal_nodes failed")
    infos = parse_add_items(body.additional["bare_metal_nodes"], ctx.node.store, node_side=False)
    if isinstance(infos, str):
        return _bad(infos)
    errcode, message, ids = ctx.node.store.add(infos)
    return node_json(node_error(errcode, message) if errcode else nodejson.add_result(ids))


def _delete(ctx: HttpContext, req: HttpRequest, segs: list[str]) -> Reply:
    parsed = _manager_prologue(ctx, req, segs, 1, "invalid uri, please use: /bare_metal/delete")
    if isinstance(parsed, Reply):
        return parsed
    _doc, body = parsed
    if not _is_local(ctx, body):
        return ctx.relay.forward("delete", body, "delete bare metal timeout")
    refused = _local_manager_check(ctx, body)
    if refused or ctx.node is None:
        return refused or _bad("only bare metal node support", RPC_INVALID_REQUEST)
    if "bare_metal_node_ids" not in body.additional:
        return _bad("parse json additional bare_metal_node_ids failed")
    ids = parse_delete_ids(body.additional["bare_metal_node_ids"])
    if isinstance(ids, str):
        return _bad(ids)
    succ, message = ctx.node.store.delete(ids)
    return local_result(0 if succ > 0 else -1, message)


def _modify(ctx: HttpContext, req: HttpRequest, segs: list[str]) -> Reply:
    usage = "invalid uri, please use: /bare_metal/modify/{node_id}"
    parsed = _manager_prologue(ctx, req, segs, 2, usage)
    if isinstance(parsed, Reply):
        return parsed
    _doc, body = parsed
    body.node_id = segs[1]
    if not _is_local(ctx, body):
        return ctx.relay.forward("modify", body, "modify bare metal timeout")
    refused = _local_manager_check(ctx, body)
    if refused or ctx.node is None:
        return refused or _bad("only bare metal node support", RPC_INVALID_REQUEST)
    if ctx.node.store.get(body.node_id) is None:
        return _bad("node id not existed")
    info = _parse_modify_info(body.additional)
    if isinstance(info, str):
        return _bad(info)
    errcode, message = ctx.node.store.modify(body.node_id, info)
    return local_result(0 if errcode == 0 else -1, message)


def _client_only_prologue(ctx: HttpContext, req: HttpRequest, segs: list[str],
                          usage: str) -> ReqBody | Reply:
    refused = require_post(req.method)
    if refused:
        return refused
    if ctx.is_bare_metal:
        return _bad("only client node support", RPC_INVALID_REQUEST)
    if len(segs) != 1:
        return _bad(usage)
    parsed = prologue(req)
    if isinstance(parsed, Reply):
        return parsed
    body = parsed[1]
    if not has_peer_nodeid(body):
        return _bad("peer_nodeid is empty")
    return renter_precheck(body) or body


def _check_choice(additional: dict[str, Any], key: str, choices: tuple[str, ...]) -> Reply | None:
    if key not in additional:
        return _bad(f"parse json additional {key} failed")
    if not isinstance(additional[key], str):
        return _bad(f"additional {key} must be a string")
    if additional[key] not in choices:
        return _bad(f"invalid {key}")
    return None


def _power(ctx: HttpContext, req: HttpRequest, segs: list[str]) -> Reply:
    body = _client_only_prologue(ctx, req, segs, "invalid uri, please use: /bare_metal/power")
    if isinstance(body, Reply):
        return body
    refused = _check_choice(body.additional, "command", ("status", "on", "off", "reset"))
    return refused or ctx.relay.forward("power", body, "bare metal power timeout")


def _bootdev(ctx: HttpContext, req: HttpRequest, segs: list[str]) -> Reply:
    body = _client_only_prologue(ctx, req, segs, "invalid uri, please use: /bare_metal/bootdev")
    if isinstance(body, Reply):
        return body
    devices = ("none", "pxe", "cdrom", "disk", "bios")
    refused = _check_choice(body.additional, "device", devices)
    return refused or ctx.relay.forward("bootdev", body, "bare metal bootdev timeout")
