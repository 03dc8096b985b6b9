"""A failed boot on the seat's page, in headless Chromium (issue 12: failure reports).

The demo café has no hook relay, so the report is written into the store the way the relay
records it (agent.hook.reports: a sampled ``hook_failure`` event of kind deeplink), by a
second writer like the café's DeepLink rotations in tests/e2e/stack.py. pc-b02 has never
rotated its code: its page shows "Last boot failure" in the DeepLink panel and the report
in the events table, the PC's own text shown as sent (hidden characters as <U+XXXX>).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from agent.hook.reports import ACTION
from agent.models import ACTOR_HOOK, EventKind
from agent.secrets import Sealer
from agent.store import Store
from tests.e2e.stack import Cafe

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MESSAGE = "DeepLink SDK at \\\\.\\pipe\\deeplink_sdk not there after 120 s <U+202E>x"


def report_failure(cafe: Cafe, uuid: str, seat_state: str = "pending") -> None:
    key = cafe.store_path.parent / "secrets.key"
    with Store.open(cafe.store_path, sealer=Sealer.from_key_file(key)) as store:
        store.events.append(
            actor=ACTOR_HOOK, kind=EventKind.DEEPLINK, action=ACTION, server_uuid=uuid,
            result="deeplink_unreachable",
            detail={"exit_code": 4, "message": MESSAGE, "attempt": 3, "uptime_s": 412.5,
                    "boot_id": "5e0c8b1a-7f2d-4c3e", "occurred_at": time.time(),
                    "seat": "c1e9240418bb0b5a", "seat_state": seat_state,
                    "sampled": True, "repeats": 0})


def test_a_failed_boot_shows_on_the_seats_page(new_page: Any, cafe: Cafe) -> None:
    report_failure(cafe, "pc-b02")
    page = new_page("viewer")  # zh_CN: the café's default language
    page.goto("/ui/servers/pc-b02")
    page.wait_for_selector("#boot-failure", timeout=30_000)
    shown = page.inner_text("#boot-failure")
    assert "无法连接 DeepLink" in shown and "退出码 4，第 3 次尝试" in shown
    assert MESSAGE in shown and "尚待批准" in shown
    row = page.locator('#events tr[data-kind="deeplink"]', has_text="开机钩子失败").first
    assert MESSAGE in row.inner_text()
    assert "res-failed" in str(row.locator("td").nth(3).get_attribute("class"))
    page.goto("/ui/servers/pc-b02?lang=en")
    page.wait_for_selector("#boot-failure", timeout=30_000)
    shown = page.inner_text("#boot-failure")
    assert "DeepLink unreachable" in shown and "exit 4, attempt 3, 7 min after boot" in shown
    assert page.errors == []


def test_a_rotation_after_the_failure_hides_it(new_page: Any, cafe: Cafe) -> None:
    report_failure(cafe, "pc-a01", seat_state="approved")  # pc-a01 rotated before: now again
    key = cafe.store_path.parent / "secrets.key"
    with Store.open(cafe.store_path, sealer=Sealer.from_key_file(key)) as store:
        server = store.servers.get_by_uuid(uuid="pc-a01")
        time.sleep(0.01)
        store.deeplink.record(server_id=server.id, result="confirmed", rotated=True,
                              boot_seen=True, device_id="731000100")
    page = new_page("viewer")
    page.goto("/ui/servers/pc-a01")
    page.wait_for_selector("#events tbody tr", timeout=30_000)
    page.wait_for_function("() => document.querySelectorAll('#deeplink dt').length > 0")
    assert page.query_selector("#boot-failure") is None
    assert "开机钩子失败" in page.inner_text("#events")
    assert page.errors == []
