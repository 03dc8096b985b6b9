"""The chain's JSON-RPC requests and answers, byte for byte as the DBC node builds and parses them.

Source: ``HttpDBCChainClient.cpp`` (docs/protocol.md §14). The node writes each request by
string concatenation and reads each answer with rapidjson, field by field; it stops at
the first field that is missing or has the wrong JSON type. Each ``parse_*`` below checks
the same fields, in the same order, with the same types, and raises ``ChainBadAnswer``
where the node would ``break`` (the node then falls back to "unknown" / 0 / no order,
which is what ``baremetal.chain.rental`` makes of the error).

No sockets here: everything is a pure function of text, so the unit tests feed recorded
answers straight in.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from baremetal.chain.errors import ChainBadAnswer, MachineUnknown
from baremetal.errors import InvalidInput

__all__ = [
    "DEFAULT_RENTER",
    "CommitteeOps",
    "MachineStatus",
    "Methods",
    "RentOrder",
    "machine_category",
    "parse_committee_ops",
    "parse_current_block",
    "parse_machine_status",
    "parse_rent_order",
    "parse_renter",
    "request_text",
    "strtol16",
]

# RentOrderManager.cpp:39-43: the all-zero account, the chain's "nobody" renter.
DEFAULT_RENTER = "5C4hrfjw9DjXZTzV3MwzrrAr9P1MJhSrvWGWqi1eSuyUpnhM"
_INT64_MAX = (1 << 63) - 1
_INT64_MIN = -(1 << 63)
_HEX_PREFIX = re.compile(r"[+-]?0[xX](?=[0-9a-fA-F])")
_HEX_DIGITS = re.compile(r"[0-9a-fA-F]*")
# What the node pastes between quotes unescaped: a node_id (hex) or an SS58 / hex wallet.
_QUOTABLE = re.compile(r"[A-Za-z0-9]{1,128}")

# HttpDBCChainClient.cpp:129-141: the chain's machineStatus strings, by node category.
_VERIFY = ("addingCustomizeInfo", "distributingOrder", "committeeVerifying", "committeeRefused")
_ONLINE = ("waitingFulfill", "online")
_RENTED = ("creating", "rented")


class MachineStatus:
    """The node's ``MACHINE_STATUS`` categories."""

    ONLINE = "online"
    RENTED = "rented"
    VERIFY = "verify"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Methods:
    """RPC method names; ``chain_additional_field=terminatingRental`` swaps the pallet."""

    machine_info: str = "onlineProfile_getMachineInfo"
    rent_order: str = "rentMachine_getRentOrder"
    committee_ops: str = "onlineCommittee_getCommitteeOps"
    current_block: str = "chain_getBlock"

    @classmethod
    def for_conf(cls, terminating_rental: bool) -> Methods:
        """Return the method names the node uses for this ``chain_additional_field``."""
        if not terminating_rental:
            return cls()
        return cls("terminatingRental_getMachineInfo", "terminatingRental_getRentOrder",
                   "terminatingRental_getCommitteeOps")


@dataclass(frozen=True)
class RentOrder:
    """A rent order as ``getRentOrder`` keeps it (``HttpDBCChainClient.cpp:482-563``)."""

    renter: str
    rent_end: int
    rent_status: str
    gpu_num: int | None = None
    gpu_index: tuple[int, ...] = ()

    @property
    def has_renter(self) -> bool:
        """False for the chain's all-zero "nobody" account."""
        return bool(self.renter) and self.renter != DEFAULT_RENTER


@dataclass(frozen=True)
class CommitteeOps:
    """The three verify-window starts of one committee member for one machine."""

    verify_time: tuple[int, ...]

    def in_verify_time(self, current_block: int) -> bool:
        """Apply ``HttpDBCChainClient.cpp:183-185``: within 2400 blocks (4 h) of a start."""
        return any(start < current_block <= start + 2400 for start in self.verify_time)


def _quoted(name: str, value: str) -> str:
    if not isinstance(value, str) or not _QUOTABLE.fullmatch(value):
        raise InvalidInput(f"{name} must be 1-128 ASCII letters or digits")
    return f'"{value}"'


def request_text(method: str, *, node_id: str | None = None, wallet: str | None = None,
                 rent_order: str | None = None) -> bytes:
    """Build the request body exactly as the node does (its odd spacing included).

    ``rent_order`` goes in UNQUOTED (``HttpDBCChainClient.cpp:491-498``), so it must be
    digits; ``node_id`` and ``wallet`` go in quoted without escaping, so they must be
    plain letters and digits. Anything else is refused before sending (``InvalidInput``).
    """
    params: list[str] = []
    if wallet is not None:
        params.append(_quoted("wallet", wallet))
    if rent_order:
        if not rent_order.isascii() or not rent_order.isdigit() or len(rent_order) > 20:
            raise InvalidInput("rent_order must be a decimal number (the node sends it unquoted)")
        params.append(rent_order)
    elif node_id is not None:
        params.append(_quoted("node_id", node_id))
    text = ('{"jsonrpc": "2.0", "id": 1, "method":"' + method + '", "params": ['
            + ",".join(params) + "]}")
    return text.encode("ascii")


def _document(method: str, body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ChainBadAnswer(method, "answer is not JSON") from None
    if not isinstance(doc, dict):
        raise ChainBadAnswer(method, "answer is not a JSON object")
    return doc


def _field(method: str, obj: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in obj:
        raise ChainBadAnswer(method, f"no {name!r}")
    value = obj[name]
    # JSON true/false are not rapidjson numbers; Python's bool is an int.
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise ChainBadAnswer(method, f"{name!r} is not {_kind_name(kind)}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {dict: "an object", str: "a string", list: "an array", int: "an integer",
             bool: "a boolean"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _result(method: str, body: bytes) -> dict[str, Any]:
    doc = _document(method, body)
    if "result" not in doc:
        error = doc.get("error")
        detail = error.get("message") if isinstance(error, dict) else None
        reason = f"JSON-RPC error: {str(detail)[:200]}" if detail else "no 'result'"
        raise ChainBadAnswer(method, reason)
    result = doc["result"]
    if result is None:
        raise MachineUnknown(method, "result is null")
    if not isinstance(result, dict):
        raise ChainBadAnswer(method, "'result' is not an object")
    return result


def strtol16(text: str) -> int:
    """C ``strtol(text, &p, 16)`` on LP64: leading hex digits, ``0x`` optional, 0 if none."""
    rest = text.lstrip(" \t\n\r\f\v")
    negative = rest.startswith("-")
    prefix = _HEX_PREFIX.match(rest)
    if prefix:
        rest = rest[prefix.end():]
    elif rest[:1] in "+-" and rest:
        rest = rest[1:]
    digits = _HEX_DIGITS.match(rest)
    value = int(digits.group(0), 16) if digits and digits.group(0) else 0
    value = -value if negative else value
    return max(_INT64_MIN, min(_INT64_MAX, value))


def parse_current_block(method: str, body: bytes) -> int:
    """``result.block.header.number``, a hex string (``HttpDBCChainClient.cpp:59-84``)."""
    result = _result(method, body)
    block = _field(method, result, "block", dict)
    header = _field(method, block, "header", dict)
    number = _field(method, header, "number", str)
    return strtol16(number)


def machine_category(machine_status: str) -> str:
    """Map the chain's ``machineStatus`` to the node's category (``:129-141``)."""
    if machine_status in _VERIFY:
        return MachineStatus.VERIFY
    if machine_status in _ONLINE:
        return MachineStatus.ONLINE
    if machine_status in _RENTED:
        return MachineStatus.RENTED
    return MachineStatus.UNKNOWN


def parse_machine_status(method: str, body: bytes) -> str:
    """``result.machineStatus``, a string (``HttpDBCChainClient.cpp:111-125``); raw value."""
    result = _result(method, body)
    return str(_field(method, result, "machineStatus", str))


def _int64(method: str, obj: dict[str, Any], name: str) -> int:
    # rapidjson IsNumber() then GetInt64()/GetUint64(): a fraction or an out-of-range
    # number has no defined value on the node, so it is refused here.
    value = _field(method, obj, name, (int, float))
    if isinstance(value, float) or not _INT64_MIN <= value <= (1 << 64) - 1:
        raise ChainBadAnswer(method, f"{name!r} is not a 64-bit integer")
    return int(value)


def parse_rent_order(method: str, body: bytes, *, by_order: bool) -> RentOrder:
    """``renter``, ``rentEnd``, ``rentStatus`` (+ ``gpuNum``, ``gpuIndex`` by order id).

    ``HttpDBCChainClient.cpp:501-559``. ``gpuIndex`` stops at the first non-integer, as the
    node's loop does. The prune timer's ``request_cur_renter`` (``:253-272``) reads only the
    first two: use ``parse_renter`` for it.
    """
    result = _result(method, body)
    renter = str(_field(method, result, "renter", str))
    rent_end = _int64(method, result, "rentEnd")
    rent_status = str(_field(method, result, "rentStatus", str))
    if not by_order:
        return RentOrder(renter, rent_end, rent_status)
    gpu_num = _int64(method, result, "gpuNum")
    raw_index = _field(method, result, "gpuIndex", list)
    index: list[int] = []
    for item in raw_index:
        if isinstance(item, bool) or not isinstance(item, int):
            break
        index.append(item)
    return RentOrder(renter, rent_end, rent_status, gpu_num, tuple(index))


def parse_renter(method: str, body: bytes) -> tuple[str, int]:
    """``request_cur_renter`` (``:253-272``): renter and ``rentEnd`` only, status unread."""
    result = _result(method, body)
    renter = str(_field(method, result, "renter", str))
    return renter, _int64(method, result, "rentEnd")


def parse_committee_ops(method: str, body: bytes) -> CommitteeOps:
    """``result.verifyTime``: three integers (``:164-185``); ``[]``: not a verifier.

    The node answers "not in verify time" for any array that does not hold exactly three
    entries; here an empty one is that answer and any other size a ``ChainBadAnswer``.
    """
    result = _result(method, body)
    times = _field(method, result, "verifyTime", list)
    if not times:
        return CommitteeOps(())
    if len(times) != 3:
        raise ChainBadAnswer(method, "'verifyTime' does not have 3 entries")
    for item in times:
        if isinstance(item, bool) or not isinstance(item, int):
            raise ChainBadAnswer(method, "'verifyTime' holds a non-integer")
    return CommitteeOps(tuple(times))
