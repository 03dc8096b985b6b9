"""Admin pages in real Chromium: the users page (list, add, change role, reset password,
delete with a confirm; no such page for a viewer), editing and deleting a seat on its
detail page (confirmed), the tab title naming the seat, help links, English plural forms,
and no word or id broken in the middle on a narrow phone (found: "legacy BIO S", "PC-/A02").
"""

from __future__ import annotations

from typing import Any

import requests

from agent.i18n import translate
from tests.e2e.stack import Cafe, wait_for

# Every short word or id in the page's text that the browser laid out across two lines.
BROKEN_WORDS = """() => {
  const bad = [];
  const walker = document.createTreeWalker(document.querySelector("main"), NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const re = /[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]/g;
    for (let m = re.exec(node.textContent); m; m = re.exec(node.textContent)) {
      if (m[0].length > 20) continue;  // a long token may wrap rather than scroll
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const tops = new Set([...range.getClientRects()].filter(r => r.width > 0)
        .map(r => Math.round(r.top)));
      if (tops.size > 1) bad.push(m[0] + " in " + node.parentElement.tagName + "." + node.parentElement.className + "#" + (node.parentElement.closest("[id]") || {}).id);
    }
  }
  return bad;
}"""


def _token(cafe: Cafe, name: str, password: str) -> int:
    return requests.post(f"{cafe.url}/api/v1/auth/tokens", timeout=10,
                         json={"name": name, "password": password, "label": "e2e"}).status_code


def test_users_page_for_admins_only(new_page: Any, cafe: Cafe) -> None:
    viewer = new_page("viewer")
    assert viewer.locator("#nav-users").count() == 0
    answer = viewer.goto("/ui/users")
    assert answer is not None and answer.status == 403
    assert viewer.inner_text("#forbidden") == translate("ui.admin_only", "zh_CN")

    page = new_page("admin")
    page.click("#nav-users")
    page.wait_for_selector('#users tr[data-user="viewer"]')
    assert page.title() == "用户 · " + translate("ui.app_title", "zh_CN")
    assert page.get_attribute("#help-link", "href") == "/ui/help/operations#help-users"
    page.fill("#new-name", "temp1")
    page.fill("#new-password", "first-pass-1")
    page.select_option("#new-role", "viewer")
    page.click("#add-user")
    row = page.locator('#users tr[data-user="temp1"]')
    row.wait_for()
    row.locator("select").select_option("operator")
    page.wait_for_selector("#user-notice .notice.good")
    assert translate("role.operator", "zh_CN") in page.inner_text("#user-notice")
    row.locator('[data-action="reset"]').click()
    page.fill("#ask-password", "second-pass-2")
    page.click("#ask-ok")
    reset = translate("ui.user_password_reset", "zh_CN", name="temp1")
    page.wait_for_selector(f"#user-notice :text('{reset}')")
    assert _token(cafe, "temp1", "second-pass-2") == 201
    assert _token(cafe, "temp1", "first-pass-1") == 401
    row.locator('[data-action="delete"]').click()
    assert "temp1" in page.inner_text("#ask-dialog")
    page.click("#ask-cancel")  # cancelled: nothing happens
    assert row.count() == 1
    row.locator('[data-action="delete"]').click()
    page.click("#ask-ok")
    page.wait_for_selector('#users tr[data-user="temp1"]', state="detached")
    assert page.locator('#users tr[data-user="admin"] [data-action="delete"]').count() == 0
    assert page.errors == []


def test_edit_then_delete_a_seat(new_page: Any, cafe: Cafe) -> None:
    operator = new_page("operator")
    operator.goto("/ui/servers/pc-a02")
    operator.wait_for_selector("#facts dd")
    assert operator.locator("#seat-admin").count() == 0  # admins only

    page = new_page("admin")
    page.goto("/ui/servers/pc-a02")
    assert page.title() == "pc-a02 · " + translate("ui.app_title", "zh_CN")
    page.click("#seat-edit")
    assert page.input_value("#ask-ip")  # the current values are filled in
    page.fill("#ask-desc", "A排2号 RTX 4090 legacy BIOS gaming seat")
    page.click("#ask-ok")
    page.wait_for_selector("#seat-admin-notice .notice.good")
    headers = {"Authorization": f"Bearer {cafe.token()}"}
    found = requests.get(f"{cafe.url}/api/v1/servers/pc-a02", headers=headers, timeout=10)
    assert found.json()["desc"] == "A排2号 RTX 4090 legacy BIOS gaming seat"

    page.goto("/ui/servers/pc-b03")
    page.click("#seat-delete")
    assert "pc-b03" in page.inner_text("#ask-dialog")
    page.click("#ask-ok")
    page.wait_for_url("**/ui/?deleted=pc-b03")

    def gone() -> bool:
        answer = requests.get(f"{cafe.url}/api/v1/servers/pc-b03", headers=headers, timeout=10)
        return answer.status_code == 404 or answer.json().get("state") == "deleting"
    wait_for(gone, timeout=20, every=0.3)
    audit = requests.get(f"{cafe.url}/api/v1/audit", params={"seat": "b03", "action": "delete"},
                         headers=headers, timeout=10).json()["items"]
    assert audit and audit[0]["actor"] == "admin"
    assert page.errors == []


def test_no_word_or_id_broken_on_a_narrow_phone(new_page: Any, cafe: Cafe) -> None:
    requests.patch(f"{cafe.url}/api/v1/servers/pc-a01", timeout=10,
                   headers={"Authorization": f"Bearer {cafe.token()}"},
                   json={"desc": "A排1号 RTX 4090 legacy BIOS gaming seat"}).raise_for_status()
    page = new_page("admin", viewport={"width": 320, "height": 700}, is_mobile=True)
    page.goto("/ui/servers/pc-a01")
    page.wait_for_function("() => document.querySelector('#facts').innerText.includes('BIOS')")
    assert page.evaluate(BROKEN_WORDS) == []
    page.goto("/ui/audit?kind=all")
    page.wait_for_selector("#events tbody tr")
    assert page.evaluate(BROKEN_WORDS) == []
    assert page.errors == []


def test_english_plurals(new_page: Any) -> None:
    page = new_page("admin", lang="en")
    one = page.evaluate("() => BM.t('ui.actions_for', {count: 1})")
    many = page.evaluate("() => BM.t('ui.actions_for', {count: 3})")
    assert (one, many) == ("Actions for 1 server", "Actions for 3 servers")
    assert page.get_attribute("#help-link", "href") == "/ui/help/operations#help-grid"
