"""The table of config keys (defaults, docs, converters) behind ``agent.config.settings``.

Private to ``agent.config.settings``: one ``Key`` per TOML key; ``load_settings`` validates with it
and ``render_default_config`` writes its docs, so the two can never disagree.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agent.api.proxies import parse_networks
from agent.errors import ConfigError, TlsConfigError
from baremetal.chain.hosts import host_url
from baremetal.errors import InvalidInput

__all__ = ["HEADER", "KEYS", "BadValue", "Key", "check_relations", "names_in", "split_listen",
           "toml_literal"]

_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
LANGS = ("zh_CN", "en")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

HEADER = (
    "# bm-agent configuration (written by `bm-agent init`).",
    "#",
    "# Every key can also be set by an environment variable named BM_AGENT_<SECTION>_<KEY>,",
    "# upper-cased: [check] interval_s -> BM_AGENT_CHECK_INTERVAL_S. The environment wins.",
    "# Relative paths are relative to the directory of this file.",
    "# Unknown keys are errors, so a typo never falls back to a default silently.",
)

Converter = Callable[[Any, bool, Path], Any]


class BadValue(Exception):
    """A value failed its converter; ``problem`` says how."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


@dataclass(frozen=True)
class Key:
    """One config key: where it lives, how it is checked, what it means."""

    section: str
    name: str
    converter: Converter
    expected: str
    doc: tuple[str, ...]
    default: Any = None
    required: bool = False
    example: Any = None

    def convert(self, value: Any, from_env: bool, base_dir: Path) -> Any:
        """Validate and convert a raw value (text when it comes from the environment)."""
        return self.converter(value, from_env, base_dir)


def _number(kind: type, low: float, high: float) -> Converter:
    def convert(value: Any, from_env: bool, _base: Path) -> Any:
        if from_env and isinstance(value, str):
            try:
                value = kind(value.strip())
            except ValueError:
                raise BadValue(f"{value!r} is not a number") from None
        allowed = (int, float) if kind is float else (int,)
        if isinstance(value, bool) or not isinstance(value, allowed):
            raise BadValue(f"{value!r} is a {type(value).__name__}")
        if not low <= value <= high:
            raise BadValue(f"{value} is out of range")
        return kind(value)
    return convert


def _bool(value: Any, from_env: bool, _base: Path) -> bool:
    if from_env and isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise BadValue(f"{value!r} is not a boolean")
    if not isinstance(value, bool):
        raise BadValue(f"{value!r} is not a boolean")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise BadValue(f"{value!r} is a {type(value).__name__}, not a string")
    return value.strip()


def _url(optional: bool) -> Converter:
    def convert(value: Any, _env: bool, _base: Path) -> str | None:
        text = _text(value)
        if not text and optional:
            return None
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadValue(f"{text!r} is not an http(s) URL")
        return text.rstrip("/")
    return convert


def _path(optional: bool) -> Converter:
    def convert(value: Any, _env: bool, base_dir: Path) -> Path | None:
        text = _text(value)
        if not text:
            if optional:
                return None
            raise BadValue("empty path")
        path = Path(text).expanduser()
        return path if path.is_absolute() else base_dir / path
    return convert


def _choice(options: tuple[str, ...], fold: Callable[[str], str]) -> Converter:
    def convert(value: Any, _env: bool, _base: Path) -> str:
        text = fold(_text(value))
        for option in options:
            if fold(option) == text:
                return option
        raise BadValue(f"{value!r} is not one of {', '.join(options)}")
    return convert


def _zone(value: Any) -> str:
    from agent.timefmt import load_zone, system_zone_name

    text = _text(value)
    if not text:
        return system_zone_name()
    try:
        load_zone(text)
    except ValueError:
        raise BadValue(f"{text!r} is not a known IANA time zone") from None
    return text


def _os_users(value: Any) -> tuple[tuple[str, str], ...]:
    pairs = []
    for entry in (part.strip() for part in _text(value).split(",")):
        if not entry:
            continue
        login, sep, staff = (piece.strip() for piece in entry.partition("="))
        if not sep or not login or not staff:
            raise BadValue(f"{entry!r} is not login=staff")
        pairs.append((login, staff))
    return tuple(pairs)


def split_listen(listen: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` for IPv6); raise BadValue if malformed."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise BadValue(f"{listen!r} has no valid :port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise BadValue(f"{host!r} is not an IPv6 address") from None
    elif not _HOSTNAME.fullmatch(host):
        raise BadValue(f"{host!r} is not a host name or IPv4 address")
    return host, int(port_text)


def _listen(value: Any, _env: bool, _base: Path) -> str:
    text = _text(value)
    split_listen(text)
    return text


def _networks(value: Any, from_env: bool, _base: Path) -> tuple[Any, ...]:
    if isinstance(value, str):
        entries = value.split(",")
    elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        entries = list(value)
    else:
        raise BadValue(f"{value!r} is not a list of IP addresses or CIDRs")
    try:
        return parse_networks(entries)
    except ValueError as exc:
        raise BadValue(str(exc)) from None


def _chain_hosts(value: Any, _env: bool, _base: Path) -> tuple[str, ...]:
    if isinstance(value, str):
        entries = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        entries = [v.strip() for v in value if v.strip()]
    else:
        raise BadValue(f"{value!r} is not a list of host[:port] or http(s) URLs")
    for entry in entries:
        try:
            host_url(entry)
        except InvalidInput as exc:
            raise BadValue(str(exc)) from None
    return tuple(entries)


def _k(section: str, name: str, converter: Converter, expected: str, doc: str,
       default: Any = None, *, required: bool = False, example: Any = None) -> Key:
    return Key(section, name, converter, expected, tuple(doc.split("\n")), default,
               required, example)


_F = _number(float, 0.0, 1e9)
KEYS: tuple[Key, ...] = (
    _k("node", "url", _url(False), "an http(s) URL",
       "HTTP API of the DBC bare-metal node (installer default port 5002).",
       "http://127.0.0.1:5002"),
    _k("node", "node_dat", _path(False), "a file path",
       "The node's dat/node.dat: node_id= and node_private_key= of the manager.\n"
       "The agent signs bare_metal/add, modify, delete and list with this key.",
       required=True, example="/opt/dbc/dbc_baremetal_node/dat/node.dat"),
    _k("node", "client_url", _url(True), "an http(s) URL, or empty to disable",
       "Optional DBC client node, asked for DBC's own power_status of each server.",
       example="http://127.0.0.1:5050"),
    _k("node", "timeout_s", _number(float, 0.1, 300), "seconds, 0.1 to 300",
       "Deadline of one HTTP call to the bare-metal node.", 10.0),
    _k("node", "client_timeout_s", _number(float, 1, 300), "seconds, 1 to 300",
       "Deadline of one call through the client node (its P2P relay waits up to 30 s).", 40.0),
    _k("store", "path", _path(False), "a file path",
       "SQLite database (WAL mode; -wal and -shm files live beside it).", "agent.db"),
    _k("store", "readings_per_server", _number(int, 10, 1_000_000), "an integer >= 10",
       "History kept per server; older readings are pruned (1440 = one day at 60 s).", 1440),
    _k("store", "busy_timeout_s", _number(float, 0.1, 120), "seconds, 0.1 to 120",
       "How long a write waits for another writer before failing with store_busy.", 5.0),
    _k("secrets", "key_file", _path(False), "a file path",
       "SecretBox key sealing IPMI passwords and server keys (mode 0600, outside the DB;\n"
       "back it up separately: the database is useless without it).", "secrets.key"),
    _k("api", "listen", _listen, "host:port, e.g. 127.0.0.1:8700 or [::1]:8700",
       "Address of the REST API and dashboard.", "127.0.0.1:8700"),
    _k("api", "secure_cookies", _bool, "true or false",
       "Always mark the session cookie Secure (it is anyway when the request came over\n"
       "HTTPS or with X-Forwarded-Proto: https); set it behind a TLS proxy.\n"
       "TLS on (tls_cert set) implies it.", False),
    _k("api", "tls_cert", _path(True), "a PEM certificate file, or empty for plain HTTP",
       "Serve HTTPS with this certificate (`bm-agent init --tls` makes a self-signed one;\n"
       "`bm-agent tls fingerprint` prints the SHA-256 the boot hooks pin). Needs tls_key.\n"
       "Without TLS, passwords, cookies and tokens cross the LAN in clear text.",
       example="agent-tls.crt"),
    _k("api", "tls_key", _path(True), "a PEM private key file (unencrypted, mode 0600)",
       "Private key of tls_cert.", example="agent-tls.key"),
    _k("api", "trusted_proxies", _networks, "a list of IPs or CIDRs, e.g. [\"10.0.0.2\"]",
       "Reverse proxies whose X-Forwarded-For is believed (right-most address that is not\n"
       "itself listed). Anyone else's proxy headers are ignored: the TCP peer is the client.\n"
       "Env: comma-separated. Empty (default): no proxy is trusted.", ()),
    _k("api", "max_connections_per_ip", _number(int, 1, 100_000), "an integer, 1 to 100000",
       "Open connections one client address may hold; more are closed at once (a single\n"
       "host holding half-sent requests cannot starve the others).", 64),
    _k("api", "header_timeout_s", _number(float, 0.5, 600), "seconds, 0.5 to 600",
       "A connection that has not sent complete request headers within this is closed.", 10.0),
    _k("api", "limit_concurrency", _number(int, 8, 1_000_000), "an integer, 8 to 1000000",
       "uvicorn's limit_concurrency: past this many connections or requests in flight,\n"
       "new requests are answered 503 at once.", 1000),
    _k("api", "open_files", _number(int, 256, 1_048_576), "an integer, 256 to 1048576",
       "At start the soft RLIMIT_NOFILE is raised to this (at most the hard limit).", 65536),
    _k("check", "interval_s", _number(float, 0.2, 86400), "seconds, 0.2 to 86400",
       "Time between cross-check passes over all servers.", 60.0),
    _k("check", "jitter_s", _F, "seconds, below interval_s",
       "Random delay added to each pass start, so agents do not beat in step.", 5.0),
    _k("check", "pool_size", _number(int, 1, 512), "an integer, 1 to 512",
       "Threads reading BMCs in parallel.", 32),
    _k("check", "deadline_s", _number(float, 0.1, 600), "seconds, below interval_s",
       "Deadline of one BMC call; a dead BMC costs at most this.", 3.0),
    _k("check", "dbc_path_probe", _bool, "true or false",
       "Also run the exact ipmitool command the DBC node runs (IPMI 1.5 lan) to learn\n"
       "whether renters' power requests through DBC can work (one subprocess per server).",
       False),
    _k("check", "auth_retry_after_s", _number(float, 0, 86400), "seconds, 0 to 86400",
       "After two refused logins with the same credentials, wait this long before the\n"
       "monitor logs in to that BMC again (BMCs lock accounts after repeated failures).\n"
       "Changing the server's IPMI credentials retries at once; 0 retries every pass.",
       900.0),
    _k("check", "mismatch_confirmations", _number(int, 1, 100), "an integer, 1 to 100",
       "Consecutive discrepant passes before a server is reported as mismatch.", 2),
    _k("check", "transition_grace_s", _number(float, 0, 3600), "seconds, 0 to 3600",
       "After a staff action, how long a not-yet-reached state counts as transitioning.",
       60.0),
    _k("check", "rentals_file", _path(True), "a file path, or empty for unknown",
       "Optional rentals JSON (the emulator's format, baremetal/emulator/rentals.py): which\n"
       "servers are rented, so an idle one powered off by DBC's timer reads expected_off.\n"
       "Unset: rental state unknown, and an idle power-off is not told apart.",
       example="rentals.json"),
    _k("chain", "hosts", _chain_hosts, "a list of host[:port] or http(s) URLs",
       "DBC chain JSON-RPC hosts asked for rental state (the node's JSON-RPC calls, tried in\n"
       "turn; host[:port] is HTTPS, port 443 by default). Env: comma-separated.\n"
       "Empty (default): the dbc_chain_domain lines of core_conf; none there: chain off,\n"
       "and rental state comes from [check] rentals_file alone.", ()),
    _k("chain", "core_conf", _path(True), "a file path, or empty for the default",
       "The DBC node's conf/core.conf, read for dbc_chain_domain and chain_additional_field.\n"
       "Empty: conf/core.conf beside the directory of [node] node_dat, if it exists.",
       example="/opt/dbc/dbc_baremetal_node/conf/core.conf"),
    _k("chain", "timeout_s", _number(float, 0.1, 60), "seconds, 0.1 to 60",
       "Deadline of one chain call, all hosts together. While the chain is down, it is asked\n"
       "again after ttl_s (5 to 30 s): a pass costs one deadline, not one per server.", 3.0),
    _k("chain", "ttl_s", _number(float, 0, 86400), "seconds, 0 to 86400",
       "How long a server's rental state from the chain is reused. When the chain cannot be\n"
       "asked, the last answer is used, marked stale with its age; with none, rentals_file.",
       30.0),
    _k("chain", "verify_tls", _bool, "true or false",
       "Check the chain hosts' HTTPS certificates (the DBC node itself does not). Turn off\n"
       "only for a host with a self-signed certificate you trust.", True),
    _k("power", "redfish_ca_file", _path(True), "a file path, or empty for the system's CAs",
       "CA bundle that verifies Redfish BMCs' HTTPS certificates (a seat with tls_verify =\n"
       "false skips the check: self-signed BMC certificates are common).", None),
    _k("power", "plug_deadline_s", _number(float, 0.5, 120), "seconds, 0.5 to 120",
       "Deadline of one plug switch (on/off). The DBC sample power service answers only\n"
       "after its own 15 s wait, so keep this above 15 s for it.", 20.0),
    _k("power", "standby_watts", _number(float, 0, 10000), "watts, 0 to 10000",
       "A plug seat that is on but draws less than this is shown as standby.", 15.0),
    _k("actions", "verify_deadline_s", _number(float, 1, 3600), "seconds, 1 to 3600",
       "How long an action's read-back waits for the new state before 'unverified'.", 30.0),
    _k("actions", "verify_interval_s", _number(float, 0.05, 60), "seconds, below the deadline",
       "Pause between read-backs.", 1.0),
    _k("hook", "token_public_key", _path(True), "a file path, or empty to disable the relay",
       "Ed25519 public key (64 hex) that verifies boot-hook requests relayed by the agent;\n"
       "the café keeps the signing key. Unset: the relay is off.",
       example="hook_token.pub"),
    _k("hook", "replay_window_s", _number(int, 10, 3600), "seconds, 10 to 3600",
       "Accepted clock skew of a hook request; nonces are remembered this long.", 300),
    _k("hook", "require_source_ip", _bool, "true or false",
       "Accept a hook request only from the server's registered IP.", True),
    _k("hook", "neighbour_table", _path(True), "a file path, or empty to skip the check",
       "The agent host's neighbour (ARP) table: a hook request from an address whose MAC there\n"
       "differs from the server's inventory MAC is refused (only when both are known).",
       "/proc/net/arp"),
    _k("hook", "relay_threads", _number(int, 1, 256), "an integer, 1 to 256",
       "Relay calls (each may wait up to 20 s for the node) run in their own pool of this\n"
       "many threads; when it is full, hooks are answered 429 busy and retry.", 8),
    _k("hook", "relay_per_ip", _number(int, 1, 256), "an integer, 1 to 256",
       "Relay calls one source address may have in flight (one per server at most).", 2),
    _k("auth", "session_idle_s", _number(int, 60, 30 * 86400), "seconds, at most session_max_s",
       "A browser session ends after this long without a request.", 7200),
    _k("auth", "session_max_s", _number(int, 60, 90 * 86400), "seconds",
       "A browser session ends this long after login, used or not.", 43200),
    _k("auth", "token_ttl_s", _number(int, 0, 10 * 365 * 86400), "seconds, 0 = the role's cap",
       "Default lifetime of API tokens issued for the CLI and scripts (a request without\n"
       "ttl_s, or with 0); never longer than the user's role's token_max_ttl_<role>_s.",
       90 * 86400),
    _k("auth", "token_max_ttl_viewer_s", _number(int, 3600, 10 * 365 * 86400),
       "seconds, 3600 to 315360000",
       "Longest life of a viewer's API token; a longer ttl_s is refused (422).", 30 * 86400),
    _k("auth", "token_max_ttl_operator_s", _number(int, 3600, 10 * 365 * 86400),
       "seconds, 3600 to 315360000",
       "Longest life of an operator's API token; a longer ttl_s is refused (422).", 90 * 86400),
    _k("auth", "token_max_ttl_admin_s", _number(int, 3600, 10 * 365 * 86400),
       "seconds, 3600 to 315360000",
       "Longest life of an admin's API token; a longer ttl_s is refused (422).", 365 * 86400),
    _k("auth", "login_max_failures", _number(int, 1, 1000), "an integer, 1 to 1000",
       "Failed logins for one user name from one source IP within login_window_s before\n"
       "that IP is locked for that name (the user's own PC keeps working).", 5),
    _k("auth", "login_name_max_failures", _number(int, 1, 100000), "an integer, 1 to 100000",
       "Failed logins for one user name from all IPs together within login_window_s\n"
       "before the name is locked (a guess spread over many IPs); never for an IP the\n"
       "user logged in from within the last 30 days.", 50),
    _k("auth", "login_hash_slots", _number(int, 1, 16), "an integer, 1 to 16",
       "Password checks (argon2id, 64 MiB each) running at once; more answer 429 at once.",
       2),
    _k("auth", "login_ip_max_failures", _number(int, 1, 10000), "an integer, 1 to 10000",
       "Failed logins per source IP within login_window_s before it is locked.", 20),
    _k("auth", "os_users", lambda v, _e, _b: _os_users(v), "login=staff[,login=staff]",
       "Which staff account a login on this host acts as in bm-agent commands run without\n"
       "--user (the audit log's actor). A login with no entry acts as the staff account of\n"
       "the same name; with neither, commands that change anything are refused (exit 7).\n"
       "bm-agent init maps the login that ran it to the admin it created.", ""),
    _k("auth", "login_window_s", _number(int, 10, 86400), "seconds, 10 to 86400",
       "Window of the login failure counters (and the longest lock).", 300),
    _k("retention", "events_days", _number(int, 1, 36500), "days, 1 to 36500",
       "Events older than this are deleted by housekeeping, except audit events (staff\n"
       "actions), which are kept forever.", 90),
    _k("retention", "refusals_days", _number(int, 1, 36500), "days, 1 to 36500",
       "Sampled hook refusal events (one per server or source address and code per\n"
       "minute, with a repeat count) are deleted after this many days.", 7),
    _k("ui", "default_lang", _choice(LANGS, lambda s: s.lower().replace("-", "_")),
       "zh_CN or en", "Language when neither --lang nor the locale chooses one.", "zh_CN"),
    _k("ui", "timezone", lambda v, _e, _b: _zone(v), "an IANA zone name, e.g. Asia/Shanghai",
       "The cafe's time zone: the CLI and the dashboard show every time in it, with the\n"
       "offset written out (2026-12-03 23:23:22 UTC+8). Empty: the system's zone.", ""),
    _k("log", "level", _choice(LEVELS, str.upper), "DEBUG, INFO, WARNING or ERROR",
       "Log level (the journal gets everything at this level and above).", "INFO"),
)


def names_in(section: str) -> str:
    """Return the key names of ``section`` as a comma-separated list."""
    return ", ".join(k.name for k in KEYS if k.section == section)


def check_relations(values: Mapping[str, Mapping[str, Any]], where: str) -> None:
    """Check the rules that tie two keys together."""
    rules = (
        ("check", "jitter_s", "check", "interval_s", "less than check.interval_s"),
        ("check", "deadline_s", "check", "interval_s", "less than check.interval_s"),
        ("actions", "verify_interval_s", "actions", "verify_deadline_s",
         "less than actions.verify_deadline_s"),
    )
    for section, name, other_section, other, expected in rules:
        if values[section][name] >= values[other_section][other]:
            raise ConfigError(key=f"{section}.{name}", file=where, problem="too large",
                              expected=expected)
    if values["auth"]["session_idle_s"] > values["auth"]["session_max_s"]:
        raise ConfigError(key="auth.session_idle_s", file=where, problem="too large",
                          expected="at most auth.session_max_s")
    _check_tls(values["api"], where)


def _check_tls(api: Mapping[str, Any], where: str) -> None:
    cert, key = api["tls_cert"], api["tls_key"]
    if cert is None and key is None:
        return
    if cert is None or key is None:
        missing = "api.tls_cert" if cert is None else "api.tls_key"
        raise TlsConfigError(key=missing, file=where, problem="missing",
                             expected="both api.tls_cert and api.tls_key, or neither")
    from agent.tls import check_pair  # cryptography is loaded only when TLS is on

    problem = check_pair(cert, key)
    if problem is not None:
        name, text = problem
        path = cert if name == "tls_cert" else key
        raise TlsConfigError(key=f"api.{name}", file=where, problem=f"{path}: {text}",
                             expected="a readable PEM certificate and its unencrypted key")


def toml_literal(value: Any) -> str:
    """Render a scalar or list as TOML (JSON string escapes are valid TOML basic strings)."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_literal(str(item)) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))
