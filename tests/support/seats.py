"""Hook requests to a real bm-agent from a PC's 127.0.0.N, and seat-key set-up for tests.

- ``hook_request(agent, method, target, body, source_ip=..., token=..., seat=...)``: sign
  like bm-hook (with the café token, or with a seat key named in ``X-BM-Seat-Key``) and send
  from ``source_ip``;
- ``provision_seat(agent, uuid, ip)``: what a PC's first boot plus a staff approval do:
  make a seat key, enroll it (café token, from ``ip``), approve it through the API; returns
  the seat key's seed (write it as the hook's ``[agent] seat_key_file``).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

import requests

from boot_hooks.relay import ENROLL_PATH, SeatSigner, TokenSigner, encode_body
from tests.support.agentproc import AgentProc

__all__ = ["approve_seat", "enroll_seat", "hook_request", "new_seat_seed", "provision_seat",
           "seat_public"]


def new_seat_seed(name: str = "") -> str:
    """A seat key seed: derived from ``name`` (stable test data) or random."""
    if name:
        return hashlib.sha256(f"test seat key {name}".encode()).hexdigest()
    return secrets.token_hex(32)


def seat_public(seed: str) -> str:
    """The seat key's public half (what the PC enrolls)."""
    return SeatSigner(seed).public_key_hex


def hook_request(agent: AgentProc, method: str, target: str, body: bytes = b"", *,
                 source_ip: str, token: str | None = None, seat: str | None = None,
                 timestamp: int | None = None, nonce: str | None = None,
                 extra: dict[str, str] | None = None) -> requests.Response:
    """Sign with ``seat`` (seat key) or ``token`` (café token; default: the agent's) and send."""
    signer = SeatSigner(seat) if seat else TokenSigner(token or agent.hook_seed or "")
    stamp = int(time.time()) if timestamp is None else timestamp
    headers: dict[str, Any] = signer.headers(method, target, body, stamp,
                                             nonce or secrets.token_hex(16))
    if body:
        headers["Content-Type"] = "application/json"
    headers.update(extra or {})
    with agent.session(None, source_ip=source_ip) as sess:
        return sess.request(method, agent.url + target, headers=headers, data=body or None,
                            timeout=30)


def enroll_seat(agent: AgentProc, seed: str, source_ip: str,
                token: str | None = None) -> requests.Response:
    """Enroll the seat key of ``seed`` from ``source_ip``, signed by the café token."""
    body = encode_body({"seat_key": seat_public(seed)})
    return hook_request(agent, "POST", ENROLL_PATH, body, source_ip=source_ip, token=token)


def approve_seat(agent: AgentProc, *uuids: str, user: str = "oper") -> dict[str, Any]:
    """Approve the pending seat keys of ``uuids`` through the API, as an operator."""
    answer = agent.post("/api/v1/seats/approve", user=user, json={"uuids": list(uuids)})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def provision_seat(agent: AgentProc, uuid: str, ip: str, seed: str | None = None) -> str:
    """Enroll and approve a seat key for the PC ``uuid`` at ``ip``; return its seed."""
    seed = seed or new_seat_seed(uuid)
    answer = enroll_seat(agent, seed, ip)
    assert answer.status_code == 202 and answer.json() == {"status": "pending"}, answer.text
    result = approve_seat(agent, uuid)
    assert result["ok"], result
    return seed
