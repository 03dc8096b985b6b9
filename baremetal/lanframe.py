"""DeepLink LAN frames: 4-byte little-endian length + JSON body of at most 512 bytes.

Pure codec shared by the node emulator (``emulator/deeplink_lan.py``) and the simulated
DeepLink (``emulator/deeplink_client.py``); reference: docs/protocol.md §7.2,
``deeplink_lan_message.hpp``.

Two node quirks live here because both sides must know them:

- The node reads the header through ``strncat`` (``deeplink_lan_message.hpp:34-45``),
  so only the bytes before the first NUL count: a header for 256 or 512 reads as 0,
  and ``05 00 00 01`` reads as 5. ``node_header_length`` reproduces that, and
  ``FrameDecoder(node_header_quirk=True)`` decodes as the node does.
- The node's body buffer is zeroed once and overwritten in place, then parsed as a C
  string, so a body shorter than the previous one keeps the old tail
  (``deeplink_session.cpp:88-98``). ``StaleBodyBuffer`` reproduces that.

``encode_frame(obj, node_safe=True)`` makes frames that survive both quirks: the body
ends with a NUL inside the counted length, and its length never reads as 0.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from baremetal.errors import FrameDecodeError, FrameTooLarge

__all__ = [
    "HEADER_LEN",
    "MAX_BODY",
    "FrameDecoder",
    "StaleBodyBuffer",
    "encode_frame",
    "encode_header",
    "node_header_length",
    "parse_message",
]

HEADER_LEN = 4
MAX_BODY = 512
_HEADER = struct.Struct("<I")


def encode_header(length: int) -> bytes:
    """Return the 4-byte little-endian header announcing ``length`` body bytes."""
    return _HEADER.pack(length)


def node_header_length(header: bytes) -> int:
    """Return the length the node reads from a 4-byte header (bytes after a NUL are lost)."""
    nul = header.find(b"\0")
    kept = header[:HEADER_LEN] if nul < 0 else header[:nul]
    return int.from_bytes(kept, "little")


def encode_frame(message: dict[str, Any] | bytes, *, node_safe: bool = False) -> bytes:
    """Return header + body for a JSON object (compact UTF-8) or for raw body bytes.

    With ``node_safe`` the body gets a trailing NUL (so a stale tail in the node's
    buffer is cut off) and, if its length would read as 0 through the node's header
    quirk, one space of padding before that NUL. Raises FrameTooLarge past 512 bytes.
    """
    if isinstance(message, bytes):
        body = message
    else:
        body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
    if node_safe:
        body += b"\0"
        if node_header_length(encode_header(len(body))) != len(body):
            body = body[:-1] + b" \0"
    if len(body) > MAX_BODY:  # node-safe bodies stop at 511: 512 is padded to 513
        raise FrameTooLarge(len(body), MAX_BODY)
    return encode_header(len(body)) + body


class FrameDecoder:
    """Incremental decoder: push bytes as they arrive, pop complete bodies.

    A header announcing more than 512 bytes raises FrameTooLarge from ``pop`` (after
    every body before it was popped) and from every later call: the stream cannot be
    resynchronised, the peer must drop it. ``feed`` is push + pop-all, for callers
    that do not need the bodies that precede an oversize header.
    """

    def __init__(self, *, node_header_quirk: bool = False) -> None:
        self._node_header_quirk = node_header_quirk
        self._buffer = bytearray()
        self._body_length: int | None = None
        self._failed: FrameTooLarge | None = None

    @property
    def buffered(self) -> int:
        """Return how many received bytes are not popped yet."""
        return len(self._buffer)

    def push(self, data: bytes) -> None:
        """Buffer ``data``."""
        if self._failed is not None:
            raise self._failed
        self._buffer += data

    def pop(self) -> bytes | None:
        """Return the next complete body, or None while it is still incomplete."""
        if self._failed is not None:
            raise self._failed
        if self._body_length is None:
            if len(self._buffer) < HEADER_LEN:
                return None
            self._body_length = self._read_header()
        if len(self._buffer) < self._body_length:
            return None
        body = bytes(self._buffer[: self._body_length])
        del self._buffer[: self._body_length]
        self._body_length = None
        return body

    def feed(self, data: bytes) -> list[bytes]:
        """Buffer ``data`` and return every body it completes, in order."""
        self.push(data)
        return list(iter(self.pop, None))

    def _read_header(self) -> int:
        header = bytes(self._buffer[:HEADER_LEN])
        del self._buffer[:HEADER_LEN]
        if self._node_header_quirk:
            length = node_header_length(header)
        else:
            length = _HEADER.unpack(header)[0]
        if length > MAX_BODY:
            self._buffer.clear()
            self._failed = FrameTooLarge(length, MAX_BODY)
            raise self._failed
        return length


class StaleBodyBuffer:
    """The node's receive buffer: zeroed once, overwritten in place, parsed as a C string."""

    def __init__(self) -> None:
        self._buffer = bytearray(MAX_BODY)

    def overlay(self, body: bytes) -> bytes:
        """Write ``body`` over the buffer and return the C string the node would parse."""
        self._buffer[: len(body)] = body[:MAX_BODY]
        nul = self._buffer.find(0)
        return bytes(self._buffer if nul < 0 else self._buffer[:nul])


def parse_message(body: bytes) -> dict[str, Any]:
    """Parse a body as a JSON object, up to its first NUL; raise FrameDecodeError otherwise."""
    nul = body.find(b"\0")
    text = body if nul < 0 else body[:nul]
    try:
        value = json.loads(text.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # The exception text may quote the body (a password); keep only its type.
        raise FrameDecodeError(f"not JSON ({type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise FrameDecodeError(f"JSON {type(value).__name__}, not an object")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
