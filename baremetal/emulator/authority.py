"""Rental authorization of node-side requests (``check_authority``, docs/protocol.md §4.4-4.6).

Source: ``node_request_service.cpp:524-776`` and ``WalletSessionIDManager.cpp``. The
chain answers come from a ``RentalView``: the rentals file (``RentalBook``) or the chain
through ``baremetal.chain`` (``ChainRentalBook``, ``--chain``). No nonce is ever
remembered: a signed nonce works forever, as on the node (§4.2).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from baremetal import signing
from baremetal.emulator.envelope import ReqBody, verify_sign
from baremetal.emulator.rentals import MachineRental, RentalView, multisig_account
from baremetal.emulator.store import atomic_write_json

__all__ = ["AuthResult", "SessionIds", "check_authority", "verified_wallets"]

ROLE_VERIFIER = "verifier"
ROLE_WALLET_RENTER = "wallet_renter"
ROLE_SESSION_RENTER = "session_renter"
_LIVE_ORDER = ("renting", "waitingVerifying")


@dataclass
class AuthResult:
    """``AuthoriseResult``: success, role, refusal reason and the renting wallet."""

    success: bool = False
    role: str = ""
    errmsg: str = ""
    rent_wallet: str = ""
    machine_status: str = "unknown"


class SessionIds:
    """``WalletSessionIDManager``: one session_id per wallet, persisted, never rotated."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / "db" / "sessionid.json"
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._by_wallet: dict[str, dict[str, object]] = {}
        if self._path.exists():
            self._by_wallet = json.loads(self._path.read_text(encoding="utf-8"))

    def create(self, wallet: str, signers: list[str] | None = None) -> str:
        """Return the wallet's session_id, making and storing one the first time."""
        with self._lock:
            entry = self._by_wallet.get(wallet)
            if entry is None:
                entry = {"session_id": signing.make_nonce(), "signers": list(signers or [])}
                self._by_wallet[wallet] = entry
                atomic_write_json(self._path, self._by_wallet)
            return str(entry["session_id"])

    def get(self, wallet: str) -> str:
        """Return the wallet's session_id or ``""``."""
        with self._lock:
            entry = self._by_wallet.get(wallet)
            return str(entry["session_id"]) if entry else ""

    def check(self, session_id: str, session_id_sign: str) -> str:
        """Return the wallet whose session_id this is, if the signature fits; else ``""``."""
        if not session_id or not session_id_sign:
            return ""
        with self._lock:
            found = [(w, e) for w, e in self._by_wallet.items() if e["session_id"] == session_id]
        for wallet, entry in found:
            signers = entry.get("signers", [])
            candidates = [wallet, *(signers if isinstance(signers, list) else [])]
            if any(verify_sign(session_id_sign, session_id, str(w)) for w in candidates):
                return wallet
        return ""


@dataclass
class _Wallets:
    single: str = ""
    multisig: str = ""
    signers: list[str] = field(default_factory=list)


def _multisig_ok(body: ReqBody) -> bool:
    threshold, wallets, signs = body.multisig_threshold, body.multisig_wallets, body.multisig_signs
    if not wallets or not signs or threshold <= 0:
        return False
    if threshold > len(wallets) or threshold > len(signs):
        return False
    for item in signs:
        if item.wallet not in wallets or not item.nonce or not item.sign:
            return False
        if not verify_sign(item.sign, item.nonce, item.wallet):
            return False
    return True


def verified_wallets(body: ReqBody) -> _Wallets:
    """Apply ``parse_wallet``: the wallet and multisig account whose signatures verify."""
    result = _Wallets()
    if body.wallet and body.nonce and body.sign and verify_sign(body.sign, body.nonce,
                                                                     body.wallet):
        result.single = body.wallet
    if _multisig_ok(body):
        try:
            result.multisig = multisig_account(body.multisig_wallets, body.multisig_threshold)
            result.signers = list(body.multisig_wallets)
        except signing.SigningError:
            result.multisig = ""
    return result


def _order_live(machine: MachineRental, rent_order: str, wallet: str) -> bool:
    # RentOrderManager::GetRentStatus: the order (by id, or by wallet) must name this
    # wallet as renter and be "renting" or "waitingVerifying".
    if not wallet or machine.renter != wallet:
        return False
    if rent_order and rent_order != machine.rent_order:
        return False
    return machine.rent_status in _LIVE_ORDER


def _check_verify(rentals: RentalView, node_id: str, wallets: _Wallets,
                  result: AuthResult) -> None:
    if not wallets.single and not wallets.multisig:
        result.errmsg = "nonce check failed"
        return
    for wallet in (wallets.multisig, wallets.single):
        if not wallet:
            continue
        if rentals.in_verify_time(node_id, wallet):
            result.success, result.role, result.rent_wallet = True, ROLE_VERIFIER, wallet
            return
        result.errmsg = "not in verify time"
    result.errmsg = "not in verify time"


def _check_rented(body: ReqBody, machine: MachineRental, sessions: SessionIds,
                  result: AuthResult) -> None:
    session_wallet = sessions.check(body.session_id, body.session_id_sign)
    if session_wallet:
        if _order_live(machine, body.rent_order, session_wallet):
            result.success, result.role = True, ROLE_SESSION_RENTER
            result.rent_wallet = session_wallet
        else:
            result.errmsg = "machine has already expired"
        return
    wallets = verified_wallets(body)
    if not wallets.single and not wallets.multisig:
        pair_given = bool(body.session_id and body.session_id_sign)
        result.errmsg = "session_id is invalid" if pair_given else "nonce check failed"
        return
    if wallets.multisig:
        if _order_live(machine, body.rent_order, wallets.multisig):
            result.success, result.role, result.rent_wallet = (
                True, ROLE_WALLET_RENTER, wallets.multisig)
            sessions.create(wallets.multisig, wallets.signers)
        else:
            result.errmsg = "wallet not rented"
    if not result.success and wallets.single:
        if _order_live(machine, body.rent_order, wallets.single):
            result.success, result.role, result.rent_wallet = (
                True, ROLE_WALLET_RENTER, wallets.single)
            sessions.create(wallets.single)
        else:
            result.errmsg = "wallet not rented"


def check_authority(body: ReqBody, rentals: RentalView, sessions: SessionIds,
                    *, use_session: bool = True) -> AuthResult:
    """Decide who the caller is for machine ``body.target`` (never raises)."""
    machine = rentals.machine(body.target, body.rent_order)
    result = AuthResult(machine_status=machine.status)
    if machine.status == "unknown":
        result.errmsg = "query machine_status failed"
    elif machine.status == "verify":
        _check_verify(rentals, body.target, verified_wallets(body), result)
    elif machine.status == "online":
        result.errmsg = "machine is not be rented"
    else:
        if not use_session:
            # mining_nodes/session_id does not pass the session pair (:5827-5840).
            body = replace(body, session_id="", session_id_sign="")
        _check_rented(body, machine, sessions, result)
    return result
