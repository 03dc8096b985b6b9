"""The three ways to authenticate a DBC HTTP request (docs/protocol.md §2.4, §4).

- ``NodeKeyAuth``: a node key (the manager's ``dat/node.dat`` key, or a server's
  generated ``node_private_key``). A fresh nonce is made and signed for every request.
- ``WalletAuth``: a pre-signed ``wallet``/``nonce``/``sign`` triple (a renter's SS58
  wallet, or a node key signed elsewhere).
- ``SessionAuth``: the renter's ``session_id`` and its ``session_id_sign``.
- ``MultisigAuth``: multisig ``wallets``, ``threshold`` and ``signs``.

The node never prevents replay (§4.2): a nonce/sign pair works forever, so signatures
are treated as secrets (``repr=False``) like the keys themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from baremetal.errors import InvalidInput
from baremetal.signing import make_nonce, node_id_from_private_key, sign

__all__ = [
    "Auth",
    "ManagerAuth",
    "MultisigAuth",
    "MultisigSign",
    "NodeKeyAuth",
    "SessionAuth",
    "WalletAuth",
]


def _require_text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{name} must be a non-empty string")


@dataclass(frozen=True)
class NodeKeyAuth:
    """Sign every request with a node key: wallet = node_id, fresh nonce, sr25519 sign."""

    private_key: str = field(repr=False)
    node_id: str = field(init=False)

    def __post_init__(self) -> None:
        # Derive once: a malformed key fails here with SigningError, not mid-request.
        object.__setattr__(self, "node_id", node_id_from_private_key(self.private_key))

    @property
    def wallet(self) -> str:
        """Return the wallet the node compares with its ids: the node_id."""
        return self.node_id

    def to_fields(self) -> dict[str, Any]:
        """Return wallet, a fresh nonce and its signature."""
        nonce = make_nonce()
        return {"wallet": self.node_id, "nonce": nonce, "sign": sign(self.private_key, nonce)}


@dataclass(frozen=True)
class WalletAuth:
    """A pre-signed wallet/nonce/sign triple (renter SS58 wallet or 64-hex node id)."""

    wallet: str
    nonce: str
    sign: str = field(repr=False)

    def __post_init__(self) -> None:
        for name in ("wallet", "nonce", "sign"):
            _require_text(name, getattr(self, name))

    def to_fields(self) -> dict[str, Any]:
        """Return the triple as body fields."""
        return {"wallet": self.wallet, "nonce": self.nonce, "sign": self.sign}


@dataclass(frozen=True)
class SessionAuth:
    """The renter's session pair, handed to third parties (§4.5)."""

    session_id: str
    session_id_sign: str = field(repr=False)

    def __post_init__(self) -> None:
        _require_text("session_id", self.session_id)
        _require_text("session_id_sign", self.session_id_sign)

    def to_fields(self) -> dict[str, Any]:
        """Return session_id and session_id_sign as body fields."""
        return {"session_id": self.session_id, "session_id_sign": self.session_id_sign}


@dataclass(frozen=True)
class MultisigSign:
    """One signer's triple inside ``multisig_accounts.signs``."""

    wallet: str
    nonce: str
    sign: str = field(repr=False)

    def __post_init__(self) -> None:
        for name in ("wallet", "nonce", "sign"):
            _require_text(f"multisig sign {name}", getattr(self, name))


@dataclass(frozen=True)
class MultisigAuth:
    """Multisig account: all wallets, the threshold and at least ``threshold`` signs."""

    wallets: tuple[str, ...]
    threshold: int
    signs: tuple[MultisigSign, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "wallets", tuple(self.wallets))
        object.__setattr__(self, "signs", tuple(self.signs))
        for wallet in self.wallets:
            _require_text("multisig wallet", wallet)
        # Same rule as the node (node_request_service.cpp:555-602, §4.6).
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int):
            raise InvalidInput("multisig threshold must be an integer")
        if not 0 < self.threshold <= min(len(self.wallets), len(self.signs)):
            raise InvalidInput("multisig threshold must be > 0 and <= wallets and signs")
        if any(s.wallet not in self.wallets for s in self.signs):
            raise InvalidInput("every multisig sign must come from one of the wallets")

    def to_fields(self) -> dict[str, Any]:
        """Return ``multisig_accounts``; the threshold goes as a JSON string (§2.4)."""
        signs = [{"wallet": s.wallet, "nonce": s.nonce, "sign": s.sign} for s in self.signs]
        return {
            "multisig_accounts": {
                "wallets": list(self.wallets),
                "threshold": str(self.threshold),
                "signs": signs,
            }
        }


Auth = NodeKeyAuth | WalletAuth | SessionAuth | MultisigAuth
ManagerAuth = NodeKeyAuth | WalletAuth
