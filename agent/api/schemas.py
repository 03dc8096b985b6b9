"""Request and answer models of the JSON API (what /docs shows).

Times are Unix seconds (UTC, float). Secrets are write-only: IPMI passwords and staff
passwords appear in request models only (``SecretStr``, so a validation error or a repr
cannot echo them); no answer model has a field that could carry one.

Each answer shape is written once, here: a model's ``from_*`` class method builds it from
the store's records, and routes, the dashboard's JSON and the list's row cache
(``agent.api.rendering``) all serialise that model, so /docs and the wire cannot drift.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from agent.models import (
    EventPage,
    EventRecord,
    ReadingRecord,
    ServerIntent,
    ServerStatus,
    User,
    VerdictRecord,
)
from agent.monitor.dbc_text import dbc_failure_summary, ipmitool_lines
from agent.monitor.deeplink_status import STALE, DeepLinkView
from agent.monitor.rental_source import RentalView

if TYPE_CHECKING:
    from agent.app import ServerDetail

__all__ = [
    "ActionOut",
    "ActionsOut",
    "BootdevIn",
    "BootdevOneIn",
    "DbcPathOut",
    "DeepLinkListOut",
    "DeepLinkOut",
    "ErrorOut",
    "EventOut",
    "EventPageOut",
    "ImportOut",
    "IntentOut",
    "LoginIn",
    "LoginOut",
    "PasswordChangedOut",
    "PasswordIn",
    "PowerIn",
    "PowerOneIn",
    "ReadingOut",
    "RegisterOut",
    "RentalOut",
    "RowErrorOut",
    "ServerDetailOut",
    "ServerIn",
    "ServerListOut",
    "ServerOut",
    "ServerPatchIn",
    "TokenIn",
    "TokenInfoOut",
    "TokenOut",
    "UserIn",
    "UserOut",
    "UserPatchIn",
    "VerdictOut",
    "user_out",
]

PowerAction = Literal["on", "off", "soft", "reset"]
BootDevice = Literal["none", "pxe", "disk", "cdrom", "bios"]
RoleName = Literal["viewer", "operator", "admin"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    """Machine code and human message (in the request's language)."""

    code: str
    message: str


class ErrorOut(BaseModel):
    """Every failed request answers with this shape."""

    error: ErrorDetail


# -- auth ------------------------------------------------------------------------------

class LoginIn(_Strict):
    """A password login."""

    name: str = Field(min_length=1, max_length=64)
    password: SecretStr = Field(min_length=1, max_length=256)


class UserOut(BaseModel):
    """A staff account (never its password hash)."""

    name: str
    role: str
    disabled: bool
    created_at: float
    password_changed_at: float


class LoginOut(BaseModel):
    """The logged-in user and the CSRF token for the session cookie."""

    user: UserOut
    csrf_token: str | None = None
    expires_at: float | None = None


class TokenIn(_Strict):
    """Issue a bearer token for the CLI or a script: proves the password once."""

    name: str = Field(min_length=1, max_length=64)
    password: SecretStr = Field(min_length=1, max_length=256)
    label: str = Field(default="", max_length=64)
    ttl_s: int | None = Field(default=None, ge=0, le=10 * 365 * 86400)


class TokenInfoOut(BaseModel):
    """A token's metadata (the token itself is shown only once, when issued)."""

    id: int
    label: str
    created_at: float
    last_used_at: float | None
    expires_at: float | None


class TokenOut(TokenInfoOut):
    """A new bearer token: send it as ``Authorization: Bearer <token>``."""

    token: str


class PasswordIn(_Strict):
    """Change one's own password."""

    old_password: SecretStr = Field(min_length=1, max_length=256)
    new_password: SecretStr = Field(min_length=1, max_length=256)


class PasswordChangedOut(BaseModel):
    """A changed password: what it ended, and the caller's fresh browser session if any."""

    revoked_sessions: int = Field(description="sessions ended, the caller's old one included")
    revoked_tokens: int = Field(description="bearer tokens revoked (all of the user's)")
    csrf_token: str | None = Field(default=None,
                                   description="the new session's CSRF token (browser only)")
    expires_at: float | None = None


class UserIn(_Strict):
    """Create a staff user (admin)."""

    name: str = Field(min_length=1, max_length=32)
    password: SecretStr = Field(min_length=1, max_length=256)
    role: RoleName


class UserPatchIn(_Strict):
    """Change a user's role, password or disabled flag (admin)."""

    role: RoleName | None = None
    disabled: bool | None = None
    password: SecretStr | None = Field(default=None, min_length=1, max_length=256)


def user_out(user: User) -> UserOut:
    """Return the answer model of a user."""
    return UserOut(name=user.name, role=str(user.role), disabled=user.disabled,
                   created_at=user.created_at, password_changed_at=user.password_changed_at)


# -- servers ---------------------------------------------------------------------------

class VerdictOut(BaseModel):
    """A server's current verdict."""

    verdict: str
    reasons: list[str]
    since: float
    checked_at: float
    last_ok_at: float | None

    @classmethod
    def from_record(cls, record: VerdictRecord | None) -> VerdictOut | None:
        """Return the answer of a stored verdict (None for none yet)."""
        if record is None:
            return None
        return cls(verdict=str(record.verdict), reasons=list(record.reasons),
                   since=record.since, checked_at=record.checked_at,
                   last_ok_at=record.last_ok_at)


class ReadingOut(BaseModel):
    """One pass's observation of a server's BMC."""

    ts: float
    power: str | None
    boot_device: str | None
    boot_valid: bool | None
    boot_persistent: bool | None
    boot_uefi: bool | None
    dbc_path_ok: bool | None
    dbc_path_message: str
    dbc_power_status: str | None
    error_class: str | None
    error_detail: str
    latency_ms: float | None

    @classmethod
    def from_record(cls, reading: ReadingRecord) -> ReadingOut:
        """Return the answer of a stored reading."""
        return cls(ts=reading.ts, power=reading.power, boot_device=reading.boot_device,
                   boot_valid=reading.boot_valid, boot_persistent=reading.boot_persistent,
                   boot_uefi=reading.boot_uefi, dbc_path_ok=reading.dbc_path_ok,
                   dbc_path_message=reading.dbc_path_message,
                   dbc_power_status=reading.dbc_power_status,
                   error_class=reading.error_class, error_detail=reading.error_detail,
                   latency_ms=reading.latency_ms)


class RentalOut(BaseModel):
    """Whether DBC considers the server rented (the chain, else the rentals file).

    ``until``: when the rent ends (ISO-8601 UTC, estimated from the chain's blocks; null
    when unknown); ``stale``: the chain could not be asked, this is its last answer.
    """

    state: Literal["rented", "idle", "unknown"]
    until: str | None
    stale: bool

    @classmethod
    def from_view(cls, view: RentalView | None) -> RentalOut:
        """Return the answer of a rental view (unknown for none)."""
        view = view or RentalView()
        return cls(state=view.state, until=view.until_iso(),  # type: ignore[arg-type]
                   stale=view.stale)


class ServerOut(BaseModel):
    """A server with its verdict and newest reading (no secret: they are write-only)."""

    uuid: str
    ip: str
    os: str
    desc: str
    ipmi_host: str
    ipmi_port: int | None
    ipmi_user: str
    mac: str | None
    labels: dict[str, str]
    node_id: str | None
    has_node_key: bool
    state: str
    state_detail: str
    verdict: VerdictOut | None
    reading: ReadingOut | None
    rental: RentalOut

    @classmethod
    def from_status(cls, status: ServerStatus, rental: RentalView | None = None) -> ServerOut:
        """Return one list row: the server, its verdict, newest reading and rental state."""
        server, reading = status.server, status.reading
        return cls(uuid=server.uuid, ip=server.ip, os=server.os, desc=server.desc,
                   ipmi_host=server.ipmi_host, ipmi_port=server.ipmi_port,
                   ipmi_user=server.ipmi_user, mac=server.mac, labels=dict(server.labels),
                   node_id=server.node_id, has_node_key=server.has_node_key,
                   state=str(server.state), state_detail=server.state_detail,
                   verdict=VerdictOut.from_record(status.verdict),
                   reading=ReadingOut.from_record(reading) if reading is not None else None,
                   rental=RentalOut.from_view(rental))


class ServerListOut(BaseModel):
    """Servers matching the filters, by inventory order."""

    count: int
    items: list[ServerOut]


class IntentOut(BaseModel):
    """What staff last asked of the server."""

    power: str | None
    power_at: float | None
    boot_device: str | None
    boot_persistent: bool
    boot_uefi: bool
    boot_at: float | None
    actor: str

    @classmethod
    def from_intent(cls, intent: ServerIntent) -> IntentOut:
        """Return the answer of a stored staff intent."""
        return cls(power=intent.power, power_at=intent.power_at,
                   boot_device=intent.boot_device, boot_persistent=intent.boot_persistent,
                   boot_uefi=intent.boot_uefi, boot_at=intent.boot_at, actor=intent.actor)


class DeepLinkOut(BaseModel):
    """A server's DeepLink rotation status (the verification code is never shown)."""

    uuid: str
    ip: str
    node_id: str | None
    device_id: str | None
    last_rotated_at: float | None
    last_boot_seen_at: float | None
    last_result: str
    last_error: str
    freshness: Literal["fresh", "stale", "unknown"]
    duplicate_with: list[str]

    @classmethod
    def from_view(cls, view: DeepLinkView) -> DeepLinkOut:
        """Return the answer of one server's DeepLink view."""
        return cls(uuid=view.uuid, ip=view.ip, node_id=view.node_id, device_id=view.device_id,
                   last_rotated_at=view.last_rotated_at,
                   last_boot_seen_at=view.last_boot_seen_at, last_result=view.last_result,
                   last_error=view.last_error, freshness=view.freshness,  # type: ignore[arg-type]
                   duplicate_with=list(view.duplicate_with))


class DeepLinkListOut(BaseModel):
    """Every server's DeepLink status plus the duplicate device codes."""

    count: int
    stale: int
    duplicates: dict[str, list[str]]
    items: list[DeepLinkOut]

    @classmethod
    def from_views(cls, views: list[DeepLinkView]) -> DeepLinkListOut:
        """Return the list answer, with each duplicated device code's servers."""
        duplicates: dict[str, list[str]] = {}
        for view in views:
            if view.duplicate_with and view.device_id:
                duplicates.setdefault(view.device_id, []).append(view.uuid)
        return cls(count=len(views), stale=sum(v.freshness == STALE for v in views),
                   duplicates=duplicates, items=[DeepLinkOut.from_view(v) for v in views])


class DbcPathOut(BaseModel):
    """The newest DBC-path probe for people: the cause as a code and ipmitool's clean lines.

    ``summary``: ``None`` when the probe succeeded, else one of ``unsafe_value``, ``timeout``,
    ``auth``, ``no_lan_session``, ``other`` (agent/monitor/dbc_text.py).
    """

    ok: bool
    summary: str | None
    lines: list[str]

    @classmethod
    def from_reading(cls, reading: ReadingOut | None) -> DbcPathOut | None:
        """Return the probe's answer, or None when the newest reading has no probe."""
        if reading is None or reading.dbc_path_ok is None:
            return None
        message = reading.dbc_path_message
        return cls(ok=reading.dbc_path_ok, lines=ipmitool_lines(message),
                   summary=None if reading.dbc_path_ok else dbc_failure_summary(message))


class ServerDetailOut(ServerOut):
    """One server: the row, staff intent, reading history (newest first), DeepLink, DBC path."""

    intent: IntentOut
    history: list[ReadingOut]
    deeplink: DeepLinkOut
    dbc_path: DbcPathOut | None = None

    @classmethod
    def from_detail(cls, detail: ServerDetail,
                    rental: RentalView | None = None) -> ServerDetailOut:
        """Return one server's detail answer."""
        row = ServerOut.from_status(detail.status, rental)
        return cls(**dict(row), intent=IntentOut.from_intent(detail.intent),
                   history=[ReadingOut.from_record(r) for r in detail.history],
                   deeplink=DeepLinkOut.from_view(detail.deeplink),
                   dbc_path=DbcPathOut.from_reading(row.reading))


class ServerIn(_Strict):
    """One server to add (the node's field names, as in the CSV import)."""

    uuid: str
    ip: str
    ipmi_hostname: str
    ipmi_username: str
    ipmi_password: SecretStr
    ipmi_port: int | None = None
    os: str = ""
    desc: str = ""
    mac: str | None = None
    labels: dict[str, str] | str | None = None


class ServerPatchIn(_Strict):
    """Fields to change on a server; ``ipmi_password`` is write-only."""

    ip: str | None = None
    os: str | None = None
    desc: str | None = None
    ipmi_hostname: str | None = None
    ipmi_username: str | None = None
    ipmi_password: SecretStr | None = None
    ipmi_port: int | None = None
    mac: str | None = None
    labels: dict[str, str] | None = None


class RowErrorOut(BaseModel):
    """Why one import row was refused."""

    line: int
    field: str
    code: str
    detail: str
    uuid: str
    message: str


class ImportOut(BaseModel):
    """Per-row outcome of an import."""

    created: list[str]
    updated: list[str]
    unchanged: list[str]
    errors: list[RowErrorOut]
    queued: int | None = None
    dry_run: bool = False  # a preview: nothing was stored


class RegisterOut(BaseModel):
    """How many registrations were queued for the node."""

    queued: int


# -- actions ---------------------------------------------------------------------------

class _Selection(_Strict):
    uuids: list[str] = Field(default_factory=list, max_length=1000)
    label: str | None = Field(default=None, max_length=80, description='e.g. "zone=vip"')


class PowerIn(_Selection):
    """Power action over a selection (uuids and/or a label)."""

    action: PowerAction
    confirm_rented: bool = Field(default=False, description=(
        "off/soft/reset of a rented server: true once the staff member acknowledged that "
        "the renter loses the machine (else 409 seat_rented with the rent's end)"))


class PowerOneIn(_Strict):
    """Power action on one server."""

    action: PowerAction
    confirm_rented: bool = Field(default=False, description=(
        "off/soft/reset of a rented server: true once the staff member acknowledged that "
        "the renter loses the machine (else 409 seat_rented with the rent's end)"))


class BootdevOneIn(_Strict):
    """Boot device for one server (DBC's device names)."""

    device: BootDevice
    persistent: bool = False
    uefi: bool = False


class BootdevIn(_Selection):
    """Boot device over a selection."""

    device: BootDevice
    persistent: bool = False
    uefi: bool = False


class ActionOut(BaseModel):
    """One server's action result: ``verified`` once the read-back showed the new state."""

    uuid: str
    action: str
    ok: bool
    verified: bool
    code: str
    message: str
    reading: dict[str, Any] | None = None


class ActionsOut(BaseModel):
    """Per-server results of a batch action."""

    results: list[ActionOut]


# -- events ----------------------------------------------------------------------------

class EventOut(BaseModel):
    """One entry of the append-only event log."""

    id: int
    ts: float
    actor: str
    kind: str
    action: str
    server_uuid: str | None
    result: str
    verified: bool | None
    detail: dict[str, Any]

    @classmethod
    def from_record(cls, event: EventRecord) -> EventOut:
        """Return the answer of a stored event."""
        return cls(id=event.id, ts=event.ts, actor=event.actor, kind=str(event.kind),
                   action=event.action, server_uuid=event.server_uuid, result=event.result,
                   verified=event.verified, detail=dict(event.detail))


class EventPageOut(BaseModel):
    """A page of events, newest first; pass ``before_id=next_before_id`` for the next."""

    items: list[EventOut]
    next_before_id: int | None

    @classmethod
    def from_page(cls, page: EventPage) -> EventPageOut:
        """Return the answer of a page of stored events."""
        return cls(items=[EventOut.from_record(e) for e in page.items],
                   next_before_id=page.next_before_id)
