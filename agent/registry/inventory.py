r"""Parse and validate server inventories (CSV or JSON) before anything is stored.

A CSV file has a header row with the node's own field names (docs/protocol.md §3.2):
``uuid,ip,os,desc,ipmi_hostname,ipmi_username,ipmi_password,ipmi_port`` plus the
optional ``mac`` and ``labels`` (``row=A;zone=vip``). A JSON file is a list of objects
with the same keys. Every bad row is reported with its line and reason; good rows still
come through. Pure: bytes in, ``ImportReport`` out.

The rules are stricter than the node's, on purpose:

- the node builds its JSON answers without escaping (§2.5), so a ``"`` or ``\\`` in any
  stored string breaks the list for everyone: refused;
- the node passes IPMI fields to ``sh -c`` unquoted (§6.2), so each must be one plain
  shell word (``baremetal.ipmi.shell_word``: no blanks, metacharacters, globs, ``~``...),
  the host name included; an IPv6 scope id is allowed only as an interface name or
  number (``fe80::1%eth0``): refused otherwise;
- free text (``os``, ``desc``, label values) shown on the dashboard must not hide
  control or text-direction characters (``agent.display_text``): refused;
- a broken file (a CSV field over the csv module's limit, JSON nested too deeply) is
  one file error, never an exception;
- ``ip`` must be the dotted IPv4 address DeepLink connects from (§7.2).
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.display_text import hidden_character, visible
from agent.labels import split_pairs
from baremetal.errors import UnsafeShellWord
from baremetal.ipmi.shell_word import check_shell_word

__all__ = [
    "CSV_FIELDS",
    "CSV_TEMPLATE",
    "ImportReport",
    "RowError",
    "ServerSpec",
    "parse_csv",
    "parse_inventory",
    "parse_json",
    "parse_labels",
    "validate_row",
]

CSV_FIELDS = (
    "uuid", "ip", "os", "desc", "ipmi_hostname", "ipmi_username", "ipmi_password", "ipmi_port",
)
OPTIONAL_FIELDS = ("mac", "labels")
# A file staff can fill in: the header and one example row, UTF-8 with a BOM so Excel
# opens the Chinese text correctly (the importer reads it back as it is).
CSV_TEMPLATE = ("\ufeff" + ",".join((*CSV_FIELDS, *OPTIONAL_FIELDS)) + "\r\n"
                "PC-A01,192.168.1.101,Windows 10,A排1号 RTX 4090,192.168.2.101,admin,"
                "change-me,623,,zone=大厅;row=A\r\n").encode("utf-8")
_REQUIRED = ("uuid", "ip", "ipmi_hostname", "ipmi_username", "ipmi_password")
_UUID = re.compile(r"[A-Za-z0-9-]{1,64}")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
# An IPv6 zone: an interface name or index (what ipmitool's getaddrinfo understands).
_SCOPE_ID = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_PORT_TEXT = re.compile(r"[0-9]{1,5}")
_MAC = re.compile(r"([0-9a-f]{2})([:-]?)([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2"
                  r"([0-9a-f]{2})\2([0-9a-f]{2})")
_FREE_TEXT_MAX = 256
_IPMI_USER_MAX = 16  # IPMI 2.0 user name field (bytes)
_IPMI_PASSWORD_MAX = 20  # IPMI 2.0 password field (bytes)
_MAX_ROWS = 5000


@dataclass(frozen=True)
class ServerSpec:
    """One validated inventory row; the IPMI password never appears in its repr."""

    uuid: str
    ip: str
    ipmi_hostname: str
    ipmi_username: str
    ipmi_password: str = field(repr=False)
    ipmi_port: int | None = None
    os: str = ""
    desc: str = ""
    mac: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RowError:
    """Why one row was refused: ``code`` is an i18n key, ``field`` the culprit."""

    line: int
    field: str
    code: str
    detail: str = ""
    uuid: str = ""

    def message(self) -> str:
        """English one-liner for logs and the JSON API."""
        where = f"line {self.line}" + (f" ({self.uuid})" if self.uuid else "")
        return f"{where}: {self.field}: {self.code}" + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class ImportReport:
    """Validated rows and refused rows of one file."""

    servers: tuple[ServerSpec, ...]
    errors: tuple[RowError, ...]


class _RowInvalid(Exception):
    def __init__(self, field_name: str, code: str, detail: str = "") -> None:
        super().__init__(code)
        self.field = field_name
        self.code = code
        self.detail = detail


def parse_inventory(data: bytes, filename: str = "") -> ImportReport:
    """Parse CSV or JSON, chosen by file name or by the first non-blank byte."""
    if filename.lower().endswith(".json") or data.lstrip()[:1] in (b"[", b"{"):
        return parse_json(data)
    return parse_csv(data)


def parse_csv(data: bytes) -> ImportReport:
    """Parse a CSV inventory (UTF-8 with or without BOM, or GB18030 as Excel saves it)."""
    reader = csv.reader(io.StringIO(_decode(data), newline=""))
    try:
        return _read_csv(reader)
    except csv.Error as exc:  # e.g. a field over csv.field_size_limit() (128 KiB)
        return ImportReport((), (RowError(reader.line_num or 1, "file", "bad_csv",
                                          str(exc)[:200]),))


def _read_csv(reader: Any) -> ImportReport:
    header = next(reader, None)
    if header is None:
        return ImportReport((), (RowError(1, "header", "empty_file"),))
    names = [name.strip().lower() for name in header]
    unknown = [n for n in names if n not in CSV_FIELDS + OPTIONAL_FIELDS]
    missing = [n for n in _REQUIRED if n not in names]
    if unknown or missing:
        detail = ", ".join([f"unknown {visible(n)[:40]}" for n in unknown]
                           + [f"missing {n}" for n in missing])
        return ImportReport((), (RowError(1, "header", "bad_header", detail),))
    rows = ((reader.line_num, dict(zip(names, values, strict=False))) for values in reader)
    return _collect((line, row) for line, row in rows if any(v.strip() for v in row.values()))


def parse_json(data: bytes) -> ImportReport:
    """Parse a JSON inventory: a list of objects (or ``{"servers": [...]}``)."""
    try:
        doc = json.loads(_decode(data))
    except ValueError as exc:
        return ImportReport((), (RowError(1, "file", "bad_json", str(exc)[:200]),))
    except RecursionError:
        return ImportReport((), (RowError(1, "file", "bad_json", "nested too deeply"),))
    if isinstance(doc, dict):
        doc = doc.get("servers")
    if not isinstance(doc, list):
        return ImportReport((), (RowError(1, "file", "bad_json", "expected a list of servers"),))
    return _collect(enumerate(doc, start=1))


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")


def _collect(rows: Iterable[tuple[int, Any]]) -> ImportReport:
    servers: list[ServerSpec] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        if len(servers) + len(errors) >= _MAX_ROWS:
            errors.append(RowError(line, "file", "too_many_rows", str(_MAX_ROWS)))
            break
        try:
            spec = validate_row(row)
        except _RowInvalid as exc:
            uuid = visible(str(row.get("uuid", "")))[:64] if isinstance(row, dict) else ""
            errors.append(RowError(line, exc.field, exc.code, exc.detail, uuid))
            continue
        if spec.uuid in seen:
            errors.append(RowError(line, "uuid", "duplicate_uuid", f"line {seen[spec.uuid]}",
                                   spec.uuid))
            continue
        seen[spec.uuid] = line
        servers.append(spec)
    return ImportReport(tuple(servers), tuple(errors))


def validate_row(row: Any) -> ServerSpec:
    """Validate one row (a mapping of field name to value); raise on the first problem."""
    if not isinstance(row, dict):
        raise _RowInvalid("row", "not_an_object")
    text = {name: _text(row, name) for name in CSV_FIELDS + OPTIONAL_FIELDS if name != "ipmi_port"}
    for name in _REQUIRED:
        if not text[name]:
            raise _RowInvalid(name, "required")
    return ServerSpec(
        uuid=_check_uuid(text["uuid"]),
        ip=_check_ip(text["ip"]),
        ipmi_hostname=_check_hostname(text["ipmi_hostname"]),
        ipmi_username=_check_shell_safe("ipmi_username", text["ipmi_username"], _IPMI_USER_MAX),
        ipmi_password=_check_shell_safe("ipmi_password", text["ipmi_password"],
                                        _IPMI_PASSWORD_MAX),
        ipmi_port=_check_port(row.get("ipmi_port")),
        os=_check_free_text("os", text["os"]),
        desc=_check_free_text("desc", text["desc"]),
        mac=_check_mac(text["mac"]) if text["mac"] else None,
        labels=parse_labels(text["labels"]),
    )


def _text(row: dict[str, Any], name: str) -> str:
    value = row.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _RowInvalid(name, "not_a_string")
    return value.strip()


def _check_uuid(value: str) -> str:
    # The node accepts ASCII letters, digits and '-' (bare_metal_node_manager.h:17-28).
    if not _UUID.fullmatch(value):
        raise _RowInvalid("uuid", "bad_uuid", "letters, digits and '-' only, at most 64")
    return value


def _check_ip(value: str) -> str:
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        raise _RowInvalid("ip", "bad_ip", "dotted IPv4 address expected") from None
    return str(address)


def _check_hostname(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        if not _HOSTNAME.fullmatch(value):
            raise _RowInvalid("ipmi_hostname", "bad_hostname") from None
        return _shell_word("ipmi_hostname", value)
    # Python accepts almost any text as an IPv6 scope id ("fe80::1%;id;"): the shell rule
    # applies to the whole value, and a scope id must look like an interface name.
    _shell_word("ipmi_hostname", value)
    scope = getattr(address, "scope_id", None)
    if scope is not None and not _SCOPE_ID.fullmatch(scope):
        raise _RowInvalid("ipmi_hostname", "bad_hostname")
    return _shell_word("ipmi_hostname", str(address))


def _check_shell_safe(name: str, value: str, max_bytes: int) -> str:
    if len(value.encode()) > max_bytes:
        raise _RowInvalid(name, "too_long", f"at most {max_bytes} bytes for IPMI")
    return _shell_word(name, value)


def _shell_word(name: str, value: str) -> str:
    """Apply the node's shell-line rule (``baremetal.ipmi.shell_word``); never echo the value."""
    try:
        return check_shell_word(name, value)
    except UnsafeShellWord as exc:
        raise _RowInvalid(name, "unsafe_characters", exc.rule) from None


def _check_display_text(name: str, value: str) -> None:
    hidden = hidden_character(value)
    if hidden is not None:
        raise _RowInvalid(name, "hidden_character", hidden)


def _check_free_text(name: str, value: str) -> str:
    if len(value) > _FREE_TEXT_MAX:
        raise _RowInvalid(name, "too_long", f"at most {_FREE_TEXT_MAX} characters")
    _check_display_text(name, value)
    if any(ch in value for ch in '"\\'):
        raise _RowInvalid(name, "unsafe_characters",
                          "quotes and backslashes break the node's JSON")
    return value


def _check_port(value: Any) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, str) and _PORT_TEXT.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise _RowInvalid("ipmi_port", "bad_port", "1..65535")
    return value


def _check_mac(value: str) -> str:
    match = _MAC.fullmatch(value.lower())
    if not match:
        raise _RowInvalid("mac", "bad_mac")
    return ":".join(match.group(i) for i in (1, 3, 4, 5, 6, 7))


def parse_labels(value: str) -> dict[str, str]:
    """Parse ``row=A;zone=vip`` with the grammar of ``agent.labels`` (bare word: ``tag=word``)."""
    labels: dict[str, str] = {}
    for pair in split_pairs(value):
        _check_display_text("labels", pair.raw)
        if not pair.valid:
            raise _RowInvalid("labels", "bad_label", visible(pair.raw.strip())[:40])
        labels[pair.key] = pair.value
    return labels
