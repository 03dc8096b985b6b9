"""Boot-hook replay protection (nonces) and DeepLink rotation status per server."""

from __future__ import annotations

import sqlite3

from agent.errors import ServerNotFound
from agent.models import DeepLinkStatus
from agent.store._base import UNSET, Repo, Unset

__all__ = ["DeepLinkRepo", "NonceRepo"]


class NonceRepo(Repo):
    """Nonces of accepted hook requests, kept for the replay window."""

    def remember(self, *, nonce: str, ts: float) -> bool:
        """Record ``nonce``; return False if it was already recorded (a replay)."""
        with self._db.write() as conn:
            cursor = conn.execute("INSERT OR IGNORE INTO hook_nonces (nonce, ts) VALUES (?, ?)",
                                  (nonce, ts))
            return cursor.rowcount == 1

    def prune(self, *, older_than: float) -> int:
        """Forget nonces recorded before ``older_than``; return the count."""
        with self._db.write(durable=False) as conn:
            return conn.execute("DELETE FROM hook_nonces WHERE ts < ?", (older_than,)).rowcount

    def count(self) -> int:
        """Count remembered nonces."""
        with self._db.read() as conn:
            return int(conn.execute("SELECT count(*) FROM hook_nonces").fetchone()[0])


_SELECT = ("SELECT d.*, s.uuid FROM deeplink_status d JOIN servers s ON s.id = d.server_id")


def _status(row: sqlite3.Row) -> DeepLinkStatus:
    return DeepLinkStatus(
        server_id=row["server_id"], uuid=row["uuid"], device_id=row["device_id"],
        last_rotated_at=row["last_rotated_at"], last_boot_seen_at=row["last_boot_seen_at"],
        last_result=row["last_result"], last_error=row["last_error"],
        updated_at=row["updated_at"])


class DeepLinkRepo(Repo):
    """When each PC last rotated its DeepLink code, and with what result."""

    def record(self, *, server_id: int, result: str, error: str = "",
               device_id: str | Unset | None = UNSET, rotated: bool = False,
               boot_seen: bool = False) -> DeepLinkStatus:
        """Update a server's status now; ``rotated``/``boot_seen`` stamp those times."""
        now = self._clock()
        with self._db.write() as conn:
            if conn.execute("SELECT 1 FROM servers WHERE id = ?", (server_id,)).fetchone() is None:
                raise ServerNotFound(str(server_id))
            conn.execute("INSERT OR IGNORE INTO deeplink_status (server_id, updated_at)"
                         " VALUES (?, ?)", (server_id, now))
            sets = ["last_result = ?", "last_error = ?", "updated_at = ?"]
            params: list[object] = [result[:100], error[:500], now]
            for column, wanted, value in (("last_rotated_at", rotated, now),
                                          ("last_boot_seen_at", boot_seen, now),
                                          ("device_id", not isinstance(device_id, Unset),
                                           device_id)):
                if wanted:
                    sets.append(f"{column} = ?")
                    params.append(value)
            conn.execute(f"UPDATE deeplink_status SET {', '.join(sets)} WHERE server_id = ?",  # noqa: S608
                         (*params, server_id))
            return _status(conn.execute(f"{_SELECT} WHERE d.server_id = ?",
                                        (server_id,)).fetchone())

    def note_boot(self, *, server_id: int, at: float) -> None:
        """Move ``last_boot_seen_at`` forward to ``at`` (a boot seen by the monitor); never back."""
        with self._db.write(durable=False) as conn:
            if conn.execute("SELECT 1 FROM servers WHERE id = ?", (server_id,)).fetchone() is None:
                raise ServerNotFound(str(server_id))
            conn.execute("INSERT OR IGNORE INTO deeplink_status (server_id, updated_at)"
                         " VALUES (?, ?)", (server_id, self._clock()))
            conn.execute("UPDATE deeplink_status SET last_boot_seen_at = ? WHERE server_id = ?"
                         " AND (last_boot_seen_at IS NULL OR last_boot_seen_at < ?)",
                         (at, server_id, at))

    def get(self, *, server_id: int) -> DeepLinkStatus | None:
        """Return a server's status, or None if no hook ever reported."""
        with self._db.read() as conn:
            row = conn.execute(f"{_SELECT} WHERE d.server_id = ?", (server_id,)).fetchone()
        return _status(row) if row else None

    def all(self) -> list[DeepLinkStatus]:
        """Return every status by server id."""
        with self._db.read() as conn:
            rows = conn.execute(f"{_SELECT} ORDER BY d.server_id").fetchall()
        return [_status(r) for r in rows]

    def duplicate_device_ids(self) -> dict[str, list[str]]:
        """Map each device_id reported by more than one server to those servers' uuids."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT d.device_id, s.uuid FROM deeplink_status d JOIN servers s"
                " ON s.id = d.server_id WHERE d.device_id IN (SELECT device_id FROM"
                " deeplink_status WHERE device_id IS NOT NULL AND device_id != ''"
                " GROUP BY device_id HAVING count(*) > 1) ORDER BY d.device_id, s.uuid"
            ).fetchall()
        found: dict[str, list[str]] = {}
        for device_id, uuid in rows:
            found.setdefault(device_id, []).append(uuid)
        return found
