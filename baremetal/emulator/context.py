"""What every HTTP handler sees: the request, its node's role, and the "P2P" relay.

The client role and the bare-metal role share one process. The P2P hop is an
in-process call into ``NodeSide`` guarded by the client's 30 s timer
(docs/protocol.md §2.6): an id missing from the client's service list gives ``create node request
failed``; a node that does not answer (unknown id at the node, a deleted server, or a
machine marked ``offline`` in the rentals file) gives HTTP 500 / -1 ``<op> timeout``
once the timer expires; an answer that is not valid JSON gives ``response parse error``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from baremetal.emulator import rjson
from baremetal.emulator.envelope import ReqBody
from baremetal.emulator.node_side import NodeSide
from baremetal.emulator.replies import (
    HTTP_BAD_REQUEST,
    HTTP_INTERNAL,
    RPC_RESPONSE_ERROR,
    Reply,
    client_error,
    encode_text,
    node_json,
)
from baremetal.emulator.store import BareMetalStore

__all__ = ["HttpContext", "HttpRequest", "Relay", "ServiceList"]

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpRequest:
    """One parsed HTTP request: method, raw URI and body bytes."""

    method: str
    uri: str
    body: bytes = field(repr=False)


class ServiceList:
    """The P2P service list: the manager id plus every server id the node announced.

    Ids are only ever added, as on the node (``node_request_service.cpp:134-180``): a
    deleted server stays listed until restart, so relays to it time out instead of
    failing fast with ``create node request failed``.
    """

    def __init__(self, manager_id: str, store: BareMetalStore) -> None:
        self.manager_id = manager_id
        self._store = store

    def knows(self, node_id: str) -> bool:
        """Tell whether ``node_id`` is in the service list."""
        return node_id == self.manager_id or node_id in self._store.announced_ids()

    def servers(self) -> list[str]:
        """Return the announced server ids, sorted (std::map order)."""
        return sorted(self._store.announced_ids())


class Relay:
    """The client's P2P round trip, done in-process with the node's 30 s timer."""

    def __init__(self, node: NodeSide, services: ServiceList, timeout_s: float,
                 node_offline: bool = False) -> None:
        self._node = node
        self._services = services
        self._timeout_s = timeout_s
        self._node_offline = node_offline

    def _offline(self, target: str) -> bool:
        return self._node_offline or self._node.rentals.machine(target).offline

    def forward(self, op: str, body: ReqBody, timeout_message: str) -> Reply:
        """Send ``op`` to ``body.target`` and turn the node's answer into the HTTP reply."""
        if not self._services.knows(body.target):
            return client_error(HTTP_BAD_REQUEST, RPC_RESPONSE_ERROR, "create node request failed")
        answer: list[str | None] = []
        done = threading.Event()

        def work() -> None:
            try:
                answer.append(self._node.handle(op, body))
            except Exception:  # the node would log and not answer
                _LOGGER.exception("node-side %s failed", op)
            finally:
                done.set()

        if not self._offline(body.target):
            threading.Thread(target=work, name=f"p2p-{op}", daemon=True).start()
            done.wait(self._timeout_s)
        else:
            threading.Event().wait(self._timeout_s)
        text = answer[0] if answer else None
        if text is None:
            return client_error(HTTP_INTERNAL, -1, timeout_message)
        try:
            rjson.parse(encode_text(text))
        except rjson.JsonParseError:
            return client_error(HTTP_INTERNAL, -1, "response parse error")
        return node_json(text)


@dataclass
class HttpContext:
    """The node behind one HTTP listener: its role, ids and collaborators."""

    role: str  # "baremetal" or "client"
    node_id: str
    version: str
    node_name: str
    relay: Relay
    services: ServiceList
    node: NodeSide | None = None  # the local node-side state; None on the client

    @property
    def is_bare_metal(self) -> bool:
        """Tell whether this listener is the bare-metal node's own HTTP."""
        return self.role == "baremetal"
