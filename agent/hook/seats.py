"""Staff decisions on seat keys and DeepLink device_id changes (API, CLI and dashboard).

A GPU PC's hook enrolls its own seat key (agent.hook.seat_gate); it stays ``pending`` until an
operator approves it here, one server or a whole row by label (``row=A``), optionally only
keys with given fingerprints (the dashboard sends the ones it showed, so a key enrolled in
between is not approved unseen). A server with several pending keys (competing
enrollments) needs a fingerprint. Approving retires the old approved key. A DeepLink
device_id other than the pinned one waits here too until approved. Every decision is one
audit event. Stateless over the store: build one per request or command.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.errors import AgentError, ServerNotFound, ValidationError
from agent.labels import parse_selector
from agent.models import EventKind, SeatKey, SeatState, Server
from agent.store import Store
from agent.store.seats import SeatDecision

__all__ = ["Decision", "Seats", "seat_dict"]


def seat_dict(seat: SeatKey, server: Server | None) -> dict[str, Any]:
    """JSON form of a seat key (the public key is not a secret) with its server's facts."""
    return {"uuid": seat.uuid, "ip": server.ip if server else None,
            "labels": dict(server.labels) if server else {}, "state": str(seat.state),
            "fingerprint": seat.fingerprint, "public_key": seat.public_key,
            "created_ip": seat.created_ip, "created_at": seat.created_at,
            "decided_by": seat.decided_by, "decided_at": seat.decided_at}


@dataclass(frozen=True)
class Decision:
    """The outcome of one staff decision for one server."""

    uuid: str
    ok: bool
    code: str = "ok"
    message: str = ""
    fingerprint: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # the error's, for translation

    @classmethod
    def failed(cls, uuid: str, exc: AgentError) -> Decision:
        """Build a refused decision from the error that refused it."""
        return cls(uuid, False, exc.code, exc.message(), params=exc.params)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"uuid": self.uuid, "ok": self.ok, "code": self.code, "message": self.message,
                "params": self.params, "fingerprint": self.fingerprint}


class Seats:
    """List pending seats and device_id changes; approve or reject them."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def listing(self, *, state: SeatState | None = None) -> dict[str, Any]:
        """Seat keys (newest first) and the device_id changes waiting for approval."""
        servers = {s.id: s for s in self._store.servers.find()}
        seats = self._store.seats.find(states=[state] if state else None)
        changes = [{"uuid": servers[sid].uuid, "pinned_device_id": pin.device_id,
                    "pending_device_id": pin.pending_device_id, "pending_at": pin.pending_at}
                   for sid, pin in sorted(self._store.pins.all().items())
                   if pin.pending_device_id is not None and sid in servers]
        return {"items": [seat_dict(s, servers.get(s.server_id)) for s in seats],
                "pending": sum(s.state == SeatState.PENDING for s in seats),
                "device_id_changes": changes}

    def select(self, *, uuids: Sequence[str] = (), label: str | None = None) -> list[Server]:
        """Resolve uuids (or node_ids) and a ``key=value`` label into servers, unique."""
        if not uuids and not label:
            raise ValidationError(field="uuids", reason="select servers by uuids or a label")
        chosen: dict[int, Server] = {}
        for ident in uuids:
            server = self._resolve(ident)
            chosen[server.id] = server
        if label:
            for server in self._store.servers.find(labels=parse_selector(label)):
                chosen[server.id] = server
        return list(chosen.values())

    def decide(self, *, uuids: Sequence[str] = (), label: str | None = None, approve: bool,
               actor: str, fingerprints: Sequence[str] = ()) -> list[Decision]:
        """Approve (or reject) the pending seat key of each selected server."""
        wanted = frozenset(f.strip().lower() for f in fingerprints) or None
        results = []
        for server in self.select(uuids=uuids, label=label):
            try:
                done = self._store.seats.decide(server_id=server.id, uuid=server.uuid,
                                                approve=approve, actor=actor,
                                                fingerprints=wanted)
            except AgentError as exc:
                results.append(Decision.failed(server.uuid, exc))
                continue
            for seat in done.decided:
                self._store.events.append(
                    actor=actor, kind=EventKind.AUDIT, server_uuid=server.uuid, result="ok",
                    action="seat_approve" if approve else "seat_reject",
                    detail=_decision_detail(seat, done))
            results.append(Decision(server.uuid, True,
                                    fingerprint=",".join(k.fingerprint for k in done.decided)))
        return results

    def approve_device_ids(self, *, uuids: Sequence[str] = (), label: str | None = None,
                           actor: str) -> list[Decision]:
        """Pin the pending DeepLink device_id of each selected server."""
        results = []
        for server in self.select(uuids=uuids, label=label):
            try:
                old, new = self._store.pins.approve(server_id=server.id, uuid=server.uuid,
                                                    actor=actor)
            except AgentError as exc:
                results.append(Decision.failed(server.uuid, exc))
                continue
            self._store.events.append(
                actor=actor, kind=EventKind.AUDIT, action="device_id_approve",
                server_uuid=server.uuid, result="ok", detail={"old": old, "new": new})
            results.append(Decision(server.uuid, True))
        return results

    def _resolve(self, ident: str) -> Server:
        try:
            return self._store.servers.get_by_uuid(uuid=ident)
        except ServerNotFound:
            return self._store.servers.get_by_node_id(node_id=ident)


def _decision_detail(seat: SeatKey, done: SeatDecision) -> dict[str, Any]:
    detail: dict[str, Any] = {"fingerprint": seat.fingerprint, "created_ip": seat.created_ip}
    if done.retired is not None:
        detail["retired_fingerprint"] = done.retired.fingerprint
    if done.dropped:
        detail["rejected_fingerprints"] = [k.fingerprint for k in done.dropped]
    return detail
