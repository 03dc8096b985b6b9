"""The common request envelope: body checks and ``parse_req_params`` (docs/protocol.md §2.3-2.4).

Source: ``rest_api_service.cpp:523-711``. Where the node has undefined behaviour (a
non-string first ``peer_nodes_list`` element, non-string multisig items, missing keys
in ``signs`` items) the emulator reads the value as ``""``.

``multisig_accounts.threshold`` is an uninitialised ``int32_t`` in the node when the
caller sends no ``multisig_accounts``; the emulator picks 0, which makes
``check_multisig_wallets`` pass vacuously so the request is forwarded and the node
side refuses it (the common case in practice, docs/protocol.md §2.4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from baremetal import signing
from baremetal.emulator import rjson
from baremetal.emulator.replies import (
    HTTP_BAD_REQUEST,
    RPC_INVALID_PARAMS,
    RPC_INVALID_REQUEST,
    Reply,
    client_error,
)

__all__ = [
    "ReqBody",
    "SignItem",
    "check_multisig_wallets",
    "check_wallet_sign",
    "has_peer_nodeid",
    "parse_json_body",
    "parse_req_params",
    "renter_precheck",
    "require_post",
    "verify_sign",
]

_ATOI = re.compile(r"[ \t\n\v\f\r]*([+-]?\d+)")


@dataclass
class SignItem:
    """One multisig signer's triple."""

    wallet: str
    nonce: str
    sign: str = field(repr=False)


@dataclass
class ReqBody:
    """What ``parse_req_params`` keeps of a request (``req_body`` in the node)."""

    peer_nodes_list: list[str] = field(default_factory=list)
    additional: dict[str, Any] = field(default_factory=dict)
    wallet: str = ""
    nonce: str = ""
    sign: str = field(default="", repr=False)
    multisig_wallets: list[str] = field(default_factory=list)
    multisig_threshold: int = 0
    multisig_signs: list[SignItem] = field(default_factory=list)
    session_id: str = ""
    session_id_sign: str = field(default="", repr=False)
    rent_order: str = ""
    node_id: str = ""

    @property
    def target(self) -> str:
        """Return ``peer_nodes_list[0]`` or ``""``."""
        return self.peer_nodes_list[0] if self.peer_nodes_list else ""


def verify_sign(sign: str, message: str, wallet: str) -> bool:
    """Check an sr25519 signature like ``util::verify_sign``: any malformed input is False."""
    try:
        return signing.verify(sign, message, wallet)
    except (ValueError, signing.SigningError):
        # py-sr25519-bindings raises on bytes that are not a schnorrkel signature.
        return False


def require_post(method: str) -> Reply | None:
    """Return the node's 400 answer unless the method is POST."""
    if method != "POST":
        return client_error(HTTP_BAD_REQUEST, RPC_INVALID_REQUEST, "only support POST request")
    return None


def parse_json_body(raw: bytes, *, with_offset: bool = True) -> dict[str, Any] | Reply:
    """Apply the three body checks every handler makes, in the node's order.

    ``rest_list_image_servers`` alone omits the ``(<offset>)`` after the parse error.
    """
    if not raw:
        return client_error(HTTP_BAD_REQUEST, RPC_INVALID_PARAMS, "http request body is empty")
    try:
        doc = rjson.parse(raw)
    except rjson.JsonParseError as exc:
        where = f"({exc.offset})" if with_offset else ""
        text = f"json parse error: {exc.message}{where}"
        return client_error(HTTP_BAD_REQUEST, RPC_INVALID_PARAMS, text)
    if not isinstance(doc, dict):
        return client_error(HTTP_BAD_REQUEST, RPC_INVALID_PARAMS, "invalid json")
    return doc


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _atoi(text: str) -> int:
    match = _ATOI.match(text)
    if not match:
        return 0
    value = int(match.group(1)) & 0xFFFFFFFF  # int32_t wrap-around
    return value - (1 << 32) if value >= 1 << 31 else value


def _parse_multisig(value: Any, body: ReqBody) -> str | None:
    if not isinstance(value, dict):
        return "multisig_accounts is not object"
    if "wallets" not in value:
        return "multisig_accounts has no member wallets"
    if not isinstance(value["wallets"], list):
        return "multisig_accounts member wallets is not array"
    body.multisig_wallets = [_text(w) for w in value["wallets"]]
    if "threshold" not in value:
        return "multisig_accounts has no member threshold"
    if not isinstance(value["threshold"], str):
        return "multisig_accounts member threshold is not string"
    body.multisig_threshold = _atoi(value["threshold"])
    if "signs" not in value:
        return "multisig_accounts has no member signs"
    if not isinstance(value["signs"], list):
        return "multisig_accounts member signs is not array"
    for item in value["signs"]:
        item = item if isinstance(item, dict) else {}
        body.multisig_signs.append(
            SignItem(_text(item.get("wallet")), _text(item.get("nonce")), _text(item.get("sign")))
        )
    return None


_OPTIONAL_STRINGS = ("wallet", "nonce", "sign")
_LATE_STRINGS = ("session_id", "session_id_sign", "rent_order")


def parse_req_params(doc: dict[str, Any]) -> ReqBody | str:
    """Return the parsed envelope, or the node's error text (without any prefix)."""
    body = ReqBody()
    if "peer_nodes_list" not in doc:
        return "has no peer_nodes_list"
    peers = doc["peer_nodes_list"]
    if not isinstance(peers, list):
        return "peer_nodes_list is not array"
    if peers:
        body.peer_nodes_list = [_text(peers[0])]
    if "additional" not in doc:
        return "has no additional"
    if not isinstance(doc["additional"], dict):
        return "additional is not object"
    body.additional = doc["additional"]
    for name in _OPTIONAL_STRINGS:
        if name in doc:
            if not isinstance(doc[name], str):
                return f"{name} is not string"
            setattr(body, name, doc[name])
    if "multisig_accounts" in doc:
        error = _parse_multisig(doc["multisig_accounts"], body)
        if error:
            return error
    for name in _LATE_STRINGS:
        if name in doc:
            if not isinstance(doc[name], str):
                return f"{name} is not string"
            setattr(body, name, doc[name])
    return body


def check_wallet_sign(body: ReqBody) -> bool:
    """Tell whether wallet, nonce and sign are all non-empty (``:681-684``)."""
    return bool(body.wallet and body.nonce and body.sign)


def check_multisig_wallets(body: ReqBody) -> bool:
    """Apply the client's multisig shape check (``:686-711``), unsigned compare included."""
    threshold = body.multisig_threshold
    # int32 compared with size_t: a negative threshold becomes huge and fails.
    if threshold < 0 or threshold > len(body.multisig_wallets):
        return False
    if threshold > len(body.multisig_signs):
        return False
    for item in body.multisig_signs:
        if item.wallet not in body.multisig_wallets:
            return False
        if not (item.wallet and item.nonce and item.sign):
            return False
    return True


def renter_precheck(body: ReqBody) -> Reply | None:
    """Refuse before relaying when neither the session pair nor a signer is given."""
    session_complete = bool(body.session_id and body.session_id_sign)
    if not session_complete and not check_wallet_sign(body) and not check_multisig_wallets(body):
        return client_error(HTTP_BAD_REQUEST, RPC_INVALID_PARAMS,
                            "wallet_sign and multisig_wallets all invalid")
    return None


def has_peer_nodeid(body: ReqBody) -> bool:
    """Tell whether ``peer_nodes_list[0]`` exists and is non-empty."""
    return bool(body.target)
