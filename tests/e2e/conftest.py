"""Browser-test fixtures: one demo café per module, one headless Chromium for the package.

Chromium is the Debian package (``/usr/bin/chromium``), driven by Playwright; nothing is
downloaded (no ``playwright install``). Tests are skipped when either is missing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import USERS, Cafe, start_cafe

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DESKTOP = {"width": 1366, "height": 860}


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    # Package scope, not session: Playwright's sync API keeps an asyncio loop running in the
    # main thread until it stops, and later tests (tests/unit) run event loops of their own.
    """One headless Chromium for the whole run."""
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (Debian package chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def cafe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cafe]:
    """Emulator + fake BMCs + the agent, with the demo inventory imported."""
    started = start_cafe(tmp_path_factory.mktemp("cafe"))
    try:
        started.import_inventory()
        yield started
    finally:
        started.stop()


@pytest.fixture
def new_page(browser: Any, cafe: Cafe) -> Iterator[Any]:
    """Factory: a fresh browser context (own cookies) logged in as a role, or not."""
    contexts: list[Any] = []

    def _open(role: str | None = "admin", *, lang: str | None = None,
              viewport: dict[str, int] | None = None, **options: Any) -> Any:
        context = browser.new_context(viewport=viewport or DESKTOP, base_url=cafe.url,
                                      **options)
        contexts.append(context)
        page = context.new_page()
        page.errors = []  # uncaught script errors and CSP violations end the test red
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.on("console", lambda msg: page.errors.append(msg.text)
                if msg.type == "error" and "Content Security Policy" in msg.text else None)
        if role is not None:
            login(page, role, lang=lang)
        return page

    yield _open
    for context in contexts:
        context.close()


def login(page: Any, role: str, *, lang: str | None = None) -> None:
    """Log in through the login form and land on the grid."""
    name, password = USERS[role]
    page.goto("/ui/login" + (f"?lang={lang}" if lang else ""))
    page.fill("#username", name)
    page.fill("#password", password)
    page.click("#login")
    page.wait_for_url("**/ui/")
    page.wait_for_selector(".cell")
