"""bm-hook settings: one TOML file (``--config``) plus ``BM_HOOK_<SECTION>_<KEY>`` overrides.

Keys (docs/hook.md has the annotated example)::

    [node]      url                      bare-metal node HTTP, e.g. http://192.168.1.159:5002
    [server]    node_id, key_file        this PC's server identity (direct mode)
    [deeplink]  sdk, channel_id, code_length
    [agent]     url, token_key_file, seat_key_file, source_ip, cert_sha256 (pin; required
                for https://)
    [deadlines] node_s, deeplink_s, confirm_s, call_s
    [state]     dir (per-machine state: last-code, seat.key, bm-hook.log, status.json);
                file (legacy: the last code's salted hash; its parent acts as the dir)
    [service]   retry_s, slow_retry_s    resident mode: fast retry phase, then the slow pace

Mode: ``agent`` when ``[agent] url`` is set, else ``direct``. Nothing here reads a secret;
key files are read by :mod:`boot_hooks.keys`. ``[agent] seat_key_file`` (this PC's own
key, made on first boot) defaults to ``seat.key`` in the state dir: both belong on the
storage a diskless system keeps per machine. No state dir: :mod:`boot_hooks.state` keeps
the last code and the log in memory for this boot only.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from boot_hooks.errors import ConfigError
from boot_hooks.tls_pin import normalize_pin

__all__ = [
    "DEFAULT_PIPE",
    "Deadlines",
    "HookConfig",
    "ServiceSettings",
    "load_config",
]

DEFAULT_PIPE = r"\\.\pipe\deeplink_sdk"
ENV_PREFIX = "BM_HOOK_"
_NODE_ID = re.compile(r"[0-9a-f]{64}")
_SECTIONS = ("node", "server", "deeplink", "agent", "deadlines", "state", "service")
MIN_CODE_LEN, MAX_CODE_LEN = 6, 16  # DeepLink's rule, docs/protocol.md §13.1
MAX_RETRY_S, MAX_SLOW_RETRY_S = 7 * 86400.0, 86400.0  # a week of fast retries; one try a day


@dataclass(frozen=True)
class Deadlines:
    """Per-step deadlines in seconds."""

    node_s: float = 60.0  # wait for the node's /api/v1/ probe (network up at boot)
    deeplink_s: float = 120.0  # wait for DeepLink's SDK and its LAN session to the node
    confirm_s: float = 30.0  # wait for the node to report the new code back
    call_s: float = 5.0  # one HTTP or SDK call


@dataclass(frozen=True)
class ServiceSettings:
    """Retry pacing of the resident mode (``bm-hook --resident`` / ``--service``), in seconds."""

    retry_s: float = 1800.0  # fast phase: backoff 5 s doubling to 60 s, with jitter
    slow_retry_s: float = 300.0  # after retry_s: one attempt at this pace, until one succeeds


@dataclass(frozen=True)
class HookConfig:
    """Validated settings for one bm-hook run."""

    node_url: str = ""
    node_id: str = ""
    key_file: str = ""
    sdk: str = "none"
    channel_id: str = "bm-hook"
    code_length: int = 12
    agent_url: str = ""
    token_key_file: str = ""
    seat_key_file: str = ""
    source_ip: str = ""
    agent_cert_sha256: str = ""
    state_dir: str = ""
    state_file: str = ""
    deadlines: Deadlines = field(default_factory=Deadlines)
    service: ServiceSettings = field(default_factory=ServiceSettings)

    @property
    def mode(self) -> str:
        """Return ``"agent"`` when an agent URL is configured, else ``"direct"``."""
        return "agent" if self.agent_url else "direct"

    @property
    def state_dir_path(self) -> str:
        """Return the per-machine state dir, or ``""`` when none is configured.

        ``[state] dir``, else the parent of the legacy ``[state] file``.
        """
        if self.state_dir:
            return self.state_dir
        return str(Path(self.state_file).parent) if self.state_file else ""

    @property
    def last_code_path(self) -> str:
        """Return where the last code's hash lives (``""``: nowhere on disk)."""
        if self.state_file:
            return self.state_file
        return str(Path(self.state_dir) / "last-code") if self.state_dir else ""

    @property
    def seat_key_path(self) -> str:
        """Return where this PC's seat key lives (``seat.key`` in the state dir; ``""``: none)."""
        if self.seat_key_file:
            return self.seat_key_file
        state_dir = self.state_dir_path
        return str(Path(state_dir) / "seat.key") if state_dir else ""

    @property
    def sdk_kind(self) -> str:
        """Return ``none``, ``pipe`` or ``unix``."""
        return self.sdk.split(":", 1)[0]

    @property
    def sdk_path(self) -> str:
        """Return the pipe or socket path of the SDK seam (empty for ``none``)."""
        if self.sdk == "pipe":
            return DEFAULT_PIPE
        return self.sdk.split(":", 1)[1] if ":" in self.sdk else ""


_KEYS: dict[tuple[str, str], str] = {
    ("node", "url"): "node_url",
    ("server", "node_id"): "node_id",
    ("server", "key_file"): "key_file",
    ("deeplink", "sdk"): "sdk",
    ("deeplink", "channel_id"): "channel_id",
    ("deeplink", "code_length"): "code_length",
    ("agent", "url"): "agent_url",
    ("agent", "token_key_file"): "token_key_file",
    ("agent", "seat_key_file"): "seat_key_file",
    ("agent", "source_ip"): "source_ip",
    ("agent", "cert_sha256"): "agent_cert_sha256",
    ("state", "dir"): "state_dir",
    ("state", "file"): "state_file",
}
_NUMBER_KEYS = {  # sections of positive numbers of seconds
    "deadlines": {f.name for f in fields(Deadlines)},
    "service": {f.name for f in fields(ServiceSettings)},
}


def load_config(path: str | None, environ: Mapping[str, str]) -> HookConfig:
    """Read the TOML file (if any), apply environment overrides, validate."""
    raw = _read_toml(path) if path else {}
    values: dict[str, Any] = {}
    numbers: dict[str, dict[str, float]] = {section: {} for section in _NUMBER_KEYS}
    for section, table in raw.items():
        if section not in _SECTIONS or not isinstance(table, dict):
            raise ConfigError(f"unknown config section [{section}]")
        for key, value in table.items():
            _place(section, key, value, values, numbers)
    for section, key, value in _env_overrides(environ):
        _place(section, key, value, values, numbers)
    config = HookConfig(**values, deadlines=Deadlines(**numbers["deadlines"]),
                        service=ServiceSettings(**numbers["service"]))
    _validate(config)
    return config


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        # Windows editors (and PowerShell 5's UTF8) write a BOM that TOML does not allow.
        return tomllib.loads(raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid UTF-8 TOML: {exc}") from None


def _env_overrides(environ: Mapping[str, str]) -> list[tuple[str, str, str]]:
    found = []
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section = next((s for s in _SECTIONS if rest.startswith(s + "_")), None)
        if section is None:
            raise ConfigError(f"unknown environment override {name}")
        found.append((section, rest[len(section) + 1 :], value))
    return found


def _place(
    section: str, key: str, value: Any, values: dict[str, Any],
    numbers: dict[str, dict[str, float]],
) -> None:
    if section in _NUMBER_KEYS:
        if key not in _NUMBER_KEYS[section]:
            raise ConfigError(f"unknown key [{section}] {key}")
        numbers[section][key] = _positive_number(section, key, value)
        return
    attr = _KEYS.get((section, key))
    if attr is None:
        raise ConfigError(f"unknown key [{section}] {key}")
    if attr == "code_length":
        values[attr] = _integer(section, key, value)
    elif not isinstance(value, str):
        raise ConfigError(f"[{section}] {key} must be a string")
    else:
        values[attr] = value.strip()


def _positive_number(section: str, key: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"[{section}] {key} must be a number of seconds") from None
    if not number > 0:
        raise ConfigError(f"[{section}] {key} must be positive")
    return number


def _integer(section: str, key: str, value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"[{section}] {key} must be an integer") from None


def _validate(config: HookConfig) -> None:
    if config.node_id and not _NODE_ID.fullmatch(config.node_id):
        raise ConfigError("[server] node_id must be 64 lowercase hex characters")
    if not MIN_CODE_LEN <= config.code_length <= MAX_CODE_LEN:
        raise ConfigError("[deeplink] code_length must be between 6 and 16 (DeepLink's rule)")
    _validate_sdk(config.sdk)
    for name, url in (("[node] url", config.node_url), ("[agent] url", config.agent_url)):
        if url and urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError(f"{name} must be an http:// or https:// URL")
    if config.mode == "direct":
        if not config.node_url:
            raise ConfigError("direct mode needs [node] url (or set [agent] url for agent mode)")
        if not config.key_file:
            raise ConfigError("direct mode needs [server] key_file")
    elif not config.token_key_file:
        raise ConfigError("agent mode needs [agent] token_key_file")
    if config.state_dir and not _is_absolute(config.state_dir):
        # A Windows service starts in C:\Windows\System32: a relative dir would land there.
        raise ConfigError(f"[state] dir must be an absolute path, not {config.state_dir!r}")
    _validate_pin(config)
    _validate_service(config.service)


def _validate_service(service: ServiceSettings) -> None:
    # Also keeps inf out: a wait that long overflows threading.Event.wait.
    for key, value, limit in (("retry_s", service.retry_s, MAX_RETRY_S),
                              ("slow_retry_s", service.slow_retry_s, MAX_SLOW_RETRY_S)):
        if value > limit:
            raise ConfigError(f"[service] {key} must be at most {limit:.0f} seconds")


def _is_absolute(path: str) -> bool:
    return Path(path).is_absolute() or bool(re.match(r"[A-Za-z]:[\\/]", path))


def _validate_pin(config: HookConfig) -> None:
    if config.agent_cert_sha256:
        normalize_pin(config.agent_cert_sha256)
        if urlsplit(config.agent_url).scheme != "https":
            raise ConfigError("[agent] cert_sha256 is set but [agent] url is not https://: "
                              "use the agent's https:// URL")
    elif config.mode == "agent" and urlsplit(config.agent_url).scheme == "https":
        raise ConfigError("an https:// [agent] url needs [agent] cert_sha256, the agent "
                          "certificate's SHA-256 (run `bm-agent tls fingerprint` on the agent)")


def _validate_sdk(sdk: str) -> None:
    if sdk in ("none", "pipe"):
        return
    if sdk.startswith("unix:") and len(sdk) > len("unix:"):
        return
    raise ConfigError('[deeplink] sdk must be "none", "pipe" or "unix:PATH"')
