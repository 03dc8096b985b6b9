"""Output of the ``bm-agent`` command line: translated text, aligned tables, or JSON.

One ``Output`` per run: with ``--json`` every command writes exactly one JSON document on
stdout (nothing else goes there; notes and warnings go to stderr); without it, people get
messages in their language and tables whose columns line up even with Chinese text
(``display_width`` counts East Asian wide and full-width characters as two columns).
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from agent.i18n import translate
from agent.timefmt import format_ts as format_zoned
from agent.timefmt import load_zone, system_zone_name

__all__ = ["Output", "display_width", "format_table", "format_ts", "pad", "truncate"]

_ELLIPSIS = "…"


def display_width(text: str) -> int:
    """Return how many terminal columns ``text`` takes (wide/full-width = 2, combining = 0)."""
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def truncate(text: str, width: int) -> str:
    """Cut ``text`` to at most ``width`` columns, marking the cut with an ellipsis."""
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for char in text:
        char_width = display_width(char)
        if used + char_width > width - 1:
            break
        out.append(char)
        used += char_width
    return "".join(out) + _ELLIPSIS


def pad(text: str, width: int) -> str:
    """Left-align ``text`` in ``width`` columns."""
    return text + " " * max(0, width - display_width(text))


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *,
                 max_width: int = 48) -> str:
    """Render rows under headers with aligned columns (cells cut at ``max_width`` columns)."""
    cells = [[truncate(_cell(value), max_width) for value in row] for row in rows]
    widths = [display_width(h) for h in headers]
    for row in cells:
        for index, value in enumerate(row):
            widths[index] = max(widths[index], display_width(value))
    lines = ["  ".join(pad(h, w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(pad(v, w) for v, w in zip(row, widths, strict=True)).rstrip()
              for row in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return " ".join(str(value).split())  # one line per cell, whatever the value holds


def format_ts(ts: float | None, zone_name: str | None = None) -> str:
    """Format an epoch timestamp as ``YYYY-MM-DD HH:MM:SS UTC+8`` ("-" for None).

    In ``zone_name`` (an IANA name; default: the system's zone).
    """
    return format_zoned(ts, load_zone(zone_name or system_zone_name()))


class Output:
    """Where a command's results go, in the chosen language and format."""

    def __init__(self, *, lang: str, json_mode: bool, stdout: TextIO | None = None,
                 stderr: TextIO | None = None) -> None:
        self.lang = lang
        self.json_mode = json_mode
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.zone = load_zone(system_zone_name())  # [ui] timezone once the settings load

    def ts(self, ts: float | None) -> str:
        """Format a timestamp in the cafe's zone, with the zone shown (``UTC+8``)."""
        return format_zoned(ts, self.zone)

    def t(self, code: str, **params: Any) -> str:
        """Translate ``code`` into this run's language."""
        return translate(code, self.lang, **params)

    def t_or(self, code: str, fallback: str) -> str:
        """Translate ``code``, or return ``fallback`` when no catalogue has it."""
        text = self.t(code)
        return fallback if text == code else text

    def code(self, value: str | None, *namespaces: str) -> str | None:
        """Name a code (``ipmi_unreachable``, ``default``) in this run's language.

        The first namespace (``result``, ``reason``…) that has it wins; the code itself only
        when no catalogue knows it.
        """
        if value is None or value == "":
            return None
        for namespace in namespaces:
            text = self.t(f"{namespace}.{value}")
            if text != f"{namespace}.{value}":
                return text
        return value

    def cells(self, row: Sequence[Any]) -> list[Any]:
        """Return a table row with yes/no in this run's language (是/否)."""
        return [self.t("ui.yes" if v else "ui.no") if isinstance(v, bool) else v for v in row]

    @property
    def human(self) -> TextIO:
        """Where text for people goes: stderr under --json (stdout holds only JSON)."""
        return self.stderr if self.json_mode else self.stdout

    def say(self, code: str, **params: Any) -> None:
        """Print a translated message for people."""
        print(self.t(code, **params), file=self.human)

    def note(self, text: str) -> None:
        """Print already-built text for people."""
        print(text, file=self.human)

    def warn(self, code: str, **params: Any) -> None:
        """Print a translated warning on stderr."""
        print(self.t(code, **params), file=self.stderr)

    def json(self, document: Any) -> None:
        """Print one JSON document on stdout (UTF-8 text, not ASCII escapes)."""
        print(json.dumps(document, ensure_ascii=False, sort_keys=False, default=str),
              file=self.stdout)

    def table(self, header_codes: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Print a table whose headers are translation codes (or literal text)."""
        headers = [self.t(code) for code in header_codes]
        print(format_table(headers, [self.cells(row) for row in rows]), file=self.human)

    def fields(self, pairs: Sequence[tuple[str, Any]] | Mapping[str, Any]) -> None:
        """Print ``label: value`` lines with the labels aligned (labels are codes)."""
        items = list(pairs.items()) if isinstance(pairs, Mapping) else list(pairs)
        labels = [self.t(code) for code, _value in items]
        width = max((display_width(label) for label in labels), default=0)
        for label, (_code, value) in zip(labels, items, strict=True):
            print(f"{pad(label, width)}  {_cell(self.cells([value])[0])}", file=self.human)
