"""Import and audit pages in real Chromium: the CSV template downloads (UTF-8 with a BOM, the
header and one example row), choosing a file shows a preview that stores nothing, "导入"
imports it; the audit page then shows readable details ("新增 2 台：pc-c01, pc-c02", not
``created_uuids=[…] · outbox_id=8``), filters by part of a seat id, person and action family,
shows a refused-header import as 失败, and pages with 较新 / 较旧.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from agent.i18n import translate
from tests.e2e.stack import Cafe

ROWS = ("pc-c01,10.0.8.31,Windows 10,C排1号,127.0.0.1,admin,pw-c01,623,,row=C\r\n"
        "pc-c02,10.0.8.32,Windows 10,C排2号,127.0.0.1,admin,pw-c02,623,,row=C\r\n"
        "bad uuid!,10.0.8.33,Windows 10,,127.0.0.1,admin,x,623,,row=C\r\n")


def _api(cafe: Cafe, path: str, **params: str) -> requests.Response:
    return requests.get(f"{cafe.url}{path}", params=params, timeout=10,
                        headers={"Authorization": f"Bearer {cafe.token()}"})


def test_template_preview_then_import(new_page: Any, cafe: Cafe, tmp_path: Path) -> None:
    page = new_page("operator")
    page.click("#nav-import")
    assert page.get_attribute("#help-link", "href") == "/ui/help/operations#help-import"
    with page.expect_download() as download:
        page.click("#template")
    template = Path(download.value.path()).read_bytes()
    assert template.startswith(b"\xef\xbb\xbfuuid,ip,os,desc,ipmi_hostname,ipmi_username,")
    header, example = template.decode("utf-8-sig").splitlines()
    assert example.startswith("PC-A01,") and "大厅" in example
    filled = tmp_path / "pcs.csv"
    filled.write_bytes(b"\xef\xbb\xbf" + (header + "\r\n" + ROWS).encode())
    audits = len(_api(cafe, "/api/v1/audit", action="import").json()["items"])

    page.set_input_files("#file", str(filled))
    page.wait_for_selector("#preview-summary")
    assert page.inner_text("#preview-summary") == translate(
        "ui.preview_summary", "zh_CN", created=2, updated=0, unchanged=0, rejected=1)
    assert page.locator("#preview-rows tbody tr").count() == 3
    assert translate("ui.row_will_create", "zh_CN") in page.inner_text(
        '#preview-rows tr[data-uuid="pc-c01"]')
    assert _api(cafe, "/api/v1/servers/pc-c01").status_code == 404  # nothing stored
    assert len(_api(cafe, "/api/v1/audit", action="import").json()["items"]) == audits
    page.uncheck("#register")
    page.click("#upload")
    page.wait_for_selector("#import-summary")
    assert page.inner_text("#import-summary") == translate(
        "cli.import_summary", "zh_CN", created=2, updated=0, unchanged=0, rejected=1)
    assert page.is_hidden("#preview-panel")
    assert _api(cafe, "/api/v1/servers/pc-c01").status_code == 200
    assert page.errors == []


def test_audit_page_filters_and_readable_details(new_page: Any, cafe: Cafe) -> None:
    refused = requests.post(f"{cafe.url}/api/v1/servers/import", params={"filename": "x.csv"},
                            data=b"name,addr\nPC-1,1.2.3.4\n", timeout=10,
                            headers={"Authorization": f"Bearer {cafe.token()}",
                                     "Content-Type": "text/csv"})
    assert refused.status_code == 200
    page = new_page("admin")
    page.goto("/ui/audit?action=import&actor=operator")
    row = page.locator('#events tbody tr[data-kind="audit"]').first
    row.wait_for()
    assert translate("detail.created", "zh_CN", count=2, list="pc-c01, pc-c02") in row.inner_text()
    assert "created_uuids" not in row.inner_text() and "outbox_id" not in row.inner_text()
    page.fill("#actor-filter", "admin")  # the refused-header import: 失败, not 部分完成
    page.wait_for_function("() => document.querySelector('#events tbody tr td:nth-child(2)')"
                           ".innerText === 'admin'")
    assert translate("result.failed", "zh_CN") in page.inner_text("#events tbody tr")

    page.goto("/ui/audit?kind=all&seat=a01&limit=2")
    page.wait_for_selector("#events tbody tr")
    servers = page.eval_on_selector_all("#events tbody tr td:nth-child(3)",
                                        "cells => cells.map(c => c.innerText)")
    assert servers and set(servers) == {"pc-a01"}
    assert page.inner_text("#newer") == "← 较新" and page.inner_text("#older") == "较旧 →"
    page.select_option("#action", "power")
    page.wait_for_url("**action=power**")
    assert page.errors == []
