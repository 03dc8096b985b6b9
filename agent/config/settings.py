"""One validated, frozen ``Settings`` from a TOML file plus ``BM_AGENT_*`` environment overrides.

API:

- ``load_settings(config_file, *, environ=None) -> Settings`` (never called at import time);
- ``resolve_config_path(cli_value, environ=None) -> Path`` (``--config`` > ``BM_AGENT_CONFIG``
  > ``/etc/bm-agent/agent.toml``);
- ``render_default_config(values=None) -> str``: a fully commented TOML for ``bm-agent init``;
- ``read_node_dat(path) -> ManagerKey``: the node's manager key, checked like the node does;
- ``KEYS``: the table of every key (section, name, default, doc) the above are built from.

Precedence: environment > file > default. Naming rule for the environment: ``BM_AGENT_`` +
section + ``_`` + key, upper-cased: ``[check] interval_s`` -> ``BM_AGENT_CHECK_INTERVAL_S``.
Environment values are text: numbers as digits, booleans as true/false/1/0/yes/no/on/off, an
empty value unsets an optional key. Relative paths (from the file or the environment) are
relative to the config file's directory (the working directory when there is no file).
Unknown keys in the file, or ``BM_AGENT_<SECTION>_*`` variables naming an unknown key, are
errors (a typo must not silently fall back to a default). Every problem is a ``ConfigError``
naming the key, the file (or variable) and what is expected.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from agent.api.proxies import Network
from agent.config import keys as _keys
from agent.config.keys import KEYS, Key
from agent.errors import ConfigError, NodeDatError
from agent.secrets import Secret
from baremetal.errors import SigningError
from baremetal.signing import node_id_from_private_key

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_PATH",
    "ENV_PREFIX",
    "KEYS",
    "ActionsSettings",
    "ApiSettings",
    "AuthSettings",
    "ChainSettings",
    "CheckSettings",
    "HookSettings",
    "LogSettings",
    "ManagerKey",
    "NodeSettings",
    "PowerPathSettings",
    "RetentionSettings",
    "SecretsSettings",
    "Settings",
    "StoreSettings",
    "UiSettings",
    "env_name",
    "load_settings",
    "read_node_dat",
    "render_default_config",
    "resolve_config_path",
]

_LOGGER = logging.getLogger(__name__)

DEFAULT_CONFIG_PATH = Path("/etc/bm-agent/agent.toml")
CONFIG_ENV = "BM_AGENT_CONFIG"
ENV_PREFIX = "BM_AGENT_"


@dataclass(frozen=True)
class NodeSettings:
    """[node]: the DBC bare-metal node, its manager key, the optional client node."""

    url: str
    node_dat: Path
    client_url: str | None
    timeout_s: float
    client_timeout_s: float


@dataclass(frozen=True)
class StoreSettings:
    """[store]: the SQLite file."""

    path: Path
    readings_per_server: int
    busy_timeout_s: float


@dataclass(frozen=True)
class SecretsSettings:
    """[secrets]: the SecretBox key file."""

    key_file: Path


@dataclass(frozen=True)
class ApiSettings:
    """[api]: where uvicorn listens, its TLS pair and connection limits, cookies, proxies."""

    listen: str
    max_connections_per_ip: int
    header_timeout_s: float
    limit_concurrency: int
    open_files: int
    secure_cookies: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    trusted_proxies: tuple[Network, ...] = ()

    @property
    def tls(self) -> bool:
        """Tell whether uvicorn serves HTTPS (``load_settings`` checked the pair)."""
        return self.tls_cert is not None and self.tls_key is not None

    @property
    def always_secure_cookies(self) -> bool:
        """Mark every cookie Secure: configured so, or implied by TLS."""
        return self.secure_cookies or self.tls

    @property
    def host(self) -> str:
        """Host part of ``listen`` (without IPv6 brackets)."""
        return _keys.split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        """Port part of ``listen``."""
        return _keys.split_listen(self.listen)[1]


@dataclass(frozen=True)
class CheckSettings:
    """[check]: the cross-verification loop."""

    interval_s: float
    jitter_s: float
    pool_size: int
    deadline_s: float
    dbc_path_probe: bool
    mismatch_confirmations: int
    transition_grace_s: float
    auth_retry_after_s: float
    rentals_file: Path | None = None


@dataclass(frozen=True)
class ChainSettings:
    """[chain]: the DBC chain asked for rental state (off when no host is known)."""

    hosts: tuple[str, ...] = ()
    core_conf: Path | None = None
    timeout_s: float = 3.0
    ttl_s: float = 30.0
    verify_tls: bool = True


@dataclass(frozen=True)
class PowerPathSettings:
    """[power]: the Redfish and HTTP plug power paths (docs/operations.md "power path")."""

    redfish_ca_file: Path | None = None
    plug_deadline_s: float = 20.0
    standby_watts: float = 15.0


@dataclass(frozen=True)
class ActionsSettings:
    """[actions]: staff power and boot actions."""

    verify_deadline_s: float
    verify_interval_s: float


@dataclass(frozen=True)
class HookSettings:
    """[hook]: the boot-hook relay (disabled when token_public_key is unset)."""

    token_public_key: Path | None
    replay_window_s: int
    require_source_ip: bool
    neighbour_table: Path | None
    relay_threads: int
    relay_per_ip: int


@dataclass(frozen=True)
class AuthSettings:
    """[auth]: sessions, tokens and login rate limiting."""

    session_idle_s: int
    session_max_s: int
    token_ttl_s: int
    login_max_failures: int
    login_ip_max_failures: int
    login_window_s: int
    token_max_ttl_viewer_s: int
    token_max_ttl_operator_s: int
    token_max_ttl_admin_s: int
    login_name_max_failures: int
    login_hash_slots: int
    os_users: tuple[tuple[str, str], ...] = ()  # OS login -> staff account (bm-agent CLI actor)


@dataclass(frozen=True)
class RetentionSettings:
    """[retention]: how long housekeeping keeps events (audit events are kept forever)."""

    events_days: int
    refusals_days: int


@dataclass(frozen=True)
class UiSettings:
    """[ui]: presentation defaults."""

    default_lang: str
    timezone: str = "UTC"  # IANA name; the system's zone when the file leaves it empty


@dataclass(frozen=True)
class LogSettings:
    """[log]: logging."""

    level: str


@dataclass(frozen=True)
class Settings:
    """Everything the agent is configured with; built once by ``load_settings``."""

    node: NodeSettings
    store: StoreSettings
    secrets: SecretsSettings
    api: ApiSettings
    check: CheckSettings
    actions: ActionsSettings
    hook: HookSettings
    auth: AuthSettings
    ui: UiSettings
    log: LogSettings
    retention: RetentionSettings
    config_file: Path | None = field(default=None)
    chain: ChainSettings = field(default_factory=ChainSettings)
    power: PowerPathSettings = field(default_factory=PowerPathSettings)


_SECTIONS: dict[str, type] = {
    "node": NodeSettings, "store": StoreSettings, "secrets": SecretsSettings,
    "api": ApiSettings, "check": CheckSettings, "actions": ActionsSettings,
    "hook": HookSettings, "auth": AuthSettings, "ui": UiSettings, "log": LogSettings,
    "retention": RetentionSettings, "chain": ChainSettings, "power": PowerPathSettings,
}


class ManagerKey(NamedTuple):
    """The manager identity from dat/node.dat; unpacks as ``node_id, private_key``."""

    node_id: str
    private_key: Secret


def env_name(section: str, name: str) -> str:
    """Return the environment variable that overrides ``[section] name``."""
    return f"{ENV_PREFIX}{section}_{name}".upper()


def resolve_config_path(cli_value: str | Path | None,
                        environ: Mapping[str, str] | None = None) -> Path:
    """Pick the config file: ``--config`` value, else ``BM_AGENT_CONFIG``, else the default."""
    env = os.environ if environ is None else environ
    if cli_value:
        return Path(cli_value)
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    return DEFAULT_CONFIG_PATH


def load_settings(config_file: str | Path | None,
                  *, environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``config_file`` (None: defaults only), apply the environment, validate, freeze."""
    env = os.environ if environ is None else environ
    path = Path(config_file).expanduser().absolute() if config_file is not None else None
    data = _read_toml(path) if path is not None else {}
    where = str(path) if path is not None else "(no config file)"
    base_dir = path.parent if path is not None else Path.cwd()
    _reject_unknown_file_keys(data, where)
    overrides = _env_overrides(env)
    values: dict[str, dict[str, Any]] = {section: {} for section in _SECTIONS}
    for key in KEYS:
        values[key.section][key.name] = _resolve(key, data, overrides, where, base_dir)
    _keys.check_relations(values, where)
    sections = {name: cls(**values[name]) for name, cls in _SECTIONS.items()}
    return Settings(**sections, config_file=path)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(key="-", file=str(path), problem="file not found",
                          expected="a config file (create one with `bm-agent init`)") from None
    except OSError as exc:
        raise ConfigError(key="-", file=str(path), problem=f"unreadable ({exc.strerror})",
                          expected="a readable file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(key="-", file=str(path), problem=f"not valid TOML ({exc})",
                          expected="TOML syntax") from None


def _reject_unknown_file_keys(data: Mapping[str, Any], where: str) -> None:
    known = {(k.section, k.name) for k in KEYS}
    for section, table in data.items():
        if section not in _SECTIONS or not isinstance(table, dict):
            raise ConfigError(key=section, file=where, problem="unknown section",
                              expected="one of " + ", ".join(f"[{s}]" for s in _SECTIONS))
        for name in table:
            if (section, name) not in known:
                raise ConfigError(key=f"{section}.{name}", file=where, problem="unknown key",
                                  expected=_keys.names_in(section))


def _env_overrides(env: Mapping[str, str]) -> dict[tuple[str, str], tuple[str, str]]:
    by_var = {env_name(k.section, k.name): (k.section, k.name) for k in KEYS}
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for var, value in env.items():
        if not var.startswith(ENV_PREFIX) or var == CONFIG_ENV:
            continue
        if var in by_var:
            found[by_var[var]] = (var, value)
            continue
        section = var[len(ENV_PREFIX):].split("_", 1)[0].lower()
        if section in _SECTIONS:
            raise ConfigError(key=var, file="environment", problem="unknown variable",
                              expected=", ".join(env_name(section, n) for n in
                                                 _keys.names_in(section).split(", ")))
        _LOGGER.debug("ignoring environment variable %s (no such config section)", var)
    return found


def _resolve(key: Key, data: Mapping[str, Any],
             overrides: Mapping[tuple[str, str], tuple[str, str]],
             where: str, base_dir: Path) -> Any:
    dotted = f"{key.section}.{key.name}"
    if (key.section, key.name) in overrides:
        var, raw = overrides[(key.section, key.name)]
        source, from_env = f"environment {var}", True
        value: Any = raw
    elif key.name in data.get(key.section, {}):
        source, from_env, value = where, False, data[key.section][key.name]
    elif key.required:
        raise ConfigError(key=dotted, file=where, problem="missing", expected=key.expected)
    elif key.default is None:
        return None
    else:
        source, from_env, value = "default", False, key.default
    try:
        return key.convert(value, from_env, base_dir)
    except _keys.BadValue as exc:
        raise ConfigError(key=dotted, file=source, problem=exc.problem,
                          expected=key.expected) from None


def render_default_config(values: Mapping[str, Any] | None = None) -> str:
    """Render a commented TOML config: every key explained; ``values`` keyed ``"section.key"``."""
    given = dict(values or {})
    unknown = set(given) - {f"{k.section}.{k.name}" for k in KEYS}
    if unknown:
        raise ValueError(f"unknown config keys: {sorted(unknown)}")
    lines = list(_keys.HEADER)
    for section in _SECTIONS:
        lines += ["", f"[{section}]"]
        for index, key in enumerate(k for k in KEYS if k.section == section):
            lines += [""] if index else []
            lines += [f"# {text}" for text in key.doc]
            lines.append(f"#   env: {env_name(key.section, key.name)}; expected: {key.expected}")
            lines.append(_render_value(key, given.get(f"{section}.{key.name}")))
    return "\n".join(lines) + "\n"


def _render_value(key: Key, value: Any) -> str:
    if value is None:
        value = key.default
    if value is None:
        example = _keys.toml_literal(key.example) if key.example is not None else '""'
        note = "  # required: set it" if key.required else ""
        return f"# {key.name} = {example}{note}"
    return f"{key.name} = {_keys.toml_literal(value)}"


def read_node_dat(path: str | Path) -> ManagerKey:
    """Read ``node_id=``/``node_private_key=`` from the node's dat/node.dat; check derivation.

    The node parses the file with boost ``parse_config_file`` and refuses to start unless the
    key derives the id (conf_manager.cpp ParseDat/CheckNodeId); we apply the same check.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise NodeDatError(key="node.node_dat", file=str(path), problem=f"unreadable "
                           f"({exc.strerror})", expected="the DBC node's dat/node.dat") from None
    fields = _parse_dat(text)
    node_id = fields.get("node_id", "").lower().removeprefix("0x")
    private = fields.get("node_private_key", "")
    if not node_id or not private:
        raise NodeDatError(key="node.node_dat", file=str(path), problem="incomplete",
                           expected="node_id= and node_private_key= lines")
    try:
        derived = node_id_from_private_key(private)
    except SigningError:
        derived = ""
    if derived != node_id:
        raise NodeDatError(key="node.node_dat", file=str(path),
                           problem="node_private_key does not derive node_id",
                           expected="the key pair the DBC node created")
    return ManagerKey(node_id=node_id, private_key=Secret(private))


def _parse_dat(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        name, sep, value = line.partition("=")
        if sep and not line.startswith("["):
            fields[name.strip()] = value.strip()
    return fields

