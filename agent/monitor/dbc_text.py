"""The DBC-path probe's text as staff read it: clean lines and a one-word summary.

The monitor stores what the node itself would keep of an ``ipmitool`` run
(``baremetal.ipmi.ipmitool.parse_dbc_output``): stdout and stderr merged, inner newlines
joined with `` <line> `` (the node's wire format, docs/protocol.md §6.2). That marker is
not for people. ``ipmitool_lines`` turns the stored text back into its lines (blanks and tabs
collapsed, empty lines dropped, repeats removed) and ``dbc_failure_summary`` names the cause
in one code, which the dashboard translates (``dbc_summary.<code>``); the raw lines stay
available behind a "details" disclosure.

Words are never split: the only separator is the marker, and a line is never cut (the
store keeps at most 500 characters; a cut at that limit ends with "…").
"""

from __future__ import annotations

import re

__all__ = ["DBC_SUMMARIES", "dbc_failure_summary", "ipmitool_lines"]

# The marker the node puts between lines, with any blanks around it.
_LINE_MARK = re.compile(r"\s*<line>\s*")
_BLANKS = re.compile(r"\s+")
_STORED_MAX = 500

# Summary codes, most specific first: (code, lower-case fragments that identify it).
_PATTERNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("unsafe_value", ("not run: the stored",)),
    ("timeout", ("gave no answer within",)),
    ("auth", ("invalid user name", "authentication", "password", "unauthorized",
              "insufficient privilege", "session challenge")),
    ("no_lan_session", ("unable to establish", "no response", "lan session")),
)
DBC_SUMMARIES = (*(code for code, _ in _PATTERNS), "other")


def ipmitool_lines(message: str) -> list[str]:
    """Return the stored ipmitool text as clean lines (no ``<line>`` markers)."""
    lines: list[str] = []
    for part in _LINE_MARK.split(message.replace("\r", "\n").replace("\n", " <line> ")):
        line = _BLANKS.sub(" ", part).strip()
        if line and line not in lines:
            lines.append(line)
    if lines and len(message) >= _STORED_MAX:
        lines[-1] = lines[-1].rsplit(" ", 1)[0] + " …"
    return lines


def dbc_failure_summary(message: str) -> str:
    """Return the cause of a failed DBC-path probe as a code of ``DBC_SUMMARIES``."""
    lowered = " ".join(ipmitool_lines(message)).lower()
    for code, fragments in _PATTERNS:
        if any(fragment in lowered for fragment in fragments):
            return code
    return "other"
