"""What ``bm-agent events`` (and ``servers show``) need to show the log in words.

- ``action_family(ctx, wanted)``: ``--action power`` -> ``power_on``, ``power_off``…; a name
  or its translation (``强制关机``); an action nothing knows is a usage error (exit 2);
- ``detail_text(ctx, detail)``: an event's details with keys and known codes by name.
"""

from __future__ import annotations

from typing import Any

from agent.cli.context import CliError, Ctx
from agent.i18n import catalogue, translate

__all__ = ["action_family", "detail_text"]


def action_family(ctx: Ctx, wanted: str) -> str:
    """Return the events query's ``action`` filter for ``--action``.

    A name, a family (``power``: the store matches power_on, power_off…,
    agent.event_filters), or a name's translation in either language (``强制关机``).
    An action nothing knows (neither the catalogue nor the log) is a usage error (exit 2)
    that lists the known names, instead of an empty answer.
    """
    known = ctx.store().events.action_names() | {
        code.removeprefix("action.") for code in catalogue("en") if code.startswith("action.")}
    text = wanted.strip().lower()
    by_label = {translate(f"action.{name}", lang).lower(): name
                for name in known for lang in ("en", "zh_CN")}
    found = sorted(name for name in known
                   if name == text or name.startswith((f"{text}_", f"{text}.")))
    if found:
        return text
    if text in by_label:
        return by_label[text]
    raise CliError("cli.action_unknown", action=wanted, known=", ".join(sorted(known)))


def detail_text(ctx: Ctx, detail: Any) -> str:
    """``电源=关机 启动设备=网络（PXE）``: keys and known codes by name, other values as is."""
    parts = []
    # A message first: the table cuts long cells (a hook_failure's message is the point).
    for key, value in sorted(dict(detail).items(), key=lambda item: item[0] != "message"):
        if isinstance(value, dict | list) or value in (None, ""):
            continue
        shown = ctx.out.cells([value])[0] if isinstance(value, bool) else \
            ctx.out.code(str(value), "power", "bootdev", "result", "reason")
        parts.append(f"{ctx.out.code(key, 'cli.detail', 'ui')}={shown}")
    return " ".join(parts)
