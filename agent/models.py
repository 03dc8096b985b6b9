"""Dataclasses and enums shared by the agent: what the store returns and takes. No I/O.

Enums (``StrEnum``: the value is what the store and the API carry):
``Role`` (viewer < operator < admin, ``Role.allows``), ``RegistrationState``,
``EventKind``, ``OutboxState``, ``PowerState``, and ``Verdict`` (re-exported from
``agent.monitor.crosscheck`` so there is one definition).

Records (frozen; timestamps are Unix epoch seconds as float, UTC):
``Server``, ``ServerCredentials`` (secrets as ``Secret``), ``UpsertResult``,
``ReadingRecord``, ``CheckResult``, ``VerdictRecord``, ``VerdictChange``,
``ServerIntent``, ``ServerStatus``, ``EventRecord``, ``EventPage``, ``OutboxItem``, ``User``,
``ApiToken``, ``WebSession``, ``DeepLinkStatus``.

Event actors: a staff user's name, or ``ACTOR_SYSTEM``/``ACTOR_MONITOR``/``ACTOR_REGISTRY``/
``ACTOR_HOOK`` (``@``-prefixed, so never a user name).

Secrets never appear in a repr: sealed columns are not part of ``Server`` at all and the
opened ones in ``ServerCredentials`` are ``Secret`` objects that print as ``******``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from agent.monitor.crosscheck import Verdict
from agent.secrets import Secret

__all__ = [
    "ACTOR_ANONYMOUS",
    "ACTOR_HOOK",
    "ACTOR_MONITOR",
    "ACTOR_REGISTRY",
    "ACTOR_SYSTEM",
    "ApiToken",
    "CheckResult",
    "DeepLinkPin",
    "DeepLinkStatus",
    "EventKind",
    "EventPage",
    "EventRecord",
    "OutboxItem",
    "OutboxState",
    "PowerSettings",
    "PowerState",
    "ReadingRecord",
    "RegistrationState",
    "Role",
    "SeatKey",
    "SeatState",
    "Server",
    "ServerCredentials",
    "ServerIntent",
    "ServerStatus",
    "UpsertResult",
    "User",
    "Verdict",
    "VerdictChange",
    "VerdictRecord",
    "WebSession",
]

# Event actors that are not staff; staff actors are user names, which cannot start with "@".
ACTOR_SYSTEM = "@system"
ACTOR_MONITOR = "@monitor"
ACTOR_REGISTRY = "@registry"
ACTOR_HOOK = "@hook"
ACTOR_ANONYMOUS = "@anonymous"  # a failed login under a name that does not exist

_ROLE_RANK = {"viewer": 0, "operator": 1, "admin": 2}


class Role(StrEnum):
    """Staff roles: viewers read, operators act on servers, admins manage users and config."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        """Tell whether this role is at least ``needed``."""
        return _ROLE_RANK[self.value] >= _ROLE_RANK[needed.value]


class RegistrationState(StrEnum):
    """Where a server stands with the DBC node (the registry moves it along)."""

    PENDING = "pending"          # in the inventory, bare_metal/add queued
    REGISTERED = "registered"    # node_id known, node and inventory agree
    UPDATING = "updating"        # bare_metal/modify queued
    DELETING = "deleting"        # bare_metal/delete queued; row removed once done
    FAILED = "failed"            # the node refused for good; state_detail says why


class EventKind(StrEnum):
    """Families of events in the append-only log."""

    AUDIT = "audit"          # staff actions: power, bootdev, import, users (never pruned)
    VERDICT = "verdict"      # a server's verdict changed
    REGISTRY = "registry"    # outbox results, drift found
    AUTH = "auth"            # logins, lockouts
    DEEPLINK = "deeplink"    # hook rotations, stale or duplicate device codes
    SYSTEM = "system"        # start, stop, pass overruns, store problems


class OutboxState(StrEnum):
    """Life of an outbox item: pending -> claimed -> done, or back to pending, or dead."""

    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    DEAD = "dead"            # failed permanently; kept for staff to see


class PowerState(StrEnum):
    """Chassis power as the agent names it."""

    ON = "on"
    OFF = "off"


@dataclass(frozen=True)
class PowerSettings:
    """One seat's power path and its non-secret settings (the inventory's power fields).

    ``path``: ``ipmi`` (default), ``redfish`` or ``http``. A Redfish seat logs in with the
    server's ``ipmi_*`` account at ``redfish_url`` (None: ``https://<ipmi_host>``), verifying
    TLS unless ``tls_verify`` is False. A plug seat (``http``) has ``plug_preset``,
    ``plug_url``, ``plug_username``, ``plug_id`` and, for the ``template`` preset,
    ``plug_template`` (its URLs and status rule); its password is sealed, so it is only in
    ``ServerCredentials.plug_password``. ``has_plug_password`` says whether one is stored.
    """

    path: str = "ipmi"
    redfish_url: str | None = None
    tls_verify: bool = True
    plug_preset: str | None = None
    plug_url: str | None = None
    plug_username: str | None = None
    plug_id: str | None = None
    plug_template: Mapping[str, Any] | None = None
    has_plug_password: bool = False


@dataclass(frozen=True)
class Server:
    """One GPU server of the inventory (no secrets here)."""

    id: int
    uuid: str
    ip: str
    ipmi_host: str
    ipmi_user: str
    ipmi_port: int | None = None
    os: str = ""
    desc: str = ""
    mac: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    node_id: str | None = None
    has_node_key: bool = False
    state: RegistrationState = RegistrationState.PENDING
    state_detail: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    power: PowerSettings = field(default_factory=lambda: PowerSettings())

    @property
    def power_path(self) -> str:
        """How the agent reaches this seat: ``ipmi``, ``redfish`` or ``http``."""
        return self.power.path


@dataclass(frozen=True)
class ServerCredentials:
    """What talking to one server's BMC or signing as the server needs; secrets opened."""

    server_id: int
    uuid: str
    ipmi_host: str
    ipmi_port: int | None
    ipmi_user: str
    ipmi_password: Secret
    node_id: str | None = None
    node_private_key: Secret | None = None
    power: PowerSettings = field(default_factory=lambda: PowerSettings())
    plug_password: Secret | None = None

    @property
    def power_path(self) -> str:
        """How the agent reaches this seat: ``ipmi``, ``redfish`` or ``http``."""
        return self.power.path


@dataclass(frozen=True)
class UpsertResult:
    """Outcome of an idempotent import of one server."""

    server: Server
    created: bool
    changed: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ReadingRecord:
    """One pass's observation of one server (``id`` is None until stored)."""

    server_id: int
    ts: float
    power: str | None = None
    boot_device: str | None = None
    boot_valid: bool | None = None
    boot_persistent: bool | None = None
    boot_uefi: bool | None = None
    dbc_path_ok: bool | None = None
    dbc_path_message: str = ""
    dbc_power_status: str | None = None
    error_class: str | None = None
    error_detail: str = ""
    latency_ms: float | None = None
    path: str | None = None  # the power path that produced the reading (None: before v3)
    watts: float | None = None  # what a plug measured
    id: int | None = None


@dataclass(frozen=True)
class CheckResult:
    """A reading plus the verdict the cross-check gave it: what the monitor stores per pass."""

    reading: ReadingRecord
    verdict: Verdict
    reasons: tuple[str, ...] = ()
    discrepant_passes: int = 0


@dataclass(frozen=True)
class VerdictRecord:
    """A server's current verdict; ``since`` is when it last changed."""

    server_id: int
    verdict: Verdict
    reasons: tuple[str, ...]
    discrepant_passes: int
    since: float
    checked_at: float
    last_ok_at: float | None = None


@dataclass(frozen=True)
class VerdictChange:
    """The verdict before and after storing one check; ``changed`` drives events."""

    server_id: int
    uuid: str
    previous: Verdict | None
    current: VerdictRecord

    @property
    def changed(self) -> bool:
        """True when the verdict differs from the stored one (or there was none)."""
        return self.previous != self.current.verdict


@dataclass(frozen=True)
class ServerStatus:
    """A server with its current verdict and newest reading (the dashboard's row)."""

    server: Server
    verdict: VerdictRecord | None = None
    reading: ReadingRecord | None = None


@dataclass(frozen=True)
class ServerIntent:
    """What staff last asked of a server (the cross-check's expectation)."""

    server_id: int
    power: str | None = None
    power_at: float | None = None
    boot_device: str | None = None
    boot_persistent: bool = False
    boot_uefi: bool = False
    boot_at: float | None = None
    actor: str = ""


@dataclass(frozen=True)
class EventRecord:
    """One entry of the append-only event log."""

    id: int
    ts: float
    actor: str
    kind: EventKind
    action: str = ""
    server_uuid: str | None = None
    result: str = ""
    verified: bool | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EventPage:
    """A page of events, newest first; pass ``next_before_id`` to get the next page."""

    items: tuple[EventRecord, ...]
    next_before_id: int | None


@dataclass(frozen=True)
class OutboxItem:
    """Work for the DBC node that must happen exactly once in effect."""

    id: int
    op: str
    payload: Mapping[str, Any]
    state: OutboxState
    attempts: int
    next_attempt_at: float
    key: str | None = None
    last_error: str = ""
    claim_token: str | None = None
    claimed_until: float | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(frozen=True)
class User:
    """A staff account (the password hash is never part of it)."""

    id: int
    name: str
    role: Role
    disabled: bool = False
    created_at: float = 0.0
    updated_at: float = 0.0
    password_changed_at: float = 0.0


@dataclass(frozen=True)
class ApiToken:
    """A bearer token's metadata (the token itself is shown once, at issue)."""

    id: int
    user_id: int
    selector: str
    label: str = ""
    created_at: float = 0.0
    last_used_at: float | None = None
    expires_at: float | None = None


@dataclass(frozen=True)
class WebSession:
    """A browser session's metadata; ``csrf_token`` goes into every form and XHR header."""

    id: int
    user_id: int
    selector: str
    csrf_token: str = field(repr=False)
    created_at: float = 0.0
    last_seen_at: float = 0.0
    expires_at: float = 0.0


@dataclass(frozen=True)
class DeepLinkStatus:
    """What the agent knows about one server's DeepLink credential rotation."""

    server_id: int
    uuid: str
    device_id: str | None = None
    last_rotated_at: float | None = None
    last_boot_seen_at: float | None = None
    last_result: str = ""
    last_error: str = ""
    updated_at: float = 0.0


class SeatState(StrEnum):
    """A seat key's life: enrolled (pending), then approved or rejected by staff."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True)
class SeatKey:
    """One GPU PC's own ed25519 public key (hex; not a secret) bound to a server."""

    id: int
    server_id: int
    uuid: str
    public_key: str
    state: SeatState
    created_ip: str = ""
    created_at: float = 0.0
    decided_by: str | None = None
    decided_at: float | None = None

    @property
    def fingerprint(self) -> str:
        """Short SHA-256 of the key, as bm-hook prints it (``ab12cd34ef56ab78``)."""
        return hashlib.sha256(bytes.fromhex(self.public_key)).hexdigest()[:16]


@dataclass(frozen=True)
class DeepLinkPin:
    """The DeepLink device_id pinned for a server, and a change waiting for staff approval."""

    server_id: int
    device_id: str
    pinned_at: float
    pinned_by: str
    pending_device_id: str | None = None
    pending_at: float | None = None
