"""Fresh or visibly old, never old-as-live; selection after filters and actions (issue 13,
items 1, 3 and the grid's part of 10).

The monitor passes every 20 s here (a café's default is 60 s), so what the page shows
between passes is visibly the page's doing: a first load after a quiet spell asks for a
fresh pass and marks the older readings until it arrives; after an action the card says
操作中 and then shows the read-back at once; the live indicator says how old the data is;
offline greys the grid under a banner and the times stop.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.e2e.conftest import login
from tests.e2e.stack import Cafe, start_cafe, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CELL = '.cell[data-uuid="{}"]'
INTERVAL_S = 20.0
# Records, from the first script on, every old cell, 操作中 badge and live text seen.
WATCH = """
window.__seen = {old: new Set(), pending: new Set(), live: new Set()};
new MutationObserver(() => {
  document.querySelectorAll(".cell.old").forEach(c => window.__seen.old.add(c.dataset.uuid));
  document.querySelectorAll(".cell.pending").forEach(c => {
    if (c.querySelector(".badge").textContent === "操作中…") window.__seen.pending.add(c.dataset.uuid);
  });
  const live = document.getElementById("live");
  if (live) window.__seen.live.add(live.textContent);
}).observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
"""


@pytest.fixture(scope="module")
def cafe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cafe]:
    started = start_cafe(tmp_path_factory.mktemp("cafe-slow"),
                         config={"check.interval_s": INTERVAL_S, "check.jitter_s": 0})
    try:
        started.import_inventory()
        _first_readings(started)
        yield started
    finally:
        started.stop()


def _first_readings(cafe: Cafe) -> None:
    """Poll the grid as a first load does (no ETag) until every server has a reading."""
    headers = {"Authorization": f"Bearer {cafe.token('viewer')}"}

    def read() -> bool:
        rows = requests.get(f"{cafe.url}/ui/api/grid", headers=headers, timeout=10).json()
        return all(r["t"] is not None for r in rows["servers"])
    wait_for(read, timeout=30, every=1.0)


def _seen(page: Any, what: str) -> list[str]:
    return list(page.evaluate(f"Array.from(window.__seen.{what})"))


def _power(page: Any, uuid: str) -> str:
    return str(page.get_attribute(CELL.format(uuid), "data-power"))


def test_first_load_after_idle_is_fresh_or_marked_old(new_page: Any, cafe: Cafe) -> None:
    time.sleep(6)  # quiet: the last pass is older than the 5 s a first load accepts
    cafe.bmcs["pc-a03"].set_power("off")  # behind the agent's back
    page = new_page(None)
    page.add_init_script(WATCH)
    started = time.monotonic()
    login(page, "operator")
    page.wait_for_function(f'() => document.querySelector(\'{CELL.format("pc-a03")}\')'
                           '.dataset.power === "off"', timeout=10_000)
    assert time.monotonic() - started < 8, "a fresh pass, not the next scheduled one"
    assert "pc-a03" in _seen(page, "old"), "the old reading was marked while it was shown"
    assert "正在读取最新状态…" in _seen(page, "live")
    page.wait_for_function('() => /^数据 \\d+ 秒前$/.test(document.getElementById("live")'
                           '.textContent)', timeout=10_000)  # the data's age, not the clock
    assert page.locator(".cell.old").count() == 0
    assert page.errors == []


def test_working_then_the_read_back_at_once_and_the_selection_is_spent(
        new_page: Any, cafe: Cafe) -> None:
    page = new_page(None)
    page.add_init_script(WATCH)
    login(page, "operator")
    page.wait_for_function(f'() => document.querySelector(\'{CELL.format("pc-b03")}\')'
                           '.dataset.power === "on"', timeout=30_000)
    page.check(CELL.format("pc-b03") + " .pick")
    page.click("#act")
    page.click('[data-action="power-off"]')
    page.click("#bm-confirm")
    page.wait_for_selector('#bm-results tr[data-uuid="pc-b03"]', timeout=30_000)
    assert cafe.bmcs["pc-b03"].state()["power"] == "off"
    page.wait_for_function(f'() => document.querySelector(\'{CELL.format("pc-b03")}\')'
                           '.dataset.power === "off"', timeout=1_500)  # no ~9 s of "on"
    assert "pc-b03" in _seen(page, "pending"), "操作中 while the action ran"
    assert page.inner_text("#sel-count") == "已选择 0 台"
    assert page.locator(".cell.selected").count() == 0
    page.click("#bm-close")
    assert page.errors == []


def test_a_filter_that_hides_selected_seats_says_so_and_the_confirm_lists_all(
        new_page: Any, cafe: Cafe) -> None:
    page = new_page("operator")
    page.check(CELL.format("pc-a01") + " .pick")
    page.check('section.group[data-group="B"] .group-head input')
    assert page.inner_text("#sel-count") == "已选择 4 台"
    page.fill("#search", "pc-a0")  # shows row A only: three of the four are hidden
    assert page.inner_text("#sel-count") == "已选择 4 台（含 3 台未显示）"
    page.click("#act")
    page.click('[data-action="power-on"]')
    targets = page.eval_on_selector_all("#bm-targets li", "ls => ls.map(l => l.dataset.uuid)")
    assert targets == ["pc-a01", "pc-b01", "pc-b02", "pc-b03"]
    page.keyboard.press("Escape")
    assert page.errors == []


def test_sorting_in_the_url_and_offline_greys_the_grid(new_page: Any, cafe: Cafe) -> None:
    page = new_page("operator")
    page.select_option("#sort-by", "power")
    assert "sort=power" in page.url
    page.reload()
    page.wait_for_selector(".cell")
    assert page.input_value("#sort-by") == "power"
    powers = page.eval_on_selector_all(".cell", "cs => cs.map(c => c.dataset.power)")
    for group in (powers[:3], powers[3:]):  # within each row: on before off
        assert group == sorted(group, key=lambda p: {"on": 0, "off": 1}.get(p, 2)), powers
    assert page.inner_text(CELL.format("pc-a02") + " .desc") == "GPU PC A02"
    page.route("**/ui/api/grid", lambda route: route.abort())  # the agent is unreachable
    page.wait_for_selector("#offline:not([hidden])", timeout=15_000)
    # Times carry the café zone ([ui] timezone: UTC here, UTC+8 in Shanghai).
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC(?:[+-]\d{1,2}(?::\d\d)?)?"
    assert re.match(rf"无法连接代理（自 {stamp} 起）", page.inner_text("#offline"))
    assert "offline" in (page.get_attribute("#grid", "class") or "")
    frozen = page.inner_text(CELL.format("pc-a01") + " .checked")
    assert re.match(rf"检查于 {stamp}$", frozen), frozen  # not "N 秒前"
    assert page.inner_text("#live").startswith("离线 · 最后数据 ")
    page.unroute("**/ui/api/grid")
    page.wait_for_selector("#offline[hidden]", state="attached", timeout=15_000)
    assert "offline" not in (page.get_attribute("#grid", "class") or "")
    assert page.errors == []
