"""The bare-metal node's answers to P2P requests (``node_request_service.cpp``).

``NodeSide.handle(op, body)`` returns the exact JSON text the node would encrypt and
send back, or ``None`` when the node would not answer (it forwards a request for an
id it does not hold; the client then times out). ``body`` is what the client packed:
the parsed envelope plus ``node_id`` for list and modify.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from baremetal.emulator import nodejson
from baremetal.emulator.authority import ROLE_VERIFIER, AuthResult, SessionIds, check_authority
from baremetal.emulator.backends import DeepLinkSource, PowerBackend
from baremetal.emulator.envelope import ReqBody, verify_sign
from baremetal.emulator.rentals import RentalView
from baremetal.emulator.replies import E_DEFAULT, node_error
from baremetal.emulator.store import BareMetalInfo, BareMetalRecord, BareMetalStore

__all__ = ["NodeSide", "parse_add_items", "parse_delete_ids", "parse_modify_info"]

_LOGGER = logging.getLogger(__name__)
_NOT_SUPPORTED = "Not supported"
_VM_NOT_SUPPORTED = "bare metal nodes are not supported"
_NO_MACHINE_INFO = "bare metal node has no machine info for now"


@dataclass
class NodeSide:
    """The node-side handlers of one bare-metal node."""

    manager_id: str
    version: str
    store: BareMetalStore
    power: PowerBackend
    deeplink: DeepLinkSource
    rentals: RentalView
    sessions: SessionIds

    def hit(self, target: str) -> str:
        """Return "manager", "server" or "" for ``peer_nodes_list[0]`` (``hit_node``)."""
        if target == self.manager_id:
            return "manager"
        return "server" if self.store.get(target) is not None else ""

    def handle(self, op: str, body: ReqBody) -> str | None:
        """Answer one relayed request, or None when this node would not answer."""
        handler: Callable[[ReqBody, str], str | None] = getattr(self, "_op_" + op)
        return handler(body, self.hit(body.target))

    # -- helpers -----------------------------------------------------------------

    def _manager_signed(self, body: ReqBody) -> bool:
        return (body.wallet == self.manager_id and bool(body.nonce and body.sign)
                and verify_sign(body.sign, body.nonce, body.wallet))

    def _authorize(self, body: ReqBody, *, allow_verifier: bool = True) -> AuthResult | str:
        result = check_authority(body, self.rentals, self.sessions)
        if not result.success or not result.role or (
                not allow_verifier and result.role == ROLE_VERIFIER):
            return node_error(E_DEFAULT, "check authority failed: " + result.errmsg)
        return result

    def power_status(self, record: BareMetalRecord) -> str | None:
        """Run ``chassis power status``; the text on success, None on failure."""
        ok, message = self.power.power(record.node_id, "status")
        return message if ok else None

    # -- bare_metal ----------------------------------------------------------------

    def _op_list(self, body: ReqBody, hit: str) -> str | None:
        if hit == "manager":
            return self._list_manager(body)
        if hit != "server":
            return None
        auth = self._authorize(body)
        if isinstance(auth, str):
            return auth
        record = self.store.get(body.target)
        if record is None:
            return node_error(E_DEFAULT, "get bare metal node info failed")
        return nodejson.renter_view(self.version, record, self.power_status(record),
                                    self.deeplink.get(record))

    def _list_manager(self, body: ReqBody) -> str:
        records = self.store.snapshot()
        if body.node_id:
            if body.node_id in records:
                records = {body.node_id: records[body.node_id]}
            else:
                records = {k: r for k, r in records.items() if r.uuid == body.node_id}
        only_one = len(records) == 1
        return nodejson.bare_metal_list(
            records.values(), self._manager_signed(body), self.deeplink.get,
            self.power_status if only_one else None)

    def _op_add(self, body: ReqBody, hit: str) -> str | None:
        if hit == "server":
            return node_error(E_DEFAULT, _NOT_SUPPORTED)
        if hit != "manager":
            return None
        if not self._manager_signed(body):
            return node_error(E_DEFAULT, "verify sign failed")
        if "bare_metal_nodes" not in body.additional:
            return node_error(E_DEFAULT, "additional bare_metal_nodes not existed")
        parsed = parse_add_items(body.additional["bare_metal_nodes"], self.store, node_side=True)
        if isinstance(parsed, str):
            return node_error(E_DEFAULT, parsed)
        errcode, message, ids = self.store.add(parsed)
        return node_error(errcode, message) if errcode else nodejson.add_result(ids)

    def _op_delete(self, body: ReqBody, hit: str) -> str | None:
        if hit == "server":
            return node_error(E_DEFAULT, _NOT_SUPPORTED)
        if hit != "manager":
            return None
        if not self._manager_signed(body):
            return node_error(E_DEFAULT, "verify sign failed")
        if "bare_metal_node_ids" not in body.additional:
            return node_error(E_DEFAULT, "additional bare_metal_node_ids not existed")
        ids = parse_delete_ids(body.additional["bare_metal_node_ids"])
        if isinstance(ids, str):
            return node_error(E_DEFAULT, ids)
        succ, message = self.store.delete(ids)
        return node_error(0 if succ > 0 else -1, message)

    def _op_modify(self, body: ReqBody, hit: str) -> str | None:
        if hit == "server":
            return node_error(E_DEFAULT, _NOT_SUPPORTED)
        if hit != "manager":
            return None
        if not self._manager_signed(body):
            return node_error(E_DEFAULT, "verify sign failed")
        if self.store.get(body.node_id) is None:
            return node_error(E_DEFAULT, "node id not existed")
        info = parse_modify_info(body.additional)
        if isinstance(info, str):
            return node_error(E_DEFAULT, info)
        errcode, message = self.store.modify(body.node_id, info)
        return node_error(0 if errcode == 0 else -1, message)

    def _op_power(self, body: ReqBody, hit: str) -> str | None:
        if hit == "manager":
            return node_error(E_DEFAULT, _NOT_SUPPORTED)
        if hit != "server":
            return None
        auth = self._authorize(body)
        if isinstance(auth, str):
            return auth
        command = body.additional.get("command")
        if command not in ("status", "on", "off", "reset"):
            return node_error(E_DEFAULT, "invalid command")
        ok, message = self.power.power(body.target, command)
        if ok and command in ("on", "off"):
            self.store.clear_deeplink_password(body.target)  # docs/protocol.md §7.4
        return node_error(0 if ok else E_DEFAULT, message)

    def _op_bootdev(self, body: ReqBody, hit: str) -> str | None:
        if hit == "manager":
            return node_error(E_DEFAULT, _NOT_SUPPORTED)
        if hit != "server":
            return None
        auth = self._authorize(body, allow_verifier=False)
        if isinstance(auth, str):
            return auth
        device = body.additional.get("device")
        if device not in ("none", "pxe", "cdrom", "disk", "bios"):
            return node_error(E_DEFAULT, "invalid device")
        self.power.bootdev(body.target, device)
        # BareMetalTaskManager::SetBootDeviceOrder drops the result (a missing
        # `return`, BareMetalTaskManager.cpp:50-55): every answer is this error.
        return node_error(E_DEFAULT, "bare metal client not existed")

    # -- deeplink ------------------------------------------------------------------

    def _op_deeplink_list(self, body: ReqBody, hit: str) -> str | None:
        if hit == "manager":
            return node_error(E_DEFAULT, _NOT_SUPPORTED)
        if hit != "server":
            return None
        auth = self._authorize(body)
        if isinstance(auth, str):
            return auth
        record = self.store.get(body.target)
        if record is None:
            return node_error(1, "node id not existed")
        pair = self.deeplink.get(record)
        if pair is None:
            return node_error(1, "deeplink service not connected")
        return nodejson.deeplink_info(*pair)

    def _op_deeplink_set(self, body: ReqBody, hit: str) -> str | None:
        if hit == "manager":
            return node_error(E_DEFAULT, _NOT_SUPPORTED)
        if hit != "server":
            return None
        auth = self._authorize(body, allow_verifier=False)
        if isinstance(auth, str):
            return auth
        device_id = _string(body.additional, "device_id")
        password = _string(body.additional, "device_password")
        if not device_id and not password:
            return node_error(E_DEFAULT, "invalid device")
        record = self.store.get(body.target)
        if record is None:
            return node_error(E_DEFAULT, "node id not existed")
        ok, message = self.deeplink.set(record, device_id, password)
        return node_error(0 if ok else E_DEFAULT, message)

    # -- mining_nodes and the VM endpoints --------------------------------------------

    def _op_node_info(self, body: ReqBody, hit: str) -> str | None:
        if hit == "manager":
            return node_error(E_DEFAULT, _NO_MACHINE_INFO)
        record = self.store.get(body.target) if hit == "server" else None
        if record is None:
            return None
        return nodejson.server_node_info(self.version, record, self.deeplink.get(record))

    def _op_session_id(self, body: ReqBody, hit: str) -> str | None:
        if hit != "server":
            return None  # the manager id is not "hit" here (:5827): forwarded, no answer
        result = check_authority(body, self.rentals, self.sessions, use_session=False)
        if not result.success:
            return node_error(E_DEFAULT, "check authority failed: " + result.errmsg)
        if result.machine_status != "rented" or result.role != "wallet_renter":
            return node_error(E_DEFAULT, "check authority failed")
        session_id = self.sessions.get(result.rent_wallet)
        if not session_id:
            return node_error(E_DEFAULT, "no session id")
        return nodejson.session_id_result(session_id)

    def _op_rent_orders(self, body: ReqBody, hit: str) -> str | None:
        if hit == "manager":
            return node_error(E_DEFAULT, _NO_MACHINE_INFO)
        if hit != "server":
            return None
        return self._rent_orders_json()

    def _rent_orders_json(self) -> str:
        items = []
        for node_id in self.store.snapshot():
            machine = self.rentals.machine(node_id)
            if not machine.renter:
                continue
            order_id = machine.rent_order or machine.renter
            items.append(
                '{"id":"' + order_id + '","renter":"' + machine.renter + '","rent_end":"'
                + str(machine.rent_end) + '","rent_status":"' + machine.rent_status
                + '","gpu_nums":"0","gpu_index":[]}')
        return '{"errcode":0,"message":{"rent_orders":[' + ",".join(items[:51]) + "]}}"

    def _op_vm(self, body: ReqBody, hit: str) -> str | None:
        if hit in ("manager", "server"):
            return node_error(E_DEFAULT, _VM_NOT_SUPPORTED)
        return None


def _string(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    return value if isinstance(value, str) else ""


def _port_of(item: dict[str, Any]) -> tuple[int, bool]:
    """Return (port, valid); a non-uint ``ipmi_port`` is silently ignored (port 0)."""
    value = item.get("ipmi_port")
    if type(value) is not int or not 0 <= value <= 0xFFFFFFFF:
        return 0, True
    return value, 0 < value <= 65535


def _info_from(item: Any) -> tuple[BareMetalInfo, bool]:
    item = item if isinstance(item, dict) else {}
    port, port_ok = _port_of(item)
    info = BareMetalInfo(
        uuid=_string(item, "uuid"), ip=_string(item, "ip"), os=_string(item, "os"),
        desc=_string(item, "desc"), ipmi_hostname=_string(item, "ipmi_hostname"),
        ipmi_username=_string(item, "ipmi_username"),
        ipmi_password=_string(item, "ipmi_password"), ipmi_port=port if port_ok else 0,
    )
    return info, port_ok


def parse_add_items(
    items: Any, store: BareMetalStore, *, node_side: bool
) -> dict[str, BareMetalInfo] | str:
    """Validate ``bare_metal_nodes`` as add does; return {uuid: info} or error text."""
    if not isinstance(items, list):
        return "additional bare_metal_nodes must be an array"
    infos = {}
    for item in items:
        info, port_ok = _info_from(item)
        if not port_ok:
            return "invalid ipmi port in " + info.uuid if node_side else "invalid ipmi port"
        if not info.validate():
            return "bare metal node info " + info.uuid + " invalid"
        if store.exist_uuid(info.uuid):
            return "bare metal node uuid " + info.uuid + " already existed"
        infos[info.uuid] = info  # a std::map: duplicates collapse to the last one
    if not infos:
        return "additional bare_metal_nodes is empty"
    return infos


def parse_delete_ids(value: Any) -> list[str] | str:
    """Validate ``bare_metal_node_ids``; return the ids or the node's error text."""
    if not isinstance(value, list):
        return "additional bare_metal_node_ids must be an array"
    if not all(isinstance(v, str) for v in value):
        return "bare_metal_node_ids item must be a string"
    if not value:
        return "additional bare_meta_node_ids is an empty array"  # sic, "meta"
    return list(value)


def parse_modify_info(doc: dict[str, Any]) -> BareMetalInfo | str:
    """Read a modify ``additional``; return the info or ``invalid uuid``/``invalid ipmi port``."""
    info, port_ok = _info_from(doc)
    if not all(c.isascii() and (c.isalnum() or c == "-") for c in info.uuid):
        return "invalid uuid"
    if not port_ok:
        return "invalid ipmi port"
    return info
