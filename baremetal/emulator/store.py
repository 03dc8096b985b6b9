"""The bare-metal node's persistent state: ``dat/node.dat`` and the server records.

- ``load_or_create_identity`` writes ``dat/node.dat`` on first start exactly as
  ``ConfManager::SerializeNodeInfo`` does (``node_id=`` and ``node_private_key=``
  lines) and refuses a file whose key does not derive to its id (``:327-331``).
- ``BareMetalStore`` is ``BareMetalNodeManager`` + ``bare_metal.db``: records keyed and
  sorted by node_id, kept in ``db/bare_metal.json`` (the node uses LevelDB), written
  atomically (tmp file, fsync, rename) after every change.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from baremetal import signing

__all__ = [
    "BareMetalInfo",
    "BareMetalRecord",
    "BareMetalStore",
    "atomic_write_json",
    "load_or_create_identity",
]

_LOGGER = logging.getLogger(__name__)


def atomic_write_json(path: Path, data: Any) -> None:
    """Write JSON to ``path`` via tmp + fsync + rename, readable by the owner only."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_or_create_identity(data_dir: Path) -> signing.NodeKeypair:
    """Return the manager identity from ``dat/node.dat``, creating the file if needed."""
    dat = data_dir / "dat" / "node.dat"
    if not dat.exists() or dat.stat().st_size == 0:
        dat.parent.mkdir(parents=True, exist_ok=True)
        pair = signing.new_node_keypair()
        fd = os.open(dat, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(f"node_id={pair.node_id}\nnode_private_key={pair.private_key}\n")
        _LOGGER.info("created %s for node %s", dat, pair.node_id)
    values: dict[str, str] = {}
    for line in dat.read_text(encoding="ascii").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    node_id = values.get("node_id", "")
    private_key = values.get("node_private_key", "")
    try:
        derived = signing.node_id_from_private_key(private_key)
    except signing.SigningError:
        derived = ""
    if not node_id or derived != node_id:
        raise SystemExit(f"{dat}: node_id error (key does not derive to node_id)")
    return signing.NodeKeypair(node_id=node_id, private_key=private_key)


@dataclass
class BareMetalInfo:
    """The fields of ``bare_metal_info`` an add or modify request carries."""

    uuid: str = ""
    ip: str = ""
    os: str = ""
    desc: str = ""
    ipmi_hostname: str = ""
    ipmi_username: str = ""
    ipmi_password: str = field(default="", repr=False)
    ipmi_port: int = 0

    def validate(self) -> bool:
        """Apply ``bare_metal_info::validate`` (``bare_metal_node_manager.h:17-28``)."""
        if not self.uuid or not all(c.isascii() and (c.isalnum() or c == "-") for c in self.uuid):
            return False
        required = (self.ip, self.ipmi_hostname, self.ipmi_username, self.ipmi_password)
        return all(required) and self.ipmi_port <= 65535


@dataclass
class BareMetalRecord:
    """One registered server (``db_bare_metal`` thrift struct)."""

    node_id: str
    node_private_key: str = field(repr=False)
    uuid: str = ""
    ip: str = ""
    os: str = ""
    desc: str = ""
    ipmi_hostname: str = ""
    ipmi_username: str = ""
    ipmi_password: str = field(default="", repr=False)
    ipmi_port: str = ""
    deeplink_device_id: str = ""
    deeplink_device_password: str = field(default="", repr=False)


class BareMetalStore:
    """Thread-safe registry of servers, persisted after every change."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / "db" / "bare_metal.json"
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._records: dict[str, BareMetalRecord] = {}
        if self._path.exists():
            raw = json.loads(self._path.read_text(encoding="utf-8", errors="surrogateescape"))
            self._records = {k: BareMetalRecord(**v) for k, v in raw.items()}
        self._announced: set[str] = set(self._records)

    def _save(self) -> bool:
        try:
            atomic_write_json(self._path, {k: asdict(v) for k, v in self._records.items()})
        except OSError as exc:
            _LOGGER.error("cannot write %s: %s", self._path, exc.strerror)
            return False
        return True

    def snapshot(self) -> dict[str, BareMetalRecord]:
        """Return copies of all records, sorted by node_id (the node's std::map order)."""
        with self._lock:
            return {k: replace(self._records[k]) for k in sorted(self._records)}

    def get(self, node_id: str) -> BareMetalRecord | None:
        """Return a copy of one record, or None."""
        with self._lock:
            record = self._records.get(node_id)
            return replace(record) if record else None

    def announced_ids(self) -> set[str]:
        """Return every id held since start, deleted ones included (the service list)."""
        with self._lock:
            return set(self._announced)

    def exist_uuid(self, uuid: str) -> bool:
        """Tell whether a server with this uuid is registered."""
        with self._lock:
            return any(r.uuid == uuid for r in self._records.values())

    def add(self, infos: dict[str, BareMetalInfo]) -> tuple[int, str, dict[str, str]]:
        """Register servers (``AddBareMetalNodes``): (errcode, message, uuid -> node_id)."""
        ids: dict[str, str] = {}
        with self._lock:
            for uuid in sorted(infos):
                info = infos[uuid]
                if not info.validate():
                    return 1, "invalid bare metal info", ids
                pair = signing.new_node_keypair()
                if pair.node_id in self._records:
                    return 1, "create node id for bare metal error", ids
                self._records[pair.node_id] = _record_from(pair, info)
                if not self._save():
                    del self._records[pair.node_id]
                    return 1, "write bare metal db error", ids
                ids[uuid] = pair.node_id
                self._announced.add(pair.node_id)
        return 0, "ok", ids

    def delete(self, ids: list[str]) -> tuple[int, str]:
        """Delete servers (``DeleteBareMetalNode``): (success count, message)."""
        if not ids:
            return -1, "ids is empty"
        succ, message = 0, "ids is empty"
        with self._lock:
            for node_id in ids:
                record = self._records.pop(node_id, None)
                if record is None:
                    message = f"bare metal node id {node_id} not existed"
                elif self._save():
                    succ += 1
                else:
                    self._records[node_id] = record
                    message = "delete bare metal node db failed"
        if succ > 0:
            return succ, f"{succ} were successfully deleted, {len(ids) - succ} failed"
        return -1, message

    def modify(self, node_id: str, info: BareMetalInfo) -> tuple[int, str]:
        """Modify one server (``ModifyBareMetalNode``); empty fields keep old values."""
        with self._lock:
            for other_id, other in self._records.items():
                if other_id != node_id and other.uuid == info.uuid:
                    return 1, f"bare metal node uuid {info.uuid} already existed"
            if node_id not in self._records:
                return 1, "node id not existed"
            old = self._records[node_id]
            new = _merged(old, info)
            self._records[node_id] = new
            if not self._save():
                self._records[node_id] = old
                return 1, "write bare metal db error"
        return 0, ""

    def set_deeplink(self, node_id: str, device_id: str, password: str) -> tuple[int, str]:
        """Store DeepLink info in the record (``SetDeepLinkInfo``, nodes < 0.4.1.7)."""
        with self._lock:
            record = self._records.get(node_id)
            if record is None:
                return 1, "node id not existed"
            old = replace(record)
            record.deeplink_device_id, record.deeplink_device_password = device_id, password
            if not self._save():
                self._records[node_id] = old
                return 1, "write bare metal db error"
        return 0, "ok"

    def clear_deeplink_password(self, node_id: str) -> None:
        """Clear the stored DeepLink password (``ClearDeepLinkPassword``).

        Reference: docs/protocol.md §7.4.
        """
        with self._lock:
            record = self._records.get(node_id)
            if record is None or not record.deeplink_device_password:
                return
            record.deeplink_device_password = ""
            self._save()


def _record_from(pair: signing.NodeKeypair, info: BareMetalInfo) -> BareMetalRecord:
    return BareMetalRecord(
        node_id=pair.node_id, node_private_key=pair.private_key, uuid=info.uuid, ip=info.ip,
        os=info.os, desc=info.desc, ipmi_hostname=info.ipmi_hostname,
        ipmi_username=info.ipmi_username, ipmi_password=info.ipmi_password,
        ipmi_port=str(info.ipmi_port) if 0 < info.ipmi_port <= 65535 else "",
    )


def _merged(old: BareMetalRecord, info: BareMetalInfo) -> BareMetalRecord:
    new = replace(old)
    for name in ("uuid", "ip", "os", "desc", "ipmi_hostname", "ipmi_username", "ipmi_password"):
        value = getattr(info, name)
        if value:
            setattr(new, name, value)
    if 0 < info.ipmi_port <= 65535:
        new.ipmi_port = str(info.ipmi_port)
    return new
