"""The outbox: changes for the DBC node that must take effect exactly once, whatever fails.

Protocol for a worker (the registry):

1. ``claim(limit=, lease_s=)`` takes due items (pending and due, or claimed with an expired
   lease), stamps a fresh ``claim_token`` and counts an attempt;
2. do the remote call (idempotently: reconcile by uuid if the node says it already exists);
3. on success call ``complete(item_id=, claim_token=)`` inside the SAME
   ``with store.transaction():`` as the local state change it produced, so a crash leaves
   both or neither; on failure ``fail(item_id=, claim_token=, error=, retry=)`` which
   reschedules with exponential backoff and jitter (``backoff_delay``), or marks it dead.

A worker whose lease expired loses the item (``LeaseLost``), so two workers can never
complete the same claim. Each claim token names its owner process (``claim_owner``): a
claim whose owner is gone (same host, PID dead or recycled) is taken over by the next
``claim`` at once, so a ``kill -9`` does not stall the work for the lease; a live owner
keeps its lease. ``release_claims()`` at start-up frees the claims of gone owners (and
legacy tokens without one) at once. Items are durable (synchronous=FULL): acknowledged
means on disk.
``last_error`` must not carry secrets (callers pass error classes and node messages).
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable, Collection, Mapping
from typing import Any

from agent.errors import LeaseLost, OutboxItemNotFound, ValidationError
from agent.models import OutboxItem, OutboxState
from agent.store._base import Repo, dump_json, load_json
from agent.store.claim_owner import ClaimOwner, current_owner, owner_gone, parse_owner

__all__ = ["BACKOFF_BASE_S", "BACKOFF_CAP_S", "OutboxRepo", "backoff_delay"]

BACKOFF_BASE_S = 5.0
BACKOFF_CAP_S = 900.0
_MAX_ERROR = 500


def backoff_delay(attempts: int, *, base_s: float = BACKOFF_BASE_S, cap_s: float = BACKOFF_CAP_S,
                  jitter: float = 0.2, rng: Callable[[], float] = random.random) -> float:
    """Delay before the next attempt: base * 2**(attempts-1), capped, +/- ``jitter`` share."""
    raw = min(cap_s, base_s * 2.0 ** max(0, min(attempts - 1, 30)))
    return max(0.0, raw * (1 + jitter * (2 * rng() - 1)))


def _item(row: sqlite3.Row) -> OutboxItem:
    return OutboxItem(
        id=row["id"], op=row["op"], payload=load_json(row["payload"]),
        state=OutboxState(row["state"]), attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"], key=row["key"], last_error=row["last_error"],
        claim_token=row["claim_token"], claimed_until=row["claimed_until"],
        created_at=row["created_at"], updated_at=row["updated_at"])


def _releasable(token: str | None, here: ClaimOwner) -> bool:
    owner = parse_owner(token)
    return owner is None or here.same_process(owner) or owner_gone(token, here)


class OutboxRepo(Repo):
    """Durable queue of node operations with claim/complete/fail and backoff."""

    def enqueue(self, *, op: str, payload: Mapping[str, Any], key: str | None = None,
                delay_s: float = 0.0) -> OutboxItem:
        """Queue an operation (durable when this returns)."""
        if not op or len(op) > 64:
            raise ValidationError(field="op", reason="1..64 characters")
        now = self._clock()
        with self._db.write() as conn:
            cursor = conn.execute(
                "INSERT INTO outbox (op, key, payload, next_attempt_at, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (op, key, dump_json(dict(payload), field="payload"), now + delay_s, now, now))
            return self._get(conn, int(cursor.lastrowid or 0))

    def claim(self, *, limit: int = 1, lease_s: float = 60.0,
              ops: Collection[str] | None = None) -> list[OutboxItem]:
        """Claim up to ``limit`` due items, oldest first; each claim counts one attempt.

        Due: pending and due, claimed with an expired lease, or claimed by a process that
        is gone (``claim_owner.owner_gone``).
        """
        now = self._clock()
        here = current_owner()
        op_filter = ""
        op_params: list[Any] = []
        if ops:
            op_filter = f" AND op IN ({', '.join(['?'] * len(ops))})"
            op_params = list(ops)
        with self._db.write() as conn:
            due = conn.execute(
                "SELECT id FROM outbox WHERE ((state = 'pending' AND next_attempt_at <= ?)"  # noqa: S608
                f" OR (state = 'claimed' AND claimed_until <= ?)){op_filter} ORDER BY id LIMIT ?",
                (now, now, *op_params, limit)).fetchall()
            held = conn.execute(
                "SELECT id, claim_token FROM outbox WHERE state = 'claimed'"  # noqa: S608
                f" AND claimed_until > ?{op_filter}", (now, *op_params)).fetchall()
            orphaned = {item_id for item_id, token in held if owner_gone(token, here)}
            claimed = []
            for item_id in sorted({r[0] for r in due} | orphaned)[:limit]:
                conn.execute(
                    "UPDATE outbox SET state = 'claimed', claim_token = ?, claimed_until = ?,"
                    " attempts = attempts + 1, updated_at = ? WHERE id = ?",
                    (here.new_token(), now + lease_s, now, item_id))
                claimed.append(self._get(conn, item_id))
            return claimed

    def complete(self, *, item_id: int, claim_token: str) -> OutboxItem:
        """Mark a claimed item done; raise LeaseLost if the claim is no longer ours."""
        with self._db.write() as conn:
            self._check_claim(conn, item_id, claim_token)
            conn.execute("UPDATE outbox SET state = 'done', claim_token = NULL,"
                         " claimed_until = NULL, last_error = '', updated_at = ? WHERE id = ?",
                         (self._clock(), item_id))
            return self._get(conn, item_id)

    def fail(self, *, item_id: int, claim_token: str, error: str, retry: bool = True,
             delay_s: float | None = None) -> OutboxItem:
        """Record a failed attempt: reschedule with backoff (or ``delay_s``), or mark dead."""
        now = self._clock()
        with self._db.write() as conn:
            item = self._check_claim(conn, item_id, claim_token)
            wait = delay_s if delay_s is not None else backoff_delay(item.attempts)
            conn.execute(
                "UPDATE outbox SET state = ?, next_attempt_at = ?, claim_token = NULL,"
                " claimed_until = NULL, last_error = ?, updated_at = ? WHERE id = ?",
                (str(OutboxState.PENDING if retry else OutboxState.DEAD), now + wait,
                 error[:_MAX_ERROR], now, item_id))
            return self._get(conn, item_id)

    def _check_claim(self, conn: sqlite3.Connection, item_id: int, token: str) -> OutboxItem:
        item = self._get(conn, item_id)
        if item.state != OutboxState.CLAIMED or item.claim_token != token:
            raise LeaseLost(str(item_id))
        return item

    def release_claims(self) -> int:
        """Make claimed items due now unless another live process holds them (start-up).

        Freed: claims of gone owners, of this very process (it has none in flight when it
        starts) and legacy tokens without an owner. Kept: claims of another live process
        on this host (a ``bm-agent register`` running beside the service) and of another
        host (their lease decides).
        """
        now = self._clock()
        here = current_owner()
        with self._db.write() as conn:
            held = conn.execute(
                "SELECT id, claim_token FROM outbox WHERE state = 'claimed'").fetchall()
            free = [item_id for item_id, token in held if _releasable(token, here)]
            for item_id in free:
                conn.execute(
                    "UPDATE outbox SET state = 'pending', claim_token = NULL,"
                    " claimed_until = NULL, next_attempt_at = ?, updated_at = ? WHERE id = ?",
                    (now, now, item_id))
            return len(free)

    def retry(self, *, item_id: int) -> OutboxItem:
        """Make a dead or waiting item due now (staff asked to retry)."""
        now = self._clock()
        with self._db.write() as conn:
            item = self._get(conn, item_id)
            if item.state in (OutboxState.DONE, OutboxState.CLAIMED):
                raise ValidationError(field="state", reason=f"item is {item.state}")
            conn.execute("UPDATE outbox SET state = 'pending', next_attempt_at = ?,"
                         " updated_at = ? WHERE id = ?", (now, now, item_id))
            return self._get(conn, item_id)

    def _get(self, conn: sqlite3.Connection, item_id: int) -> OutboxItem:
        row = conn.execute("SELECT * FROM outbox WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            raise OutboxItemNotFound(str(item_id))
        return _item(row)

    def get(self, *, item_id: int) -> OutboxItem:
        """Return one item."""
        with self._db.read() as conn:
            return self._get(conn, item_id)

    def find(self, *, states: Collection[OutboxState] | None = None, key: str | None = None,
             limit: int = 100) -> list[OutboxItem]:
        """Return items by id, optionally only some states and one key."""
        clauses, params = ["1"], []
        if states:
            clauses.append(f"state IN ({', '.join(['?'] * len(states))})")
            params += [str(s) for s in states]
        if key is not None:
            clauses.append("key = ?")
            params.append(key)
        with self._db.read() as conn:
            rows = conn.execute(f"SELECT * FROM outbox WHERE {' AND '.join(clauses)}"  # noqa: S608
                                " ORDER BY id LIMIT ?", (*params, limit)).fetchall()
        return [_item(r) for r in rows]

    def counts(self) -> dict[OutboxState, int]:
        """Count items per state."""
        with self._db.read() as conn:
            rows = conn.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall()
        counts = dict.fromkeys(OutboxState, 0)
        counts.update({OutboxState(s): n for s, n in rows})
        return counts

    def next_due_at(self) -> float | None:
        """When the next pending item becomes due (None when nothing waits)."""
        with self._db.read() as conn:
            row = conn.execute("SELECT min(next_attempt_at) FROM outbox"
                               " WHERE state = 'pending'").fetchone()
        return None if row[0] is None else float(row[0])

    def prune_done(self, *, older_than: float) -> int:
        """Delete done items last updated before ``older_than``; return the count."""
        with self._db.write(durable=False) as conn:
            return conn.execute("DELETE FROM outbox WHERE state = 'done' AND updated_at < ?",
                                (older_than,)).rowcount
