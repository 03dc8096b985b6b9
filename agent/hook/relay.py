"""The boot-hook relay: the agent side of tests/contract/hook_relay.json.

A diskless café image holds no per-PC key, so ``bm-hook`` in agent mode asks us to sign
for it. Every request is checked in the contract's order (``agent_check_order``):

1. the café hook token's ed25519 signature over the canonical request (403 ``bad_signature``:
   first, so unauthenticated junk never reaches the nonce table);
2. the timestamp inside the window (401 ``stale_timestamp``; uvicorn's ``Date`` header lets
   the hook correct its clock);
3. the nonce unseen (409 ``replayed``);
4. the body (deeplink, enroll; 400 ``bad_request``);
5. the TCP source IP equal to the server's registered ``ip``, and the MAC the agent host's
   neighbour table holds for it equal to the inventory MAC when both are known
   (403 ``forbidden_source``);
6. whoami and deeplink: the server's approved seat key signed the request (``X-BM-Seat-Key``;
   agent.hook.seat_gate: 403 ``seat_not_enrolled`` / ``seat_pending`` / ``seat_rejected``;
   ``report``, through ``caller``: approved or pending, agent.hook.reports);
   deeplink: DeepLink's device_id equal to the one pinned for the server (409
   ``device_id_changed``). ``enroll`` (café token) records the PC's seat key as pending.

``publish`` then signs ``deeplink/set`` with the server key sealed in the store, reads the
code back through the signed ``deeplink`` query until the node reports it (or 504
``not_confirmed`` after ``confirm_s``), and records the rotation (``store.deeplink``) and a
``deeplink`` event; the answer never carries the device_id. Node failures answer 502
``node_unreachable`` / 503 ``deeplink_not_connected``, which the hook retries. ``whoami``
names the server by source IP (MACs only break a tie) and records that the PC booted (the
hook runs once per boot).

Refusals are ``HookRefusal`` (status, contract code, English message; an ``AgentError``
under ``HookRefused``) and are answered as they are by ``agent.api.errors``. Neither the
code nor a key is ever logged.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from agent.config import HookSettings
from agent.errors import (
    BadSignature,
    HookRefused,
    ReplayedRequest,
    ServerNotFound,
    StaleRequest,
    WrongSourceIp,
)
from agent.hook.event_sampler import EventSampler
from agent.hook.neighbours import NeighbourTable
from agent.hook.signing import HookVerifier, check_source_ip, load_public_key
from agent.models import ACTOR_HOOK, DeepLinkStatus, EventKind, SeatKey, Server
from agent.store import Store
from baremetal import errors as bm
from baremetal.dbc.auth import NodeKeyAuth
from baremetal.dbc.client import Client
from baremetal.dbc.models import DeepLinkInfo

if TYPE_CHECKING:
    from agent.hook.seat_gate import SeatGate

__all__ = [
    "CONFIRM_DEADLINE_S",
    "HookRefusal",
    "HookRelay",
    "SignedRequest",
    "iso_utc",
]

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")

CONFIRM_DEADLINE_S = 20.0  # contract: <= 25 s (the hook waits confirm_s + call_s: 35 s)
POLL_INTERVAL_S = 0.2
NODE_CALL_S = 5.0
NODE_VERSION_TTL_S = 300.0
_HEX64 = re.compile(r"[0-9a-f]{64}")
_CODE = re.compile(r"[A-Za-z0-9]{6,16}")  # DeepLink's rule (docs/protocol.md §13.1)
_MAX_DEVICE_ID = 64
_SUCCESS_RESULTS = frozenset({"confirmed", "ok"})  # event results written one row each


class HookRefusal(HookRefused):
    """An error answer of the relay contract: ``status``, contract ``code``, English ``detail``.

    In the error tree under ``HookRefused``; the API answers it with its own status.
    """


@dataclass(frozen=True)
class SignedRequest:
    """A hook request as received: what the signature covers, and who sent it."""

    method: str
    target: str
    body: bytes
    timestamp: str | None
    nonce: str | None
    signature: str | None
    source_ip: str
    seat_key: str | None = None  # X-BM-Seat-Key: the PC's seat key signed, not the café token


def iso_utc(ts: float) -> str:
    """Format Unix seconds as the contract's ``2026-01-01T00:00:01Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bad_request(message: str) -> HookRefusal:
    return HookRefusal(400, "bad_request", message)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _bad_request("body is not JSON") from None
    except RecursionError:  # ``{"a":`` x 100000: json's C scanner recurses per level
        raise _bad_request("body is nested too deeply") from None
    if not isinstance(payload, dict):
        raise _bad_request("body must be a JSON object")
    return payload


def parse_enroll_body(body: bytes) -> str:
    """Validate an enroll body ``{"seat_key": <64 hex>}``; return the key in lowercase."""
    from agent.hook.seat_gate import parse_seat_key

    key = parse_seat_key(_json_object(body).get("seat_key"))
    if key is None:
        raise _bad_request("seat_key must be the PC's ed25519 public key, 64 hex characters")
    return key


def parse_publish_body(body: bytes) -> tuple[str, str, str]:
    """Validate a deeplink body; return (node_id, device_password, device_id or "")."""
    payload = _json_object(body)
    node_id = payload.get("node_id")
    if not isinstance(node_id, str) or not _HEX64.fullmatch(node_id):
        raise _bad_request("node_id must be 64 hex characters")
    code = payload.get("device_password")
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise _bad_request("device_password must be 6-16 letters and digits")
    device_id = payload.get("device_id", "")
    if "device_id" in payload and (not isinstance(device_id, str) or not device_id
                                   or len(device_id) > _MAX_DEVICE_ID
                                   or not device_id.isprintable() or '"' in device_id
                                   or "\\" in device_id):
        raise _bad_request("device_id must be a non-empty printable string without quotes")
    return node_id, code, device_id


class HookRelay:
    """Verify hook requests and publish DeepLink codes with the server keys we hold."""

    def __init__(self, *, store: Store, node: Client, verifier: HookVerifier,
                 window_s: int, require_source_ip: bool = True,
                 confirm_s: float = CONFIRM_DEADLINE_S, poll_s: float = POLL_INTERVAL_S,
                 monotonic: Callable[[], float] = time.monotonic,
                 neighbours: NeighbourTable | None = None) -> None:
        from agent.hook.seat_gate import SeatGate  # it imports HookRefusal from here

        self._store = store
        self._node = node
        self._verifier = verifier
        self._window_s = window_s
        self._require_source_ip = require_source_ip
        self._confirm_s = confirm_s
        self._poll_s = poll_s
        self._monotonic = monotonic
        self._version: tuple[float, str] | None = None
        self._version_lock = threading.Lock()
        self._neighbours = neighbours or NeighbourTable(None)
        self._seats: SeatGate = SeatGate(store=store, event=self._event)
        self.event_sampler = EventSampler(store)

    @classmethod
    def from_settings(cls, settings: HookSettings, *, store: Store,
                      node: Client) -> HookRelay | None:
        """Build the relay from ``[hook]``; None when no token public key is configured."""
        if settings.token_public_key is None:
            return None
        verifier = HookVerifier(public_key=load_public_key(settings.token_public_key),
                                nonces=store.nonces, window_s=settings.replay_window_s)
        return cls(store=store, node=node, verifier=verifier,
                   window_s=settings.replay_window_s,
                   require_source_ip=settings.require_source_ip,
                   neighbours=NeighbourTable(settings.neighbour_table))

    # -- whoami -----------------------------------------------------------------------

    def whoami(self, request: SignedRequest, *, macs: Sequence[str] = ()) -> dict[str, Any]:
        """Answer which server the calling PC is (by source IP); record that it booted."""
        seat = self._verify(request)
        server = self._server_at(request.source_ip, [m.strip().lower() for m in macs if m])
        self._check_neighbour(server, request.source_ip)
        self._seats.authorise(server, seat, request.source_ip)
        if not server.node_id:
            raise HookRefusal(503, "not_registered",
                              f"server {server.uuid} is not registered with the node yet")
        self._store.deeplink.record(server_id=server.id, result="boot_reported", boot_seen=True)
        answer: dict[str, Any] = {"node_id": server.node_id}
        version = self._node_version()
        if version:
            answer["node_version"] = version
        _LOGGER.info("hook whoami from %s: server %s", request.source_ip, server.uuid)
        return answer

    def _server_at(self, source_ip: str, macs: list[str]) -> Server:
        servers = self._store.servers.find_by_ip(ip=_plain_ip(source_ip))
        if len(servers) > 1 and macs:
            servers = [s for s in servers if s.mac in macs] or servers
        if not servers:
            shown = _plain_ip(source_ip) or "(unknown: proxy headers present)"
            _LOGGER.warning("hook whoami from %s: no server has this IP", shown)
            raise HookRefusal(403, "forbidden_source", f"no server is registered with IP {shown}")
        if len(servers) > 1:
            names = ", ".join(s.uuid for s in servers[:5])
            raise HookRefusal(403, "forbidden_source",
                              f"several servers are registered with IP {source_ip}: {names}")
        server = servers[0]
        if server.mac and macs and server.mac not in macs:
            self._event(server.uuid, "mac_mismatch", "warning",
                        {"reported_macs": macs[:8], "registered_mac": server.mac})
        return server

    def caller(self, request: SignedRequest, parse: Callable[[bytes], T], *,
               allow_pending: bool = False) -> tuple[Server, SeatKey | None, T]:
        """Run checks 1-6 for a seat-signed call naming no server: the one at the source IP."""
        seat = self._verify(request)
        parsed = parse(request.body)
        server = self._server_at(request.source_ip, [])
        self._check_neighbour(server, request.source_ip)
        self._seats.authorise(server, seat, request.source_ip, allow_pending=allow_pending)
        return server, seat, parsed

    # -- enroll -----------------------------------------------------------------------

    def enroll(self, request: SignedRequest) -> tuple[int, dict[str, Any]]:
        """Record the PC's seat key as pending for the server at its source IP (café token)."""
        if request.seat_key is not None:
            raise HookRefusal(403, "bad_signature", "enroll is signed by the café hook token")
        self._verify(request)
        public_key = parse_enroll_body(request.body)
        server = self._server_at(request.source_ip, [])
        self._check_neighbour(server, request.source_ip)
        status, state = self._seats.enroll(server, public_key, request.source_ip)
        return status, {"status": state}

    # -- publish ----------------------------------------------------------------------

    def publish(self, request: SignedRequest) -> dict[str, Any]:
        """Set the PC's new DeepLink code through the node, confirm it, record the rotation."""
        seat = self._verify(request)
        node_id, code, device_id = parse_publish_body(request.body)
        server = self._server_for(node_id, request.source_ip)
        self._check_neighbour(server, request.source_ip)
        self._seats.authorise(server, seat, request.source_ip)
        self._seats.check_device_id(server, device_id)
        self._store.deeplink.record(server_id=server.id, result="publishing", boot_seen=True)
        try:
            info = self._set_and_confirm(server, code, device_id)
            self._seats.pin_confirmed(server, info.device_id)
        except HookRefusal as exc:
            self._store.deeplink.record(server_id=server.id, result=exc.code,
                                        error=exc.detail)
            self._event(server.uuid, "rotate", exc.code, {"message": exc.detail})
            raise
        status = self._store.deeplink.record(server_id=server.id, result="confirmed",
                                             device_id=info.device_id or None, rotated=True)
        self._event(server.uuid, "rotate", "confirmed", {"device_id": info.device_id})
        _LOGGER.info("hook deeplink for %s: new code confirmed", server.uuid)
        # Never the device_id: the PC knows its own, and nobody else should learn it here.
        return {"status": "confirmed", "rotated_at": iso_utc(_rotated_at(status))}

    def _server_for(self, node_id: str, source_ip: str) -> Server:
        try:
            server = self._store.servers.get_by_node_id(node_id=node_id)
            if self._require_source_ip:
                check_source_ip(source_ip=source_ip, server_ip=server.ip,
                                server_uuid=server.uuid)
        except (ServerNotFound, WrongSourceIp) as exc:
            _LOGGER.warning("hook deeplink from %s for node %s...: %s", source_ip,
                            node_id[:12], exc.message())
            if isinstance(exc, WrongSourceIp):
                self._event(exc.server, "rotate", "forbidden_source", {"source_ip": source_ip})
            raise HookRefusal(403, "forbidden_source",
                              "request does not come from the server's registered IP") from None
        return server

    def _set_and_confirm(self, server: Server, code: str, device_id: str) -> DeepLinkInfo:
        key = self._store.servers.credentials(server_id=server.id).node_private_key
        if key is None or not server.node_id:
            raise HookRefusal(502, "node_unreachable",
                              f"the agent holds no node key for {server.uuid} yet")
        auth = NodeKeyAuth(key.reveal())
        deadline = self._monotonic() + self._confirm_s
        try:
            self._guard_device(server, auth)
            self._node.set_deeplink(server.node_id, device_id=device_id or None,
                                    device_password=code, auth=auth, timeout_s=NODE_CALL_S)
            info = self._read_back(server.node_id, code, auth, deadline)
        except bm.DeepLinkNotConnected:
            raise HookRefusal(503, "deeplink_not_connected",
                              "deeplink service not connected") from None
        except bm.TransportError as exc:
            _LOGGER.warning("hook deeplink for %s: node unreachable: %s", server.uuid, exc)
            raise HookRefusal(502, "node_unreachable", "bare-metal node did not answer") from None
        except bm.BaremetalError as exc:
            _LOGGER.warning("hook deeplink for %s: node refused: %s", server.uuid, exc)
            raise HookRefusal(502, "node_unreachable",
                              f"bare-metal node refused: {type(exc).__name__}") from None
        if info is None:
            raise HookRefusal(504, "not_confirmed", "node did not report the new code in time")
        return info

    def _guard_device(self, server: Server, auth: NodeKeyAuth) -> None:
        # A pinned PC: the DeepLink the node talks to for this address must still be the
        # pinned one, checked BEFORE the new code reaches it.
        if server.node_id and self._store.pins.get(server_id=server.id) is not None:
            current = self._node.get_deeplink(server.node_id, auth, timeout_s=NODE_CALL_S)
            self._seats.check_device_id(server, current.device_id)

    def _read_back(self, node_id: str, code: str, auth: NodeKeyAuth,
                   deadline: float) -> DeepLinkInfo | None:
        # deeplink/set "ok" only means queued on DeepLink's socket (docs/protocol.md §7.3):
        # the node reports the new code once DeepLink applied it and sent setDeviceInfo.
        while True:
            left = deadline - self._monotonic()
            if left <= 0:
                return None
            info = self._node.get_deeplink(node_id, auth, timeout_s=min(NODE_CALL_S, left))
            if info.device_password == code:
                return info
            time.sleep(min(self._poll_s, max(0.0, deadline - self._monotonic())))

    # -- shared -----------------------------------------------------------------------

    def _verify(self, request: SignedRequest) -> SeatKey | None:
        """Check signature (café token, or the seat key named), time, nonce; return the seat."""
        seat = self._seats.lookup(request.seat_key)
        try:
            self._verifier.verify(method=request.method, target=request.target,
                                  body=request.body, timestamp=request.timestamp,
                                  nonce=request.nonce, signature=request.signature,
                                  public_key=bytes.fromhex(seat.public_key) if seat else None)
        except BadSignature as exc:
            _LOGGER.warning("hook request from %s refused: %s", request.source_ip, exc.detail)
            raise HookRefusal(403, "bad_signature",
                              "hook token signature does not verify") from None
        except StaleRequest as exc:
            _LOGGER.warning("hook request from %s refused: clock %d s off", request.source_ip,
                            exc.skew_s)
            raise HookRefusal(401, "stale_timestamp",
                              f"timestamp outside the {self._window_s} s window") from None
        except ReplayedRequest:
            _LOGGER.warning("hook request from %s refused: nonce replayed", request.source_ip)
            raise HookRefusal(409, "replayed", "nonce already used") from None
        return seat

    def _check_neighbour(self, server: Server, source_ip: str) -> None:
        """Refuse when the host's ARP entry for the source names another MAC than inventory."""
        seen = self._neighbours.mac_of(_plain_ip(source_ip))
        if not server.mac or not seen or seen == server.mac.lower():
            return
        _LOGGER.warning("hook request from %s for %s: neighbour table MAC differs from the"
                        " inventory MAC", source_ip, server.uuid)
        self._event(server.uuid, "neighbour_mac", "forbidden_source",
                    {"source_ip": source_ip, "neighbour_mac": seen, "inventory_mac": server.mac})
        raise HookRefusal(403, "forbidden_source",
                          "the source's MAC is not the server's inventory MAC")

    def _event(self, uuid: str, action: str, result: str, detail: dict[str, Any]) -> None:
        # A success is one row each; anything else (a refusal, a node failure, a warning)
        # is sampled: one row per (server, action, result) a minute, with a repeat count.
        if result in _SUCCESS_RESULTS:
            self._store.events.append(actor=ACTOR_HOOK, kind=EventKind.DEEPLINK,
                                      action=action, server_uuid=uuid, result=result[:100],
                                      detail=detail)
            return
        self.event_sampler.record((uuid, action, result), actor=ACTOR_HOOK,
                                  kind=EventKind.DEEPLINK, action=action, server_uuid=uuid,
                                  result=result, detail=detail)

    def _node_version(self) -> str:
        """Return the node's version (cached; "" when it cannot be learnt quickly)."""
        now = self._monotonic()
        with self._version_lock:
            if self._version is not None and now - self._version[0] < NODE_VERSION_TTL_S:
                return self._version[1]
        try:
            version = self._node.version(timeout_s=2.0).client_version
        except bm.BaremetalError as exc:
            _LOGGER.info("node version unknown for whoami: %s", exc)
            return ""
        with self._version_lock:
            self._version = (now, version)
        return version


def _plain_ip(source_ip: str) -> str:
    return source_ip.removeprefix("::ffff:")


def _rotated_at(status: DeepLinkStatus) -> float:
    return status.last_rotated_at if status.last_rotated_at is not None else status.updated_at
