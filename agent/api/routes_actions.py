"""Staff actions straight through IPMI (operator): power and boot device, one or a batch.

One server: ``POST /servers/{uuid}/power`` and ``/bootdev``; a second action while one is
in flight answers 409 ``action_in_progress``. A batch: ``POST /actions/power`` and
``/actions/bootdev`` over ``uuids`` and/or a ``label`` (``zone=vip``), one result per
server (a busy server's result has code ``conflict``; a selection of exactly one server
behaves like the one-server call: 409). Power off, soft off and reset of a server DBC
considers rented (the chain, else the rentals file) needs ``"confirm_rented": true``;
without it nothing runs and the answer is 409 ``seat_rented`` listing each rented server
and its rent's end (``error.rented``). Each result says whether the BMC took
the command (``ok``) and whether the read-back showed the new state (``verified``), with
the last reading. Every action is an audit event.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from agent.api.deps import AgentDep, Operator
from agent.api.schemas import (
    ActionOut,
    ActionsOut,
    BootdevIn,
    BootdevOneIn,
    ErrorOut,
    PowerIn,
    PowerOneIn,
)
from agent.errors import SeatRented, ValidationError

__all__ = ["router"]

router = APIRouter(tags=["actions"], responses={
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut},
    409: {"model": ErrorOut}, 422: {"model": ErrorOut}})


def _selection(agent: AgentDep, uuids: list[str], label: str | None) -> list[str]:
    chosen = agent.actions.select(uuids=uuids, label=label or None)
    if not chosen and not label:
        raise ValidationError(field="uuids", reason="select servers by uuids or a label")
    return chosen


_TAKES_RENTAL = ("off", "soft", "reset")  # the renter loses the PC


def _refuse_rented(agent: AgentDep, uuids: list[str], action: str, confirmed: bool) -> None:
    if confirmed or action not in _TAKES_RENTAL:
        return
    rented = agent.rented_now(uuids)
    if rented:
        raise SeatRented(rented=rented)


@router.post("/servers/{uuid}/power", response_model=ActionOut)
def power_one(uuid: str, body: PowerOneIn, operator: Operator, agent: AgentDep) -> Any:
    """Power one server on, off, soft (ACPI) or reset; read back until it holds."""
    _refuse_rented(agent, [uuid], body.action, body.confirm_rented)
    [result] = agent.actions.power(uuids=[uuid], action=body.action, actor=operator.user.name)
    return result.to_dict()


@router.post("/servers/{uuid}/bootdev", response_model=ActionOut)
def bootdev_one(uuid: str, body: BootdevOneIn, operator: Operator, agent: AgentDep) -> Any:
    """Set one server's boot device (one-time or persistent, legacy or UEFI)."""
    [result] = agent.actions.set_boot(uuids=[uuid], device=body.device,
                                      persistent=body.persistent, uefi=body.uefi,
                                      actor=operator.user.name)
    return result.to_dict()


@router.post("/actions/power", response_model=ActionsOut)
def power_batch(body: PowerIn, operator: Operator, agent: AgentDep) -> Any:
    """Power a selection of servers; one result per server."""
    uuids = _selection(agent, body.uuids, body.label)
    _refuse_rented(agent, uuids, body.action, body.confirm_rented)
    results = agent.actions.power(uuids=uuids, action=body.action, actor=operator.user.name)
    return {"results": [r.to_dict() for r in results]}


@router.post("/actions/bootdev", response_model=ActionsOut)
def bootdev_batch(body: BootdevIn, operator: Operator, agent: AgentDep) -> Any:
    """Set the boot device of a selection of servers; one result per server."""
    uuids = _selection(agent, body.uuids, body.label)
    results = agent.actions.set_boot(uuids=uuids, device=body.device,
                                     persistent=body.persistent, uefi=body.uefi,
                                     actor=operator.user.name)
    return {"results": [r.to_dict() for r in results]}

