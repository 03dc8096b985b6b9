"""The bare-metal node's DeepLink LAN service: TCP sessions from DeepLink, keyed by peer IP.

Reference: docs/protocol.md §7 and ``src/dbc/task/bare_metal/deeplink_*`` at 603ac9db.
What it reproduces (§10 item 11):

- frames of a little-endian uint32 length + JSON body of at most 512 bytes; a header
  announcing more drops the session; no handshake, acknowledgement or heartbeat;
- ``setDeviceInfo`` in (either key may be missing and keeps its value), everything
  else logged and ignored, a non-object logged as ``parse body failed``;
- ``setDevicePassword`` out, password written unescaped (``deeplink_session.cpp:52-70``);
- one session per peer IP: a new connection closes the older one (``deeplink_room.cpp:7-22``).

With ``faithful=True`` (the default) the node's two buffer quirks are kept
(``baremetal.lanframe``): the header is read through ``strncat`` and the body buffer
is re-used, so a shorter message after a longer one fails to parse and a 256-byte body
desynchronises the stream. ``faithful=False`` reads every frame cleanly instead.

Deviations, all deliberate: the real node's session map is unlocked and an evicted
session lingers until its read is cancelled; here the room is locked and eviction is
immediate. A password that pushes ``setDevicePassword`` past 512 bytes overflows a
fixed buffer on the node (undefined behaviour); here the header still announces the
full length but only the first 512 body bytes are sent. Passwords are never logged.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from baremetal.emulator import rjson
from baremetal.errors import FrameTooLarge
from baremetal.lanframe import MAX_BODY, FrameDecoder, StaleBodyBuffer, encode_header

__all__ = ["DeepLinkLanServer", "DeepLinkRoom", "DeepLinkSession"]

_LOGGER = logging.getLogger(__name__)

# Deadline for writing one frame to a DeepLink that does not read; a blocked recv is
# woken by shutdown() in close(), so it only re-checks the stop flag at this pace.
_IO_TIMEOUT = 5.0
_ACCEPT_POLL = 0.25  # how often the blocked accept looks at the stop flag
_RECV_SIZE = 4096


class DeepLinkSession:
    """One TCP connection from a DeepLink client, with the device info it last reported."""

    def __init__(
        self,
        sock: socket.socket,
        remote: tuple[str, int],
        on_close: Callable[[DeepLinkSession], None],
        *,
        faithful: bool = True,
    ) -> None:
        self.remote_ip, self.remote_port = remote
        self._sock = sock
        self._on_close = on_close
        self._faithful = faithful
        self._info_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._closed = threading.Event()
        self._device_id = ""
        self._password = ""

    def __repr__(self) -> str:
        return f"<DeepLinkSession {self.endpoint} device_id={self.device_id!r}>"

    @property
    def endpoint(self) -> str:
        """Return ``ip:port`` of the DeepLink side."""
        return f"{self.remote_ip}:{self.remote_port}"

    @property
    def device_id(self) -> str:
        """Return the device code DeepLink last reported ("" if never)."""
        with self._info_lock:
            return self._device_id

    @property
    def password(self) -> str:
        """Return the verification code DeepLink last reported ("" if never)."""
        with self._info_lock:
            return self._password

    @property
    def closed(self) -> bool:
        """Return True once the connection is closed."""
        return self._closed.is_set()

    def device_info(self) -> tuple[str, str]:
        """Return ``(device_id, password)`` read together."""
        with self._info_lock:
            return self._device_id, self._password

    def send_set_password(self, password: str) -> None:
        """Write ``setDevicePassword`` to the socket, unescaped, as the node builds it."""
        body = ('{"method":"setDevicePassword","data":{"password":"' + password + '"}}').encode(
            "utf-8", "surrogatepass"
        )
        frame = encode_header(len(body)) + body[:MAX_BODY]
        if len(body) > MAX_BODY:
            _LOGGER.warning(
                "setDevicePassword to %s is %d bytes, over %d: the real node overflows its"
                " buffer here (deeplink_session.cpp:63-68); sending a truncated frame",
                self.endpoint, len(body), MAX_BODY,
            )
        if self.closed:
            _LOGGER.warning("deeplink %s is closed; setDevicePassword dropped", self.endpoint)
            return
        try:
            with self._send_lock:
                self._sock.sendall(frame)
        except OSError as exc:
            _LOGGER.warning("deeplink %s write failed (%s); leaving", self.endpoint, exc)
            self.close()
            return
        _LOGGER.info("deliver setDevicePassword to %s", self.endpoint)

    def close(self) -> None:
        """Close the connection (FIN to DeepLink); the reader thread then leaves the room."""
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(OSError):  # already reset by the peer
            self._sock.shutdown(socket.SHUT_RDWR)

    def serve(self) -> None:
        """Read frames until the peer closes, a header is oversize, or ``close`` is called."""
        _LOGGER.info("deeplink from %s started", self.endpoint)
        decoder = FrameDecoder(node_header_quirk=self._faithful)
        stale = StaleBodyBuffer() if self._faithful else None
        try:
            while not self._closed.is_set():
                data = self._recv()
                if data is None:
                    continue
                if not data:
                    break
                decoder.push(data)
                while (body := decoder.pop()) is not None:
                    self._handle_body(stale.overlay(body) if stale else body)
        except FrameTooLarge as exc:
            _LOGGER.warning("deeplink from %s: %s; dropping session", self.endpoint, exc)
        except OSError as exc:
            _LOGGER.info("deeplink from %s: read failed (%s)", self.endpoint, exc)
        finally:
            self.close()
            self._sock.close()
            _LOGGER.info("deeplink from %s leave", self.endpoint)
            self._on_close(self)

    def _recv(self) -> bytes | None:
        try:
            return self._sock.recv(_RECV_SIZE)
        except TimeoutError:
            return None

    def _handle_body(self, text: bytes) -> None:
        # deeplink_session.cpp:97-121; rjson parses the way rapidjson does, up to a NUL.
        try:
            doc = rjson.parse(text)
        except rjson.JsonParseError:
            doc = None
        if not isinstance(doc, dict):
            _LOGGER.error("deeplink from %s: parse body failed", self.endpoint)
            return
        method = doc.get("method")
        method = method if isinstance(method, str) else ""
        _LOGGER.info("received %r from deeplink %s", method, self.endpoint)
        if method == "setDeviceInfo":
            self._set_device_info(doc.get("data"))

    def _set_device_info(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        device_id, password = data.get("device_id"), data.get("password")
        with self._info_lock:
            if isinstance(device_id, str):
                self._device_id = device_id
            if isinstance(password, str):
                self._password = password
        _LOGGER.info(
            "setDeviceInfo from %s: device_id=%r, password %s", self.endpoint,
            self.device_id, "updated" if isinstance(password, str) else "kept",
        )


class DeepLinkRoom:
    """Thread-safe registry of live sessions keyed by remote endpoint."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[tuple[str, int], DeepLinkSession] = {}

    def join(self, session: DeepLinkSession) -> None:
        """Register ``session``; close every older session from the same IP."""
        with self._lock:
            evicted = [s for s in self._sessions.values() if s.remote_ip == session.remote_ip]
            for old in evicted:
                del self._sessions[(old.remote_ip, old.remote_port)]
            self._sessions[(session.remote_ip, session.remote_port)] = session
        for old in evicted:
            _LOGGER.info("deeplink %s replaced by %s", old.endpoint, session.endpoint)
            old.close()

    def leave(self, session: DeepLinkSession) -> None:
        """Forget ``session`` if it is still the one registered for its endpoint."""
        key = (session.remote_ip, session.remote_port)
        with self._lock:
            if self._sessions.get(key) is session:
                del self._sessions[key]

    def session_for_ip(self, ip: str) -> DeepLinkSession | None:
        """Return the newest live session whose remote IP string equals ``ip`` exactly."""
        with self._lock:
            for session in reversed(list(self._sessions.values())):
                if session.remote_ip == ip and not session.closed:
                    return session
        return None

    def sessions(self) -> list[DeepLinkSession]:
        """Return the live sessions, oldest first."""
        with self._lock:
            return [s for s in self._sessions.values() if not s.closed]

    def close_all(self) -> None:
        """Close every session."""
        for session in self.sessions():
            session.close()


class DeepLinkLanServer:
    """TCP listener for DeepLink clients (``deeplink_lan_service.cpp``), one thread per session."""

    def __init__(self, host: str, port: int, room: DeepLinkRoom, *, faithful: bool = True) -> None:
        self.host = host
        self.port = port
        self.room = room
        self._faithful = faithful
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._threads_lock = threading.Lock()

    @property
    def address(self) -> tuple[str, int]:
        """Return the bound ``(host, port)`` (the real port when 0 was asked)."""
        return self.host, self.port

    def start(self) -> None:
        """Bind and listen (OSError if the port is taken, as the node aborts), then accept."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # boost's acceptor sets SO_REUSEADDR too, so a restart rebinds at once.
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, self.port))
            listener.listen(64)
        except OSError:
            listener.close()
            raise
        listener.settimeout(_ACCEPT_POLL)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stop.clear()
        self._spawn(self._accept_loop, "deeplink-accept")
        _LOGGER.info("deeplink lan service listening on %s:%d", self.host, self.port)

    def stop(self) -> None:
        """Close the listener and every session, and join the threads."""
        self._stop.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the blocked accept() on Linux
                self._listener.shutdown(socket.SHUT_RDWR)
        self.room.close_all()
        with self._threads_lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=_IO_TIMEOUT + 2 * _ACCEPT_POLL)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self.room.close_all()  # sessions accepted while stopping

    def _spawn(self, target: Callable[..., None], name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._threads_lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stop.is_set():
            try:
                sock, remote = listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if not self._stop.is_set():
                    _LOGGER.error("deeplink accept failed: %s", exc)
                return
            self._open_session(sock, (remote[0], remote[1]))

    def _open_session(self, sock: socket.socket, remote: tuple[str, int]) -> None:
        sock.settimeout(_IO_TIMEOUT)
        session = DeepLinkSession(sock, remote, self.room.leave, faithful=self._faithful)
        self.room.join(session)
        self._spawn(session.serve, f"deeplink-{remote[0]}:{remote[1]}")
