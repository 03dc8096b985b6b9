r"""DeepLink's local SDK framing and the two transports that carry it (the SDK seam).

Framing (DeepLinkSDK-Win docs/sdk_user_manual.md §1): a 4-byte little-endian unsigned
length, then that many bytes of UTF-8 JSON (no NUL inside).

- :class:`NamedPipeTransport`: Windows ``\\.\pipe\deeplink_sdk`` opened with plain
  ``open()``. A synchronous pipe handle serialises reads and writes, so a read runs in a
  helper thread that the caller waits on with a timeout; while one is pending the handle
  is busy and the transport refuses to write.
- :class:`UnixSocketTransport`: the same framing on a Unix socket (tests, Linux hosts).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Mapping
from typing import Any, BinaryIO, Protocol

from boot_hooks.errors import DeepLinkDown

__all__ = [
    "MAX_FRAME_BYTES",
    "NamedPipeTransport",
    "SdkTimeout",
    "SdkTransport",
    "SdkUnavailable",
    "UnixSocketTransport",
    "decode_body",
    "encode_frame",
]

MAX_FRAME_BYTES = 1 << 20  # far above any SDK message; guards against a garbage header
_HEADER = struct.Struct("<I")
_READ_CHUNK = 65536


class SdkUnavailable(DeepLinkDown):
    """The SDK endpoint is missing, closed, or spoke garbage."""


class SdkTimeout(SdkUnavailable):
    """The SDK did not answer before the call's timeout."""


class SdkTransport(Protocol):
    """Carries SDK messages (dicts) both ways; every call has a timeout."""

    def send(self, message: Mapping[str, Any], timeout_s: float) -> None:
        """Write one message."""

    def receive(self, timeout_s: float) -> dict[str, Any]:
        """Read the next message, or raise SdkTimeout."""

    def close(self) -> None:
        """Release the endpoint."""


def encode_frame(message: Mapping[str, Any]) -> bytes:
    """Frame one message: 4-byte LE length + compact UTF-8 JSON."""
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return _HEADER.pack(len(body)) + body


def decode_body(body: bytes) -> dict[str, Any]:
    """Parse one frame body; anything but a JSON object is SdkUnavailable."""
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise SdkUnavailable("DeepLink SDK sent a frame that is not JSON") from None
    if not isinstance(message, dict):
        raise SdkUnavailable("DeepLink SDK sent a frame that is not a JSON object")
    return message


def _body_length(header: bytes) -> int:
    length = int(_HEADER.unpack(header)[0])
    if length > MAX_FRAME_BYTES:
        raise SdkUnavailable(f"DeepLink SDK announced a {length}-byte frame")
    return length


class _FrameBuffer:
    """Bytes received so far; hands out complete frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> None:
        self._buf += chunk

    def pop(self) -> dict[str, Any] | None:
        """Return the next complete frame's message, or None if it is not all here yet."""
        if len(self._buf) < _HEADER.size:
            return None
        end = _HEADER.size + _body_length(bytes(self._buf[: _HEADER.size]))
        if len(self._buf) < end:
            return None
        body = bytes(self._buf[_HEADER.size : end])
        del self._buf[:end]
        return decode_body(body)


class UnixSocketTransport:
    """SDK framing over a Unix stream socket."""

    def __init__(self, sock: socket.socket) -> None:
        """Wrap a connected socket."""
        self._sock = sock
        self._frames = _FrameBuffer()

    @classmethod
    def connect(cls, path: str, timeout_s: float) -> UnixSocketTransport:
        """Connect to the socket at ``path``."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout_s)
        try:
            sock.connect(path)
        except OSError as exc:
            sock.close()
            raise SdkUnavailable(f"cannot connect to DeepLink SDK socket {path}: {exc}") from None
        return cls(sock)

    def send(self, message: Mapping[str, Any], timeout_s: float) -> None:
        """Write one frame."""
        self._sock.settimeout(timeout_s)
        try:
            self._sock.sendall(encode_frame(message))
        except TimeoutError:
            raise SdkTimeout("DeepLink SDK did not take our request in time") from None
        except OSError as exc:
            raise SdkUnavailable(f"DeepLink SDK socket write failed: {exc}") from None

    def receive(self, timeout_s: float) -> dict[str, Any]:
        """Read one frame; bytes of a frame cut by a timeout are kept for the next call."""
        self._sock.settimeout(timeout_s)
        while (message := self._frames.pop()) is None:
            try:
                chunk = self._sock.recv(_READ_CHUNK)
            except TimeoutError:
                raise SdkTimeout("DeepLink SDK did not answer in time") from None
            except OSError as exc:
                raise SdkUnavailable(f"DeepLink SDK socket read failed: {exc}") from None
            if not chunk:
                raise SdkUnavailable("DeepLink SDK closed the connection")
            self._frames.feed(chunk)
        return message

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()


class NamedPipeTransport:
    """SDK framing over a file object: the Windows named pipe opened with ``open()``."""

    def __init__(self, pipe: BinaryIO) -> None:
        """Wrap an open, unbuffered, read-write binary file object."""
        self._pipe = pipe
        self._frames = _FrameBuffer()
        self._reader: threading.Thread | None = None
        self._result: dict[str, Any] | BaseException | None = None

    @classmethod
    def open(cls, path: str) -> NamedPipeTransport:
        r"""Open the pipe at ``path`` (``\\.\pipe\deeplink_sdk`` on Windows)."""
        try:
            pipe = open(path, "r+b", buffering=0)  # noqa: SIM115 - owned by the transport
        except OSError as exc:
            raise SdkUnavailable(f"cannot open DeepLink SDK pipe {path}: {exc}") from None
        return cls(pipe)

    def send(self, message: Mapping[str, Any], timeout_s: float) -> None:
        """Write one frame (pipe writes complete at once; the timeout is not needed)."""
        if self._reader is not None:
            raise SdkUnavailable("DeepLink SDK pipe is busy with an unfinished read")
        data = encode_frame(message)
        try:
            while data:
                written = self._pipe.write(data)
                data = data[written or 0 :]
        except OSError as exc:
            raise SdkUnavailable(f"DeepLink SDK pipe write failed: {exc}") from None

    def receive(self, timeout_s: float) -> dict[str, Any]:
        """Wait up to ``timeout_s`` for the next frame; a late read stays pending."""
        if self._reader is None and (message := self._frames.pop()) is not None:
            return message
        if self._reader is None:
            self._result = None
            self._reader = threading.Thread(target=self._read_one, daemon=True)
            self._reader.start()
        self._reader.join(timeout_s)
        if self._reader.is_alive():
            raise SdkTimeout("DeepLink SDK did not answer in time")
        self._reader = None
        result, self._result = self._result, None
        if isinstance(result, BaseException):
            raise result
        assert result is not None  # the reader always stores something
        return result

    def _read_one(self) -> None:
        # Large reads: in a message-mode pipe a short ReadFile fails with
        # ERROR_MORE_DATA; DeepLink's own example reads header and body at once.
        try:
            while (message := self._frames.pop()) is None:
                chunk = self._pipe.read(_READ_CHUNK)
                if not chunk:
                    raise SdkUnavailable("DeepLink SDK closed the pipe")
                self._frames.feed(chunk)
            self._result = message
        except SdkUnavailable as exc:
            self._result = exc
        except OSError as exc:
            self._result = SdkUnavailable(f"DeepLink SDK pipe read failed: {exc}")

    def close(self) -> None:
        """Close the pipe unless a read still blocks on it (the process exits soon anyway)."""
        if self._reader is None:
            self._pipe.close()
