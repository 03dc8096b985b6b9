"""``bm.register`` outbox items: ``bare_metal/add`` in batches, exactly once in effect.

The node refuses a uuid it already holds (``ExistUUID``, docs/protocol.md §3.2), so a
resent add can never register a server twice; what must never happen is losing the
node_id of an add whose answer did not arrive (timeout, crash before recording). Hence:

1. items whose server already has a node_id (answer recorded, key not yet) skip the add;
2. the others go out in batches (``policy.chunks``); after a success the
   manager-signed list (``list_all_bare_metal``, past the 51 cap) gives each new
   server's ``node_private_key``, checked to derive its node_id, then sealed;
3. after a failure that may hide an effect (anything but "unreachable"), every uuid of
   the batch is looked up on the node; the ones found are adopted (node_id + key), the
   rest follow ``plan_after_failure`` (resend now, wait with backoff, or refuse).

If the node's record of an adopted server differs from the inventory (someone
registered it by hand with other values, or staff changed it while the add was in
flight), a ``bm.modify`` is queued so the node ends up with the inventory's values.

An item whose server holds a stored IPMI value that is unsafe on the node's ``sh -c``
line (``agent.registry.safety``) is refused before anything is sent or fetched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from agent.models import OutboxItem, RegistrationState, Server
from agent.registry.drift import list_node_servers, node_differences
from agent.registry.outbox import OP_DELETE, OP_MODIFY, OutboxContext
from agent.registry.policy import Failure, FailureKind, chunks, plan_after_failure
from agent.secrets import Secret
from agent.store import UNSET
from baremetal.dbc.models import BareMetalServer, NewServer, is_masked
from baremetal.errors import BaremetalError, InvalidInput, SigningError
from baremetal.signing import node_id_from_private_key

__all__ = ["run_register"]

_Work = tuple[OutboxItem, Server]
# Fields a modify can bring in line (os/desc/port only when the inventory has a value).
_ALWAYS_MIRRORED = ("ip", "ipmi_hostname", "ipmi_username", "ipmi_password")


def run_register(ctx: OutboxContext, items: Sequence[OutboxItem]) -> None:
    """Register the servers of ``items`` (claimed ``bm.register`` items)."""
    to_add: list[_Work] = []
    need_key: list[_Work] = []
    seen: set[str] = set()
    for item in items:
        server = ctx.server(item.key or "")
        if item.key in seen:
            ctx.skip(item, "duplicate item for this server in the same run")
        elif server is None or server.state == RegistrationState.DELETING:
            ctx.skip(item, "server removed")
        elif server.node_id is not None and server.has_node_key:
            ctx.skip(item, "already registered")
        elif ctx.safe_to_send(item, server):  # else refused: a stored field is unsafe
            (need_key if server.node_id else to_add).append((item, server))
        seen.add(item.key or "")
    for batch in chunks(to_add, ctx.batch_size):
        _add(ctx, batch, depth=0)
    for batch in chunks(need_key, max(ctx.batch_size, 50)):
        _fetch_keys(ctx, batch)


def _wire(ctx: OutboxContext, batch: Sequence[_Work]) -> tuple[list[_Work], list[NewServer]]:
    """Build the add items; a server the client refuses to send is refused for good."""
    kept, wire = [], []
    for item, server in batch:
        creds = ctx.store.servers.credentials(server_id=server.id)
        try:
            wire.append(NewServer(
                uuid=server.uuid, ip=server.ip, ipmi_hostname=server.ipmi_host,
                ipmi_username=server.ipmi_user, ipmi_password=creds.ipmi_password.reveal(),
                os=server.os, desc=server.desc, ipmi_port=server.ipmi_port))
        except InvalidInput as exc:
            ctx.refuse(item, Failure(FailureKind.REFUSED, f"InvalidInput: {exc}"[:300]))
            continue
        kept.append((item, server))
    return kept, wire


def _add(ctx: OutboxContext, batch: Sequence[_Work], depth: int) -> None:
    if ctx.down is not None:
        for item, _server in batch:
            ctx.defer(item, ctx.down)
        return
    batch, wire = _wire(ctx, batch)
    if not batch:
        return
    try:
        added = ctx.node.add_bare_metal(wire, ctx.auth)
    except BaremetalError as exc:
        _after_add_failure(ctx, batch, ctx.call_failed(exc), depth)
        return
    ids = {a.uuid: a.node_id for a in added}
    try:
        found = _lookup(ctx, [server.uuid for _i, server in batch])
    except BaremetalError as exc:
        failure = ctx.call_failed(exc)
        for item, _server in batch:  # keep the node_ids: nothing may be lost
            ctx.defer(item, failure, node_id=ids[item.key or ""])
        return
    for item, server in batch:
        listed = found.get(server.uuid)
        if listed is None or listed.node_id != ids[server.uuid]:
            late = Failure(FailureKind.UNCERTAIN, "the node's list does not show the new server")
            ctx.defer(item, late, node_id=ids[server.uuid])
        else:
            _record(ctx, item, listed, "added")


def _after_add_failure(ctx: OutboxContext, batch: Sequence[_Work], failure: Failure,
                       depth: int) -> None:
    if failure.kind == FailureKind.UNREACHABLE:
        for item, _server in batch:
            ctx.defer(item, failure)
        return
    try:
        found = _lookup(ctx, [server.uuid for _i, server in batch])
    except BaremetalError as exc:
        ctx.call_failed(exc)
        for item, _server in batch:
            ctx.defer(item, failure)
        return
    rest: list[_Work] = []
    for item, server in batch:
        if server.uuid in found:
            ctx.counts["reconciled"] += 1
            _record(ctx, item, found[server.uuid], "adopted")
        else:
            rest.append((item, server))
    by_uuid = {server.uuid: (item, server) for item, server in rest}
    plan = plan_after_failure(list(by_uuid), failure, depth)
    for group in plan.resend:
        _add(ctx, [by_uuid[u] for u in group], depth + 1)
    for uuid in plan.defer:
        ctx.defer(by_uuid[uuid][0], failure)
    for uuid in plan.refuse:
        ctx.refuse(by_uuid[uuid][0], failure)


def _fetch_keys(ctx: OutboxContext, batch: Sequence[_Work]) -> None:
    """Items whose node_id is stored but whose key is not: list and seal the keys."""
    if ctx.down is not None:
        for item, _server in batch:
            ctx.defer(item, ctx.down)
        return
    try:
        found = _lookup(ctx, [server.uuid for _i, server in batch])
    except BaremetalError as exc:
        failure = ctx.call_failed(exc)
        for item, _server in batch:
            ctx.defer(item, failure)
        return
    for item, server in batch:
        listed = found.get(server.uuid)
        if listed is None:
            gone = Failure(FailureKind.UNCERTAIN, "the node no longer has this server; "
                           "registering it again")
            ctx.defer(item, gone, delay_s=0.0, state=RegistrationState.PENDING, node_id=None,
                      node_private_key=None)
        else:
            _record(ctx, item, listed, "key fetched")


def _lookup(ctx: OutboxContext, uuids: Iterable[str]) -> dict[str, BareMetalServer]:
    """Ask the node (manager-signed, past the 51 cap) for these uuids; uuid -> record."""
    wanted = list(uuids)
    listing = list_node_servers(ctx.node, ctx.auth, wanted)
    return {s.uuid: s for s in listing.servers if s.uuid in wanted}


def _usable_key(listed: BareMetalServer) -> Secret | None:
    """Return the server's node_private_key if unmasked and really the key of its node_id."""
    key = listed.node_private_key
    if is_masked(key):
        return None
    try:
        if node_id_from_private_key(key) != listed.node_id:
            return None
    except SigningError:
        return None
    return Secret(key)


def _mirrorable(server: Server, diffs: Iterable[str]) -> list[str]:
    present = {"os": bool(server.os), "desc": bool(server.desc),
               "ipmi_port": server.ipmi_port is not None}
    return [f for f in diffs if f in _ALWAYS_MIRRORED or present.get(f, False)]


def _record(ctx: OutboxContext, item: OutboxItem, listed: BareMetalServer, how: str) -> None:
    """Store node_id and sealed key of a server the node holds; queue fixes it needs."""
    key = _usable_key(listed)
    with ctx.recording(item):
        server = ctx.server(item.key or "")
        if server is None:  # removed while the add was in flight: undo it on the node
            ctx.store.outbox.enqueue(op=OP_DELETE, key=item.key,
                                     payload={"uuid": item.key, "node_id": listed.node_id})
            ctx.complete(item, "orphan", node_id=listed.node_id, how=how)
            return
        creds = dataclasses.replace(ctx.store.servers.credentials(server_id=server.id),
                                    node_private_key=None)
        fix = _mirrorable(server, node_differences(server, creds, listed))
        state = _state_after(server, key is not None, bool(fix))
        if fix and state != RegistrationState.DELETING and not ctx.other_active(item, OP_MODIFY):
            ctx.store.outbox.enqueue(op=OP_MODIFY, key=item.key, payload={"uuid": item.key})
        detail = "" if key is not None else "registered; the node did not show its key yet"
        ctx.store.servers.set_registration(
            server_id=server.id, state=state, detail=detail, node_id=listed.node_id,
            node_private_key=key if key is not None else UNSET)
        if key is None:
            ctx.store.outbox.fail(item_id=item.id, claim_token=item.claim_token or "",
                                  error="node_private_key masked or not matching node_id")
            ctx.event(item, "deferred", node_id=listed.node_id, how=how, error="key unavailable")
            ctx.counts["deferred"] += 1
            return
        ctx.complete(item, "adopted" if how == "adopted" else "ok", node_id=listed.node_id,
                     how=how, mirrored=fix)


def _state_after(server: Server, has_key: bool, needs_fix: bool) -> RegistrationState:
    if server.state == RegistrationState.DELETING:
        return RegistrationState.DELETING
    if not has_key:
        return RegistrationState.PENDING
    return RegistrationState.UPDATING if needs_fix else RegistrationState.REGISTERED
