"""``bm-hook --check``: a technician's verdict on this PC's set-up, one item per line.

Loads the config and the key files, and prints the mode, the peer it will talk to (the
agent's URL and certificate pin, or the node's URL), each key file with its fingerprint
(token and seat key: the first 16 hex of the SHA-256 of the ed25519 public key, as the
agent's dashboard shows it; server key: its node_id), whether others may read a key file
(Linux mode bits; Windows ACL, :mod:`boot_hooks.winacl`), and the state dir. Contacts
nothing; never prints a key. Each line starts with ``OK``, ``WARNING`` (works, but look)
or ``PROBLEM`` (bm-hook would fail, or a secret is exposed; the fix follows). Exit 0 with
no PROBLEM, else 2.

``--for-image`` also fails on anything per-machine (seat key, server key, last code,
status) in the state dir: sealed into a diskless image, every PC would share it.

The token key file should be the single line ``hook_token=<64 hex>`` (install.ps1 accepts
only that); bm-hook itself still reads a bare 64-hex line, so that is a WARNING here: a
bare line may as well be the agent's public key ``hook_token.pub`` copied by mistake.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from baremetal.signing import node_id_from_private_key
from boot_hooks.config import HookConfig, load_config
from boot_hooks.errors import ConfigError, ExitCode
from boot_hooks.keys import SEAT_KEY_FIELD, find_seed, permission_problem
from boot_hooks.relay import SeatSigner
from boot_hooks.state import LOG_FILE, MEMORY_ONLY, STATUS_FILE, require_seat_key_place
from boot_hooks.tls_pin import normalize_pin

__all__ = ["Finding", "collect_findings", "run_check"]

OK, WARNING, PROBLEM = "OK", "WARNING", "PROBLEM"
_MAX_KEY_FILE_BYTES = 4096
_FIELD_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]{0,31})\s*=")
_KNOWN_FIELDS = {
    "node_private_key": "a server's node key (direct mode's [server] key_file)",
    "hook_token": "the cafe hook token ([agent] token_key_file)",
    SEAT_KEY_FIELD: "a PC's seat key ([agent] seat_key_file)",
}


@dataclass(frozen=True)
class Finding:
    """One line of the verdict."""

    verdict: str
    text: str


@dataclass(frozen=True)
class _KeyFile:
    what: str
    path: str
    field: str


def run_check(config_path: str | None, environ: Mapping[str, str], for_image: bool = False,
              out: TextIO | None = None) -> int:
    """Print the verdict; return 0 when nothing is a PROBLEM, else 2 (``ExitCode.CONFIG``)."""
    stream = out or sys.stdout
    findings = collect_findings(config_path, environ, for_image)
    for finding in findings:
        _write(stream, f"{finding.verdict:<8} {finding.text}")
    problems = sum(1 for f in findings if f.verdict == PROBLEM)
    if problems:
        _write(stream, f"result: {problems} problem(s); fix them and run bm-hook --check again")
        return int(ExitCode.CONFIG)
    _write(stream, "result: OK")
    return int(ExitCode.OK)


def _write(stream: TextIO, line: str) -> None:
    try:
        stream.write(line + "\n")
    except UnicodeEncodeError:  # a non-ASCII path on a legacy Windows code page
        stream.write(line.encode("ascii", "backslashreplace").decode("ascii") + "\n")


def collect_findings(config_path: str | None, environ: Mapping[str, str],
                     for_image: bool = False) -> list[Finding]:
    """Check everything there is to check offline; one finding per item."""
    where = config_path or "(none: environment only)"
    try:
        config = load_config(config_path, environ)
    except ConfigError as exc:
        return [Finding(PROBLEM, f"config {where}: {exc}")]
    findings = [Finding(OK, f"config {where}: loaded"), Finding(OK, f"mode: {config.mode}")]
    findings += _peers(config)
    for key_file in _key_files(config):
        findings += _check_key_file(key_file, config)
    findings += _check_state_dir(config)
    if for_image:
        findings += _check_image(config)
    return findings


def _peers(config: HookConfig) -> list[Finding]:
    found = []
    if config.mode == "agent":
        if config.agent_cert_sha256:
            pin = normalize_pin(config.agent_cert_sha256)
            found.append(Finding(OK, f"agent: {config.agent_url} (certificate pin sha256 {pin})"))
        else:
            found.append(Finding(WARNING, f"agent: {config.agent_url} is http://: requests cross"
                                 " the LAN in clear text; use the agent's https:// URL with"
                                 " [agent] cert_sha256"))
    if config.node_url:
        found.append(Finding(OK, f"node: {config.node_url}"))
    if config.node_id:
        found.append(Finding(OK, f"[server] node_id: {config.node_id}"))
    sdk = config.sdk if config.sdk_kind == "none" else f"{config.sdk_kind} {config.sdk_path}"
    found.append(Finding(OK, f"DeepLink SDK: {sdk}"))
    return found


def _key_files(config: HookConfig) -> list[_KeyFile]:
    if config.mode == "direct":
        return [_KeyFile("[server] key_file", config.key_file, "node_private_key")]
    files = [_KeyFile("[agent] token_key_file", config.token_key_file, "hook_token")]
    if config.seat_key_path:
        files.append(_KeyFile("[agent] seat_key_file", config.seat_key_path, SEAT_KEY_FIELD))
    return files


def _check_key_file(key: _KeyFile, config: HookConfig) -> list[Finding]:
    label = f"{key.what} {key.path}"
    if not os.path.lexists(key.path):
        if key.field == SEAT_KEY_FIELD:
            return [Finding(OK, f"{label}: not made yet; bm-hook makes it at its first run and"
                            " staff approve it in the dashboard")]
        return [Finding(PROBLEM, f"{label}: missing; copy the key file there (install.ps1"
                        " does it) or fix the path in the config")]
    try:
        loose = permission_problem(key.path, key.what)
        with open(key.path, "rb") as fh:
            text = fh.read(_MAX_KEY_FILE_BYTES).decode("utf-8", errors="replace")
    except ConfigError as exc:
        return [Finding(PROBLEM, str(exc))]
    except OSError as exc:
        return [Finding(PROBLEM, f"{label}: cannot read it: {exc.strerror}")]
    found = [Finding(PROBLEM, f"{label} {loose}") if loose
             else Finding(OK, f"{label}: permissions: {_who_may_read()}")]
    seed = find_seed(text, key.field)
    if seed is None:
        return [*found, Finding(PROBLEM, f"{label}: {_why_no_key(text, key.field)}")]
    return [*found, *_identify(key, label, seed.lower(), text, config)]


def _who_may_read() -> str:
    if os.name == "nt":
        return "only SYSTEM and Administrators may read it"
    return "only its owner may read it"


def _why_no_key(text: str, field: str) -> str:
    names = [m.group(1) for m in map(_FIELD_NAME.match, text.splitlines()) if m]
    others = [name for name in names if name != field]
    other = next((n for n in others if n in _KNOWN_FIELDS), others[0] if others else None)
    if other is not None:
        what = _KNOWN_FIELDS.get(other, "some other file")
        return (f"holds a '{other}=' line where '{field}=<64 hex>' is expected: this looks"
                f" like {what}; put the right key file there")
    return f"holds no 64-hex-character key (expected one line '{field}=<64 hex>')"


def _identify(key: _KeyFile, label: str, seed: str, text: str,
              config: HookConfig) -> list[Finding]:
    if key.field == "node_private_key":
        node_id = node_id_from_private_key(seed)
        if config.node_id and config.node_id != node_id:
            return [Finding(PROBLEM, f"{label}: belongs to node_id {node_id}, not to [server]"
                            f" node_id {config.node_id}; the node will refuse it")]
        return [Finding(OK, f"{label}: server key of node_id {node_id}")]
    fingerprint = SeatSigner(seed).fingerprint
    kind = "hook token" if key.field == "hook_token" else "seat key"
    found = [Finding(OK, f"{label}: {kind}, fingerprint {fingerprint}")]
    if key.field == "hook_token" and not _FIELD_NAME.match(text.strip()):
        found.append(Finding(WARNING, f"{label}: a bare 64-hex line, not 'hook_token=<64 hex>':"
                             " make sure it is the cafe's secret hook token, not the agent's"
                             " public key (hook_token.pub); install.ps1 accepts only the"
                             " 'hook_token=' line"))
    return found


def _check_state_dir(config: HookConfig) -> list[Finding]:
    directory = config.state_dir_path
    if not directory:
        try:
            require_seat_key_place(config)
        except ConfigError as exc:
            return [Finding(PROBLEM, str(exc))]
        return [Finding(WARNING, f"{MEMORY_ONLY}; set [state] dir to a directory on the disk"
                        " this PC keeps across reboots")]
    path = Path(directory)
    if path.is_dir():
        return _existing_state_dir(path, config)
    if path.exists():
        return [Finding(PROBLEM, f"[state] dir {directory}: not a directory; fix [state] dir")]
    if path.parent.is_dir():
        return [Finding(OK, f"[state] dir {directory}: absent; bm-hook makes it at its first"
                        " run")]
    seat_inside = not config.seat_key_file and config.mode == "agent"
    return [Finding(PROBLEM if seat_inside else WARNING,
                    f"[state] dir {directory}: neither it nor its parent exists (per-machine"
                    " disk not mounted?): at boot bm-hook keeps its state in memory"
                    + (" and cannot keep the seat key" if seat_inside else "")
                    + "; mount the disk or fix [state] dir")]


def _existing_state_dir(path: Path, config: HookConfig) -> list[Finding]:
    probe = path / f".bm-hook-check-{os.getpid()}"
    try:
        probe.write_bytes(b"ok\n")
        probe.unlink()
    except OSError as exc:
        return [Finding(PROBLEM, f"[state] dir {path}: not writable ({exc.strerror}); at boot"
                        " bm-hook would keep its state in memory; fix its permissions")]
    found = [Finding(OK, f"[state] dir {path}: usable; last code, log and status persist")]
    mode = stat.S_IMODE(path.stat().st_mode)
    if os.name != "nt" and mode & 0o077:
        found.append(Finding(WARNING, f"[state] dir {path}: mode {mode:04o}, others may look"
                             " inside; chmod 700 it"))
    return found


def _check_image(config: HookConfig) -> list[Finding]:
    directory = config.state_dir_path
    per_machine = [("seat key", config.seat_key_path)]
    if directory:
        per_machine += [("server key", str(Path(directory) / "server.key")),
                        ("last code", config.last_code_path),
                        ("status", str(Path(directory) / STATUS_FILE))]
        if config.key_file and Path(config.key_file).parent == Path(directory):
            per_machine.append(("server key", config.key_file))
    present = [(what, p) for what, p in dict.fromkeys(per_machine) if p and os.path.lexists(p)]
    found = [Finding(PROBLEM, f"image: {what} {p} is present: delete it before sealing the"
                     " image (every PC would share it)") for what, p in present]
    log = Path(directory) / LOG_FILE if directory else None
    if log is not None and log.exists():
        found.append(Finding(WARNING, f"image: {log} is this machine's log; delete it"))
    if not present:
        found.append(Finding(OK, f"image: no per-machine state in {directory or 'memory'}"))
    return found
