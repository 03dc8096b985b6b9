r"""Node-built JSON texts, concatenated without escaping exactly as the C++ does.

A ``"`` or ``\\`` in a stored value therefore yields invalid JSON, on purpose
(docs/protocol.md §2.5). Builders take already-resolved values; no I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from baremetal.emulator.store import BareMetalRecord

__all__ = [
    "DeepLinkPair",
    "add_result",
    "bare_metal_list",
    "deeplink_info",
    "mask",
    "renter_view",
    "server_node_info",
    "session_id_result",
]

DeepLinkPair = tuple[str, str]
_LIST_CAP = 50  # the loop breaks when count > 50, so 51 items at most (:11970)
_ADD_CAP = 100


def mask(secret: str) -> str:
    """Replace a secret by ``*`` repeated to its length, as the node masks."""
    return "*" * len(secret)


def _q(value: str) -> str:
    return '"' + value + '"'


def _item(record: BareMetalRecord, verified: bool, power: str | None,
          deeplink: DeepLinkPair | None) -> str:
    def secret(value: str) -> str:
        return _q(value if verified else mask(value))

    parts = [
        '"node_id":' + _q(record.node_id),
        '"node_private_key":' + secret(record.node_private_key),
        '"uuid":' + _q(record.uuid), '"ip":' + _q(record.ip), '"os":' + _q(record.os),
        '"description":' + _q(record.desc), '"ipmi_hostname":' + _q(record.ipmi_hostname),
        '"ipmi_username":' + secret(record.ipmi_username),
        '"ipmi_password":' + secret(record.ipmi_password),
    ]
    if record.ipmi_port:
        parts.append('"ipmi_port":' + record.ipmi_port)  # a bare number
    if power is not None:
        parts.append('"power_status":' + _q(power))
    if deeplink is not None:
        parts.append('"deeplink_device_id":' + _q(deeplink[0]))
        parts.append('"deeplink_device_password":' + secret(deeplink[1]))
    return "{" + ",".join(parts) + "}"


def bare_metal_list(
    records: Iterable[BareMetalRecord],
    verified: bool,
    deeplink_of: Callable[[BareMetalRecord], DeepLinkPair | None],
    power_of: Callable[[BareMetalRecord], str | None] | None = None,
) -> str:
    """Build the manager list (local ``bare_metal_list`` / node ``list_bare_metal_manager``)."""
    items = []
    for count, record in enumerate(records):
        if count > _LIST_CAP:
            break
        power = power_of(record) if power_of else None
        items.append(_item(record, verified, power, deeplink_of(record)))
    return '{"errcode":0, "message":{"bare_metal_nodes":[' + ",".join(items) + "]}}"


def renter_view(version: str, record: BareMetalRecord, power: str | None,
                deeplink: DeepLinkPair | None) -> str:
    """Build the renter view of one server (``list_bare_metal``, password unmasked)."""
    text = '{"errcode":0, "message":{"version":' + _q(version) + ',"ip":' + _q(record.ip)
    text += ',"os":' + _q(record.os) + ',"description":' + _q(record.desc)
    if power is not None:
        text += ',"power_status":' + _q(power)
    if deeplink is not None:
        text += ',"deeplink_device_id":' + _q(deeplink[0])
        text += ',"deeplink_device_password":' + _q(deeplink[1])
    return text + "}}"


def add_result(ids: dict[str, str]) -> str:
    """Build the add success body (uuid order, at most 101 items)."""
    items = []
    for count, uuid in enumerate(sorted(ids)):
        if count > _ADD_CAP:
            break
        items.append('{"node_id":' + _q(ids[uuid]) + ',"uuid":' + _q(uuid) + "}")
    return '{"errcode":0, "message":{"bare_metal_nodes":[' + ",".join(items) + "]}}"


def deeplink_info(device_id: str, password: str) -> str:
    """Build ``{"errcode":0, "message":{"device_id":..,"device_password":..}}``."""
    return ('{"errcode":0, "message":{"device_id":' + _q(device_id)
            + ',"device_password":' + _q(password) + "}}")


def server_node_info(version: str, record: BareMetalRecord,
                     deeplink: DeepLinkPair | None) -> str:
    """Build ``query_bare_metal_node_info`` (note: no space after the comma here)."""
    text = ('{"errcode":0,"message":{"version":' + _q(version) + ',"node_type":"2"'
            + ',"ip":' + _q(record.ip) + ',"os":' + _q(record.os))
    if deeplink is not None:
        text += ',"deeplink":{"device_id":' + _q(deeplink[0])
        text += ',"device_password":' + _q(mask(deeplink[1])) + "}"
    return text + "}}"


def session_id_result(session_id: str) -> str:
    """Build the session_id answer."""
    return '{"errcode":0, "message":{"session_id":' + _q(session_id) + "}}"
