"""Pure decisions of the registry: what a node failure means, and what to do with a batch.

No I/O here, so every rule is unit-tested on its own:

- ``classify(exc) -> Failure``: turns a ``baremetal`` error into a ``FailureKind`` that
  says whether the node may have acted, whether a retry can help, and which uuid the node
  named (``bare metal node uuid <uuid> already existed``, docs/protocol.md §3.2);
- ``chunks(items, size)``: batches for ``bare_metal/add`` (at most ``ADD_CAP``, since the
  node's answer stops after 101 items, §3.2);
- ``plan_after_failure(rest, failure, depth)``: after a failed batch was reconciled by
  uuid, which of the remaining uuids to resend now, which to defer with backoff and
  which the node refuses for good.

Why a failed batch needs care: the node checks every item (``ExistUUID``) before adding
any, so one existing uuid fails the whole batch with nothing added
(rest_api_service.cpp:12437-12477); a manager failure while adding (errcode 1: key
collision, DB write) keeps the items added before it (bare_metal_node_manager.cpp:60-111).
Reconciling every uuid of the batch with ``bare_metal/<uuid>`` covers both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from baremetal.dbc.models import ADD_CAP
from baremetal.errors import (
    ApiError,
    BaremetalError,
    DecodeError,
    InvalidInput,
    NodeTimeout,
    NodeUnreachable,
    OperationFailed,
    RelayFailure,
    RelayTimeout,
    SignatureRejected,
    UnknownEndpoint,
    WrongNodeRole,
)

__all__ = [
    "MAX_RESEND_DEPTH",
    "Failure",
    "FailureKind",
    "RetryPlan",
    "chunks",
    "classify",
    "plan_after_failure",
]

T = TypeVar("T")

# How often one run resends the rest of a batch after reconciling (then: backoff).
MAX_RESEND_DEPTH = 3
_EXISTS = re.compile(r"bare metal node uuid (\S*) already existed")
_INVALID_ITEM = re.compile(r"(?:bare metal node info|invalid ipmi port in) (\S*)")
_NOT_FOUND = re.compile(r"^(?:node id not existed|bare metal node id \S* not existed)$")
# Manager failures after ExistUUID passed (bare_metal_node_manager.cpp:60-111).
_PARTIAL_TEXTS = ("create node id for bare metal error", "write bare metal db error",
                  "invalid bare metal info")
_MAX_TEXT = 300


class FailureKind(StrEnum):
    """What a failed node call means for the outbox."""

    UNREACHABLE = "unreachable"  # no answer at all: node down or connection dropped
    UNCERTAIN = "uncertain"      # the node may have acted: timeout, garbled or relay answer
    EXISTS = "exists"            # "bare metal node uuid X already existed": reconcile by uuid
    PARTIAL = "partial"          # add failed in the manager: earlier items may be added
    NOT_FOUND = "not_found"      # modify/delete: the node does not have this node_id
    CONFIG = "config"            # signature refused or wrong node role: fix the config
    REFUSED = "refused"          # the node refuses this input for good


@dataclass(frozen=True)
class Failure:
    """A classified failure: its kind, a loggable text (no secrets) and a named uuid."""

    kind: FailureKind
    text: str
    uuid: str | None = None

    @property
    def retryable(self) -> bool:
        """True when waiting and resending can succeed without staff changing the input."""
        return self.kind not in (FailureKind.REFUSED, FailureKind.NOT_FOUND)

    @property
    def node_down(self) -> bool:
        """True when further calls in this run would most likely fail the same way."""
        return self.kind in (FailureKind.UNREACHABLE, FailureKind.UNCERTAIN)


def _short(exc: BaseException) -> str:
    # baremetal errors never carry secrets (baremetal/errors.py); keep the class name.
    return f"{type(exc).__name__}: {exc}"[:_MAX_TEXT]


def classify(exc: BaseException) -> Failure:
    """Classify an error raised by ``baremetal.dbc.client.Client`` for the registry."""
    text = _short(exc)
    if isinstance(exc, NodeUnreachable):
        return Failure(FailureKind.UNREACHABLE, text)
    if isinstance(exc, NodeTimeout | DecodeError | RelayTimeout | RelayFailure):
        return Failure(FailureKind.UNCERTAIN, text)
    if isinstance(exc, InvalidInput):
        return Failure(FailureKind.REFUSED, text)
    if isinstance(exc, ApiError):
        return _classify_api(exc, text)
    if isinstance(exc, BaremetalError):
        return Failure(FailureKind.UNCERTAIN, text)
    raise TypeError(f"not a baremetal error: {type(exc).__name__}")


def _classify_api(exc: ApiError, text: str) -> Failure:
    message = exc.message.strip()
    exists = _EXISTS.search(message)
    if exists:
        return Failure(FailureKind.EXISTS, text, exists.group(1))
    if _NOT_FOUND.match(message):
        return Failure(FailureKind.NOT_FOUND, text)
    if isinstance(exc, SignatureRejected | WrongNodeRole):
        return Failure(FailureKind.CONFIG, text)
    if isinstance(exc, OperationFailed):
        kind = FailureKind.PARTIAL if message in _PARTIAL_TEXTS else FailureKind.UNCERTAIN
        return Failure(kind, text)
    if isinstance(exc, UnknownEndpoint):
        return Failure(FailureKind.REFUSED, text)  # e.g. modify on a node older than 0.4.1.1
    invalid = _INVALID_ITEM.search(message)
    return Failure(FailureKind.REFUSED, text, invalid.group(1) if invalid else None)


def chunks(items: Sequence[T], size: int) -> list[list[T]]:
    """Split ``items`` into batches of at most ``size`` (and never more than ``ADD_CAP``)."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    size = min(size, ADD_CAP)
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


@dataclass(frozen=True)
class RetryPlan:
    """What to do with the uuids of a failed batch that the node does not have."""

    resend: tuple[tuple[str, ...], ...] = ()   # batches to send again in this run
    defer: tuple[str, ...] = ()                # wait with backoff
    refuse: tuple[str, ...] = ()               # refused for good (outbox item dead)


def plan_after_failure(rest: Sequence[str], failure: Failure, depth: int) -> RetryPlan:
    """Decide the fate of ``rest`` (batch uuids not found on the node after reconciling)."""
    rest = tuple(dict.fromkeys(rest))
    if not rest:
        return RetryPlan()
    if failure.kind in (FailureKind.EXISTS, FailureKind.PARTIAL):
        return _resend_or_defer(rest, failure, depth)
    if failure.kind == FailureKind.REFUSED:
        return _isolate_refused(rest, failure, depth)
    return RetryPlan(defer=rest)


def _resend_or_defer(rest: tuple[str, ...], failure: Failure, depth: int) -> RetryPlan:
    # The named uuid is not on the node although the node said it exists (it was deleted
    # in between, or someone else holds it under a name we cannot see): wait for it.
    odd = tuple(u for u in rest if u == failure.uuid)
    others = tuple(u for u in rest if u != failure.uuid)
    if depth >= MAX_RESEND_DEPTH:
        return RetryPlan(defer=rest)
    return RetryPlan(resend=(others,) if others else (), defer=odd)


def _isolate_refused(rest: tuple[str, ...], failure: Failure, depth: int) -> RetryPlan:
    if len(rest) == 1:
        return RetryPlan(refuse=rest)
    if failure.uuid in rest:
        others = tuple(u for u in rest if u != failure.uuid)
        if depth >= MAX_RESEND_DEPTH:
            return RetryPlan(defer=others, refuse=(str(failure.uuid),))
        return RetryPlan(resend=(others,), refuse=(str(failure.uuid),))
    if depth >= MAX_RESEND_DEPTH:
        return RetryPlan(defer=rest)
    # The node did not say which item it refused: send each alone to find out.
    return RetryPlan(resend=tuple((u,) for u in rest))
