"""``/api/v1/deeplink`` and ``/deeplink/set`` (docs/protocol.md §3.8-3.9).

Source: ``rest_api_service.cpp:14056-14554``.

On the bare-metal node's HTTP, an id it holds is served locally: the query masks the
password unless signed by the server's own key, the set requires that signature.
Every other id (and every id on the client node, which holds no servers) is relayed.
"""

from __future__ import annotations

from baremetal.emulator import nodejson
from baremetal.emulator.context import HttpContext, HttpRequest
from baremetal.emulator.envelope import (
    ReqBody,
    has_peer_nodeid,
    parse_json_body,
    parse_req_params,
    renter_precheck,
    require_post,
    verify_sign,
)
from baremetal.emulator.http_bare_metal import split_path
from baremetal.emulator.replies import (
    HTTP_BAD_REQUEST,
    RPC_INVALID_PARAMS,
    RPC_INVALID_REQUEST,
    Reply,
    client_error,
    local_result,
    node_json,
)

__all__ = ["rest_deeplink"]

_TIMEOUT = "list bare metal timeout"  # copy/paste in the node, for both ops (:14375, :14711)
_PREFIX = "parse req params failed: "


def _bad(message: str, errcode: int = RPC_INVALID_PARAMS) -> Reply:
    return client_error(HTTP_BAD_REQUEST, errcode, message)


def rest_deeplink(ctx: HttpContext, req: HttpRequest, path: str) -> Reply:
    """Route ``/deeplink<path>``: query, set, or ``invalid requests uri``."""
    segs = split_path(path)
    if not segs:
        return _query(ctx, req)
    if segs == ["set"]:
        return _set(ctx, req)
    return _bad("invalid requests uri", RPC_INVALID_REQUEST)


def _server_signed(body: ReqBody, node_id: str) -> bool:
    return body.wallet == node_id and verify_sign(body.sign, body.nonce, body.wallet)


def _query(ctx: HttpContext, req: HttpRequest) -> Reply:
    refused = require_post(req.method)
    if refused:
        return refused
    doc = parse_json_body(req.body)
    if isinstance(doc, Reply):
        return doc
    body = parse_req_params(doc)
    if isinstance(body, str):
        return _bad(_PREFIX + body)
    if not has_peer_nodeid(body):
        return _bad("peer_nodeid is empty")
    record = ctx.node.store.get(body.target) if ctx.node else None
    if ctx.node is not None and record is not None:
        pair = ctx.node.deeplink.get(record)
        if pair is None:
            return _bad("deeplink service not connected", RPC_INVALID_REQUEST)
        password = pair[1] if _server_signed(body, record.node_id) else nodejson.mask(pair[1])
        return node_json(nodejson.deeplink_info(pair[0], password))
    return renter_precheck(body) or ctx.relay.forward("deeplink_list", body, _TIMEOUT)


def _device_fields(doc: dict[str, object]) -> tuple[str, str] | Reply:
    # The node reads doc["additional"] before parse_req_params; a missing member is
    # rapidjson's null value, hence "parse json additional failed".
    additional = doc.get("additional")
    if not isinstance(additional, dict):
        return _bad("parse json additional failed")
    present = False
    values = []
    for key, label in (("device_id", "device id"), ("device_password", "device password")):
        value = additional.get(key, "")
        if key in additional:
            if not isinstance(value, str):
                return _bad(f"additional {label} must be a string")
            present = True
        values.append(value if isinstance(value, str) else "")
    if not present:
        return _bad("invalid device info")
    return values[0], values[1]


def _set(ctx: HttpContext, req: HttpRequest) -> Reply:
    refused = require_post(req.method)
    if refused:
        return refused
    doc = parse_json_body(req.body)
    if isinstance(doc, Reply):
        return doc
    fields = _device_fields(doc)
    if isinstance(fields, Reply):
        return fields
    body = parse_req_params(doc)
    if isinstance(body, str):
        return _bad(_PREFIX + body)
    if not has_peer_nodeid(body):
        return _bad("peer_nodeid is empty")
    record = ctx.node.store.get(body.target) if ctx.node else None
    if ctx.node is not None and record is not None:
        if body.wallet != body.target or not verify_sign(body.sign, body.nonce, body.wallet):
            return _bad("verify sign failed")
        ok, message = ctx.node.deeplink.set(record, *fields)
        return local_result(0 if ok else -1, message)
    return renter_precheck(body) or ctx.relay.forward("deeplink_set", body, _TIMEOUT)
