"""A simulated DeepLink (≥ 1.0.3.1) on a GPU PC, speaking the node's LAN protocol.

It connects to the bare-metal node's DeepLink LAN service FROM a chosen source address
(the node pairs sessions with servers by peer IP, docs/protocol.md §7.2), reports
``setDeviceInfo``, and answers every ``setDevicePassword`` by applying the password and
reporting a fresh ``setDeviceInfo``, as DeepLink ≥ 1.0.3.1 does (§7.3).

DeepLink's rule for a verification code is 6–16 letters and digits
(docs/protocol.md §13.1, SDK ``setDevicePassword``). A pushed password that
breaks it is refused: logged, not applied, not reported, counted in ``rejected``.
``reject_passwords`` refuses every push (a fault knob for tests).

Frames go out with ``encode_frame(..., node_safe=True)``: NUL-terminated and padded so
that the real node's stale-buffer and ``strncat`` header quirks cannot garble them.
Whether real DeepLink does this is unknown (§11); a node-faithful peer needs it.

Run it as ``python -m baremetal.emulator.deeplink_client --node HOST:PORT
--source-ip 127.0.0.N --device-id ID --password PW [--reconnect] [--connect-delay S]
[--state-file F] [--reject-passwords]``. It prints ``deeplink-client ready`` and one
``deeplink-client connected`` line per connection on stderr, and exits 0 on SIGTERM.
Passwords never appear in its logs; the state file (mode 0600) does hold one, as the
PC's own record of what it applied.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from baremetal.errors import FrameDecodeError, FrameTooLarge
from baremetal.lanframe import FrameDecoder, encode_frame, parse_message

__all__ = ["SimulatedDeepLink", "main", "valid_password"]

_LOGGER = logging.getLogger(__name__)

_PASSWORD_RULE = re.compile(r"[A-Za-z0-9]{6,16}")
_CONNECT_TIMEOUT = 2.0
_IO_TIMEOUT = 5.0  # send deadline; a blocked recv is woken by shutdown() in stop()
# Backoff stays small so a DeepLink started before the node joins within half a second.
_BACKOFF_FIRST = 0.05
_BACKOFF_MAX = 0.5


def valid_password(password: str) -> bool:
    """Return True if ``password`` is 6–16 ASCII letters and digits (DeepLink's rule)."""
    return _PASSWORD_RULE.fullmatch(password) is not None


class SimulatedDeepLink:
    """DeepLink's LAN link to the node, in a background thread; ``start`` / ``stop``."""

    def __init__(
        self,
        node: tuple[str, int],
        *,
        device_id: str,
        password: str,
        source_ip: str = "127.0.0.1",
        reconnect: bool = False,
        connect_delay: float = 0.0,
        state_file: Path | None = None,
        reject_passwords: bool = False,
        on_connected: Callable[[tuple[str, int]], None] | None = None,
    ) -> None:
        self.node = node
        self.source_ip = source_ip
        self._reconnect = reconnect
        self._connect_delay = connect_delay
        self._state_file = state_file
        self._reject_passwords = reject_passwords
        self._on_connected = on_connected
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._device_id = device_id
        self._password = password
        self._connected = False
        self._reports = 0
        self._rejected = 0

    def __repr__(self) -> str:
        return (
            f"<SimulatedDeepLink {self.source_ip} -> {self.node[0]}:{self.node[1]}"
            f" device_id={self.device_id!r} connected={self.connected}>"
        )

    @property
    def device_id(self) -> str:
        """Return the device code this DeepLink has."""
        with self._changed:
            return self._device_id

    @property
    def password(self) -> str:
        """Return the verification code this DeepLink has applied."""
        with self._changed:
            return self._password

    @property
    def connected(self) -> bool:
        """Return True while a connection to the node is up and reported."""
        with self._changed:
            return self._connected

    @property
    def reports(self) -> int:
        """Return how many ``setDeviceInfo`` frames were sent."""
        with self._changed:
            return self._reports

    @property
    def rejected(self) -> int:
        """Return how many pushed passwords were refused."""
        with self._changed:
            return self._rejected

    @property
    def running(self) -> bool:
        """Return True while the background thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def snapshot(self) -> dict[str, Any]:
        """Return the current state as a JSON-able dict (it includes the password)."""
        with self._changed:
            return {
                "device_id": self._device_id, "password": self._password,
                "connected": self._connected, "reports": self._reports,
                "rejected": self._rejected, "source_ip": self.source_ip,
            }

    def wait_until(self, predicate: Callable[[SimulatedDeepLink], bool], timeout: float) -> bool:
        """Wait until ``predicate(self)`` holds or ``timeout`` passes; return whether it holds."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    def start(self) -> None:
        """Write the initial state and start connecting in a background thread."""
        self._stop.clear()
        self._write_state()
        self._thread = threading.Thread(target=self._run, name="deeplink-client", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection and join the background thread."""
        self._stop.set()
        with self._changed:
            sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        if self._stop.wait(self._connect_delay):
            return
        backoff = _BACKOFF_FIRST
        failures = 0
        while not self._stop.is_set():
            sock = self._connect(quiet=failures > 0)
            if sock is None:
                failures += 1
            else:
                failures, backoff = 0, _BACKOFF_FIRST
                self._serve(sock)
            if not self._reconnect or self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, _BACKOFF_MAX)

    def _connect(self, *, quiet: bool) -> socket.socket | None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((self.source_ip, 0))
            sock.settimeout(_CONNECT_TIMEOUT)
            sock.connect(self.node)
        except OSError as exc:
            sock.close()
            level = logging.DEBUG if quiet else logging.WARNING
            _LOGGER.log(level, "connect %s -> %s:%d failed: %s", self.source_ip, *self.node, exc)
            return None
        sock.settimeout(_IO_TIMEOUT)
        return sock

    def _serve(self, sock: socket.socket) -> None:
        with self._changed:
            self._sock = sock
        local = sock.getsockname()
        try:
            self._report(sock)
            self._set_connected(True)
            _LOGGER.info("connected %s:%d -> %s:%d", *local, *self.node)
            if self._on_connected is not None:
                self._on_connected((local[0], local[1]))
            self._read_loop(sock)
        except FrameTooLarge as exc:
            _LOGGER.warning("node sent an oversize frame (%s); dropping the connection", exc)
        except OSError as exc:
            _LOGGER.warning("connection to node failed: %s", exc)
        finally:
            with self._changed:
                self._sock = None
            sock.close()
            self._set_connected(False)

    def _read_loop(self, sock: socket.socket) -> None:
        decoder = FrameDecoder()
        while not self._stop.is_set():
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            if not data:
                _LOGGER.info("node closed the connection")
                return
            for body in decoder.feed(data):
                self._handle(sock, body)

    def _handle(self, sock: socket.socket, body: bytes) -> None:
        try:
            message = parse_message(body)
        except FrameDecodeError as exc:
            _LOGGER.warning("ignoring a message from the node: %s", exc)
            return
        method, data = message.get("method"), message.get("data")
        if method != "setDevicePassword":
            _LOGGER.info("ignoring method %r from the node", method)
            return
        password = data.get("password") if isinstance(data, dict) else None
        if not isinstance(password, str):
            _LOGGER.warning("setDevicePassword without a string password; ignored")
            return
        if self._reject_passwords or not valid_password(password):
            self._refuse()
            return
        with self._changed:
            self._password = password
            self._changed.notify_all()
        _LOGGER.info("applied a new verification code; reporting it")
        self._write_state()
        self._report(sock)

    def _refuse(self) -> None:
        reason = "rejecting all" if self._reject_passwords else "not 6-16 letters and digits"
        _LOGGER.warning("refused a pushed verification code (%s)", reason)
        with self._changed:
            self._rejected += 1
            self._changed.notify_all()
        self._write_state()

    def _report(self, sock: socket.socket) -> None:
        with self._changed:
            data = {"device_id": self._device_id, "password": self._password}
        try:
            frame = encode_frame({"method": "setDeviceInfo", "data": data}, node_safe=True)
        except FrameTooLarge as exc:
            _LOGGER.error("device info does not fit a frame (%s); not reported", exc)
            return
        sock.sendall(frame)
        with self._changed:
            self._reports += 1
            self._changed.notify_all()
        _LOGGER.info("reported setDeviceInfo device_id=%r", data["device_id"])
        self._write_state()

    def _set_connected(self, connected: bool) -> None:
        with self._changed:
            self._connected = connected
            self._changed.notify_all()
        self._write_state()

    def _write_state(self) -> None:
        if self._state_file is None:
            return
        path = self._state_file
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.snapshot(), fh)
            os.replace(tmp, path)
        except OSError as exc:  # the link matters more than the test's view of it
            _LOGGER.warning("state file %s not written: %s", path, exc)


def _endpoint(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deeplink_client", description="Simulated DeepLink LAN client for the DBC node."
    )
    parser.add_argument("--node", type=_endpoint, required=True, help="node LAN service")
    parser.add_argument("--source-ip", default="127.0.0.1", help="address to connect from")
    parser.add_argument("--device-id", required=True, help="device code to report")
    parser.add_argument("--password", required=True, help="initial verification code")
    parser.add_argument("--connect-delay", type=float, default=0.0, metavar="S")
    parser.add_argument("--reconnect", action="store_true", help="reconnect with backoff")
    parser.add_argument("--state-file", type=Path, help="JSON state, rewritten atomically")
    parser.add_argument("--reject-passwords", action="store_true", help="refuse every push")
    parser.add_argument("--log-level", default="INFO")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run until SIGTERM/SIGINT (exit 0) or, without --reconnect, until the link ends (1)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    node_text = f"{args.node[0]}:{args.node[1]}"

    def _announce(local: tuple[str, int]) -> None:
        print(f"deeplink-client connected {local[0]}:{local[1]} -> {node_text}",
              file=sys.stderr, flush=True)

    deeplink = SimulatedDeepLink(
        args.node, device_id=args.device_id, password=args.password,
        source_ip=args.source_ip, reconnect=args.reconnect,
        connect_delay=args.connect_delay, state_file=args.state_file,
        reject_passwords=args.reject_passwords, on_connected=_announce,
    )
    deeplink.start()
    print(f"deeplink-client ready source={args.source_ip} node={node_text}",
          file=sys.stderr, flush=True)
    while deeplink.running and not stop.wait(0.1):
        pass
    deeplink.stop()
    return 0 if stop.is_set() else 1


if __name__ == "__main__":
    sys.exit(main())
