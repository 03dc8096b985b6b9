"""The registry's outbox run: claim due items, do each against the node, record the outcome.

Operations (outbox ``op``, ``key`` = the server's uuid):

- ``bm.register`` ``{"uuid"}``: ``bare_metal/add`` in batches, then the manager-signed
  list for node_id and key (``agent.registry.register``);
- ``bm.modify`` ``{"uuid"}``: ``bare_metal/modify/<node_id>`` with the inventory's
  current values (read when sent, so a retry always pushes the latest; idempotent);
- ``bm.delete`` ``{"uuid", "node_id"?}``: ``bare_metal/delete``; without a node_id the
  node is first asked for the uuid (a registration whose answer was lost).

Every outcome is recorded with ``outbox.complete``/``fail`` in the same store transaction
as the server change and its event, so a crash leaves both or neither. Within one run, the
first failure meaning "node down" (``Failure.node_down``) defers the remaining items
without calling the node: a dead node costs one deadline per run, not one per item.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from agent.errors import LeaseLost, ServerNotFound, UnsafeNodeValue
from agent.models import (
    ACTOR_REGISTRY,
    EventKind,
    OutboxItem,
    OutboxState,
    RegistrationState,
    Server,
)
from agent.registry.policy import Failure, FailureKind, classify
from agent.registry.safety import check_stored_shell_fields, unsafe_detail
from agent.store import Store
from baremetal.dbc.auth import ManagerAuth
from baremetal.dbc.client import Client
from baremetal.dbc.models import ServerChanges
from baremetal.errors import BaremetalError

__all__ = [
    "OPS",
    "OP_DELETE",
    "OP_MODIFY",
    "OP_REGISTER",
    "OutboxContext",
    "OutboxRun",
    "run_delete",
    "run_modify",
]

_LOGGER = logging.getLogger(__name__)

OP_REGISTER = "bm.register"
OP_MODIFY = "bm.modify"
OP_DELETE = "bm.delete"
OPS = (OP_REGISTER, OP_MODIFY, OP_DELETE)
_ACTIONS = {OP_REGISTER: "register", OP_MODIFY: "modify", OP_DELETE: "delete"}
_ACTIVE = (OutboxState.PENDING, OutboxState.CLAIMED)


@dataclass(frozen=True)
class OutboxRun:
    """What one ``process_outbox`` call did."""

    claimed: int = 0
    done: int = 0
    deferred: int = 0
    failed: int = 0
    reconciled: int = 0   # registrations found on the node by uuid, not in an add answer
    lost: int = 0         # claims that expired under us and went to another worker
    duration_s: float = 0.0


class OutboxContext:
    """Shared state of one run: store, node, counters and the "node is down" breaker."""

    def __init__(self, *, store: Store, node: Client, auth: ManagerAuth,
                 clock: Callable[[], float], batch_size: int) -> None:
        self.store = store
        self.node = node
        self.auth = auth
        self.clock = clock
        self.batch_size = batch_size
        self.counts = dict.fromkeys(("claimed", "done", "deferred", "failed", "reconciled",
                                     "lost"), 0)
        self.down: Failure | None = None
        self._started = time.monotonic()

    def result(self) -> OutboxRun:
        """Freeze the counters."""
        return OutboxRun(**self.counts, duration_s=time.monotonic() - self._started)

    def note(self, failure: Failure) -> Failure:
        """Remember a node-down failure so the rest of the run waits instead of calling."""
        if failure.node_down and self.down is None:
            _LOGGER.warning("node unavailable, deferring the rest of this run: %s", failure.text)
            self.down = failure
        return failure

    def call_failed(self, exc: BaremetalError) -> Failure:
        """Classify a node error and feed the breaker."""
        return self.note(classify(exc))

    def server(self, uuid: str) -> Server | None:
        """Return the inventory row for ``uuid``, None when it is gone."""
        try:
            return self.store.servers.get_by_uuid(uuid=uuid)
        except ServerNotFound:
            return None

    def other_active(self, item: OutboxItem, op: str) -> bool:
        """Tell whether another pending or claimed item of ``op`` exists for the same key."""
        return any(o.id != item.id and o.op == op
                   for o in self.store.outbox.find(states=_ACTIVE, key=item.key, limit=50))

    @contextmanager
    def recording(self, item: OutboxItem) -> Iterator[None]:
        """One transaction for an outcome; a lost claim rolls it back and is counted."""
        try:
            with self.store.transaction():
                yield
        except LeaseLost:
            _LOGGER.warning("outbox item %d was re-claimed by another worker", item.id)
            self.counts["lost"] += 1

    def event(self, item: OutboxItem, result: str, **detail: Any) -> None:
        """Append a registry event about ``item`` (call inside ``recording``)."""
        self.store.events.append(
            actor=ACTOR_REGISTRY, kind=EventKind.REGISTRY, action=_ACTIONS.get(item.op, item.op),
            server_uuid=item.key, result=result,
            detail={"attempt": item.attempts, "outbox_id": item.id, **detail})

    def complete(self, item: OutboxItem, result: str, **detail: Any) -> None:
        """Mark ``item`` done with an event (call inside ``recording``)."""
        self.store.outbox.complete(item_id=item.id, claim_token=item.claim_token or "")
        self.event(item, result, **detail)
        self.counts["done"] += 1

    def skip(self, item: OutboxItem, why: str) -> None:
        """Complete an item that no longer needs the node (server gone or changed course)."""
        with self.recording(item):
            self.complete(item, "skipped", reason=why)

    def defer(self, item: OutboxItem, failure: Failure, *,
              state: RegistrationState | None = None, delay_s: float | None = None,
              **registration: Any) -> None:
        """Reschedule ``item`` with backoff; show why on the server and (once) as an event."""
        with self.recording(item):
            updated = self.store.outbox.fail(item_id=item.id, claim_token=item.claim_token or "",
                                             error=failure.text, delay_s=delay_s)
            server = self.server(item.key or "")
            if server is None and registration.get("node_id"):
                # Removed while its add was in flight: undo the registration on the node.
                self.store.outbox.enqueue(op=OP_DELETE, key=item.key, payload={
                    "uuid": item.key, "node_id": registration["node_id"]})
            if server is not None:
                wait = max(0.0, updated.next_attempt_at - self.clock())
                self.store.servers.set_registration(
                    server_id=server.id, state=state or server.state,
                    detail=f"waiting for the node (attempt {item.attempts}, retry in "
                           f"{wait:.0f} s): {failure.text}", **registration)
            if item.last_error != failure.text[:500]:
                self.event(item, "deferred", error=failure.text, kind=str(failure.kind),
                           retry_in_s=round(updated.next_attempt_at - self.clock(), 1))
            self.counts["deferred"] += 1

    def refuse(self, item: OutboxItem, failure: Failure, **registration: Any) -> None:
        """Give up on ``item`` (dead): the node refuses it for good; the server is failed."""
        with self.recording(item):
            self.store.outbox.fail(item_id=item.id, claim_token=item.claim_token or "",
                                   error=failure.text, retry=False)
            server = self.server(item.key or "")
            if server is not None:
                state = (RegistrationState.DELETING if server.state == RegistrationState.DELETING
                         else RegistrationState.FAILED)
                self.store.servers.set_registration(
                    server_id=server.id, state=state, detail=f"refused by the node: "
                    f"{failure.text}", **registration)
            self.event(item, "failed", error=failure.text, kind=str(failure.kind))
            self.counts["failed"] += 1

    def refuse_unsafe(self, item: OutboxItem, server: Server, exc: UnsafeNodeValue) -> None:
        """Give up on ``item``: a stored field is unsafe on the node's shell line (never sent)."""
        _LOGGER.warning("outbox: server %s not sent to the node: stored %s is unsafe on its "
                        "shell line", server.uuid, exc.field)
        with self.recording(item):
            self.store.outbox.fail(item_id=item.id, claim_token=item.claim_token or "",
                                   error=exc.message(), retry=False)
            self.store.servers.set_registration(server_id=server.id,
                                                state=RegistrationState.FAILED,
                                                detail=unsafe_detail(server, exc))
            self.event(item, "refused", error=exc.message(), field=exc.field,
                       kind=UnsafeNodeValue.code)
            self.counts["failed"] += 1

    def safe_to_send(self, item: OutboxItem, server: Server) -> bool:
        """Return True when the server's shell-line fields may go to the node; else refuse."""
        try:
            check_stored_shell_fields(self.store, server)
        except UnsafeNodeValue as exc:
            self.refuse_unsafe(item, server, exc)
            return False
        return True

    def wait_or_call(self, item: OutboxItem) -> bool:
        """Return True when the node may be called; else defer ``item`` (node down)."""
        if self.down is None:
            return True
        self.defer(item, self.down)
        return False


def changes_for(ctx: OutboxContext, server: Server) -> ServerChanges:
    """Build the modify request that makes the node's record equal the inventory.

    Reference: docs/protocol.md §3.4.

    Empty strings mean "keep" on the node and cannot clear a field, so an empty ``os``
    or ``desc`` (or an unset port) is simply not sent.
    """
    creds = ctx.store.servers.credentials(server_id=server.id)
    return ServerChanges(
        ip=server.ip, os=server.os or None, desc=server.desc or None,
        ipmi_hostname=server.ipmi_host, ipmi_username=server.ipmi_user,
        ipmi_password=creds.ipmi_password.reveal(), ipmi_port=server.ipmi_port)


def run_modify(ctx: OutboxContext, item: OutboxItem) -> None:
    """Mirror the inventory's node fields to the node with ``bare_metal/modify``."""
    server = ctx.server(item.key or "")
    if server is None or server.state == RegistrationState.DELETING:
        ctx.skip(item, "server removed")
        return
    if server.node_id is None:
        ctx.skip(item, "not registered yet: the add will carry the current values")
        return
    if not ctx.safe_to_send(item, server) or not ctx.wait_or_call(item):
        return
    try:
        ctx.node.modify_bare_metal(server.node_id, changes_for(ctx, server), ctx.auth)
    except BaremetalError as exc:
        _modify_failed(ctx, item, ctx.call_failed(exc))
        return
    with ctx.recording(item):
        current = ctx.server(server.uuid)  # staff may have removed it meanwhile
        if current is not None and current.state != RegistrationState.DELETING:
            more = ctx.other_active(item, OP_MODIFY)
            state = RegistrationState.UPDATING if more else RegistrationState.REGISTERED
            ctx.store.servers.set_registration(server_id=current.id, state=state)
        ctx.complete(item, "ok", node_id=server.node_id)


def _modify_failed(ctx: OutboxContext, item: OutboxItem, failure: Failure) -> None:
    if failure.kind == FailureKind.NOT_FOUND:
        # Deleted on the node behind our back: forget the node_id; `register` adds it again.
        ctx.refuse(item, failure, node_id=None, node_private_key=None)
    elif failure.retryable:
        ctx.defer(item, failure)
    else:
        ctx.refuse(item, failure)


def run_delete(ctx: OutboxContext, item: OutboxItem) -> None:
    """Delete the server's registration on the node, then its inventory row."""
    payload: Mapping[str, Any] = item.payload
    uuid = str(payload.get("uuid", item.key or ""))
    server = ctx.server(uuid)
    node_id = payload.get("node_id") or (server.node_id if server else None)
    in_use = server is not None and server.state != RegistrationState.DELETING
    if in_use and server is not None and node_id in (None, server.node_id):
        ctx.skip(item, "server is in use again (imported after the removal)")
        return
    if not ctx.wait_or_call(item):
        return
    try:
        if node_id is None:
            listed = ctx.node.get_bare_metal(uuid, ctx.auth)  # a lost add answer?
            node_id = listed.node_id if listed is not None else None
        if node_id is not None:
            ctx.node.delete_bare_metal([node_id], ctx.auth)
    except BaremetalError as exc:
        failure = ctx.call_failed(exc)
        if failure.kind != FailureKind.NOT_FOUND:
            (ctx.defer if failure.retryable else ctx.refuse)(item, failure)
            return
    with ctx.recording(item):
        current = ctx.server(uuid)
        if current is not None and current.state == RegistrationState.DELETING:
            ctx.store.servers.remove(server_id=current.id)
        ctx.complete(item, "ok", node_id=node_id)
