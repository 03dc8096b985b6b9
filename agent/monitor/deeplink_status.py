"""DeepLink rotation status per server: when each PC last rotated, stale codes, cloned images.

A code is **stale** when the PC booted after its last rotation (or booted and never
rotated). Boots are seen two ways:

- the hook itself reports one (``whoami`` and ``deeplink`` through the relay stamp
  ``last_boot_seen_at`` with the request time);
- ``BootWatcher`` sees the monitor's readings go from power ``off`` to ``on`` and stamps the
  time of the last ``off`` reading: the boot happened after it, so a hook that rotates
  right after power-on, before the monitor's next pass, still counts as fresh.

**Duplicates**: the same DeepLink ``device_id`` reported by more than one PC (a cloned
diskless image that kept DeepLink's identity) flags every PC involved.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from agent.models import DeepLinkStatus, PowerState, Server
from agent.store import Store

__all__ = ["FRESH", "STALE", "UNKNOWN", "BootWatcher", "DeepLinkView", "deeplink_views",
           "freshness"]

_LOGGER = logging.getLogger(__name__)

FRESH = "fresh"        # rotated since the last boot seen
STALE = "stale"        # booted after the last rotation, or booted and never rotated
UNKNOWN = "unknown"    # no boot seen and never rotated


@dataclass(frozen=True)
class DeepLinkView:
    """One server's DeepLink status as the API and dashboard show it (no code, ever)."""

    uuid: str
    ip: str
    node_id: str | None
    device_id: str | None
    last_rotated_at: float | None
    last_boot_seen_at: float | None
    last_result: str
    last_error: str
    freshness: str
    duplicate_with: tuple[str, ...]


def freshness(status: DeepLinkStatus | None) -> str:
    """Classify one status as FRESH, STALE or UNKNOWN."""
    if status is None or (status.last_boot_seen_at is None and status.last_rotated_at is None):
        return UNKNOWN
    if status.last_boot_seen_at is None:
        return FRESH
    if status.last_rotated_at is None or status.last_rotated_at < status.last_boot_seen_at:
        return STALE
    return FRESH


def _view(server: Server, status: DeepLinkStatus | None,
          duplicates: dict[str, list[str]]) -> DeepLinkView:
    device_id = status.device_id if status else None
    others = tuple(u for u in duplicates.get(device_id or "", []) if u != server.uuid)
    return DeepLinkView(
        uuid=server.uuid, ip=server.ip, node_id=server.node_id, device_id=device_id,
        last_rotated_at=status.last_rotated_at if status else None,
        last_boot_seen_at=status.last_boot_seen_at if status else None,
        last_result=status.last_result if status else "",
        last_error=status.last_error if status else "",
        freshness=freshness(status), duplicate_with=others)


def deeplink_views(store: Store, *, uuid: str | None = None) -> list[DeepLinkView]:
    """Return every server's view (or one server's), with duplicates resolved; 3 queries."""
    if uuid is not None:
        servers = [store.servers.get_by_uuid(uuid=uuid)]
        found = store.deeplink.get(server_id=servers[0].id)
        statuses = {found.server_id: found} if found else {}
    else:
        servers = store.servers.find()
        statuses = {s.server_id: s for s in store.deeplink.all()}
    duplicates = store.deeplink.duplicate_device_ids()
    return [_view(s, statuses.get(s.id), duplicates) for s in servers]


class BootWatcher:
    """Turn the monitor's off -> on readings into boots seen (``store.deeplink.note_boot``).

    ``poll()`` reads each server's newest reading (one query) and compares it with the last
    one it saw; call it more often than monitor passes complete. State is in memory; the
    first poll after a start compares with the store's newest readings, so a boot during a
    restart is still noticed at the first pass after it.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._last: dict[int, tuple[int, str]] = {}    # server id -> (reading id, power)
        self._off_at: dict[int, float] = {}            # server id -> last reading seen off
        self._lock = threading.Lock()

    def poll(self) -> int:
        """Note boots since the previous poll; return how many."""
        with self._lock:
            noted = 0
            for row in self._store.status.find():
                reading = row.reading
                if reading is None or reading.id is None or reading.power is None:
                    continue
                sid = row.server.id
                previous = self._last.get(sid)
                if previous is not None and previous[0] == reading.id:
                    continue
                if reading.power == PowerState.OFF:
                    self._off_at[sid] = reading.ts
                elif previous is not None and previous[1] == PowerState.OFF:
                    self._store.deeplink.note_boot(server_id=sid,
                                                   at=self._off_at.get(sid, reading.ts))
                    noted += 1
                self._last[sid] = (reading.id, reading.power)
            return noted
