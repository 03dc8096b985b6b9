"""Servers (inventory, registration state, sealed secrets) and staff intents.

``ServerRepo`` is the only place that seals and unseals server secrets; ``Server`` carries
none, ``ServerCredentials`` carries them as ``Secret``.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

from agent.errors import AlreadyExists, SecretsError, ServerNotFound, ValidationError
from agent.labels import LABEL_KEY, matches
from agent.models import (
    PowerSettings,
    RegistrationState,
    Server,
    ServerCredentials,
    ServerIntent,
    UpsertResult,
)
from agent.secrets import Sealer, Secret
from agent.store._base import UNSET, Repo, RowLike, Unset, dump_json, load_json
from agent.store._db import Database

__all__ = ["IntentRepo", "ServerRepo", "power_from_row", "server_from_row"]

_PLAIN_FIELDS = ("ip", "os", "desc", "ipmi_host", "ipmi_port", "ipmi_user", "mac", "labels")
_COLUMN = {"desc": "description"}
_SELECT = "SELECT * FROM servers"
# PowerSettings field -> servers column (plug_template is JSON, tls_verify 0/1).
_POWER_COLUMNS = {"path": "power_path", "redfish_url": "redfish_url", "tls_verify": "tls_verify",
                  "plug_preset": "plug_preset", "plug_url": "plug_url",
                  "plug_username": "plug_username", "plug_id": "plug_id",
                  "plug_template": "plug_template"}


def power_from_row(row: RowLike) -> PowerSettings:
    """Build a seat's PowerSettings from a ``servers`` row (its password stays sealed)."""
    template = row["plug_template"]
    return PowerSettings(
        path=row["power_path"], redfish_url=row["redfish_url"],
        tls_verify=bool(row["tls_verify"]), plug_preset=row["plug_preset"],
        plug_url=row["plug_url"], plug_username=row["plug_username"], plug_id=row["plug_id"],
        plug_template=None if template is None else load_json(template),
        has_plug_password=row["plug_password_sealed"] is not None)


def _power_values(power: PowerSettings) -> list[Any]:
    """Return the ``_POWER_COLUMNS`` values of ``power``, in order, ready for SQL."""
    values: list[Any] = []
    for name in _POWER_COLUMNS:
        value = getattr(power, name)
        if name == "plug_template" and value is not None:
            value = dump_json(dict(value), field="plug_template")
        elif name == "tls_verify":
            value = int(value)
        values.append(value)
    return values


def _same_power(a: PowerSettings, b: PowerSettings) -> bool:
    return dataclasses.replace(a, has_plug_password=False) == \
        dataclasses.replace(b, has_plug_password=False)


def server_from_row(row: RowLike) -> Server:
    """Build a Server from a ``servers`` row (sealed columns stay behind)."""
    return Server(
        id=row["id"], uuid=row["uuid"], ip=row["ip"], ipmi_host=row["ipmi_host"],
        ipmi_user=row["ipmi_user"], ipmi_port=row["ipmi_port"], os=row["os"],
        desc=row["description"], mac=row["mac"], labels=load_json(row["labels"]),
        node_id=row["node_id"], has_node_key=row["node_private_key_sealed"] is not None,
        state=RegistrationState(row["state"]), state_detail=row["state_detail"],
        created_at=row["created_at"], updated_at=row["updated_at"], power=power_from_row(row),
    )


class ServerRepo(Repo):
    """CRUD for servers; secrets sealed on the way in and opened on the way out."""

    def __init__(self, db: Database, clock: Callable[[], float], sealer: Sealer | None) -> None:
        super().__init__(db, clock)
        self._sealer = sealer

    def _need_sealer(self) -> Sealer:
        if self._sealer is None:
            raise SecretsError("this store was opened without the secrets key")
        return self._sealer

    def _seal(self, value: Secret) -> str:
        return self._need_sealer().seal(value)

    def _unseal(self, sealed: str) -> Secret:
        return self._need_sealer().unseal(sealed)

    def verify_sealer(self) -> int:
        """Open every sealed value (e.g. after a restore); return the count, or raise."""
        with self._db.read() as conn:
            rows = conn.execute("SELECT ipmi_password_sealed, node_private_key_sealed,"
                                " plug_password_sealed FROM servers").fetchall()
        sealed = [value for row in rows for value in row if value is not None]
        for value in sealed:
            self._unseal(value)
        return len(sealed)

    def add(self, *, uuid: str, ip: str, ipmi_host: str, ipmi_user: str, ipmi_password: Secret,
            ipmi_port: int | None = None, os: str = "", desc: str = "", mac: str | None = None,
            labels: Mapping[str, str] | None = None, power: PowerSettings | None = None,
            plug_password: Secret | None = None) -> Server:
        """Insert a new server in state pending; raise AlreadyExists if the uuid is taken."""
        now = self._clock()
        power_columns = ", ".join(_POWER_COLUMNS.values())
        marks = ", ".join(["?"] * (len(_POWER_COLUMNS) + 13))
        with self._db.write() as conn:
            if conn.execute("SELECT 1 FROM servers WHERE uuid = ?", (uuid,)).fetchone():
                raise AlreadyExists(uuid, kind="server")
            cursor = conn.execute(
                "INSERT INTO servers (uuid, ip, os, description, ipmi_host, ipmi_port, ipmi_user,"  # noqa: S608 - column names are fixed
                f" ipmi_password_sealed, mac, labels, created_at, updated_at,"
                f" plug_password_sealed, {power_columns}) VALUES ({marks})",
                (uuid, ip, os, desc, ipmi_host, ipmi_port, ipmi_user, self._seal(ipmi_password),
                 mac, dump_json(dict(labels or {}), field="labels"), now, now,
                 None if plug_password is None else self._seal(plug_password),
                 *_power_values(power or PowerSettings())))
            return self._get(conn, "id", cursor.lastrowid)

    def upsert(self, *, uuid: str, ip: str, ipmi_host: str, ipmi_user: str,
               ipmi_password: Secret, ipmi_port: int | None = None, os: str = "",
               desc: str = "", mac: str | None = None,
               labels: Mapping[str, str] | None = None, power: PowerSettings | None = None,
               plug_password: Secret | None = None) -> UpsertResult:
        """Import idempotently: insert, or update what differs; report the changed fields.

        The power settings count as one field, ``power``; the plug password as
        ``plug_password`` (an import without one clears a stored one).
        """
        fields: dict[str, Any] = {"ip": ip, "os": os, "desc": desc, "ipmi_host": ipmi_host,
                                  "ipmi_port": ipmi_port, "ipmi_user": ipmi_user, "mac": mac,
                                  "labels": dict(labels or {})}
        power = power or PowerSettings()
        with self._db.write() as conn:
            row = conn.execute("SELECT * FROM servers WHERE uuid = ?", (uuid,)).fetchone()
            if row is None:
                server = self.add(uuid=uuid, ipmi_password=ipmi_password, power=power,
                                  plug_password=plug_password, **fields)
                return UpsertResult(server=server, created=True)
            current = server_from_row(row)
            changed = {n for n, v in fields.items() if getattr(current, n) != v}
            changed |= self._secret_changes(row, ipmi_password, plug_password)
            if not _same_power(current.power, power):
                changed.add("power")
            if not changed:
                return UpsertResult(server=current, created=False)
            updates = {n: fields[n] for n in changed if n in fields}
            server = self.update(
                server_id=current.id,
                ipmi_password=ipmi_password if "ipmi_password" in changed else UNSET,
                plug_password=plug_password if "plug_password" in changed else UNSET,
                power=power if "power" in changed else UNSET, **updates)
            return UpsertResult(server=server, created=False, changed=frozenset(changed))

    def _secret_changes(self, row: sqlite3.Row, ipmi_password: Secret,
                        plug_password: Secret | None) -> set[str]:
        changed = set()
        if self._unseal(row["ipmi_password_sealed"]) != ipmi_password:
            changed.add("ipmi_password")
        sealed_plug = row["plug_password_sealed"]
        stored_plug = None if sealed_plug is None else self._unseal(sealed_plug)
        if stored_plug != plug_password:
            changed.add("plug_password")
        return changed

    def update(self, *, server_id: int, ipmi_password: Secret | Unset = UNSET,
               power: PowerSettings | Unset = UNSET,
               plug_password: Secret | Unset | None = UNSET, **fields: Any) -> Server:
        """Change inventory fields, the power settings or the plug password.

        Fields: ip, os, desc, ipmi_host, ipmi_port, ipmi_user, mac, labels. ``power``
        replaces all power settings at once; ``plug_password=None`` clears it.
        """
        unknown = set(fields) - set(_PLAIN_FIELDS)
        if unknown:
            raise ValidationError(field=sorted(unknown)[0], reason="not an updatable field")
        sets = [f"{_COLUMN.get(name, name)} = ?" for name in fields]
        params = [dump_json(dict(v), field="labels") if n == "labels" else v
                  for n, v in fields.items()]
        if not isinstance(ipmi_password, Unset):
            sets.append("ipmi_password_sealed = ?")
            params.append(self._seal(ipmi_password))
        if not isinstance(plug_password, Unset):
            sets.append("plug_password_sealed = ?")
            params.append(None if plug_password is None else self._seal(plug_password))
        if not isinstance(power, Unset):
            sets += [f"{column} = ?" for column in _POWER_COLUMNS.values()]
            params += _power_values(power)
        return self._update(server_id, sets, params)

    def set_registration(self, *, server_id: int, state: RegistrationState, detail: str = "",
                         node_id: str | Unset | None = UNSET,
                         node_private_key: Secret | Unset | None = UNSET) -> Server:
        """Move a server's registration state; optionally store its node_id and sealed key."""
        sets = ["state = ?", "state_detail = ?"]
        params: list[Any] = [str(state), detail[:500]]
        if not isinstance(node_id, Unset):
            sets.append("node_id = ?")
            params.append(node_id)
        if not isinstance(node_private_key, Unset):
            sets.append("node_private_key_sealed = ?")
            params.append(None if node_private_key is None else self._seal(node_private_key))
        return self._update(server_id, sets, params)

    def _update(self, server_id: int, sets: list[str], params: list[Any]) -> Server:
        with self._db.write() as conn:
            if sets:
                sql = f"UPDATE servers SET {', '.join(sets)}, updated_at = ? WHERE id = ?"  # noqa: S608 - column names are fixed
                if conn.execute(sql, (*params, self._clock(), server_id)).rowcount == 0:
                    raise ServerNotFound(str(server_id))
            return self._get(conn, "id", server_id)

    def _get(self, conn: sqlite3.Connection, column: str, value: Any) -> Server:
        row = conn.execute(f"{_SELECT} WHERE {column} = ?", (value,)).fetchone()
        if row is None:
            raise ServerNotFound(str(value))
        return server_from_row(row)

    def get(self, *, server_id: int) -> Server:
        """Return one server by id."""
        with self._db.read() as conn:
            return self._get(conn, "id", server_id)

    def get_by_uuid(self, *, uuid: str) -> Server:
        """Return one server by uuid."""
        with self._db.read() as conn:
            return self._get(conn, "uuid", uuid)

    def get_by_node_id(self, *, node_id: str) -> Server:
        """Return one server by its DBC node_id."""
        with self._db.read() as conn:
            return self._get(conn, "node_id", node_id)

    def find_by_ip(self, *, ip: str) -> list[Server]:
        """Return the servers registered with this IP (the hook relay's source check)."""
        with self._db.read() as conn:
            rows = conn.execute(f"{_SELECT} WHERE ip = ? ORDER BY id", (ip,)).fetchall()
        return [server_from_row(r) for r in rows]

    def find(self, *, state: RegistrationState | None = None,
             labels: Mapping[str, str] | None = None) -> list[Server]:
        """Return servers by id, optionally only one state and only carrying every label.

        Labels match as ``agent.labels.matches`` says (case ignored in keys and values); a key
        that no label can have is a ValidationError.
        """
        for key in labels or {}:
            if not LABEL_KEY.fullmatch(key):
                raise ValidationError(field="labels", reason=f"bad label key {key[:40]!r}")
        clauses, params = ["1"], []
        if state is not None:
            clauses.append("state = ?")
            params.append(str(state))
        with self._db.read() as conn:
            rows = conn.execute(f"{_SELECT} WHERE {' AND '.join(clauses)} ORDER BY id",
                                params).fetchall()
        servers = [server_from_row(r) for r in rows]
        return [s for s in servers if matches(s.labels, labels)] if labels else servers

    def count(self) -> int:
        """Count the servers."""
        with self._db.read() as conn:
            return int(conn.execute("SELECT count(*) FROM servers").fetchone()[0])

    def credentials(self, *, server_id: int) -> ServerCredentials:
        """Return one server's BMC login and node key, unsealed."""
        with self._db.read() as conn:
            row = conn.execute(f"{_SELECT} WHERE id = ?", (server_id,)).fetchone()
        if row is None:
            raise ServerNotFound(str(server_id))
        return self._credentials(row)

    def all_credentials(self) -> list[ServerCredentials]:
        """Return every server's credentials (what one monitor pass needs), by id."""
        with self._db.read() as conn:
            rows = conn.execute(f"{_SELECT} ORDER BY id").fetchall()
        return [self._credentials(r) for r in rows]

    def _credentials(self, row: sqlite3.Row) -> ServerCredentials:
        sealed_key = row["node_private_key_sealed"]
        sealed_plug = row["plug_password_sealed"]
        return ServerCredentials(
            server_id=row["id"], uuid=row["uuid"], ipmi_host=row["ipmi_host"],
            ipmi_port=row["ipmi_port"], ipmi_user=row["ipmi_user"],
            ipmi_password=self._unseal(row["ipmi_password_sealed"]), node_id=row["node_id"],
            node_private_key=None if sealed_key is None else self._unseal(sealed_key),
            power=power_from_row(row),
            plug_password=None if sealed_plug is None else self._unseal(sealed_plug))

    def remove(self, *, server_id: int) -> None:
        """Delete a server with its readings, verdict, intent and DeepLink status."""
        with self._db.write() as conn:
            if conn.execute("DELETE FROM servers WHERE id = ?", (server_id,)).rowcount == 0:
                raise ServerNotFound(str(server_id))


def _intent(server_id: int, row: sqlite3.Row | None) -> ServerIntent:
    if row is None:
        return ServerIntent(server_id=server_id)
    return ServerIntent(
        server_id=server_id, power=row["power"], power_at=row["power_at"],
        boot_device=row["boot_device"], boot_persistent=bool(row["boot_persistent"]),
        boot_uefi=bool(row["boot_uefi"]), boot_at=row["boot_at"], actor=row["actor"])


class IntentRepo(Repo):
    """What staff last asked each server to be (the cross-check's expectation)."""

    def set_power(self, *, server_id: int, power: str, actor: str) -> ServerIntent:
        """Record a requested power state (on/off) now."""
        return self._upsert(server_id, actor, power=power, power_at=self._clock())

    def set_boot(self, *, server_id: int, device: str, persistent: bool, uefi: bool,
                 actor: str) -> ServerIntent:
        """Record a requested boot device now."""
        return self._upsert(server_id, actor, boot_device=device, boot_persistent=int(persistent),
                            boot_uefi=int(uefi), boot_at=self._clock())

    def _upsert(self, server_id: int, actor: str, **values: Any) -> ServerIntent:
        columns = ", ".join(values)
        updates = ", ".join(f"{c} = excluded.{c}" for c in values)
        with self._db.write() as conn:
            if conn.execute("SELECT 1 FROM servers WHERE id = ?", (server_id,)).fetchone() is None:
                raise ServerNotFound(str(server_id))
            conn.execute(
                f"INSERT INTO server_intents (server_id, actor, {columns})"  # noqa: S608
                f" VALUES (?, ?, {', '.join(['?'] * len(values))})"
                f" ON CONFLICT (server_id) DO UPDATE SET actor = excluded.actor, {updates}",
                (server_id, actor, *values.values()))
            row = conn.execute("SELECT * FROM server_intents WHERE server_id = ?",
                               (server_id,)).fetchone()
        return _intent(server_id, row)

    def get(self, *, server_id: int) -> ServerIntent:
        """Return the server's intent (empty when staff never acted on it)."""
        with self._db.read() as conn:
            row = conn.execute("SELECT * FROM server_intents WHERE server_id = ?",
                               (server_id,)).fetchone()
        return _intent(server_id, row)

    def all(self) -> dict[int, ServerIntent]:
        """Return every recorded intent by server id."""
        with self._db.read() as conn:
            rows = conn.execute("SELECT * FROM server_intents").fetchall()
        return {r["server_id"]: _intent(r["server_id"], r) for r in rows}
