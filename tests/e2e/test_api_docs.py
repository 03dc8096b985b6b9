"""``/docs`` in headless Chromium: Swagger UI renders from the agent's own files, under the
dashboard's CSP, with no request to any other origin (security issue 10, finding 11)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.stack import Cafe

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_docs_load_swagger_ui_from_the_agent_only(new_page: Any, cafe: Cafe) -> None:
    page = new_page("viewer")
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto("/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
    assert "bm-agent" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-tag-section", timeout=30_000)  # the operations list
    agent = urlsplit(cafe.url).netloc
    foreign = [url for url in requested
               if not url.startswith("data:") and urlsplit(url).netloc != agent]
    assert not foreign, foreign
    assert any(url.endswith("/swagger-ui-bundle.js") for url in requested), requested
    assert any(url.endswith("/openapi.json") for url in requested), requested
    assert page.errors == [], page.errors  # no script error, no CSP violation


def test_docs_without_a_session_go_to_the_login(new_page: Any) -> None:
    page = new_page(None)
    page.goto("/docs")
    page.wait_for_url("**/ui/login?next=%2Fdocs")
