"""A small fake of DeepLink's local SDK endpoint on a Unix socket, for bm-hook tests.

It speaks the SDK framing (4-byte little-endian length + UTF-8 JSON, DeepLinkSDK-Win
docs/sdk_user_manual.md §1) with its own codec (not the hook's), and answers ``auth``,
``getServerConnState``, ``getDeviceInfo`` and ``setDevicePassword``; after a password
change it sends a ``deviceInfoChanged`` notification, as DeepLink does (§3.3).

Modes for the transport's recovery cases:

- ``busy=True``: serves one client at a time; while it does, the listen backlog is kept
  full, so other clients' non-blocking ``connect`` answers EAGAIN (a busy pipe:
  every instance taken) until that client leaves.
- ``unanswered=N``: the first N requests get no answer, and a connection that left one
  unanswered stays mute (a stuck session); requests on later connections are answered.
- ``appear_after_s=S``: the socket is created only S seconds after ``start()``
  (DeepLink starting late, e.g. after logon).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import struct
import threading
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["FakeDeepLinkSdk"]

_HEADER = struct.Struct("<I")
_VALID_CODE = re.compile(r"[A-Za-z0-9]{6,16}")


class FakeDeepLinkSdk:
    """Serve one fake DeepLink SDK on ``path`` in a background thread."""

    def __init__(
        self,
        path: str,
        device_id: str = "123456789",
        password: str = "Init0Code",
        states: Iterable[int] = (3,),
        on_set_password: Callable[[str], None] | None = None,
        notify_before_reply: bool = False,
        refuse_set: bool = False,
        linked: Any = None,
        busy: bool = False,
        unanswered: int = 0,
        appear_after_s: float = 0.0,
    ) -> None:
        self.path = path
        self.device_id = device_id
        self.password = password
        self._states = list(states)
        self.on_set_password = on_set_password
        self.notify_before_reply = notify_before_reply
        self.refuse_set = refuse_set
        # ``linked``: a SimulatedDeepLink whose device_id/password getDeviceInfo reports,
        # so the SDK and the LAN session are one DeepLink, as on a real PC.
        self.linked = linked
        self.busy = busy
        self.unanswered_left = unanswered
        self.appear_after_s = appear_after_s
        self.unanswered_calls: list[str] = []
        self.connections = 0  # accepted client connections (the busy mode's plug not counted)
        self.calls: list[str] = []
        self.passwords_set: list[str] = []
        self.channel_ids: list[str] = []
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> FakeDeepLinkSdk:
        if os.path.exists(self.path):
            os.unlink(self.path)
        if self.appear_after_s > 0:
            self._spawn(self._appear_late)
        else:
            self._listen()
            self._spawn(self._accept_loop)
        return self

    def _appear_late(self) -> None:
        if not self._stop.wait(self.appear_after_s):
            self._listen()
            self._accept_loop()

    def _listen(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(self.path)
        # Linux queues backlog + 1 connections: with 0, the busy mode's plug fills it.
        sock.listen(0 if self.busy else 8)
        sock.settimeout(0.1)
        self._sock = sock

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()
        for conn in list(self._conns):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        for thread in self._threads:
            thread.join(2)
        if os.path.exists(self.path):
            os.unlink(self.path)

    def __enter__(self) -> FakeDeepLinkSdk:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            self._conns.append(conn)
            self.connections += 1
            if self.busy:
                self._serve_alone(conn)
            else:
                self._spawn(self._serve, conn)

    def _serve_alone(self, conn: socket.socket) -> None:
        """Serve ``conn`` in the accept thread with the backlog plugged, then unplug it."""
        assert self._sock is not None
        plug = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        plug.setblocking(False)
        # Now the backlog is full: others get EAGAIN. (BlockingIOError: a client got into
        # the backlog first, so it is full already.)
        with contextlib.suppress(BlockingIOError):
            plug.connect(self.path)
        self._serve(conn)
        with contextlib.suppress(OSError):
            if plug.getpeername():
                self._sock.accept()[0].close()  # the plug is the only one queued
        plug.close()

    # -- protocol ---------------------------------------------------------------
    def _serve(self, conn: socket.socket) -> None:
        mute = False
        try:
            while not self._stop.is_set():
                header = _recv_exact(conn, _HEADER.size)
                (length,) = _HEADER.unpack(header)
                message = json.loads(_recv_exact(conn, length).decode("utf-8"))
                mute = mute or self._leave_unanswered(message)
                if mute:
                    continue
                for out in self._handle(message):
                    conn.sendall(_frame(out))
        except (OSError, EOFError, ValueError):
            pass
        finally:
            conn.close()

    def _leave_unanswered(self, message: dict[str, Any]) -> bool:
        with self._lock:
            if self.unanswered_left <= 0:
                return False
            self.unanswered_left -= 1
            self.unanswered_calls.append(message.get("method", ""))
            return True

    def _handle(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        method = message.get("method", "")
        data = message.get("data") or {}
        with self._lock:
            self.calls.append(method)
        out: list[dict[str, Any]] = []
        if self.notify_before_reply:
            out.append({"method": "serverConnStateChanged", "data": {"state": self._peek_state()}})
        handler = getattr(self, "_on_" + method, None)
        if handler is None:
            out.append(_reply(method, 5, "not implemented"))
            return out
        out.extend(handler(data))
        return out

    def _peek_state(self) -> int:
        return self._states[0]

    def _on_auth(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        self.channel_ids.append(str(data.get("id", "")))
        return [_reply("auth", 0, "ok")]

    def _on_getServerConnState(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        with self._lock:
            state = self._states.pop(0) if len(self._states) > 1 else self._states[0]
        return [_reply("getServerConnState", 0, "ok", {"state": state})]

    def _on_getDeviceInfo(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        source = self.linked if self.linked is not None else self
        info = {"device_id": source.device_id, "password": source.password}
        return [_reply("getDeviceInfo", 0, "ok", info)]

    def _on_setDevicePassword(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        code = data.get("password")
        if self.refuse_set or not isinstance(code, str) or not _VALID_CODE.fullmatch(code):
            return [_reply("setDevicePassword", 4, "invalid password")]
        self.set_password(code)
        changed = {"method": "deviceInfoChanged",
                   "data": {"device_id": self.device_id, "password": code}}
        return [_reply("setDevicePassword", 0, "ok"), changed]

    def set_password(self, code: str) -> None:
        """Apply a code as DeepLink would (also used when the node relays one over LAN)."""
        with self._lock:
            self.password = code
            self.passwords_set.append(code)
        if self.on_set_password is not None:
            self.on_set_password(code)


def _reply(method: str, code: int, message: str, data: dict | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"method": method, "code": code, "message": message}
    if data is not None:
        out["data"] = data
    return out


def _frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode("utf-8")
    return _HEADER.pack(len(body)) + body


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data
