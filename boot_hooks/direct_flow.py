"""The boot-time steps: node, identity, DeepLink, fresh code, publish, confirm.

Each step has its own deadline (``[deadlines]``) and logs one line when it starts or
ends; no secret is ever an argument of a log call. Publishing follows the node's
version (docs/protocol.md §13.3, §3.9, §7.4):

- >= 0.4.1.7: signed ``deeplink/set`` (the node relays ``setDevicePassword`` to DeepLink
  over its LAN service), then signed ``deeplink`` read-back until the new code shows;
- older: set the code in DeepLink through its SDK first, then ``deeplink/set`` with
  ``device_id`` and ``device_password`` (the node stores both), then read back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

from baremetal.signing import node_id_from_private_key
from boot_hooks.codes import make_code
from boot_hooks.config import HookConfig
from boot_hooks.errors import DeepLinkDown, NotConfirmed
from boot_hooks.keys import read_seed_file
from boot_hooks.logs import mask_device_id
from boot_hooks.node import NodeGateway, is_relay_version
from boot_hooks.retry import Deadline
from boot_hooks.sdk import STATE_ONLINED, DeepLinkSdk, DeviceInfo, read_local_deeplink
from boot_hooks.state import HookState

__all__ = ["Outcome", "local_deeplink", "run_direct", "set_locally"]

_LOGGER = logging.getLogger(__name__)
Remember = Callable[[str], None]


@dataclass(frozen=True)
class Outcome:
    """What a successful run achieved (no secret in it)."""

    mode: str
    node_id: str
    node_version: str
    device_id: str
    elapsed_s: float


def run_direct(config: HookConfig, remember_secret: Remember, state: HookState) -> Outcome:
    """Rotate and publish with this PC's own server key (direct mode)."""
    started = time.monotonic()
    key = read_seed_file(config.key_file, "[server] key_file")
    remember_secret(key.hex)
    node_id = _direct_node_id(config.node_id, key.hex)
    gateway = NodeGateway(config.node_url, node_id, key, config.deadlines.call_s)

    _LOGGER.info("step node: waiting up to %.0f s for %s", config.deadlines.node_s, config.node_url)
    version = gateway.probe_version(Deadline(config.deadlines.node_s))
    relay = is_relay_version(version)
    _LOGGER.info("step node: version %s (%s)", version, "LAN relay" if relay else "legacy store")

    sdk, local = local_deeplink(config, remember_secret)
    try:
        current = _node_current(gateway, relay, config)
        if current is not None:
            remember_secret(current.password)
            if relay:
                _check_same_device(local, current)
        code = _fresh_code(config, local, current, state)
        remember_secret(code)
        device_id = (local.device_id if local else "") or (current.device_id if current else "")
        if not relay:
            device_id = set_locally(sdk, code, config) or device_id
        _LOGGER.info("step publish: deeplink/set for device %s", mask_device_id(device_id))
        gateway.publish(code, device_id, Deadline(config.deadlines.deeplink_s))
        _LOGGER.info("step confirm: reading back for up to %.0f s", config.deadlines.confirm_s)
        confirmed = gateway.confirm(code, Deadline(config.deadlines.confirm_s))
    finally:
        if sdk is not None:
            sdk.close()
    _check_same_device(local, confirmed)
    state.remember_code(code)
    return Outcome("direct", node_id, version, confirmed.device_id, time.monotonic() - started)


def _direct_node_id(configured: str, key_hex: str) -> str:
    derived = node_id_from_private_key(key_hex)
    if configured and configured != derived:
        # Let the node judge (it answers "verify sign failed"), but say why up front.
        _LOGGER.error("[server] key_file does not belong to node_id %s; the node will refuse",
                      configured)
        return configured
    _LOGGER.info("step identity: node_id %s (%s)", derived, "config" if configured else "from key")
    return derived


def local_deeplink(
    config: HookConfig, remember_secret: Remember
) -> tuple[DeepLinkSdk | None, DeviceInfo | None]:
    """Open DeepLink's SDK (unless ``sdk = none``) and read its device info (reopening it)."""
    if config.sdk_kind == "none":
        _LOGGER.info("step deeplink: no local SDK configured; relying on the node")
        return None, None
    deadline = Deadline(config.deadlines.deeplink_s)
    _LOGGER.info("step deeplink: opening the SDK at %s", config.sdk_path)
    local = read_local_deeplink(config.sdk_kind, config.sdk_path, config.channel_id, deadline,
                                config.deadlines.call_s)
    if local.state < STATE_ONLINED:
        _LOGGER.warning("step deeplink: DeepLink server state %d, not yet online", local.state)
    remember_secret(local.info.password)
    _LOGGER.info("step deeplink: device %s, server state %d",
                 mask_device_id(local.info.device_id), local.state)
    return local.sdk, local.info


def _node_current(gateway: NodeGateway, relay: bool, config: HookConfig) -> DeviceInfo | None:
    if relay:
        # On relay nodes this is the wait for DeepLink's LAN session: it may connect late.
        _LOGGER.info("step deeplink: waiting up to %.0f s for DeepLink's session on the node",
                     config.deadlines.deeplink_s)
        info = gateway.read(Deadline(config.deadlines.deeplink_s))
        _LOGGER.info("step deeplink: node sees device %s", mask_device_id(info.device_id))
        return info
    # Legacy nodes only store what was set; a failed read just means nothing to avoid.
    with suppress(DeepLinkDown, NotConfirmed):
        return gateway.read(Deadline(config.deadlines.call_s))
    return None


def _fresh_code(
    config: HookConfig, local: DeviceInfo | None, current: DeviceInfo | None, state: HookState
) -> str:
    avoid = [info.password for info in (local, current) if info is not None]
    code = make_code(config.code_length, avoid=avoid, store=state.codes)
    _LOGGER.info("step code: new %d-character code made", len(code))
    return code


def set_locally(sdk: DeepLinkSdk | None, code: str, config: HookConfig) -> str:
    """Set the code in DeepLink through the SDK (legacy nodes); return DeepLink's device_id."""
    if sdk is None:
        _LOGGER.warning("step publish: legacy node and sdk = none: DeepLink itself keeps its code")
        return ""
    _LOGGER.info("step deeplink: setting the new code through the SDK")
    sdk.set_password(code)
    info = sdk.wait_password(code, Deadline(config.deadlines.confirm_s))
    return info.device_id


def _check_same_device(local: DeviceInfo | None, confirmed: DeviceInfo) -> None:
    if local and local.device_id and confirmed.device_id and local.device_id != confirmed.device_id:
        # The node's session for our registered IP belongs to another DeepLink.
        raise NotConfirmed(
            f"node reports device {mask_device_id(confirmed.device_id)} but local DeepLink is "
            f"{mask_device_id(local.device_id)}: the server's registered IP is another PC's"
        )
