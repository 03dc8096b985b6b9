"""The bare-metal node as bm-hook sees it: version probe, signed DeepLink read and set.

Only ``baremetal.dbc.client`` (and its errors) is used, per the design's dependency rule.
Reference: docs/protocol.md §2.2 (``/api/v1/`` version), §3.8 (``deeplink``), §3.9
(``deeplink/set``), §4.3 (both signed by the *server's* own key).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from baremetal import errors as bm
from baremetal.dbc.client import Client, NodeKeyAuth
from boot_hooks.errors import AuthRefused, ConfigError, DeepLinkDown, NodeDown, NotConfirmed
from boot_hooks.keys import Seed
from boot_hooks.retry import Deadline, retry_until
from boot_hooks.sdk import DeviceInfo

__all__ = [
    "RELAY_VERSION",
    "NodeGateway",
    "is_relay_version",
    "parse_version",
    "probe_version",
]

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")
# 0.4.1.7 added the DeepLink LAN service: deeplink/set relays setDevicePassword and
# ignores device_id (docs/protocol.md §3.9, §9; commits 4fc3a2c1, 679448f5).
RELAY_VERSION = (0, 4, 1, 7)
_CONFIRM_POLL_S = 0.05
_CONFIRM_POLL_MAX_S = 0.5


def parse_version(text: str) -> tuple[int, ...] | None:
    """Parse ``"0.4.1.8"`` into ``(0, 4, 1, 8)``; None if it is not dotted digits."""
    parts = text.strip().split(".")
    if not text.strip() or not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


def is_relay_version(text: str) -> bool:
    """Tell whether a node of this version relays codes to DeepLink (>= 0.4.1.7).

    An unreadable version counts as new: every node shipped since Nov 2024 is.
    """
    version = parse_version(text)
    return version is None or version >= RELAY_VERSION


class NodeGateway:
    """Signed DeepLink calls for one server, each retried inside its step's deadline."""

    def __init__(self, node_url: str, node_id: str, key: Seed, call_timeout_s: float) -> None:
        """Prepare a client for ``node_url`` signing as ``node_id`` with ``key``."""
        self._client = Client(node_url, timeout_s=call_timeout_s)
        self._call_s = call_timeout_s
        self._node_id = node_id
        try:
            self._auth = NodeKeyAuth(key.hex)
        except bm.SigningError:
            raise ConfigError("[server] key_file does not hold a usable sr25519 seed") from None

    def probe_version(self, deadline: Deadline) -> str:
        """Wait until ``/api/v1/`` answers; return the node's client_version."""
        return probe_version(self._client, deadline, self._call_s)

    def read(self, deadline: Deadline) -> DeviceInfo:
        """Read the node's DeepLink info, waiting while DeepLink is not connected."""

        def attempt() -> DeviceInfo:
            info = self._client.get_deeplink(
                self._node_id, auth=self._auth, timeout_s=deadline.cap(self._call_s)
            )
            return DeviceInfo(device_id=info.device_id, password=info.device_password)

        return _in_step(deadline, attempt, retry_on=(NodeDown, DeepLinkDown))

    def publish(self, code: str, device_id: str, deadline: Deadline) -> None:
        """Send ``deeplink/set`` (with ``device_id`` for pre-0.4.1.7 nodes, which store it)."""

        def attempt() -> None:
            self._client.set_deeplink(
                self._node_id,
                device_id=device_id or None,
                device_password=code,
                auth=self._auth,
                timeout_s=deadline.cap(self._call_s),
            )

        _in_step(deadline, attempt, retry_on=(NodeDown, DeepLinkDown))

    def confirm(self, code: str, deadline: Deadline) -> DeviceInfo:
        """Re-read until the node reports ``code``; NotConfirmed at the deadline."""
        delay = _CONFIRM_POLL_S
        while True:
            try:
                info = self.read(deadline)
            except (NodeDown, DeepLinkDown) as exc:
                raise NotConfirmed(f"node never reported the new code: {exc}") from None
            if info.password == code:
                return info
            if deadline.expired():
                raise NotConfirmed("node still reports another code at the deadline")
            time.sleep(min(delay, deadline.remaining()))
            delay = min(delay * 2, _CONFIRM_POLL_MAX_S)


def probe_version(client: Client, deadline: Deadline, call_timeout_s: float) -> str:
    """Wait until the node's unauthenticated ``/api/v1/`` answers; return its version."""

    def attempt() -> str:
        return client.version(timeout_s=deadline.cap(call_timeout_s)).client_version

    return _in_step(deadline, attempt, retry_on=(NodeDown,))


def _in_step(
    deadline: Deadline, call: Callable[[], T], retry_on: tuple[type[BaseException], ...]
) -> T:
    def attempt() -> T:
        try:
            return call()
        except bm.BaremetalError as exc:
            raise _hook_error(exc) from None

    def log_retry(exc: BaseException, tries: int) -> None:
        if tries == 1 or tries % 10 == 0:
            _LOGGER.info("still waiting (try %d): %s", tries, exc)

    return retry_until(deadline, attempt, retry_on, on_retry=log_retry)


def _hook_error(exc: bm.BaremetalError) -> Exception:
    """Translate a baremetal error into the hook's tree (texts are the node's, masked)."""
    if isinstance(exc, bm.DeepLinkNotConnected):
        return DeepLinkDown(f"node says: {exc.message}")
    if isinstance(exc, bm.TransportError | bm.DecodeError | bm.RelayTimeout | bm.RelayFailure):
        return NodeDown(str(exc))
    if isinstance(exc, bm.SignatureRejected | bm.AuthorityRefused | bm.SigningError):
        return AuthRefused(str(exc))
    if isinstance(exc, bm.InvalidRequest | bm.UnknownEndpoint | bm.InvalidInput):
        # e.g. "create node request failed": this node does not hold our node_id.
        return ConfigError(f"node refused the request: {exc}")
    return NotConfirmed(f"node refused the request: {exc}")
