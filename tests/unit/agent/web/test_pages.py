"""Dashboard pieces without a browser: escaping, data blocks, catalogue coverage, CSP hygiene."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agent.i18n import catalogue
from agent.web.pages import STATIC
from agent.web.router import _safe_next
from agent.web.templating import Markup, Templates, element, escape, json_block

WEB = Path(__file__).resolve().parents[4] / "agent" / "web"


def test_values_are_escaped_unless_markup() -> None:
    assert escape('<script>"x"&</script>') == "&lt;script&gt;&quot;x&quot;&amp;&lt;/script&gt;"
    assert escape(Markup("<b>ok</b>")) == "<b>ok</b>"
    assert element("a", "<i>", href='"onclick=x', class_="c") == \
        '<a href="&quot;onclick=x" class="c">&lt;i&gt;</a>'


def test_json_block_cannot_close_its_script_element() -> None:
    block = json_block("d", {"x": "</script><script>alert(1)</script>&"})
    body = block[block.index(">") + 1:-len("</script>")]
    assert "</" not in body and "<" not in body and "&" not in body
    assert json.loads(body) == {"x": "</script><script>alert(1)</script>&"}


def test_templates_escape_every_value() -> None:
    html = Templates().render("grid.html", **dict.fromkeys(
        ["verdict_label", "search_label", "search_placeholder", "group_label", "row", "zone",
         "no_grouping", "loading", "select_visible", "select_label", "clear_selection", "act",
         "act_title", "viewer_note", "legend"], '"><img src=x onerror=alert(1)>'))
    assert "<img" not in html


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/api/v1/x",
                                    "/ui/\\evil", "", None])
def test_login_redirect_stays_on_the_dashboard(target: str | None) -> None:
    assert _safe_next(target) == "/ui/"


def test_login_redirect_keeps_dashboard_paths() -> None:
    assert _safe_next("/ui/servers/pc-1?lang=en") == "/ui/servers/pc-1?lang=en"


def _keys_used() -> set[str]:
    used: set[str] = set()
    for path in [*WEB.glob("static/*.js"), *WEB.glob("*.py")]:
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"""["']((?:ui|actor|result|verdict|power|bootdev|action"""
                               r"""|reason|role|registration|event_kind|import|cli)\.[a-z_]+)["']""",
                               text))
    # Prefixes completed at run time ("ui.row_" + what) and file names are not keys.
    return {k for k in used if not k.endswith("_") and not k.endswith((".js", ".html"))}


def test_every_string_the_dashboard_shows_is_in_both_catalogues() -> None:
    used = _keys_used()
    assert len(used) > 80
    for lang in ("zh_CN", "en"):
        missing = sorted(k for k in used if k not in catalogue(lang))
        assert not missing, (lang, missing)
    # Keys built at run time from codes: every result code of agent.actions.service.
    for code in ("conflict", "not_found", "failed"):
        assert f"ui.result_{code}" in catalogue("en")
    for what in ("created", "updated", "unchanged", "rejected"):
        assert f"ui.row_{what}" in catalogue("en")
    for actor in ("system", "monitor", "registry", "hook", "anonymous"):
        assert f"actor.{actor}" in catalogue("zh_CN")


def test_no_inline_script_style_or_handler_anywhere() -> None:
    for path in WEB.glob("templates/*.html"):
        text = path.read_text(encoding="utf-8")
        assert "<script>" not in text and "<style" not in text, path.name
        assert not re.search(r"\son[a-z]+=", text), path.name
        assert "style=" not in text, path.name
    for name, asset in STATIC.items():
        if name.endswith(".js"):
            text = asset.body.decode()
            assert "innerHTML" not in text and "eval(" not in text, name
            assert "document.write" not in text and "insertAdjacentHTML" not in text, name
