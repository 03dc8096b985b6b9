r"""DeepLink's local SDK framing over a small byte channel (the SDK seam).

Framing (DeepLinkSDK-Win docs/sdk_user_manual.md §1): a 4-byte little-endian unsigned
length, then that many bytes of UTF-8 JSON (no NUL inside). :class:`FramedTransport`
does the framing over any :class:`ByteChannel`; a channel only moves bytes:

- open with busy handling: a busy endpoint is waited for until the open's deadline
  (:class:`SdkBusy` then); a missing one is :class:`SdkUnavailable` at once, "not there
  yet", for the caller to retry;
- write and read with a timeout (:class:`SdkTimeout`); after a timeout nothing is left
  pending, and the caller closes the channel and opens a new one;
- close, which always releases the endpoint and never raises.

Two channels: ``boot_hooks.sdk_pipe_win.PipeChannel`` (Windows ``\\.\pipe\deeplink_sdk``,
overlapped I/O, no threads) and :class:`UnixSocketChannel` here (tests, Linux hosts),
where "busy" is a full listen backlog: a non-blocking ``connect`` answers EAGAIN.
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import struct
import time
from collections.abc import Mapping
from typing import Any, Protocol

from boot_hooks.errors import DeepLinkDown
from boot_hooks.retry import Deadline

__all__ = [
    "MAX_FRAME_BYTES",
    "ByteChannel",
    "FramedTransport",
    "SdkBusy",
    "SdkTimeout",
    "SdkTransport",
    "SdkUnavailable",
    "UnixSocketChannel",
    "decode_body",
    "encode_frame",
]

_LOGGER = logging.getLogger(__name__)
MAX_FRAME_BYTES = 1 << 20  # far above any SDK message; guards against a garbage header
READ_CHUNK = 65536
_HEADER = struct.Struct("<I")
_BUSY_POLL_S = (0.01, 0.1)  # first and longest pause between connects to a full backlog


class SdkUnavailable(DeepLinkDown):
    """The SDK endpoint is missing, closed, or spoke garbage."""


class SdkTimeout(SdkUnavailable):
    """The SDK did not answer before the call's timeout."""


class SdkBusy(SdkUnavailable):
    """The SDK endpoint stayed busy (every pipe instance taken) until the open's deadline."""


class ByteChannel(Protocol):
    """A connected byte stream to DeepLink's SDK; every call but close has a timeout."""

    def write(self, data: bytes, timeout_s: float) -> None:
        """Write all of ``data``, or raise SdkTimeout / SdkUnavailable."""

    def read(self, timeout_s: float) -> bytes:
        """Return at least one byte; SdkTimeout when none came, SdkUnavailable at the end."""

    def close(self) -> None:
        """Release the endpoint (idempotent, never raises)."""


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


class FramedTransport:
    """SDK framing over a :class:`ByteChannel`; the transport owns (and closes) the channel."""

    def __init__(self, channel: ByteChannel) -> None:
        """Frame messages over ``channel``."""
        self._channel = channel
        self._frames = _FrameBuffer()

    def send(self, message: Mapping[str, Any], timeout_s: float) -> None:
        """Write one frame."""
        self._channel.write(encode_frame(message), timeout_s)

    def receive(self, timeout_s: float) -> dict[str, Any]:
        """Read one frame within ``timeout_s``; bytes of a cut frame stay for the next call."""
        deadline = Deadline(timeout_s)
        while (message := self._frames.pop()) is None:
            self._frames.feed(self._channel.read(deadline.cap(timeout_s)))
        return message

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()


class UnixSocketChannel:
    """A :class:`ByteChannel` on a Unix stream socket."""

    def __init__(self, sock: socket.socket) -> None:
        """Wrap a connected socket."""
        self._sock = sock

    @classmethod
    def open(cls, path: str, timeout_s: float) -> UnixSocketChannel:
        """Connect to ``path``, waiting up to ``timeout_s`` while its listen backlog is full."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            _connect_when_free(sock, path, Deadline(timeout_s))
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    def write(self, data: bytes, timeout_s: float) -> None:
        """Write all of ``data`` (a cut write leaves the stream unusable: close it)."""
        self._sock.settimeout(timeout_s)
        try:
            self._sock.sendall(data)
        except TimeoutError:
            raise SdkTimeout("DeepLink SDK did not take our request in time") from None
        except OSError as exc:
            raise SdkUnavailable(f"DeepLink SDK socket write failed: {exc}") from None

    def read(self, timeout_s: float) -> bytes:
        """Return the next bytes the SDK sent."""
        self._sock.settimeout(timeout_s)
        try:
            chunk = self._sock.recv(READ_CHUNK)
        except TimeoutError:
            raise SdkTimeout("DeepLink SDK did not answer in time") from None
        except OSError as exc:
            raise SdkUnavailable(f"DeepLink SDK socket read failed: {exc}") from None
        if not chunk:
            raise SdkUnavailable("DeepLink SDK closed the connection")
        return chunk

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()


def _connect_when_free(sock: socket.socket, path: str, deadline: Deadline) -> None:
    # A blocking connect with a timeout cannot wait for a full AF_UNIX backlog: Python
    # sees EAGAIN, not EINPROGRESS. So connect non-blocking and try again, like
    # WaitNamedPipe + CreateFile on a busy pipe.
    sock.setblocking(False)
    pause, logged = _BUSY_POLL_S[0], False
    while True:
        try:
            sock.connect(path)
        except BlockingIOError:
            if deadline.expired():
                raise SdkBusy(f"DeepLink SDK socket {path} stayed busy (backlog full)") from None
            if not logged:
                _LOGGER.info("DeepLink SDK socket %s busy; waiting for it", path)
                logged = True
            time.sleep(min(pause, deadline.remaining()))
            pause = min(pause * 2, _BUSY_POLL_S[1])
            continue
        except OSError as exc:
            raise SdkUnavailable(_connect_failure(path, exc)) from None
        sock.setblocking(True)
        return


def _connect_failure(path: str, exc: OSError) -> str:
    if exc.errno in (errno.ENOENT, errno.ECONNREFUSED):
        return f"DeepLink SDK socket {path} is not there yet ({exc.strerror})"
    return f"cannot connect to DeepLink SDK socket {path}: {exc}"
