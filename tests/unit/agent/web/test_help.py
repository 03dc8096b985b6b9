"""The manual inside the dashboard and the grid's verdict legend (issue 13 item 4)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent.i18n import catalogue
from agent.monitor.crosscheck import Verdict
from agent.monitor.dbc_text import DBC_SUMMARIES
from agent.web import help as manual

REPO = Path(__file__).resolve().parents[4]


def test_the_manual_is_found_and_keeps_its_anchors() -> None:
    assert manual.manual_path() == REPO / "docs" / "operations.md"
    body = manual.manual_body("missing")
    assert body.startswith('<article class="manual"')
    for verdict in Verdict:
        assert f'id="verdict-{verdict}"' in body
    assert 'id="deeplink-stale"' in body and 'id="next-boot"' in body
    assert "<img" not in body  # the screenshots are beside the source file only


def test_a_missing_manual_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manual, "manual_path", lambda: None)
    body = manual.manual_body("<not installed>")
    assert 'id="manual-missing"' in body and "&lt;not installed&gt;" in body


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_every_verdict_and_cause_has_its_text(lang: str) -> None:
    texts = catalogue(lang)
    for verdict in Verdict:
        assert texts[f"verdict_todo.{verdict}"], verdict
        assert texts[f"verdict_help.{verdict}"], verdict
    for code in DBC_SUMMARIES:
        assert texts[f"dbc_summary.{code}"], code


def test_the_legend_lists_every_verdict_with_a_link_to_its_section() -> None:
    legend = manual.verdict_legend("en")
    assert legend.count('class="legend-item"') == len(Verdict) + 1  # + a stale DeepLink code
    anchors = set(re.findall(r'<a id="([^"]+)"></a>',
                             (REPO / "docs" / "operations.md").read_text(encoding="utf-8")))
    links = re.findall(r'href="/ui/help/operations#([^"]+)"', legend)
    assert len(links) == len(Verdict) + 1 and set(links) <= anchors
    assert "deeplink-stale" in links
    assert "What to do: " in legend
