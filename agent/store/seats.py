"""Seat keys (each GPU PC's own ed25519 public key) and pinned DeepLink device_ids.

A seat key is enrolled by the hook (signed with the café hook token) as ``pending`` for the
server registered at the PC's address; staff approve or reject it. One approved key per
server (a partial unique index) and at most ``MAX_PENDING_PER_SERVER`` pending ones: a
competing enrollment never displaces another, it shows up beside it, and staff approve one
by fingerprint. Approving retires the old approved key and the other pending ones
(``rejected``); an enrollment never touches the approved key.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from agent.errors import DeviceIdNotPending, SeatAmbiguous, SeatNotPending, ServerNotFound
from agent.models import DeepLinkPin, SeatKey, SeatState
from agent.store._base import Repo

__all__ = ["MAX_PENDING_PER_SERVER", "DeepLinkPinRepo", "Enrollment", "SeatDecision",
           "SeatRepo"]

_SELECT = "SELECT k.*, s.uuid FROM seat_keys k JOIN servers s ON s.id = k.server_id"


def _seat(row: sqlite3.Row) -> SeatKey:
    return SeatKey(id=row["id"], server_id=row["server_id"], uuid=row["uuid"],
                   public_key=row["public_key"], state=SeatState(row["state"]),
                   created_ip=row["created_ip"], created_at=row["created_at"],
                   decided_by=row["decided_by"], decided_at=row["decided_at"])


MAX_PENDING_PER_SERVER = 4


@dataclass(frozen=True)
class Enrollment:
    """What one enrollment did: the key's row, and what else the server has."""

    seat: SeatKey
    new: bool                # False: the key was already known (any server, any state)
    other_pending: int       # competing pending keys of this server
    has_approved: bool       # the server already has an approved key (a re-enrollment)


@dataclass(frozen=True)
class SeatDecision:
    """What one staff decision changed for one server."""

    decided: list[SeatKey]        # approved (one) or rejected (one or more) by the decision
    retired: SeatKey | None       # the old approved key an approval replaced
    dropped: list[SeatKey]        # competing pending keys rejected with an approval


class SeatRepo(Repo):
    """Enrollment, lookup and staff decisions for seat keys."""

    def get_by_key(self, *, public_key: str) -> SeatKey | None:
        """Return the seat key with this public key (lowercase hex), or None."""
        with self._db.read() as conn:
            row = conn.execute(f"{_SELECT} WHERE k.public_key = ?", (public_key,)).fetchone()
        return _seat(row) if row else None

    def approved(self, *, server_id: int) -> SeatKey | None:
        """Return the server's approved key, or None."""
        with self._db.read() as conn:
            row = conn.execute(f"{_SELECT} WHERE k.server_id = ? AND k.state = 'approved'",
                               (server_id,)).fetchone()
        return _seat(row) if row else None

    def find(self, *, states: list[SeatState] | None = None) -> list[SeatKey]:
        """Return seat keys (newest first), optionally only some states."""
        wanted = [str(s) for s in states or list(SeatState)]
        marks = ",".join("?" * len(wanted))
        with self._db.read() as conn:
            rows = conn.execute(f"{_SELECT} WHERE k.state IN ({marks})"
                                " ORDER BY k.created_at DESC, k.id DESC", wanted).fetchall()
        return [_seat(r) for r in rows]

    def enroll(self, *, server_id: int, public_key: str, source_ip: str) -> Enrollment | None:
        """Record ``public_key`` as a pending key of the server (a known key is left alone).

        None: the server already has ``MAX_PENDING_PER_SERVER`` keys waiting.
        """
        with self._db.write() as conn:
            row = conn.execute(f"{_SELECT} WHERE k.public_key = ?", (public_key,)).fetchone()
            counts = dict(conn.execute("SELECT state, count(*) FROM seat_keys WHERE server_id = ?"
                                       " GROUP BY state", (server_id,)).fetchall())
            pending, approved = counts.get("pending", 0), counts.get("approved", 0) > 0
            if row is not None:
                return Enrollment(_seat(row), new=False, other_pending=pending - 1,
                                  has_approved=approved)
            if pending >= MAX_PENDING_PER_SERVER:
                return None
            if conn.execute("SELECT 1 FROM servers WHERE id = ?", (server_id,)).fetchone() is None:
                raise ServerNotFound(str(server_id))
            cursor = conn.execute(
                "INSERT INTO seat_keys (server_id, public_key, state, created_ip, created_at)"
                " VALUES (?, ?, 'pending', ?, ?)",
                (server_id, public_key, source_ip[:64], self._clock()))
            seat = _seat(conn.execute(f"{_SELECT} WHERE k.id = ?", (cursor.lastrowid,)).fetchone())
        return Enrollment(seat, new=True, other_pending=pending, has_approved=approved)

    def decide(self, *, server_id: int, uuid: str, approve: bool, actor: str,
               fingerprints: frozenset[str] | None = None) -> SeatDecision:
        """Approve one pending key of the server (or reject pending keys).

        ``fingerprints``: only keys with these fingerprints (None: any). An approval must
        name exactly one key; it retires the approved key and rejects the other pending ones.
        """
        with self._db.write() as conn:
            pending = [_seat(r) for r in conn.execute(
                f"{_SELECT} WHERE k.server_id = ? AND k.state = 'pending' ORDER BY k.id",
                (server_id,)).fetchall()]
            chosen = [k for k in pending if fingerprints is None or k.fingerprint in fingerprints]
            if not chosen:
                raise SeatNotPending(server=uuid)
            if not approve:
                self._set_state(conn, chosen, SeatState.REJECTED, actor)
                return SeatDecision(decided=chosen, retired=None, dropped=[])
            if len(chosen) > 1:
                raise SeatAmbiguous(server=uuid, count=len(chosen))
            old = conn.execute(f"{_SELECT} WHERE k.server_id = ? AND k.state = 'approved'",
                               (server_id,)).fetchone()
            retired = _seat(old) if old else None
            dropped = [k for k in pending if k.id != chosen[0].id]
            self._set_state(conn, [*([retired] if retired else []), *dropped],
                            SeatState.REJECTED, actor)
            self._set_state(conn, chosen, SeatState.APPROVED, actor)
        return SeatDecision(decided=chosen, retired=retired, dropped=dropped)

    def _set_state(self, conn: sqlite3.Connection, seats: list[SeatKey], state: SeatState,
                   actor: str) -> None:
        now = self._clock()
        for seat in seats:
            conn.execute("UPDATE seat_keys SET state = ?, decided_by = ?, decided_at = ?"
                         " WHERE id = ?", (str(state), actor, now, seat.id))


def _pin(row: sqlite3.Row) -> DeepLinkPin:
    return DeepLinkPin(server_id=row["server_id"], device_id=row["device_id"],
                       pinned_at=row["pinned_at"], pinned_by=row["pinned_by"],
                       pending_device_id=row["pending_device_id"], pending_at=row["pending_at"])


class DeepLinkPinRepo(Repo):
    """The DeepLink device_id each server is pinned to, and changes awaiting approval."""

    def get(self, *, server_id: int) -> DeepLinkPin | None:
        """Return the server's pin, or None before its first confirmed rotation."""
        with self._db.read() as conn:
            row = conn.execute("SELECT * FROM deeplink_pins WHERE server_id = ?",
                               (server_id,)).fetchone()
        return _pin(row) if row else None

    def all(self) -> dict[int, DeepLinkPin]:
        """Return every pin by server id."""
        with self._db.read() as conn:
            rows = conn.execute("SELECT * FROM deeplink_pins").fetchall()
        return {row["server_id"]: _pin(row) for row in rows}

    def pin_first(self, *, server_id: int, device_id: str, by: str) -> DeepLinkPin:
        """Pin ``device_id`` unless a pin exists; return the pin in force."""
        with self._db.write() as conn:
            conn.execute("INSERT OR IGNORE INTO deeplink_pins (server_id, device_id, pinned_at,"
                         " pinned_by) VALUES (?, ?, ?, ?)",
                         (server_id, device_id, self._clock(), by))
            return _pin(conn.execute("SELECT * FROM deeplink_pins WHERE server_id = ?",
                                     (server_id,)).fetchone())

    def propose(self, *, server_id: int, device_id: str) -> None:
        """Record a device_id seen instead of the pinned one, for staff to approve."""
        with self._db.write() as conn:
            conn.execute("UPDATE deeplink_pins SET pending_device_id = ?, pending_at = ?"
                         " WHERE server_id = ?", (device_id, self._clock(), server_id))

    def approve(self, *, server_id: int, uuid: str, actor: str) -> tuple[str, str]:
        """Pin the pending device_id; return (old, new)."""
        with self._db.write() as conn:
            row = conn.execute("SELECT * FROM deeplink_pins WHERE server_id = ?",
                               (server_id,)).fetchone()
            if row is None or row["pending_device_id"] is None:
                raise DeviceIdNotPending(server=uuid)
            conn.execute("UPDATE deeplink_pins SET device_id = pending_device_id, pinned_at = ?,"
                         " pinned_by = ?, pending_device_id = NULL, pending_at = NULL"
                         " WHERE server_id = ?", (self._clock(), actor, server_id))
        return str(row["device_id"]), str(row["pending_device_id"])
