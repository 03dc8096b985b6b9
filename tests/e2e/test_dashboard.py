"""The staff dashboard in headless Chromium against a real agent, emulator and fake BMCs.

One demo café per module (six PCs in rows A and B): log in, see the grid, import a CSV with
a per-row report, power a PC on and see it verified, find a mismatch caused behind the
agent's back (the BMC's state file flipped) without reloading, a viewer refused (button
disabled and a forged POST answered 403), the zh_CN <-> en switch, the paged audit log,
security headers and no secret in any page. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests

from agent.i18n import translate
from tests.e2e.stack import BMC_PASSWORD, LAYOUT, USERS, Cafe, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CELL = '.cell[data-uuid="{}"]'
WAIT_MS = 30_000


def shot(page: Any, artifacts: Path, name: str, *, full: bool = False) -> Path:
    """Save a screenshot into test-artifacts/ and return its path."""
    path = artifacts / f"dashboard-{name}.png"
    page.screenshot(path=str(path), full_page=full)
    return path


def verdict_of(page: Any, uuid: str) -> str:
    return str(page.get_attribute(CELL.format(uuid), "data-verdict"))


def wait_verdict(page: Any, uuid: str, *verdicts: str) -> None:
    """Wait (no reload: the grid polls) until the cell shows one of ``verdicts``."""
    wanted = " || ".join(f'c.dataset.verdict === "{v}"' for v in verdicts)
    try:
        page.wait_for_function(
            f'() => {{ const c = document.querySelector(\'{CELL.format(uuid)}\'); '
            f'return c !== null && ({wanted}); }}', timeout=WAIT_MS)
    except Exception as exc:
        seen = page.get_attribute(CELL.format(uuid), "data-verdict", timeout=1000)
        raise AssertionError(f"{uuid}: wanted {verdicts}, the grid shows {seen}") from exc


def test_login_and_the_cafe_at_a_glance(new_page: Any, artifacts_dir: Path) -> None:
    page = new_page(None)
    page.goto("/ui/")
    page.wait_for_url(re.compile(r".*/ui/login\?next=.*"))
    assert page.locator("html").get_attribute("lang") == "zh-CN"  # Chinese by default
    assert page.inner_text("#login") == "登录"
    shot(page, artifacts_dir, "login")
    page.fill("#username", USERS["admin"][0])
    page.fill("#password", "wrong password")
    page.click("#login")
    assert page.inner_text("#login-error") == "用户名或密码错误。"
    page.fill("#password", USERS["admin"][1])
    page.click("#login")
    page.wait_for_url("**/ui/")
    for uuid, *_ in LAYOUT:
        wait_verdict(page, uuid, "ok", "expected_off")
    assert page.locator('section.group[data-group="A"] .cell').count() == 3
    assert page.locator('section.group[data-group="B"] .cell').count() == 3
    assert verdict_of(page, "pc-a02") == "expected_off"  # off, not rented: DBC's idle timer
    assert page.get_attribute(CELL.format("pc-a01"), "data-power") == "on"
    page.fill("#search", "pc-b")
    assert page.locator(".cell").count() == 3
    page.fill("#search", "")
    page.click('.chip[data-verdict="expected_off"]')
    assert page.locator(".cell").count() == 1
    page.click('.chip[data-verdict=""]')
    assert page.locator(".cell").count() == len(LAYOUT)
    assert page.errors == []


def test_import_a_csv_with_a_per_row_report(new_page: Any, cafe: Cafe, tmp_path: Path,
                                            artifacts_dir: Path) -> None:
    bmc = cafe.bmcs["pc-a01"]
    extra = tmp_path / "more.csv"
    extra.write_text(
        "uuid,ip,ipmi_hostname,ipmi_username,ipmi_password,ipmi_port,labels\n"
        f"pc-c01,10.0.8.31,127.0.0.1,admin,whatever1,{_dead_port()},row=C;zone=esports\n"
        f"pc-c02,10.0.8.32,{bmc.host},{bmc.user},wrongpass9,{bmc.port},row=C;zone=esports\n"
        "bad uuid!,10.0.8.33,127.0.0.1,admin,x,623,row=C\n")
    page = new_page("operator")
    page.click("#nav-import")
    page.set_input_files("#file", str(extra))
    page.click("#upload")
    page.wait_for_selector("#import-summary")
    assert page.inner_text("#import-summary") == translate(
        "cli.import_summary", "zh_CN", created=2, updated=0, unchanged=0, rejected=1)
    rows = page.locator("#import-rows tbody tr")
    assert rows.count() == 3
    bad = page.locator('#import-rows tr[data-line="4"]')
    assert "uuid" in bad.inner_text().lower()
    assert page.locator('#import-rows tr[data-uuid="pc-c01"]').count() == 1
    assert page.inner_text("#import-queued") == translate("ui.queued", "zh_CN", count=2)
    shot(page, artifacts_dir, "import")
    page.click("#nav-grid")
    wait_verdict(page, "pc-c01", "unreachable")
    wait_verdict(page, "pc-c02", "auth_failed")
    assert page.errors == []


def _dead_port() -> int:
    from tests.support.ports import free_port
    return free_port("udp")


def test_power_on_is_verified_and_a_mismatch_behind_the_back_shows(
        new_page: Any, cafe: Cafe, artifacts_dir: Path) -> None:
    bmc = cafe.bmcs["pc-b02"]
    assert bmc.state()["power"] == "off"
    page = new_page("operator")
    page.click(CELL.format("pc-b02") + " .name")
    page.wait_for_url("**/ui/servers/pc-b02")
    page.wait_for_selector("#verdict")
    page.click("#act")
    page.click('[data-action="power-on"]')
    assert "pc-b02" in page.inner_text(".dialog")
    assert page.inner_text(".confirm-text") == "确定对 1 台服务器执行开机？"
    assert bmc.state()["power"] == "off", "nothing happens before the confirmation"
    page.click("#bm-confirm")
    page.wait_for_selector('#bm-results tr[data-uuid="pc-b02"]', timeout=WAIT_MS)
    assert page.get_attribute('#bm-results tr[data-uuid="pc-b02"]', "data-outcome") == "verified"
    assert bmc.state()["power"] == "on"
    page.click("#bm-close")
    page.wait_for_function('() => document.querySelector("#power").className === "pw-on"',
                           timeout=WAIT_MS)
    shot(page, artifacts_dir, "detail", full=True)

    page.click("#nav-grid")
    wait_verdict(page, "pc-b02", "ok", "transitioning")
    page.evaluate("window.__noReload = true")
    bmc.set_power("off")  # behind the agent's back
    wait_verdict(page, "pc-b02", "mismatch")
    assert page.evaluate("window.__noReload") is True, "the grid refreshed without reloading"
    assert page.get_attribute(CELL.format("pc-b02"), "data-power") == "off"
    wait_verdict(page, "pc-c01", "unreachable")
    page.set_viewport_size({"width": 1180, "height": 560})
    grid = shot(page, artifacts_dir, "grid", full=True)
    readme_shot = REPO / "docs" / "screenshot-grid.png"
    if not readme_shot.exists() or os.environ.get("BM_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(grid, readme_shot)  # the README's picture (tracked: refresh on demand)
    assert page.errors == []


def test_batch_boot_device_by_label_selection(new_page: Any, cafe: Cafe) -> None:
    page = new_page("operator", lang="en")
    page.select_option("#label-pick", "zone=vip")
    assert page.inner_text("#sel-count") == "3 selected"
    for uuid in ("pc-a01", "pc-a02", "pc-a03"):
        assert page.is_checked(CELL.format(uuid) + " .pick")
    page.check(CELL.format("pc-b03") + " .pick")  # plus one by its checkbox
    page.click("#act")
    page.select_option("#bm-boot-device", "pxe")
    page.click('[data-action="bootdev"]')
    assert page.inner_text(".confirm-text") == (
        "set boot device (network (PXE), next boot only, legacy BIOS) on 4 servers?")
    page.click("#bm-confirm")
    page.wait_for_selector("#bm-results tbody tr", timeout=WAIT_MS)
    outcomes = page.eval_on_selector_all(
        "#bm-results tbody tr", "rows => rows.map(r => [r.dataset.uuid, r.dataset.outcome])")
    assert sorted(u for u, _ in outcomes) == ["pc-a01", "pc-a02", "pc-a03", "pc-b03"]
    assert all(o in ("verified", "unverified") for _, o in outcomes), outcomes
    for uuid in ("pc-a01", "pc-a02", "pc-a03", "pc-b03"):
        flags = cafe.bmcs[uuid].state()["boot_flags"]
        assert flags[1] & 0x3C == 0x04, (uuid, flags)  # IPMI boot flags: selector 0001b = PXE
    page.click("#bm-close")
    assert page.errors == []


def test_a_viewer_cannot_act(new_page: Any, cafe: Cafe) -> None:
    page = new_page("viewer")
    assert page.get_attribute("body", "data-can-act") == "false"
    page.check(CELL.format("pc-a01") + " .pick")
    assert page.inner_text("#sel-count") == "已选择 1 台"
    assert page.is_disabled("#act")
    page.goto("/ui/servers/pc-a01")
    page.wait_for_selector("#verdict")
    assert page.is_disabled("#act")
    assert page.inner_text("#viewer-note") == "只读账号，不能操作服务器"
    power_before = cafe.bmcs["pc-a01"].state()["power"]
    forged = page.evaluate("""async () => {
        const csrf = document.querySelector('meta[name="csrf-token"]').content;
        const post = (url, body) => fetch(url, {method: "POST", credentials: "same-origin",
            headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
            body: JSON.stringify(body)}).then(async r => [r.status, await r.json()]);
        return [await post("/api/v1/actions/power", {uuids: ["pc-a01"], action: "off"}),
                await post("/api/v1/servers/pc-a01/power", {action: "off"}),
                await post("/api/v1/actions/bootdev", {uuids: ["pc-a01"], device: "pxe"})];
    }""")
    for status, body in forged:
        assert status == 403, forged
        assert body["error"]["code"] == "permission_denied"
    assert cafe.bmcs["pc-a01"].state()["power"] == power_before
    assert page.errors == []


def test_language_switch(new_page: Any, artifacts_dir: Path) -> None:
    page = new_page("admin")
    assert page.inner_text("#nav-grid") == "总览"
    page.click('.langs a[data-lang="en"]')
    page.wait_for_selector(".cell")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.inner_text("#nav-grid") == "Dashboard"
    assert page.inner_text('.chip[data-verdict=""] span') == "All"
    assert page.inner_text(CELL.format("pc-a02") + " .badge") == "expected off"
    shot(page, artifacts_dir, "grid-en")
    page.click("#nav-audit")  # the choice sticks (cookie)
    page.wait_for_selector("#events tbody tr")
    assert page.inner_text("h1") == "Audit log"
    page.click('.langs a[data-lang="zh_CN"]')
    page.wait_for_selector("#events tbody tr")
    assert page.inner_text("h1") == "审计日志"
    page.click("#logout")
    page.wait_for_url("**/ui/login")
    page.goto("/ui/")
    page.wait_for_url(re.compile(r".*/ui/login\?next=.*"))
    assert page.errors == []


def test_audit_log_is_paged_and_shows_verified_actions(new_page: Any,
                                                      artifacts_dir: Path) -> None:
    page = new_page("admin")
    page.click("#nav-audit")
    row = page.locator('#events tbody tr[data-kind="audit"]', has_text="pc-b02").first
    row.wait_for()
    assert "operator" in row.inner_text()
    assert translate("result.verified", "zh_CN") in row.inner_text()
    page.select_option("#kind", "all")
    page.wait_for_selector('#events tbody tr[data-kind="verdict"]')
    shot(page, artifacts_dir, "audit", full=True)
    page.goto("/ui/audit?kind=all&limit=5")
    page.wait_for_selector("#events tbody tr")
    first = page.eval_on_selector_all("#events tbody tr", "rs => rs.map(r => +r.dataset.eventId)")
    assert len(first) == 5 and first == sorted(first, reverse=True)
    page.click("#older")
    page.wait_for_function(f"() => +document.querySelector('#events tbody tr')"
                           f".dataset.eventId < {first[-1] + 1}")
    second = page.eval_on_selector_all("#events tbody tr", "rs => rs.map(r => +r.dataset.eventId)")
    assert max(second) < min(first) and page.inner_text("#page-info") == "第 2 页"
    page.click("#newer")
    page.wait_for_function(f"() => +document.querySelector('#events tbody tr')"
                           f".dataset.eventId === {first[0]}")
    assert page.is_disabled("#newer")
    page.fill("#server-filter", "pc-b02")
    page.wait_for_function("""() => [...document.querySelectorAll('#events tbody tr')]
        .every(r => r.innerText.includes('pc-b02'))""")
    assert page.errors == []


def test_phone_layout(new_page: Any, artifacts_dir: Path) -> None:
    page = new_page("admin", viewport={"width": 390, "height": 844}, is_mobile=True,
                    has_touch=True, device_scale_factor=2)
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    tops = page.evaluate("[...document.querySelectorAll('.cells')][0].children.length")
    assert tops >= 2
    first, second = page.locator(".cell").nth(0), page.locator(".cell").nth(1)
    assert first.bounding_box()["y"] == second.bounding_box()["y"], "two cells per row"
    shot(page, artifacts_dir, "phone")


def _form_login(url: str, role: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{url}/ui/login", timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    name, password = USERS[role]
    answer = session.post(f"{url}/ui/login", timeout=10, allow_redirects=False,
                          data={"username": name, "password": password, "csrf_token": token,
                                "next": "/ui/"})
    assert answer.status_code == 303, answer.text
    cookie = answer.headers["set-cookie"]
    assert "bm_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    return session


def test_security_headers_csrf_and_no_secret_in_any_page(cafe: Cafe) -> None:
    url = cafe.url
    root = requests.get(url + "/", timeout=10, allow_redirects=False)
    assert root.status_code == 303 and root.headers["location"] == "/ui/"
    # The login form itself is CSRF-protected (double-submit cookie).
    bare = requests.post(f"{url}/ui/login", timeout=10, allow_redirects=False,
                         data={"username": "admin", "password": USERS["admin"][1],
                               "csrf_token": "forged"})
    assert bare.status_code == 403 and "bm_session" not in bare.headers.get("set-cookie", "")
    session = _form_login(url, "operator")
    seen = []
    for path in ("/ui/", "/ui/servers/pc-a01", "/ui/audit", "/ui/import", "/ui/api/grid",
                 "/ui/api/servers/pc-a01", "/ui/api/events?kind=all&limit=200",
                 "/api/v1/servers", "/api/v1/servers/pc-a01"):
        answer = session.get(url + path, timeout=10)
        assert answer.status_code == 200, path
        seen.append(answer.text)
        if path.startswith("/ui/") and "/api/" not in path:
            csp = answer.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            assert answer.headers["x-frame-options"] == "DENY"
            assert "<script>" not in answer.text  # no inline script, only src= and data blocks
    for text in seen:
        assert BMC_PASSWORD not in text and "wrongpass9" not in text
        assert "bms_" not in text and "bmt_" not in text  # no session cookie or token values
    # A state change without the CSRF header is refused even for an operator.
    refused = session.post(f"{url}/api/v1/actions/power", timeout=10,
                           json={"uuids": ["pc-a01"], "action": "off"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    assert session.post(f"{url}/ui/logout", data={}, timeout=10).status_code == 403


def test_grid_data_answers_304_while_nothing_changed(cafe: Cafe) -> None:
    session = _form_login(cafe.url, "viewer")

    def unchanged() -> bool:
        # A pass every second moves the reading times: retry until two reads fall between.
        etag = session.get(f"{cafe.url}/ui/api/grid", timeout=10).headers["etag"]
        again = session.get(f"{cafe.url}/ui/api/grid", headers={"If-None-Match": etag},
                            timeout=10)
        return again.status_code == 304 and again.content == b""
    wait_for(unchanged, timeout=20, every=0.05)
    assert requests.get(f"{cafe.url}/ui/api/grid", timeout=10).status_code == 401
