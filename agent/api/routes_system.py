"""Health, metrics and operations: ``/healthz``, ``/metrics``, ``/api/v1/check``, outbox.

``/healthz`` needs no login (load balancers, systemd watchdogs) and answers only
non-sensitive facts: 200 when the store answers, 503 otherwise. ``/metrics`` is the
Prometheus text exposition (pass duration, servers per verdict, per-BMC last success, IPMI
latency histogram, errors by class, HTTP requests); it names servers and BMC addresses, so
it needs a viewer's bearer token (Prometheus ``authorization: credentials: <token>``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Response
from starlette.responses import JSONResponse

from agent.api.deps import AgentDep, Operator, Viewer
from agent.api.errors import error_body
from agent.api.schemas import ErrorOut
from agent.errors import AgentError
from agent.metrics import CONTENT_TYPE

__all__ = ["api_router", "root_router"]

_LOGGER = logging.getLogger(__name__)

root_router = APIRouter(tags=["system"])
api_router = APIRouter(tags=["system"], responses={401: {"model": ErrorOut},
                                                   403: {"model": ErrorOut}})


@root_router.get("/healthz")
def healthz(agent: AgentDep) -> Response:
    """Tell whether the agent and its store answer (no login needed)."""
    try:
        return JSONResponse(agent.health())
    except AgentError as exc:
        _LOGGER.warning("health check failed: %s", exc.message())
        return JSONResponse(error_body(exc.code, "store unavailable"), status_code=503)


@root_router.get("/metrics", response_class=Response,
                 responses={200: {"content": {"text/plain": {}}}, 401: {"model": ErrorOut}})
def metrics(_viewer: Viewer, agent: AgentDep) -> Response:
    """Return the Prometheus text exposition (format 0.0.4)."""
    return Response(agent.metrics.render(), media_type=CONTENT_TYPE)


@api_router.post("/check")
def check_now(_operator: Operator, agent: AgentDep) -> dict[str, Any]:
    """Run one cross-check pass now (waits for a pass in progress) and summarise it."""
    report = agent.monitor.run_pass()
    return {"started_at": report.started_at, "duration_s": report.duration_s,
            "servers": len(report.results), "counts": report.counts(),
            "overran": report.overran}


@api_router.get("/outbox")
def outbox(_viewer: Viewer, agent: AgentDep) -> dict[str, Any]:
    """Count the registry's outbox items per state (pending work for the node)."""
    counts, next_due_at = agent.outbox_summary()
    return {"counts": {str(k): v for k, v in counts.items()}, "next_due_at": next_due_at}
