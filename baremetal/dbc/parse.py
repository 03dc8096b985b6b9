"""Turn the ``message`` of a successful DBC answer into model objects, checking every field.

Known fields must have the types the node writes (docs/protocol.md §3);
unknown fields are ignored so a newer node does not break an older client. Anything
else raises ``DecodeError`` naming the endpoint and the field, never its value.
"""

from __future__ import annotations

import re
from typing import Any

from baremetal.dbc.models import (
    AddedServer,
    BareMetalServer,
    DeepLinkInfo,
    DeleteResult,
    NodeInfo,
    NodeSummary,
    NodeVersion,
    RenterServerView,
)
from baremetal.errors import DecodeError

__all__ = [
    "parse_added_servers",
    "parse_deeplink",
    "parse_delete_result",
    "parse_node_info",
    "parse_renter_view",
    "parse_server_list",
    "parse_session_id",
    "parse_summaries",
    "parse_text",
    "parse_version",
]

# Only errcode-0 answers reach these parsers, and decode_envelope accepts errcode 0
# only with HTTP 200, so every DecodeError raised here is about a 200 answer.
_HTTP_OK = 200
_NODE_ID = re.compile(r"[0-9a-f]{64}")
_DELETED = re.compile(r"(\d+) were successfully deleted, (\d+) failed")
_SERVER_TEXTS = ("uuid", "ip", "os", "description", "ipmi_hostname", "ipmi_username",
                 "ipmi_password", "node_private_key")
_NODE_INFO_KEYS = {"version", "node_type", "ip", "os", "deeplink"}


class _Fields:
    """Typed access to one JSON object of an answer; failures name the field."""

    def __init__(self, endpoint: str, value: Any, what: str) -> None:
        if not isinstance(value, dict):
            raise DecodeError(endpoint, f"{what} is not a JSON object", _HTTP_OK)
        self.endpoint = endpoint
        self.obj: dict[str, Any] = value
        self.what = what

    def fail(self, reason: str) -> DecodeError:
        """Build the DecodeError for this object."""
        return DecodeError(self.endpoint, f"{self.what}: {reason}", _HTTP_OK)

    def text(self, key: str) -> str:
        """Return a required string field."""
        if key not in self.obj:
            raise self.fail(f"missing {key}")
        return self._check_text(key)

    def opt_text(self, key: str) -> str | None:
        """Return an optional string field, None when absent."""
        return self._check_text(key) if key in self.obj else None

    def _check_text(self, key: str) -> str:
        value = self.obj[key]
        if not isinstance(value, str):
            raise self.fail(f"{key} is not a string")
        return value

    def node_id(self, key: str = "node_id") -> str:
        """Return a 64-lowercase-hex node id field."""
        value = self.text(key)
        if not _NODE_ID.fullmatch(value):
            raise self.fail(f"{key} is not 64 lowercase hex characters")
        return value

    def opt_port(self, key: str) -> int | None:
        """Return an optional TCP port number (a bare JSON number, §3.1)."""
        if key not in self.obj:
            return None
        value = self.obj[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            raise self.fail(f"{key} is not an integer in 1..65535")
        return value

    def array(self, key: str) -> list[Any]:
        """Return a required array field."""
        value = self.obj.get(key)
        if not isinstance(value, list):
            raise self.fail(f"{key} is missing or not an array")
        return value

    def deeplink_pair(self, id_key: str, password_key: str) -> tuple[str | None, str | None]:
        """Return the DeepLink id/password, which the node writes both or neither (§3.1)."""
        device_id, password = self.opt_text(id_key), self.opt_text(password_key)
        if (device_id is None) != (password is None):
            raise self.fail(f"{id_key} and {password_key} must come together")
        return device_id, password


def parse_text(endpoint: str, message: Any) -> str:
    """Return a message that must be a string (power, modify, DeepLink set)."""
    if not isinstance(message, str):
        raise DecodeError(endpoint, "message is not a string", _HTTP_OK)
    return message


def parse_version(endpoint: str, message: Any) -> NodeVersion:
    """Parse ``{"client_version": "0.4.1.8"}``."""
    return NodeVersion(_Fields(endpoint, message, "message").text("client_version"))


def parse_server(endpoint: str, value: Any, what: str) -> BareMetalServer:
    """Parse one item of the manager / local list (§3.1)."""
    f = _Fields(endpoint, value, what)
    texts = {key: f.text(key) for key in _SERVER_TEXTS}
    device_id, password = f.deeplink_pair("deeplink_device_id", "deeplink_device_password")
    return BareMetalServer(
        node_id=f.node_id(), ipmi_port=f.opt_port("ipmi_port"), deeplink_device_id=device_id,
        deeplink_device_password=password, power_status=f.opt_text("power_status"), **texts,
    )


def parse_server_list(endpoint: str, message: Any) -> list[BareMetalServer]:
    """Parse ``{"bare_metal_nodes": [server, ...]}`` from a bare-metal node's list."""
    items = _Fields(endpoint, message, "message").array("bare_metal_nodes")
    for index, item in enumerate(items):
        if isinstance(item, dict) and "uuid" not in item and "name" in item:
            raise DecodeError(endpoint, f"bare_metal_nodes[{index}] is a client node's "
                              "summary (node_id, name, version): pass manager_id to reach "
                              "the bare-metal node through this client node", _HTTP_OK)
    return [parse_server(endpoint, item, f"bare_metal_nodes[{i}]") for i, item in enumerate(items)]


def parse_summaries(endpoint: str, message: Any, key: str) -> list[NodeSummary]:
    """Parse a client node's ``{key: [{node_id, name, version}, ...]}`` list."""
    items = _Fields(endpoint, message, "message").array(key)
    summaries = []
    for index, item in enumerate(items):
        f = _Fields(endpoint, item, f"{key}[{index}]")
        summaries.append(NodeSummary(f.node_id(), f.text("name"), f.text("version")))
    return summaries


def parse_renter_view(endpoint: str, message: Any) -> RenterServerView:
    """Parse the renter view of one server (P2P list with a server id, §3.1 case 4)."""
    f = _Fields(endpoint, message, "message")
    device_id, password = f.deeplink_pair("deeplink_device_id", "deeplink_device_password")
    return RenterServerView(
        version=f.text("version"), ip=f.text("ip"), os=f.text("os"),
        description=f.text("description"), power_status=f.opt_text("power_status"),
        deeplink_device_id=device_id, deeplink_device_password=password,
    )


def parse_added_servers(endpoint: str, message: Any) -> list[AddedServer]:
    """Parse ``{"bare_metal_nodes": [{node_id, uuid}, ...]}`` from ``bare_metal/add``."""
    items = _Fields(endpoint, message, "message").array("bare_metal_nodes")
    added = []
    for index, item in enumerate(items):
        f = _Fields(endpoint, item, f"bare_metal_nodes[{index}]")
        added.append(AddedServer(f.node_id(), f.text("uuid")))
    return added


def parse_delete_result(endpoint: str, message: Any) -> DeleteResult:
    """Parse "<n> were successfully deleted, <m> failed" (bare_metal_node_manager.cpp:113-145)."""
    text = parse_text(endpoint, message)
    match = _DELETED.fullmatch(text)
    if not match:
        raise DecodeError(endpoint, "message is not '<n> were successfully deleted, <m> failed'",
                          _HTTP_OK)
    return DeleteResult(int(match.group(1)), int(match.group(2)), text)


def parse_deeplink(endpoint: str, message: Any, what: str = "message") -> DeepLinkInfo:
    """Parse ``{"device_id": ..., "device_password": ...}``."""
    f = _Fields(endpoint, message, what)
    return DeepLinkInfo(f.text("device_id"), f.text("device_password"))


def parse_node_info(endpoint: str, message: Any) -> NodeInfo:
    """Parse ``mining_nodes`` for one node; compute-node extras stay in ``extra``."""
    f = _Fields(endpoint, message, "message")
    deeplink = None
    if "deeplink" in f.obj:
        deeplink = parse_deeplink(endpoint, f.obj["deeplink"], "message.deeplink")
    extra = {k: v for k, v in f.obj.items() if k not in _NODE_INFO_KEYS}
    return NodeInfo(version=f.text("version"), node_type=f.text("node_type"), ip=f.text("ip"),
                    os=f.text("os"), deeplink=deeplink, extra=extra)


def parse_session_id(endpoint: str, message: Any) -> str:
    """Parse ``{"session_id": "..."}``."""
    session_id = _Fields(endpoint, message, "message").text("session_id")
    if not session_id:
        raise DecodeError(endpoint, "message: session_id is empty", _HTTP_OK)
    return session_id
