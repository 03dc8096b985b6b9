"""sr25519 signing exactly as the DBC node does it (docs/protocol.md §4).

- node_id = lowercase hex of the 32-byte sr25519 public key, no ``0x``.
- node_private_key = hex of the 32-byte mini-secret seed (Substrate ``from_seed``).
- a signature is 64 bytes as 128 lowercase hex chars, over the raw UTF-8 bytes of the
  signed string (the nonce, or a session_id).
- a wallet is either a 64-hex public key (node keys) or an SS58 address (renters).
- a nonce is base58check (Bitcoin alphabet, 4-byte double-SHA-256 checksum) of a
  lowercase UUID string, as ``util::create_nonce`` makes it.

Everything here is pure: no clock, no I/O; ``make_nonce`` takes its UUID from the caller
when a test wants a fixed one.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid as uuid_mod
from dataclasses import dataclass, field

import sr25519

from baremetal.errors import SigningError

__all__ = [
    "NodeKeypair",
    "SigningError",
    "b58check_decode",
    "b58check_encode",
    "make_nonce",
    "new_node_keypair",
    "node_id_from_private_key",
    "public_key_to_ss58",
    "sign",
    "ss58_to_public_key",
    "verify",
]

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {ch: i for i, ch in enumerate(_B58_ALPHABET)}
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_HEX128 = re.compile(r"[0-9a-fA-F]{128}")
_SS58_PREFIX_GENERIC = 42
_SS58_CHECKSUM_SALT = b"SS58PRE"


@dataclass(frozen=True)
class NodeKeypair:
    """A node identity: public node_id and its private seed (never printed)."""

    node_id: str
    private_key: str = field(repr=False)


def _seed_bytes(private_key_hex: str) -> bytes:
    key = private_key_hex.removeprefix("0x")
    if not _HEX64.fullmatch(key):
        raise SigningError("private key must be 64 hex characters (a 32-byte seed)")
    return bytes.fromhex(key)


def _keypair(private_key_hex: str) -> tuple[bytes, bytes]:
    pair: tuple[bytes, bytes] = sr25519.pair_from_seed(_seed_bytes(private_key_hex))
    return pair


def node_id_from_private_key(private_key_hex: str) -> str:
    """Derive the node_id (lowercase hex public key) from a node_private_key."""
    public, _secret = _keypair(private_key_hex)
    return public.hex()


def new_node_keypair() -> NodeKeypair:
    """Make a fresh random node identity, as the node's ``create_account`` does."""
    seed = os.urandom(32).hex()
    return NodeKeypair(node_id=node_id_from_private_key(seed), private_key=seed)


def sign(private_key_hex: str, message: str) -> str:
    """Sign the UTF-8 bytes of ``message``; return 128 lowercase hex characters."""
    pair = _keypair(private_key_hex)
    signature: bytes = sr25519.sign(pair, message.encode("utf-8"))
    return signature.hex()


def verify(signature_hex: str, message: str, wallet: str) -> bool:
    """Tell whether ``signature_hex`` signs ``message`` for ``wallet`` (hex key or SS58)."""
    if not _HEX128.fullmatch(signature_hex.removeprefix("0x")):
        return False
    try:
        public = _wallet_public_key(wallet)
    except SigningError:
        return False
    signature = bytes.fromhex(signature_hex.removeprefix("0x"))
    try:
        return bool(sr25519.verify(signature, message.encode("utf-8"), public))
    except ValueError:
        # Not a schnorrkel signature at all (marker bit missing): simply not valid.
        return False


def _wallet_public_key(wallet: str) -> bytes:
    hex_key = wallet.removeprefix("0x")
    if _HEX64.fullmatch(hex_key):
        return bytes.fromhex(hex_key)
    return ss58_to_public_key(wallet)


def ss58_to_public_key(address: str) -> bytes:
    """Decode a single-byte-prefix SS58 address (e.g. ``5…``) to its 32-byte public key."""
    raw = _b58decode(address)
    if len(raw) != 35 or raw[0] >= 64:
        raise SigningError("not an SS58 address with a one-byte prefix and a 32-byte key")
    checksum = hashlib.blake2b(_SS58_CHECKSUM_SALT + raw[:33], digest_size=64).digest()[:2]
    if checksum != raw[33:]:
        raise SigningError("SS58 address checksum does not match")
    return raw[1:33]


def public_key_to_ss58(public_key: bytes, prefix: int = _SS58_PREFIX_GENERIC) -> str:
    """Encode a 32-byte public key as an SS58 address (generic prefix 42 by default)."""
    if len(public_key) != 32 or not 0 <= prefix < 64:
        raise SigningError("SS58 needs a 32-byte key and a prefix below 64")
    body = bytes([prefix]) + public_key
    checksum = hashlib.blake2b(_SS58_CHECKSUM_SALT + body, digest_size=64).digest()[:2]
    return _b58encode(body + checksum)


def make_nonce(uuid_text: str | None = None) -> str:
    """Make a nonce as the node does: base58check of a lowercase UUID string."""
    text = (uuid_text or str(uuid_mod.uuid4())).lower()
    return b58check_encode(text.encode("ascii"))


def b58check_encode(payload: bytes) -> str:
    """Encode ``payload`` with a 4-byte double-SHA-256 checksum in base58."""
    checksum = hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    return _b58encode(payload + checksum)


def b58check_decode(text: str) -> bytes:
    """Decode base58check text; raise SigningError if the checksum is wrong."""
    raw = _b58decode(text)
    payload, checksum = raw[:-4], raw[-4:]
    if len(raw) < 5 or hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] != checksum:
        raise SigningError("base58check checksum does not match")
    return payload


def _b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, rem = divmod(number, 58)
        out.append(_B58_ALPHABET[rem])
    leading_zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * leading_zeros + "".join(reversed(out))


def _b58decode(text: str) -> bytes:
    number = 0
    for ch in text:
        if ch not in _B58_INDEX:
            raise SigningError("not base58 text")
        number = number * 58 + _B58_INDEX[ch]
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    leading_ones = len(text) - len(text.lstrip("1"))
    return b"\0" * leading_ones + body
