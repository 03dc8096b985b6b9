"""What staff may filter the event log by: action families and a date range.

- An **action family** names a group of actions: ``power`` matches ``power_on``,
  ``power_off``, ``power_soft``, ``power_reset`` (and any later ``power_*``). An exact action
  name still matches only itself. Anything else is refused with the list of families
  (``UnknownActionFamily``: 400 in the API, exit 2 in the CLI).
- A **date range** (``from``/``to``) takes ISO-8601: a date (``2026-12-03``: the whole day),
  or a date and time with or without an offset (``2026-12-03T08:00+08:00``). A time without
  an offset, and a bare date, are in the café's time zone (``[ui] timezone`` when configured),
  else UTC. ``to`` of a bare date includes that whole day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.errors import UnknownActionFamily, ValidationError

__all__ = ["ACTION_FAMILIES", "ActionMatch", "cafe_zone", "match_action", "parse_instant"]

# family -> the actions it holds (a family also matches any ``<family>_*`` action).
ACTION_FAMILIES: Mapping[str, tuple[str, ...]] = {
    "power": ("power_on", "power_off", "power_soft", "power_reset"),
    "boot": ("bootdev",),
    "import": ("import",),
    "server": ("modify", "delete", "register", "drift", "recheck", "worker_error"),
    "user": ("login", "user_add", "user_passwd", "user_role", "user_disable", "user_enable",
             "user_rm", "token_revoke"),
    "seat": ("enroll", "seat", "seat_approve", "seat_reject", "device_id_approve",
             "neighbour_mac"),
    "monitor": ("verdict", "pass_overrun", "pass_failed"),
    "hook": ("hook_failure",),
    "store": ("store.backup", "store.restore"),
}
_KNOWN_ACTIONS = frozenset(a for actions in ACTION_FAMILIES.values() for a in actions)


@dataclass(frozen=True)
class ActionMatch:
    """Actions an ``action`` filter selects: these names, and names starting with ``prefix``."""

    actions: tuple[str, ...]
    prefix: str | None = None


def match_action(value: str, *, exists: bool = False) -> ActionMatch:
    """Resolve an action filter: a family, a known action, or one the log holds (``exists``)."""
    wanted = value.strip().lower()
    if wanted in ACTION_FAMILIES:
        return ActionMatch(ACTION_FAMILIES[wanted], prefix=f"{wanted}_")
    if wanted in _KNOWN_ACTIONS or exists:
        return ActionMatch((value.strip(),))
    raise UnknownActionFamily(action=value[:64], families=", ".join(ACTION_FAMILIES))


def cafe_zone(settings: Any) -> tzinfo:
    """Return the café's zone: ``[ui] timezone`` when configured (a name or a tzinfo), else UTC."""
    zone = getattr(getattr(settings, "ui", None), "timezone", None)
    if isinstance(zone, tzinfo):
        return zone
    if isinstance(zone, str) and zone.strip():
        try:
            return ZoneInfo(zone.strip())
        except (ZoneInfoNotFoundError, ValueError):
            return UTC
    return UTC


def parse_instant(value: str, *, field: str, zone: tzinfo, end_of_day: bool = False) -> float:
    """Unix seconds of an ISO-8601 date or date-time (see the module docstring)."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=zone)
            return (start + timedelta(days=1 if end_of_day else 0)).timestamp()
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        return moment.timestamp()
    except (ValueError, OverflowError):
        raise ValidationError(field=field, reason="not an ISO-8601 date or date-time "
                              "(e.g. 2026-12-03 or 2026-12-03T08:00+08:00)") from None
