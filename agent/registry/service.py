"""Inventory <-> DBC bare-metal node: import, register, modify, delete, drift.

``Registry`` is the use-case layer the API and CLI call. Changes are stored first (one
durable transaction with their audit event) and then carried to the node by the outbox
(``agent.registry.outbox``): ``process_outbox`` does the due work, ``RegistryWorker``
(``agent.registry.worker``) calls it in the background. So a node that is down or slow
never loses a change and never blocks staff: the change waits with backoff, visible as
the server's ``state``/``state_detail`` and the outbox item's ``last_error``.

Exactly once: the node itself refuses a uuid it already holds (docs/protocol.md §3.2), and
every registration whose answer was lost is adopted by uuid from the manager-signed list
(``agent.registry.register``). Secrets (IPMI passwords, server keys) are sealed in the
store and never logged; events name fields, never values.

``recover()`` frees the outbox claims of a previous process: call it once at service
start (the worker does), never while another process may be working on the same store.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.errors import AgentError, Conflict, RegistryError, UnsafeNodeValue, ValidationError
from agent.models import EventKind, OutboxState, RegistrationState, Server
from agent.registry.drift import DriftChecker, DriftReport
from agent.registry.inventory import ImportReport, RowError, ServerSpec, parse_json
from agent.registry.outbox import (
    OP_DELETE,
    OP_MODIFY,
    OP_REGISTER,
    OPS,
    OutboxContext,
    OutboxRun,
    run_delete,
    run_modify,
)
from agent.registry.policy import classify
from agent.registry.register import run_register
from agent.registry.safety import clear_unsafe_mark, recheck_stored_values
from agent.secrets import Secret
from agent.store import UNSET, Store
from baremetal.dbc.auth import NodeKeyAuth
from baremetal.dbc.client import Client
from baremetal.errors import BaremetalError

__all__ = ["NODE_FIELDS", "ImportOutcome", "OutboxRun", "Registry"]

_LOGGER = logging.getLogger(__name__)

# Inventory fields the node stores too: a change to one of them is mirrored with modify.
NODE_FIELDS = frozenset({"ip", "os", "desc", "ipmi_host", "ipmi_port", "ipmi_user",
                         "ipmi_password"})
# update_server accepts the node's names (as in the CSV) and the store's.
_ALIASES = {"ipmi_host": "ipmi_hostname", "ipmi_user": "ipmi_username",
            "description": "desc"}
_CHANGEABLE = frozenset({"ip", "os", "desc", "ipmi_hostname", "ipmi_username",
                         "ipmi_password", "ipmi_port", "mac", "labels"})
_ACTIVE = (OutboxState.PENDING, OutboxState.CLAIMED)
_ALL = 1_000_000
_LIST_IN_EVENT = 50


class _RollBack(Exception):  # not an error: it ends a preview's transaction
    """Raised to roll a preview's transaction back."""


@dataclass(frozen=True)
class ImportOutcome:
    """Result of one import, by uuid; ``errors`` holds the refused rows."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


class Registry:
    """Keeps the inventory and mirrors it to the bare-metal node through the outbox."""

    def __init__(self, *, store: Store, node: Client, manager_key: str | Secret,
                 clock: Callable[[], float] = time.time, batch_size: int = 20,
                 lease_s: float = 300.0) -> None:
        key = manager_key.reveal() if isinstance(manager_key, Secret) else manager_key
        self._auth = NodeKeyAuth(key)
        self._store = store
        self._node = node
        self._clock = clock
        self._batch_size = batch_size
        self._lease_s = lease_s
        self._lock = threading.Lock()  # one outbox run or drift check at a time
        self._drift = DriftChecker(store=store, node=node, auth=self._auth, clock=clock)
        self._wakeup: Callable[[], None] | None = None
        self.last_drift: DriftReport | None = None

    @property
    def manager_id(self) -> str:
        """The manager's node_id (derived from its key)."""
        return self._auth.node_id

    @property
    def store(self) -> Store:
        """The store this registry works on."""
        return self._store

    def clock(self) -> float:
        """Now, by the registry's clock (the outbox's due times use the same one)."""
        return self._clock()

    def set_wakeup(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback`` whenever new outbox work is queued (the worker's wake)."""
        self._wakeup = callback

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup()

    # -- inventory -----------------------------------------------------------------------

    def import_servers(self, report: ImportReport, *, actor: str) -> ImportOutcome:
        """Store the valid rows (idempotent by uuid); mirror changes of registered servers."""
        outcome = ImportOutcome(errors=list(report.errors))
        queued = False
        with self._store.transaction():
            for spec in report.servers:
                queued |= self._import_one(spec, outcome)
            self._store.events.append(
                actor=actor, kind=EventKind.AUDIT, action="import",
                result=_import_result(outcome), detail=_import_detail(outcome))
        if queued:
            self._wake()
        _LOGGER.info("import by %s: %d created, %d updated, %d unchanged, %d refused", actor,
                     len(outcome.created), len(outcome.updated), len(outcome.unchanged),
                     len(outcome.errors))
        return outcome

    def preview_import(self, report: ImportReport) -> ImportOutcome:
        """Return what ``import_servers`` would do, writing nothing (no event, no outbox).

        The import runs in a transaction that is always rolled back, so the preview uses
        exactly the import's rules.
        """
        outcome = ImportOutcome(errors=list(report.errors))
        try:
            with self._store.transaction():
                for spec in report.servers:
                    self._import_one(spec, outcome)
                raise _RollBack
        except _RollBack:
            pass
        return outcome

    def _import_one(self, spec: ServerSpec, outcome: ImportOutcome) -> bool:
        existing = self._server_or_none(spec.uuid)
        if existing is not None and existing.state == RegistrationState.DELETING:
            outcome.errors.append(RowError(0, "uuid", "being_deleted", "", spec.uuid))
            return False
        try:
            result = self._store.servers.upsert(
                uuid=spec.uuid, ip=spec.ip, ipmi_host=spec.ipmi_hostname,
                ipmi_user=spec.ipmi_username, ipmi_password=Secret(spec.ipmi_password),
                ipmi_port=spec.ipmi_port, os=spec.os, desc=spec.desc, mac=spec.mac,
                labels=spec.labels)
        except ValidationError as exc:
            outcome.errors.append(RowError(0, exc.field, "invalid", exc.reason, spec.uuid))
            return False
        if result.created:
            outcome.created.append(spec.uuid)
        elif result.changed:
            outcome.updated.append(spec.uuid)
            clear_unsafe_mark(self._store, result.server)
            return self._queue_modify(result.server, result.changed)
        else:
            outcome.unchanged.append(spec.uuid)
        return False

    def update_server(self, uuid: str, changes: Mapping[str, Any], *, actor: str) -> Server:
        """Change one server's fields (validated like an import row); mirror to the node."""
        server = self._store.servers.get_by_uuid(uuid=uuid)
        if server.state == RegistrationState.DELETING:
            raise Conflict(f"server {uuid} is being deleted")
        wanted = _normalise_changes(server, changes)
        creds = self._store.servers.credentials(server_id=server.id)
        spec = _validate(server, creds.ipmi_password, wanted)
        fields = _spec_fields(spec)
        changed = {n for n, v in fields.items() if getattr(server, n) != v}
        password_changed = Secret(spec.ipmi_password) != creds.ipmi_password
        if password_changed:
            changed.add("ipmi_password")
        if not changed:
            return server
        with self._store.transaction():
            updated = self._store.servers.update(
                server_id=server.id,
                ipmi_password=Secret(spec.ipmi_password) if password_changed else UNSET,
                **{n: fields[n] for n in changed if n != "ipmi_password"})
            clear_unsafe_mark(self._store, updated)
            queued = self._queue_modify(updated, frozenset(changed))
            self._store.events.append(actor=actor, kind=EventKind.AUDIT, action="modify",
                                      server_uuid=uuid, result="queued" if queued else "ok",
                                      detail={"fields": sorted(changed)})
            updated = self._store.servers.get(server_id=server.id)
        if queued:
            self._wake()
        return updated

    def _queue_modify(self, server: Server, changed: frozenset[str] | set[str]) -> bool:
        """Queue a modify for a server the node holds, unless one is already waiting."""
        if server.node_id is None or not (set(changed) & NODE_FIELDS):
            return False
        if server.state == RegistrationState.DELETING:
            return False
        if server.state != RegistrationState.PENDING:
            self._store.servers.set_registration(server_id=server.id,
                                                 state=RegistrationState.UPDATING)
        waiting = self._store.outbox.find(states=[OutboxState.PENDING], key=server.uuid)
        if not any(i.op == OP_MODIFY for i in waiting):
            self._store.outbox.enqueue(op=OP_MODIFY, key=server.uuid,
                                       payload={"uuid": server.uuid})
        return True

    def remove_server(self, uuid: str, *, actor: str) -> None:
        """Remove a server: at once if the node never saw it, else after the node's delete."""
        with self._store.transaction():
            server = self._store.servers.get_by_uuid(uuid=uuid)
            if server.state == RegistrationState.DELETING:
                return
            items = self._store.outbox.find(key=uuid, limit=_ALL)
            sent = any(i.op == OP_REGISTER and i.attempts > 0 for i in items)
            if server.node_id is None and not sent:
                self._store.servers.remove(server_id=server.id)
                self._store.events.append(actor=actor, kind=EventKind.AUDIT, action="delete",
                                          server_uuid=uuid, result="ok",
                                          detail={"node": "never registered"})
                return
            self._store.servers.set_registration(server_id=server.id,
                                                 state=RegistrationState.DELETING,
                                                 detail="deletion on the node queued")
            self._store.outbox.enqueue(op=OP_DELETE, key=uuid,
                                       payload={"uuid": uuid, "node_id": server.node_id})
            self._store.events.append(actor=actor, kind=EventKind.AUDIT, action="delete",
                                      server_uuid=uuid, result="queued",
                                      detail={"node_id": server.node_id})
        self._wake()

    def register_pending(self, *, actor: str) -> int:
        """Queue registration of every unregistered server (and failed modifies); count."""
        count = 0
        with self._store.transaction():
            active = self._active_keys()
            for server in self._store.servers.find():
                count += self._queue_registration(server, active)
            self._store.events.append(actor=actor, kind=EventKind.AUDIT, action="register",
                                      result="queued", detail={"count": count})
        if count:
            self._wake()
        return count

    def _active_keys(self) -> dict[str, set[str]]:
        active: dict[str, set[str]] = {op: set() for op in OPS}
        for item in self._store.outbox.find(states=_ACTIVE, limit=_ALL):
            active.setdefault(item.op, set()).add(item.key or "")
        return active

    def _queue_registration(self, server: Server, active: dict[str, set[str]]) -> int:
        if server.state == RegistrationState.DELETING:
            return 0
        if server.node_id is None or not server.has_node_key:
            if server.uuid in active[OP_REGISTER]:
                return 0
            self._store.servers.set_registration(server_id=server.id,
                                                 state=RegistrationState.PENDING,
                                                 detail="registration queued")
            self._store.outbox.enqueue(op=OP_REGISTER, key=server.uuid,
                                       payload={"uuid": server.uuid})
            return 1
        if server.state == RegistrationState.FAILED and server.uuid not in active[OP_MODIFY]:
            return int(self._queue_modify(server, NODE_FIELDS))
        return 0

    # -- node work -----------------------------------------------------------------------

    def recover(self) -> int:
        """Free claims left by a killed process (service start only); return the count."""
        freed = self._store.outbox.release_claims()
        if freed:
            _LOGGER.info("outbox: %d claims of a previous process released", freed)
        return freed

    def recheck_stored_values(self) -> list[UnsafeNodeValue]:
        """Mark servers whose stored shell-line fields are unsafe (service start only)."""
        found = recheck_stored_values(self._store)
        if found:
            _LOGGER.warning("start-up re-check: %d server(s) hold values unsafe on the node's "
                            "shell line and will not be sent: %s", len(found),
                            ", ".join(f"{e.server} ({e.field})" for e in found[:20]))
        return found

    def process_outbox(self, *, limit: int = 100) -> OutboxRun:
        """Do up to ``limit`` due outbox items against the node; return what happened."""
        with self._lock:
            ctx = OutboxContext(store=self._store, node=self._node, auth=self._auth,
                                clock=self._clock, batch_size=self._batch_size)
            items = self._store.outbox.claim(limit=limit, lease_s=self._lease_s, ops=OPS)
            ctx.counts["claimed"] = len(items)
            run_register(ctx, [i for i in items if i.op == OP_REGISTER])
            for item in items:
                if item.op == OP_MODIFY:
                    run_modify(ctx, item)
                elif item.op == OP_DELETE:
                    run_delete(ctx, item)
            run = ctx.result()
        if run.claimed:
            _LOGGER.info("outbox run: %d claimed, %d done, %d deferred, %d failed, "
                         "%d reconciled in %.2f s", run.claimed, run.done, run.deferred,
                         run.failed, run.reconciled, run.duration_s)
        return run

    def next_due_at(self) -> float | None:
        """When the next waiting outbox item is due (None when nothing waits)."""
        return self._store.outbox.next_due_at()

    def check_drift(self) -> DriftReport:
        """Compare node and inventory (manager-signed list, past the 51 cap); event on change."""
        with self._lock:
            try:
                report = self._drift.check()
            except BaremetalError as exc:
                raise RegistryError(classify(exc).text) from None
        self.last_drift = report
        return report

    def _server_or_none(self, uuid: str) -> Server | None:
        try:
            return self._store.servers.get_by_uuid(uuid=uuid)
        except AgentError:
            return None


def _import_result(outcome: ImportOutcome) -> str:
    """Return ``ok``, ``partial`` (some rows refused) or ``failed`` (nothing taken).

    ``failed``: a rejected header, or every row refused.
    """
    if not outcome.errors:
        return "ok"
    taken = outcome.created or outcome.updated or outcome.unchanged
    return "partial" if taken else "failed"


def _import_detail(outcome: ImportOutcome) -> dict[str, Any]:
    return {
        "created": len(outcome.created), "updated": len(outcome.updated),
        "unchanged": len(outcome.unchanged), "refused": len(outcome.errors),
        "created_uuids": outcome.created[:_LIST_IN_EVENT],
        "updated_uuids": outcome.updated[:_LIST_IN_EVENT],
        "errors": [e.message()[:200] for e in outcome.errors[:_LIST_IN_EVENT]],
    }


def _normalise_changes(server: Server, changes: Mapping[str, Any]) -> dict[str, Any]:
    wanted: dict[str, Any] = {}
    for name, value in changes.items():
        key = _ALIASES.get(name, name)
        if key == "uuid":
            if value != server.uuid:
                raise ValidationError(field="uuid", reason="cannot be changed; remove the "
                                      "server and import it under the new uuid")
            continue
        if key not in _CHANGEABLE:
            raise ValidationError(field=str(name)[:40], reason="not a changeable field")
        wanted[key] = value.reveal() if isinstance(value, Secret) else value
    if isinstance(wanted.get("labels"), Mapping):
        wanted["labels"] = _labels_text(wanted["labels"])
    return wanted


def _labels_text(labels: Mapping[str, Any]) -> str:
    for key, value in labels.items():
        if not isinstance(value, str) or any(c in f"{key}{value}" for c in ";,="):
            raise ValidationError(field="labels", reason=f"bad label {str(key)[:40]!r}")
    return ";".join(f"{k}={v}" for k, v in labels.items())


def _validate(server: Server, password: Secret, wanted: Mapping[str, Any]) -> ServerSpec:
    """Validate the merged row with the import's rules (one code path for both)."""
    row: dict[str, Any] = {
        "uuid": server.uuid, "ip": server.ip, "os": server.os, "desc": server.desc,
        "ipmi_hostname": server.ipmi_host, "ipmi_username": server.ipmi_user,
        "ipmi_password": password.reveal(), "ipmi_port": server.ipmi_port,
        "mac": server.mac or "", "labels": _labels_text(server.labels), **wanted}
    if row["mac"] is None:
        row["mac"] = ""
    report = parse_json(json.dumps([row]).encode())
    if report.errors:
        error = report.errors[0]
        reason = error.code + (f": {error.detail}" if error.detail else "")
        raise ValidationError(field=error.field, reason=reason)
    return report.servers[0]


def _spec_fields(spec: ServerSpec) -> dict[str, Any]:
    """Return the store's names and values of a validated row (password apart)."""
    return {"ip": spec.ip, "os": spec.os, "desc": spec.desc, "ipmi_host": spec.ipmi_hostname,
            "ipmi_user": spec.ipmi_username, "ipmi_port": spec.ipmi_port, "mac": spec.mac,
            "labels": dict(spec.labels)}
