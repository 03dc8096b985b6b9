"""DeepLink rotation status per server: ``/api/v1/deeplink`` and ``/servers/{uuid}/deeplink``.

``freshness`` is ``stale`` when the PC booted (seen by the hook or by the monitor's off -> on
readings) after its last rotation, ``fresh`` when it rotated since, ``unknown`` before any
of both; ``duplicate_with`` lists the other PCs reporting the same device code (a cloned
image). The verification code itself is never stored nor shown.
"""

from __future__ import annotations

from fastapi import APIRouter, Query

from agent.api.deps import AgentDep, Viewer
from agent.api.schemas import DeepLinkListOut, DeepLinkOut, ErrorOut
from agent.monitor.deeplink_status import STALE

__all__ = ["router"]

router = APIRouter(tags=["deeplink"], responses={401: {"model": ErrorOut}})


@router.get("/deeplink", response_model=DeepLinkListOut)
def deeplink_all(_viewer: Viewer, agent: AgentDep,
                 stale: bool = Query(False, description="only stale or duplicated PCs")
                 ) -> DeepLinkListOut:
    """Return every server's DeepLink status and the duplicated device codes."""
    views = agent.deeplink_views()
    if stale:
        views = [v for v in views if v.freshness == STALE or v.duplicate_with]
    return DeepLinkListOut.from_views(views)


@router.get("/servers/{uuid}/deeplink", response_model=DeepLinkOut,
            responses={404: {"model": ErrorOut}})
def deeplink_one(uuid: str, _viewer: Viewer, agent: AgentDep) -> DeepLinkOut:
    """Return one server's DeepLink status."""
    return DeepLinkOut.from_view(agent.deeplink_views(uuid=uuid)[0])
