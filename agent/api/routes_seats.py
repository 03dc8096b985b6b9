"""Seat keys and DeepLink device_id changes: staff list and decide (``agent.hook.seats``).

- ``GET /seats?state=pending`` (viewer): seat keys, newest first, and the pending
  device_id changes;
- ``POST /seats/approve``, ``POST /seats/reject`` (operator) ``{"uuids": [...]}`` and/or
  ``{"label": "row=A"}``, optionally ``{"fingerprints": [...]}`` (only those keys): one
  result per selected server (``seat_not_pending`` for a server with nothing to decide,
  ``seat_ambiguous`` when several keys wait and no fingerprint picks one); each decision is
  an audit event;
- ``POST /seats/device-id/approve`` (operator): pin each selected server's pending
  DeepLink device_id.

Browser calls carry the session's CSRF token like every other dashboard action.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from agent.api.deps import AgentDep, Operator, Viewer
from agent.api.schemas import ErrorOut
from agent.models import SeatState

__all__ = ["router"]

router = APIRouter(prefix="/seats", tags=["seats"], responses={
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut},
    422: {"model": ErrorOut}})


class SeatSelectionIn(BaseModel):
    """Servers to decide for: uuids (or node_ids) and/or a ``key=value`` label."""

    model_config = ConfigDict(extra="forbid")
    uuids: list[str] = Field(default_factory=list, max_length=1000)
    label: str | None = Field(default=None, max_length=80, description='e.g. "row=A"')
    fingerprints: list[str] = Field(
        default_factory=list, max_length=1000,
        description="only seat keys with these fingerprints (what the dashboard showed)")


def _results(decisions: list[Any]) -> dict[str, Any]:
    items = [d.to_dict() for d in decisions]
    return {"ok": all(d["ok"] for d in items), "done": sum(d["ok"] for d in items),
            "results": items}


@router.get("")
def seats_list(_viewer: Viewer, agent: AgentDep,
               state: Annotated[SeatState | None, Query(description="pending, approved,"
                                                        " rejected")] = None) -> dict[str, Any]:
    """List seat keys and pending DeepLink device_id changes."""
    return agent.seats.listing(state=state)


@router.post("/approve")
def seats_approve(body: SeatSelectionIn, operator: Operator, agent: AgentDep) -> dict[str, Any]:
    """Approve the pending seat key of each selected server."""
    return _results(agent.seats.decide(uuids=body.uuids, label=body.label,
                                       approve=True, actor=operator.user.name,
                                       fingerprints=body.fingerprints))


@router.post("/reject")
def seats_reject(body: SeatSelectionIn, operator: Operator, agent: AgentDep) -> dict[str, Any]:
    """Reject the pending seat key of each selected server."""
    return _results(agent.seats.decide(uuids=body.uuids, label=body.label,
                                       approve=False, actor=operator.user.name,
                                       fingerprints=body.fingerprints))


@router.post("/device-id/approve")
def device_id_approve(body: SeatSelectionIn, operator: Operator,
                      agent: AgentDep) -> dict[str, Any]:
    """Pin the pending DeepLink device_id of each selected server."""
    return _results(agent.seats.approve_device_ids(uuids=body.uuids, label=body.label,
                                                   actor=operator.user.name))
