"""Typed errors of the bm-agent; every class has a stable ``code`` used as its i18n key.

The tree (``code``, and the HTTP status the API answers with: the API layer maps it, one
table in ``agent/api/errors.py``, as ``agent/cli/context.py`` maps exit codes)::

    AgentError                    agent_error             500
    ├── ConfigError               config_invalid          500  bad key in a config file / env
    │   ├── NodeDatError          node_dat_invalid        500  node.dat unreadable/inconsistent
    │   └── TlsConfigError        tls_config_invalid      500  [api] tls_cert/tls_key unusable
    ├── StoreError                store_error             500  the SQLite store failed
    │   ├── StoreFull             store_full              507  disk (or max_page_count) is full
    │   ├── StoreTooNew           store_too_new           500  schema newer than this code: refuse
    │   ├── StoreCorrupt          store_corrupt           500  not a database / malformed image
    │   ├── StoreBusy             store_busy              503  locked beyond busy_timeout
    │   └── StoreIntegrityError   store_integrity         500  a constraint the caller did not map
    ├── SecretsError              secrets_error           500
    │   ├── KeyFileMissing        secrets_key_missing     500
    │   ├── KeyFileInsecure       secrets_key_insecure    500  group/world-readable key file
    │   └── UnsealFailed          secrets_unseal_failed   500  unknown key id, tampered, wrong key
    ├── NotFound                  not_found               404
    │   ├── ServerNotFound        server_not_found        404
    │   ├── UserNotFound          user_not_found          404
    │   └── OutboxItemNotFound    outbox_item_not_found   404
    ├── Conflict                  conflict                409
    │   ├── AlreadyExists         already_exists          409
    │   ├── ActionInProgress      action_in_progress      409  per-server lock is held
    │   ├── SeatRented            seat_rented             409  off/soft/reset of a rented server
    │   │                                                      without confirm_rented
    │   └── LeaseLost             outbox_lease_lost       409  outbox item re-claimed by another
    ├── PermissionDenied          permission_denied       403  role too low
    │   └── CsrfFailed            csrf_failed             403
    ├── AuthFailed                auth_failed             401  bad credentials/token/session
    ├── RateLimited               rate_limited            429  carries retry_after_s
    │   └── LoginBusy             login_busy              429  every password-hash slot in use
    ├── ValidationError           validation_error        422  carries field and reason
    │   ├── UnsafeNodeValue       unsafe_node_value       422  stored IPMI field unsafe on the
    │   │                                                      node's shell line (never sent)
    │   ├── TokenTtlTooLong       token_ttl_too_long      422  ttl_s over the role's cap
    │   ├── UnsafeText            unsafe_text             422  control/bidi characters
    │   └── UnknownActionFamily   unknown_action_family   400  event filter: no such action
    ├── HookAuthError             hook_auth_failed        401  boot-hook request refused
    │   ├── BadSignature          bad_signature           403  (codes and statuses as pinned
    │   ├── StaleRequest          stale_timestamp         401   by tests/contract/
    │   ├── ReplayedRequest       replayed                409   hook_relay.json)
    │   └── WrongSourceIp         forbidden_source        403
    ├── HookRefused               hook_refused            (its own ``status``) an error answer of
    │                                                      the relay contract: each instance has
    │                                                      the contract's status and ``code``
    │                                                      (relay.HookRefusal, hook_gate.HookBusy)
    ├── RegistryError             registry_error          502  (room for registry leaves)
    └── MonitorError              monitor_error           500  (room for monitor leaves)

Shape: the English message template is on the class (``template``, ``str.format`` with
the instance's ``params``: the attributes named in ``fields``); ``agent/locales/*.json``
hold the same key with the same placeholders (a test checks it). Messages and params never
carry secrets; AuthFailed keeps its ``reason`` for logs only, never in what a client sees.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ActionInProgress", "AgentError", "AlreadyExists", "AuthFailed", "BadSignature",
    "ConfigError", "Conflict", "CsrfFailed", "DeviceIdNotPending", "HookAuthError", "HookRefused",
    "KeyFileInsecure", "KeyFileMissing", "LeaseLost", "LoginBusy", "MonitorError",
    "NodeDatError", "NotFound",
    "OutboxItemNotFound", "PermissionDenied", "RateLimited", "RegistryError",
    "ReplayedRequest", "SeatAmbiguous", "SeatNotPending", "SeatRented", "SecretsError",
    "ServerNotFound",
    "StaleRequest", "StoreBusy",
    "StoreCorrupt", "StoreError", "StoreFull", "StoreIntegrityError", "StoreTooNew",
    "TlsConfigError", "TokenTtlTooLong", "UnknownActionFamily", "UnsafeNodeValue", "UnsafeText",
    "UnsealFailed",
    "UserNotFound", "ValidationError", "WrongSourceIp", "all_error_classes",
]


class AgentError(Exception):
    """Root of every error the agent raises on purpose."""

    code: ClassVar[str] = "agent_error"
    template: ClassVar[str] = "agent error: {detail}"
    fields: ClassVar[tuple[str, ...]] = ("detail",)

    def __init__(self, detail: str = "") -> None:
        self.detail = detail
        super().__init__(self.message())

    @property
    def params(self) -> dict[str, Any]:
        """Placeholders for ``template`` and for ``i18n.translate(self.code, ...)``."""
        return {name: getattr(self, name) for name in self.fields}

    def message(self) -> str:
        """English text built from the class template."""
        return self.template.format(**self.params)


class ConfigError(AgentError):
    """A configuration value is missing, malformed or out of range."""

    code = "config_invalid"
    template = "{file}: [{key}] {problem}; expected {expected}"
    fields: ClassVar[tuple[str, ...]] = ("key", "file", "expected", "problem")

    def __init__(self, *, key: str, file: str, expected: str, problem: str = "invalid") -> None:
        self.key = key
        self.file = file
        self.expected = expected
        self.problem = problem
        super().__init__()


class NodeDatError(ConfigError):
    """The DBC node's dat/node.dat is unreadable or its key does not derive its node_id."""

    code = "node_dat_invalid"


class TlsConfigError(ConfigError):
    """``[api] tls_cert``/``tls_key``: missing half, unreadable, not PEM, or not a pair."""

    code = "tls_config_invalid"


class StoreError(AgentError):
    """The SQLite store failed."""

    code = "store_error"
    template = "store {path}: {detail}"
    fields: ClassVar[tuple[str, ...]] = ("path", "detail")

    def __init__(self, detail: str = "", *, path: str = "") -> None:
        self.path = path
        super().__init__(detail)


class StoreFull(StoreError):
    """The disk holding the store is full; the failed write was rolled back."""

    code = "store_full"
    template = "store {path}: disk full, the change was not saved ({detail}); free space and retry"


class StoreTooNew(StoreError):
    """The store's schema is newer than this program: refuse to run rather than damage it."""

    code = "store_too_new"
    template = ("store {path}: schema version {found} is newer than this program supports "
                "({supported}); upgrade bm-agent or restore a matching backup")
    fields: ClassVar[tuple[str, ...]] = ("path", "found", "supported")

    def __init__(self, *, path: str, found: int, supported: int) -> None:
        self.found = found
        self.supported = supported
        super().__init__(path=path)


class StoreCorrupt(StoreError):
    """The file is not a database or its image is malformed."""

    code = "store_corrupt"
    template = "store {path}: database is corrupt ({detail}); restore a backup"


class StoreBusy(StoreError):
    """Another connection held the write lock longer than busy_timeout."""

    code = "store_busy"
    template = "store {path}: busy, try again ({detail})"


class StoreIntegrityError(StoreError):
    """A constraint failed that the repository did not map to a domain error."""

    code = "store_integrity"
    template = "store {path}: constraint failed ({detail})"


class SecretsError(AgentError):
    """The secrets key file or a sealed value cannot be used."""

    code = "secrets_error"
    template = "secrets {path}: {detail}"
    fields: ClassVar[tuple[str, ...]] = ("path", "detail")

    def __init__(self, detail: str = "", *, path: str = "") -> None:
        self.path = path
        super().__init__(detail)


class KeyFileMissing(SecretsError):
    """The key file does not exist (``bm-agent init`` creates it)."""

    code = "secrets_key_missing"
    template = "secrets key file {path} does not exist; run `bm-agent init` or restore it"


class KeyFileInsecure(SecretsError):
    """The key file is readable or writable by group or others."""

    code = "secrets_key_insecure"
    template = ("secrets key file {path} has mode {detail}, readable by group or others; "
                "run `chmod 600 {path}`")


class UnsealFailed(SecretsError):
    """A sealed value cannot be opened (unknown key id, wrong key or tampered)."""

    code = "secrets_unseal_failed"
    template = "cannot unseal a stored secret: {detail}"


class NotFound(AgentError):
    """A named thing does not exist."""

    code = "not_found"
    template = "{kind} {ident} not found"
    fields: ClassVar[tuple[str, ...]] = ("kind", "ident")

    def __init__(self, ident: str, *, kind: str = "object") -> None:
        self.ident = ident
        self.kind = kind
        super().__init__()


class ServerNotFound(NotFound):
    """No server with this id or uuid."""

    code = "server_not_found"
    template = "server {ident} not found"

    def __init__(self, ident: str) -> None:
        super().__init__(ident, kind="server")


class UserNotFound(NotFound):
    """No staff user with this name."""

    code = "user_not_found"
    template = "user {ident} not found"

    def __init__(self, ident: str) -> None:
        super().__init__(ident, kind="user")


class OutboxItemNotFound(NotFound):
    """No outbox item with this id."""

    code = "outbox_item_not_found"
    template = "outbox item {ident} not found"

    def __init__(self, ident: str) -> None:
        super().__init__(ident, kind="outbox item")


class Conflict(AgentError):
    """The request conflicts with the current state."""

    code = "conflict"
    template = "conflict: {detail}"


class AlreadyExists(Conflict):
    """Something with the same unique name already exists."""

    code = "already_exists"
    template = "{kind} {ident} already exists"
    fields: ClassVar[tuple[str, ...]] = ("kind", "ident")

    def __init__(self, ident: str, *, kind: str) -> None:
        self.ident = ident
        self.kind = kind
        super().__init__()


class ActionInProgress(Conflict):
    """Another staff action holds this server's lock."""

    code = "action_in_progress"
    template = "server {server}: action {action} is already in progress"
    fields: ClassVar[tuple[str, ...]] = ("server", "action")

    def __init__(self, *, server: str, action: str) -> None:
        self.server = server
        self.action = action
        super().__init__()


class SeatRented(Conflict):
    """Staff asked to power off, soft-off or reset rented servers without acknowledging it.

    ``rented``: one ``{"uuid", "until"}`` per rented server (``until`` ISO-8601 UTC or
    None), also sent in the API's error body.
    """

    code = "seat_rented"
    template = ("rented, a renter would lose the PC (rent ends in brackets, UTC): {servers}; "
                "repeat with confirm_rented true to do it anyway")
    fields: ClassVar[tuple[str, ...]] = ("servers",)

    def __init__(self, *, rented: list[dict[str, str | None]]) -> None:
        self.rented = rented
        self.servers = ", ".join(
            f"{r['uuid']} ({r['until']})" if r.get("until") else str(r["uuid"])
            for r in rented)
        super().__init__()


class SeatNotPending(Conflict):
    """Staff asked to approve or reject a seat key, but the server has none pending."""

    code = "seat_not_pending"
    template = "server {server} has no pending seat key (the PC must enroll first)"
    fields: ClassVar[tuple[str, ...]] = ("server",)

    def __init__(self, *, server: str) -> None:
        self.server = server
        super().__init__()


class SeatAmbiguous(Conflict):
    """Several seat keys wait for one server: staff must choose one by its fingerprint."""

    code = "seat_ambiguous"
    template = ("server {server} has {count} pending seat keys: approve one by its fingerprint"
                " (compare with the one bm-hook logged on the PC)")
    fields: ClassVar[tuple[str, ...]] = ("server", "count")

    def __init__(self, *, server: str, count: int) -> None:
        self.server = server
        self.count = count
        super().__init__()


class DeviceIdNotPending(Conflict):
    """Staff asked to approve a DeepLink device_id change, but none is waiting."""

    code = "device_id_not_pending"
    template = "server {server} has no DeepLink device_id change waiting for approval"
    fields: ClassVar[tuple[str, ...]] = ("server",)

    def __init__(self, *, server: str) -> None:
        self.server = server
        super().__init__()


class LeaseLost(Conflict):
    """The outbox item's claim expired and someone else claimed it."""

    code = "outbox_lease_lost"
    template = "outbox item {detail}: claim lost (lease expired and re-claimed)"


class PermissionDenied(AgentError):
    """The user's role is below what the operation needs."""

    code = "permission_denied"
    template = "permission denied: role {needed} required"
    fields: ClassVar[tuple[str, ...]] = ("needed",)

    def __init__(self, *, needed: str) -> None:
        self.needed = needed
        super().__init__()


class CsrfFailed(PermissionDenied):
    """The browser request lacks the session's CSRF token."""

    code = "csrf_failed"
    template = "missing or wrong CSRF token"
    fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        super().__init__(needed="")


class AuthFailed(AgentError):
    """Credentials, token or session were not accepted; ``reason`` is for logs only."""

    code = "auth_failed"
    template = "authentication failed"
    fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, reason: str = "") -> None:
        self.reason = reason
        super().__init__()


class RateLimited(AgentError):
    """Too many failures: try again after ``retry_after_s`` seconds."""

    code = "rate_limited"
    template = "too many failed attempts; retry in {retry_after_s} s"
    fields: ClassVar[tuple[str, ...]] = ("retry_after_s",)

    def __init__(self, *, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__()


class LoginBusy(RateLimited):
    """Every password-hash slot is in use (a login storm): retry in a moment."""

    code = "login_busy"
    template = "too many password checks in progress; retry in {retry_after_s} s"


class ValidationError(AgentError):
    """An input value is invalid; ``field`` names it, ``reason`` says why."""

    code = "validation_error"
    template = "{field}: {reason}"
    fields: ClassVar[tuple[str, ...]] = ("field", "reason")

    def __init__(self, *, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__()


class UnsafeNodeValue(ValidationError):
    """A stored field the DBC node puts on its ``sh -c`` line is not one plain shell word.

    Found when a change is about to be sent to the node (or by the start-up re-check):
    the value came from an older version or a restored backup. It names the server and
    the field, never the value (it may be the IPMI password).
    """

    code = "unsafe_node_value"
    template = ("server {server}: the stored {field} is not safe on the DBC node's shell "
                "command line ({reason}), so it is not sent to the node; change it with "
                "PATCH /api/v1/servers/{server} or a new import")
    fields: ClassVar[tuple[str, ...]] = ("server", "field", "reason")

    def __init__(self, *, server: str, field: str, reason: str) -> None:
        self.server = server
        super().__init__(field=field, reason=reason)
class TokenTtlTooLong(ValidationError):
    """A bearer token was asked for a longer life than its user's role allows."""

    code = "token_ttl_too_long"
    template = ("{field}: a {role} token lives at most {max_s} s; ask for less "
                "(an admin raises [auth] token_max_ttl_{role}_s to allow more)")
    fields: ClassVar[tuple[str, ...]] = ("field", "role", "max_s")

    def __init__(self, *, role: str, max_s: int) -> None:
        self.role = role
        self.max_s = max_s
        super().__init__(field="ttl_s", reason="too long")


class UnsafeText(ValidationError):
    """Text carries control or bidirectional-override characters (they disguise names)."""

    code = "unsafe_text"
    template = ("{field}: control characters and bidirectional overrides "
                "(U+202A-U+202E, U+2066-U+2069, U+200E/U+200F, U+061C) are not allowed")
    fields: ClassVar[tuple[str, ...]] = ("field",)

    def __init__(self, *, field: str) -> None:
        super().__init__(field=field, reason="control or bidirectional characters")


class UnknownActionFamily(ValidationError):
    """An event filter names neither an action family nor a known action."""

    code = "unknown_action_family"
    template = 'action: unknown action or family "{action}"; use one of the families: {families}'
    fields: ClassVar[tuple[str, ...]] = ("action", "families")

    def __init__(self, *, action: str, families: str) -> None:
        self.action = action
        self.families = families
        super().__init__(field="action", reason="unknown action family")


class HookAuthError(AgentError):
    """A boot-hook request was refused."""

    code = "hook_auth_failed"
    template = "hook request refused: {detail}"


class BadSignature(HookAuthError):
    """The ed25519 signature does not verify over the canonical request."""

    code = "bad_signature"
    template = "hook token signature does not verify ({detail})"


class StaleRequest(HookAuthError):
    """The request timestamp is outside the replay window."""

    code = "stale_timestamp"
    template = "timestamp outside the {window_s} s window ({skew_s} s off)"
    fields: ClassVar[tuple[str, ...]] = ("skew_s", "window_s")

    def __init__(self, *, skew_s: int, window_s: int) -> None:
        self.skew_s = skew_s
        self.window_s = window_s
        super().__init__()


class ReplayedRequest(HookAuthError):
    """The nonce was already used inside the window."""

    code = "replayed"
    template = "nonce already used"
    fields: ClassVar[tuple[str, ...]] = ()


class WrongSourceIp(HookAuthError):
    """The request does not come from the server's registered IP."""

    code = "forbidden_source"
    template = ("request does not come from the server's registered IP: from {source_ip}, "
                "server {server} is registered at {expected_ip}")
    fields: ClassVar[tuple[str, ...]] = ("source_ip", "expected_ip", "server")

    def __init__(self, *, source_ip: str, expected_ip: str, server: str) -> None:
        self.source_ip = source_ip
        self.expected_ip = expected_ip
        self.server = server
        super().__init__()


class HookRefused(AgentError):
    """An error answer of the boot-hook relay contract (tests/contract/hook_relay.json).

    Each instance carries the contract's HTTP ``status``, its contract ``code`` (``bad_request``,
    ``busy``, ``seat_pending``...) and its English text in ``detail``; the API answers those as
    they are, byte for byte. Those codes are the contract's, not this catalogue's: the class's
    own ``hook_refused`` is the one translated (``{status} {contract_code}: {detail}``), and the
    subclasses (``agent.hook.relay.HookRefusal``...) add no code of their own.
    """

    code = "hook_refused"
    template = "{status} {contract_code}: {detail}"
    fields: ClassVar[tuple[str, ...]] = ("status", "contract_code", "detail")

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.contract_code = code
        object.__setattr__(self, "code", code)  # per instance: the contract's code
        super().__init__(message)


class RegistryError(AgentError):
    """Registration with the DBC node failed (registry adds leaves)."""

    code = "registry_error"
    template = "registration with the DBC node failed: {detail}"


class MonitorError(AgentError):
    """The cross-check loop failed (monitor adds leaves)."""

    code = "monitor_error"
    template = "cross-check failed: {detail}"


def all_error_classes() -> list[type[AgentError]]:
    """Return AgentError and every subclass (for i18n and API-mapping completeness tests)."""
    found: list[type[AgentError]] = [AgentError]
    for cls in found:
        if cls is not HookRefused:  # its subclasses share its catalogue code (see its doc)
            found.extend(cls.__subclasses__())
    return found
