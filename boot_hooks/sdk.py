"""DeepLink's local SDK: ``auth``, ``getServerConnState``, ``getDeviceInfo``, ``setDevicePassword``.

Messages per DeepLinkSDK-Win docs/sdk_user_manual.md §2.1, §3.1, §3.3, §3.4, §5. A reply
repeats the request's ``method`` and carries ``code`` (0 = ok); notifications such as
``deviceInfoChanged`` and ``serverConnStateChanged`` carry no ``code`` and may arrive
between a request and its reply.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from boot_hooks.retry import Deadline, retry_until
from boot_hooks.sdk_transport import (
    NamedPipeTransport,
    SdkTimeout,
    SdkTransport,
    SdkUnavailable,
    UnixSocketTransport,
)

__all__ = [
    "STATE_ONLINED",
    "DeepLinkSdk",
    "DeviceInfo",
    "SdkReplyError",
    "SdkTimeout",
    "SdkUnavailable",
    "open_sdk",
]

_LOGGER = logging.getLogger(__name__)
STATE_ONLINED = 3  # "Onlined": P2P listening starts only now (manual §5); 4 = wallet logged in
_STATE_POLL_S = 0.2


class SdkReplyError(SdkUnavailable):
    """DeepLink answered a request with a non-zero ``code``."""


@dataclass(frozen=True)
class DeviceInfo:
    """DeepLink's device code and verification code (the code is never printed)."""

    device_id: str
    password: str = field(repr=False)


class DeepLinkSdk:
    """A client of DeepLink's local SDK over any :class:`SdkTransport`."""

    def __init__(self, transport: SdkTransport, call_timeout_s: float) -> None:
        """Use ``transport``; each request waits at most ``call_timeout_s`` for its reply."""
        self._transport = transport
        self._timeout_s = call_timeout_s
        self.last_notified: DeviceInfo | None = None

    def call(self, method: str, data: dict[str, Any]) -> dict[str, Any]:
        """Send one request and return its reply's ``data`` (``{}`` if none)."""
        self._transport.send({"method": method, "data": data}, self._timeout_s)
        deadline = Deadline(self._timeout_s)
        while True:
            message = self._transport.receive(deadline.cap(self._timeout_s))
            if message.get("method") == method and "code" in message:
                return self._reply_data(method, message)
            self._note(message)

    def _reply_data(self, method: str, message: dict[str, Any]) -> dict[str, Any]:
        if message.get("code") != 0:
            # The SDK's message text is DeepLink's own; it never echoes the password.
            raise SdkReplyError(
                f"DeepLink SDK refused {method}: code {message.get('code')!r} "
                f"({str(message.get('message', ''))[:120]})"
            )
        data = message.get("data")
        return data if isinstance(data, dict) else {}

    def _note(self, message: dict[str, Any]) -> None:
        if message.get("method") == "deviceInfoChanged":
            info = _device_info(message.get("data"))
            if info is not None:
                self.last_notified = info
        _LOGGER.debug("DeepLink SDK notification %s", message.get("method"))

    def authenticate(self, channel_id: str) -> None:
        """Send ``auth`` with our channel id (no wallet token: we need none)."""
        self.call("auth", {"id": channel_id})

    def server_state(self) -> int:
        """Return DeepLink's server connection state (0-4)."""
        state = self.call("getServerConnState", {}).get("state")
        if not isinstance(state, int):
            raise SdkUnavailable("DeepLink SDK getServerConnState answered without a state")
        return state

    def device_info(self) -> DeviceInfo:
        """Return DeepLink's current device code and verification code."""
        info = _device_info(self.call("getDeviceInfo", {}))
        if info is None:
            raise SdkUnavailable("DeepLink SDK getDeviceInfo answered without device info")
        return info

    def set_password(self, code: str) -> None:
        """Ask DeepLink to use ``code`` as its verification code."""
        self.call("setDevicePassword", {"password": code})

    def wait_password(self, code: str, deadline: Deadline) -> DeviceInfo:
        """Re-read device info until DeepLink reports ``code``, or raise SdkTimeout."""
        while True:
            info = self.device_info()
            if info.password == code:
                return info
            if deadline.expired():
                raise SdkTimeout("DeepLink did not apply the new code in time")
            time.sleep(min(_STATE_POLL_S, deadline.remaining()))

    def wait_online(self, deadline: Deadline) -> int:
        """Poll the server state until Onlined (3+) or the deadline; return the last state."""
        while True:
            state = self.server_state()
            if state >= STATE_ONLINED or deadline.expired():
                return state
            time.sleep(min(_STATE_POLL_S, deadline.remaining()))

    def close(self) -> None:
        """Close the transport."""
        self._transport.close()


def _device_info(data: Any) -> DeviceInfo | None:
    if not isinstance(data, dict):
        return None
    device_id, password = data.get("device_id"), data.get("password")
    if not isinstance(device_id, str) or not isinstance(password, str):
        return None
    return DeviceInfo(device_id=device_id, password=password)


def open_sdk(kind: str, path: str, deadline: Deadline, call_timeout_s: float) -> DeepLinkSdk:
    """Open the SDK endpoint, retrying until ``deadline`` (DeepLink may start after us)."""

    def attempt() -> SdkTransport:
        if kind == "pipe":
            return NamedPipeTransport.open(path)
        return UnixSocketTransport.connect(path, deadline.cap(call_timeout_s))

    def log_retry(exc: BaseException, tries: int) -> None:
        if tries == 1:
            _LOGGER.info("DeepLink SDK not there yet (%s); retrying", exc)

    transport = retry_until(deadline, attempt, (SdkUnavailable,), on_retry=log_retry)
    return DeepLinkSdk(transport, call_timeout_s)

