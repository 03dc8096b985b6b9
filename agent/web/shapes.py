"""Answer models of the dashboard's JSON (``/ui/api/*``): the one place each shape is written.

The grid row is compact (short keys: the page polls 500 of them) and the serialised grid is
kept by ``agent.web.grid_cache``; the detail and event answers are the API's shapes
(``ServerDetailOut``, ``EventPageOut``) plus what the page needs beside them.

Grid row keys: ``u`` uuid, ``ip``, ``d`` description, ``l`` labels, ``st`` registration
state, ``v`` verdict, ``p`` power, ``b`` boot device, ``bp`` persistent, ``t`` last reading
time, ``e`` IPMI error class, ``dl`` DeepLink (``f`` freshness, ``rot`` last rotation,
``res`` last result, ``dup`` duplicate device code) or null. No secrets.
"""

from __future__ import annotations

from pydantic import BaseModel

from agent.api.schemas import EventOut, EventPageOut, ServerDetailOut
from agent.models import DeepLinkStatus, ServerStatus, Verdict
from agent.monitor.deeplink_status import freshness

__all__ = ["GridDeepLinkOut", "GridOut", "GridRowOut", "UiEventPageOut", "UiServerDetailOut"]


class GridDeepLinkOut(BaseModel):
    """A grid cell's DeepLink: freshness, last rotation, last result, duplicated code."""

    f: str
    rot: float | None
    res: str
    dup: bool

    @classmethod
    def from_status(cls, status: DeepLinkStatus, duplicated: bool) -> GridDeepLinkOut:
        """Return the cell of one server's stored DeepLink status."""
        return cls(f=freshness(status), rot=status.last_rotated_at, res=status.last_result,
                   dup=duplicated)


class GridRowOut(BaseModel):
    """One server's compact grid row."""

    u: str
    ip: str
    d: str
    l: dict[str, str]  # noqa: E741 (the wire's key)
    st: str
    v: str
    p: str | None
    b: str | None
    bp: bool
    t: float | None
    e: str | None
    dl: GridDeepLinkOut | None

    @classmethod
    def from_status(cls, status: ServerStatus, deeplink: GridDeepLinkOut | None) -> GridRowOut:
        """Return one server's row."""
        server, reading, verdict = status.server, status.reading, status.verdict
        return cls(u=server.uuid, ip=server.ip, d=server.desc, l=dict(server.labels),
                   st=str(server.state),
                   v=str(verdict.verdict) if verdict else str(Verdict.UNKNOWN),
                   p=reading.power if reading else None,
                   b=reading.boot_device if reading else None,
                   bp=bool(reading.boot_persistent) if reading else False,
                   t=reading.ts if reading else None,
                   e=reading.error_class if reading else None,
                   dl=deeplink)


class GridOut(BaseModel):
    """Every server's grid row, by inventory order."""

    servers: list[GridRowOut]


class UiServerDetailOut(ServerDetailOut):
    """The API's server detail plus the server's newest events and the server's clock."""

    events: list[EventOut]
    now: float


class UiEventPageOut(EventPageOut):
    """The API's page of events plus the server's clock."""

    now: float
