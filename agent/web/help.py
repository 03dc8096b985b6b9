"""The operations manual inside the dashboard: ``/ui/help/operations`` (docs/operations.md).

Verdicts link to its sections (``#verdict-<code>``, ``#deeplink-stale``, ``#next-boot``), so
staff on the café LAN reach the fix without internet access. The file is the one the
installer copies to ``<prefix>/share/doc/bm-agent/operations.md`` (packaging/install.sh), or
the source tree's ``docs/operations.md``; it is rendered once with markdown-it-py. The manual
is the project's own text: its explicit ``<a id>`` anchors pass through, and the page's
Content-Security-Policy still forbids any script in it.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from markdown_it import MarkdownIt

from agent.i18n import translate
from agent.monitor.crosscheck import Verdict
from agent.web.templating import Markup, element

__all__ = ["manual_body", "manual_link", "manual_path", "verdict_legend"]

_NAME = "operations.md"


def manual_path() -> Path | None:
    """Return where the operations manual is, installed copy first, or None."""
    candidates = (Path(sys.prefix) / "share" / "doc" / "bm-agent" / _NAME,
                  Path(__file__).resolve().parents[2] / "docs" / _NAME)
    return next((path for path in candidates if path.is_file()), None)


@functools.cache
def _rendered(path: Path) -> str:
    renderer = MarkdownIt("commonmark", {"html": True}).enable("table")
    # The screenshots live beside the source file only: the page shows no image.
    renderer.add_render_rule("image", lambda *_args: "")
    return str(renderer.render(path.read_text(encoding="utf-8")))


def manual_body(missing_text: str) -> Markup:
    """Return the manual as HTML, or a notice with ``missing_text`` when it is not installed."""
    path = manual_path()
    if path is None:
        return element("div", missing_text, class_="notice error", id="manual-missing")
    return Markup(f'<article class="manual" id="manual">{_rendered(path)}</article>')


def manual_link(anchor: str) -> str:
    """Return the dashboard URL of one section of the manual."""
    return f"/ui/help/operations#{anchor}"


def _legend_item(data: str, badge: Markup, meaning: str, todo: str, anchor: str,
                 lang: str) -> Markup:
    colon = "：" if lang == "zh_CN" else ": "
    return Markup(
        f'<div class="legend-item" {data}>' + element("dt", badge)
        + element("dd", Markup(
            element("span", meaning, class_="legend-help")
            + " " + element("strong", translate("ui.what_to_do", lang) + colon)
            + element("span", todo, class_="legend-todo")
            + " " + element("a", translate("ui.manual", lang), href=manual_link(anchor),
                            class_="manual-link")))
        + "</div>")


def verdict_legend(lang: str) -> Markup:
    """Return the grid's legend: each verdict and a stale DeepLink code, with what to do."""
    items = [_legend_item(
        f'data-verdict="{verdict}"',
        element("span", translate(f"verdict.{verdict}", lang), class_=f"vbadge v-{verdict}"),
        translate(f"verdict_help.{verdict}", lang), translate(f"verdict_todo.{verdict}", lang),
        f"verdict-{verdict}", lang) for verdict in Verdict]
    items.append(_legend_item(
        'data-deeplink="stale"',
        element("span", "DeepLink " + translate("ui.dl_stale", lang), class_="dl-stale"),
        translate("ui.dl_stale_meaning", lang), translate("ui.dl_stale_todo", lang),
        "deeplink-stale", lang))
    return Markup(
        '<details class="legend" id="legend" open>'
        + element("summary", translate("ui.legend", lang))
        + f'<dl class="legend-list">{"".join(items)}</dl></details>')
