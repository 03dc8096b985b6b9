"""DeepLink's local SDK: ``auth``, ``getServerConnState``, ``getDeviceInfo``, ``setDevicePassword``.

Messages per DeepLinkSDK-Win docs/sdk_user_manual.md §2.1, §3.1, §3.3, §3.4, §5. A reply
repeats the request's ``method`` and carries ``code`` (0 = ok); notifications such as
``deviceInfoChanged`` and ``serverConnStateChanged`` carry no ``code`` and may arrive
between a request and its reply.

:func:`open_sdk` waits for the endpoint until a deadline: a busy one inside the
channel's open, a missing one ("not there yet": DeepLink starts after us, often only
after logon) by opening again with backoff. :func:`read_local_deeplink` is the
deeplink step: open, ``auth``, state, device info; a call that times out or a lost
connection closes the transport, and the step opens a new one and starts over, until
its deadline. DeepLink's refusals (:class:`SdkReplyError`) are final.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from boot_hooks.retry import Backoff, Deadline, retry_until
from boot_hooks.sdk_pipe_win import PipeChannel
from boot_hooks.sdk_transport import (
    ByteChannel,
    FramedTransport,
    SdkBusy,
    SdkTimeout,
    SdkTransport,
    SdkUnavailable,
    UnixSocketChannel,
)

__all__ = [
    "STATE_ONLINED",
    "DeepLinkSdk",
    "DeviceInfo",
    "LocalDeepLink",
    "SdkBusy",
    "SdkReplyError",
    "SdkTimeout",
    "SdkUnavailable",
    "open_channel",
    "open_sdk",
    "read_local_deeplink",
]

_LOGGER = logging.getLogger(__name__)
STATE_ONLINED = 3  # "Onlined": P2P listening starts only now (manual §5); 4 = wallet logged in
_STATE_POLL_S = 0.2
_REOPEN_PAUSE_S = (0.25, 5.0)  # backoff between reopens: a peer that hangs up at once


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


def open_channel(kind: str, path: str, timeout_s: float) -> ByteChannel:
    """Open the ``pipe`` or ``unix`` endpoint, waiting up to ``timeout_s`` while it is busy."""
    if kind == "pipe":
        return PipeChannel.open(path, timeout_s)
    return UnixSocketChannel.open(path, timeout_s)


ChannelOpener = Callable[[str, str, float], ByteChannel]  # (kind, path, timeout_s)


def open_sdk(
    kind: str, path: str, deadline: Deadline, call_timeout_s: float,
    opener: ChannelOpener = open_channel,
) -> DeepLinkSdk:
    """Open the SDK endpoint, waiting for it until ``deadline`` (DeepLink may start after us)."""

    def attempt() -> SdkTransport:
        return FramedTransport(opener(kind, path, deadline.remaining()))

    def log_retry(exc: BaseException, tries: int) -> None:
        if tries == 1:
            _LOGGER.info("DeepLink SDK not there yet (%s); retrying", exc)

    transport = retry_until(deadline, attempt, (SdkUnavailable,), on_retry=log_retry)
    return DeepLinkSdk(transport, call_timeout_s)


@dataclass(frozen=True)
class LocalDeepLink:
    """The open SDK session and what the deeplink step read through it."""

    sdk: DeepLinkSdk
    state: int
    info: DeviceInfo


def read_local_deeplink(
    kind: str, path: str, channel_id: str, deadline: Deadline, call_timeout_s: float,
    opener: ChannelOpener = open_channel,
) -> LocalDeepLink:
    """Open the SDK, ``auth``, wait for Onlined, read device info; reopen until ``deadline``.

    A timeout or a lost connection closes the transport; the next round opens a new one
    (one log line each). The caller owns (closes) the returned session's ``sdk``.
    ``opener`` is the seam the tests use to run the pipe channel on a stand-in.
    """
    backoff, reopens = Backoff(*_REOPEN_PAUSE_S), 0
    while True:
        sdk = open_sdk(kind, path, deadline, call_timeout_s, opener)
        try:
            sdk.authenticate(channel_id)
            state = sdk.wait_online(deadline)
            return LocalDeepLink(sdk, state, sdk.device_info())
        except BaseException as exc:
            sdk.close()
            if not _worth_reopening(exc) or deadline.expired():
                raise
            reopens += 1
            _LOGGER.warning("step deeplink: %s; reopening the SDK (reopen %d, %.0f s left)",
                            exc, reopens, deadline.remaining())
        time.sleep(min(backoff.next_delay(), deadline.remaining()))


def _worth_reopening(exc: BaseException) -> bool:
    # A timeout, a closed connection or a garbled stream: a new connection may do.
    # A refusal (non-zero code) is DeepLink's answer; asking again gets the same one.
    return isinstance(exc, SdkUnavailable) and not isinstance(exc, SdkReplyError)
