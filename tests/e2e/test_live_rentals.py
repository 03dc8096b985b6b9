"""Rented PCs in view, and forcing them off needs a second acknowledgement (issue 13, item 2).

The emulator serves its rentals file as the DBC chain simulator (``--chain-sim-listen``)
and the agent asks it (``[chain] hosts``): one rental truth for both. PC-A01, PC-B01 and
PC-B02 are rented (rent ending 600 blocks = 1 h after the current block), the others idle.
The grid, the seat's page and the confirm show 出租中（至 …）/ 空闲; 强制关机 / 软关机 / 重启
of a rented seat needs the acknowledgement box; the API refuses without
``confirm_rented`` (409 ``seat_rented`` with the end), so no client can bypass it.
Screenshots (zh, laptop 1366×768 and phone 390×844) go to docs/screenshots/.
"""

from __future__ import annotations

import calendar
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.stack import LAYOUT, RENTED, Cafe, start_cafe, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "docs" / "screenshots"
CELL = '.cell[data-uuid="{}"]'
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
BLOCK, RENT_END = 1000, 1600  # 600 blocks of 6 s: the rent ends in one hour


@pytest.fixture(scope="module")
def cafe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cafe]:
    """The demo café with the chain simulator as the rental truth."""
    started = start_cafe(tmp_path_factory.mktemp("cafe-chain"), chain=True)
    try:
        node_ids = started.import_inventory()
        started.emulator.set_rentals({"current_block": BLOCK, "machines": {
            node_ids[uuid]: {"status": "rented", "renter": "5Renter", "rent_end": RENT_END}
            if uuid in RENTED else {"status": "online"} for uuid, *_ in LAYOUT}})
        yield started
    finally:
        started.stop()


def _rental(cafe: Cafe, uuid: str) -> dict[str, Any]:
    answer = requests.get(f"{cafe.url}/api/v1/servers/{uuid}", timeout=10,
                          headers={"Authorization": f"Bearer {cafe.token('viewer')}"})
    answer.raise_for_status()
    return dict(answer.json()["rental"])


def _unix(iso: str) -> float:
    return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))


def _rentals_known(cafe: Cafe) -> None:
    """Wait until the chain's answers (with the rents' ends) reached the agent."""
    wait_for(lambda: all(_rental(cafe, u)["until"] for u in RENTED)
             and _rental(cafe, "pc-a02")["state"] == "idle", timeout=30)


def _shot(page: Any, artifacts: Path, name: str) -> None:
    """Screenshot into test-artifacts/; into docs/screenshots/ when missing or asked for."""
    path = artifacts / f"live-{name}.png"
    page.screenshot(path=str(path))
    tracked = SHOTS / f"{name}.png"
    if not tracked.exists() or os.environ.get("BM_UPDATE_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, tracked)


def test_the_api_shape_and_the_refusal_without_the_acknowledgement(cafe: Cafe) -> None:
    _rentals_known(cafe)
    rental = _rental(cafe, "pc-b01")
    assert rental["stale"] is False
    assert abs(_unix(rental["until"]) - (time.time() + (RENT_END - BLOCK) * 6)) < 120, rental
    headers = {"Authorization": f"Bearer {cafe.token('operator')}"}
    bmc = cafe.bmcs["pc-b01"]
    assert bmc.state()["power"] == "on"
    for url, body in ((f"{cafe.url}/api/v1/actions/power", {"uuids": ["pc-b01", "pc-a03"],
                                                           "action": "off"}),
                      (f"{cafe.url}/api/v1/servers/pc-b01/power", {"action": "soft"}),
                      (f"{cafe.url}/api/v1/actions/power", {"label": "row=B",
                                                           "action": "reset"})):
        refused = requests.post(url, json=body, headers=headers, timeout=30)
        assert refused.status_code == 409, refused.text
        error = refused.json()["error"]
        assert error["code"] == "seat_rented"
        [named] = [r for r in error["rented"] if r["uuid"] == "pc-b01"]
        assert abs(_unix(named["until"]) - _unix(rental["until"])) < 30  # an estimate
        assert f"pc-b01 ({named['until']})" in error["message"]
        assert "pc-a03" not in error["message"]  # idle: not named
    assert bmc.state()["power"] == "on", "nothing ran"
    assert cafe.bmcs["pc-a03"].state()["power"] == "on", "not even the idle one in the batch"
    done = requests.post(f"{cafe.url}/api/v1/servers/pc-b01/power", headers=headers, timeout=30,
                         json={"action": "off", "confirm_rented": True})
    assert done.status_code == 200 and done.json()["ok"], done.text
    assert bmc.state()["power"] == "off"
    back_on = requests.post(f"{cafe.url}/api/v1/servers/pc-b01/power", headers=headers,
                            timeout=30, json={"action": "on"})  # on never asks
    assert back_on.status_code == 200, back_on.text


def test_rented_seats_in_view_and_the_second_acknowledgement(
        new_page: Any, cafe: Cafe, artifacts_dir: Path) -> None:
    _rentals_known(cafe)
    page = new_page("operator", viewport=LAPTOP)
    page.wait_for_function('() => document.querySelector(\'.cell[data-uuid="pc-a01"]\')'
                           '.dataset.rental === "rented"', timeout=30_000)
    cell = page.inner_text(CELL.format("pc-a01"))
    assert re.search(r"出租中（至 (\d\d-\d\d )?\d\d:\d\d）", cell), cell  # short on a card
    assert "GPU PC A01" in cell  # the seat's description on the card, not only a tooltip
    assert "空闲" in page.inner_text(CELL.format("pc-a02"))
    _shot(page, artifacts_dir, "grid-zh-laptop")
    page.check(CELL.format("pc-a01") + " .pick")
    page.check(CELL.format("pc-a03") + " .pick")
    page.click("#act")
    soft = page.locator('[data-action="power-soft"]')
    assert "soft" in (soft.get_attribute("class") or "")  # its own colour, not 开机's blue
    assert "primary" not in (soft.get_attribute("class") or "")
    page.click('[data-action="power-off"]')
    targets = page.eval_on_selector_all("#bm-targets li", "ls => ls.map(l => l.dataset.uuid)")
    assert targets == ["pc-a01", "pc-a03"]
    warning = page.inner_text("#bm-rented-warning")
    assert "pc-a01" in warning and "pc-a03" not in warning
    assert re.search(r"租期至 \d{4}-\d\d-\d\d \d\d:\d\d", warning), warning
    assert page.is_disabled("#bm-confirm"), "one click is not enough for a rented seat"
    _shot(page, artifacts_dir, "confirm-rented-zh-laptop")
    page.check("#bm-rented-ack")
    assert page.is_enabled("#bm-confirm")
    page.uncheck("#bm-rented-ack")
    assert page.is_disabled("#bm-confirm")
    page.set_viewport_size(PHONE)
    _shot(page, artifacts_dir, "confirm-rented-zh-phone")
    assert cafe.bmcs["pc-a01"].state()["power"] == "on", "nothing ran"
    page.check("#bm-rented-ack")  # acknowledged: the page sends confirm_rented
    page.click("#bm-confirm")
    page.wait_for_selector('#bm-results tr[data-uuid="pc-a01"]', timeout=30_000)
    assert page.get_attribute('#bm-results tr[data-uuid="pc-a01"]', "data-outcome") == "verified"
    assert cafe.bmcs["pc-a01"].state()["power"] == "off"
    page.click("#bm-close")
    page.evaluate("window.scrollTo(0, 0)")
    _shot(page, artifacts_dir, "grid-zh-phone")
    page.goto("/ui/servers/pc-a01")
    page.wait_for_selector('#state [data-rental="rented"]')
    assert "出租中（至" in page.inner_text("#state")
    assert page.errors == []


def test_the_docs_show_the_screenshots() -> None:
    text = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    for name in ("grid-zh-laptop", "grid-zh-phone", "confirm-rented-zh-laptop",
                 "confirm-rented-zh-phone"):
        assert f"screenshots/{name}.png" in text
