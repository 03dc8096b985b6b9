"""The café's one time zone (``[ui] timezone``) and the one way times are shown.

Staff read times from the CLI and from the dashboard; both show them in the café's zone,
with the zone written out (``2026-12-03 23:23:22 UTC+8``) so a time never looks local to
the wrong place. The web gets the IANA name through the page (``data-tz`` on ``<body>``)
and ``common.js`` formats with it the same way.

- ``system_zone_name()``: the host's zone (``TZ``, ``/etc/timezone``, ``/etc/localtime``),
  ``UTC`` when none can be found: the default of ``[ui] timezone``;
- ``load_zone(name)``: the ``ZoneInfo`` for an IANA name (``ValueError`` if unknown);
- ``utc_offset_label(offset)``: ``UTC+8``, ``UTC+5:30``, ``UTC-3``, ``UTC``;
- ``format_ts(ts, zone)``: ``YYYY-MM-DD HH:MM:SS UTC+8`` ("-" for None).
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["format_ts", "load_zone", "system_zone_name", "utc_offset_label"]

_ZONEINFO_DIRS = ("/usr/share/zoneinfo/", "/usr/lib/zoneinfo/", "/usr/share/lib/zoneinfo/")


def _valid(name: str) -> bool:
    try:
        load_zone(name)
    except ValueError:
        return False
    return True


def system_zone_name() -> str:
    """Return the host's IANA zone name (``UTC`` when it cannot be told)."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    target = os.path.realpath("/etc/localtime")
    candidates += [target.split(prefix, 1)[1] for prefix in _ZONEINFO_DIRS if prefix in target]
    for name in candidates:
        if name and _valid(name):
            return "UTC" if name in ("Etc/UTC", "Etc/Universal", "UCT", "Zulu") else name
    return "UTC"


def load_zone(name: str) -> tzinfo:
    """Return the zone for an IANA name; ``ValueError`` when there is no such zone.

    ``UTC`` works even on a host without the zone database.
    """
    text = name.strip()
    if not text or text.startswith(("/", ".")) or ".." in text:
        raise ValueError(f"{name!r} is not an IANA time zone name")
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        if text == "UTC":
            return UTC
        raise ValueError(f"{name!r} is not an IANA time zone name") from None


def utc_offset_label(offset: timedelta | None) -> str:
    """Render an offset from UTC as ``UTC+8``, ``UTC+5:30``, ``UTC-3`` or ``UTC``."""
    minutes = int((offset or timedelta()).total_seconds() // 60)
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def format_ts(ts: float | None, zone: tzinfo) -> str:
    """Format an epoch timestamp as ``YYYY-MM-DD HH:MM:SS UTC+8`` in ``zone`` ("-" for None)."""
    if ts is None:
        return "-"
    moment = datetime.fromtimestamp(ts, zone)
    return f"{moment:%Y-%m-%d %H:%M:%S} {utc_offset_label(moment.utcoffset())}"
