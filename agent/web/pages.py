"""The dashboard's HTML: static shells filled with escaped text; data comes later as JSON.

Every visible string comes from ``agent/locales/<lang>.json``; the page carries its whole
catalogue as a JSON data block for the scripts. No page ever holds a secret: the only token
in it is the session's CSRF token, which the scripts send back in ``X-CSRF-Token``.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from agent.accounts.auth import Principal
from agent.i18n import catalogue, translate
from agent.models import Role
from agent.web.access import can_act, can_import
from agent.web.templating import Markup, Templates, attrs, element, escape, json_block

__all__ = ["ENDPOINTS", "HELP_URL", "STATIC", "Page", "StaticFile", "lang_links", "render_login",
           "render_page", "static_prefix"]

# The JSON API routes the scripts call for state changes (agent/api).
ENDPOINTS = {
    "power": "/api/v1/actions/power",
    "bootdev": "/api/v1/actions/bootdev",
    "import": "/api/v1/servers/import",
    "import_template": "/api/v1/servers/import/template",
    "seats": "/api/v1/seats",
    "seats_approve": "/api/v1/seats/approve",
    "seats_reject": "/api/v1/seats/reject",
    "device_approve": "/api/v1/seats/device-id/approve",
}
_TEMPLATES = Templates()
_SHARED_CLI_KEYS = frozenset({"cli.import_summary", "cli.no_servers"})
_NAV = (("grid", "/ui/", "ui.dashboard"), ("audit", "/ui/audit", "ui.audit"),
        ("import", "/ui/import", "ui.import"), ("seats", "/ui/seats", "ui.seats"))
_ADMIN_NAV = (("users", "/ui/users", "ui.users"),)
# Each page's section of the operations manual (served by the dashboard at /ui/help/operations).
HELP_URL = "/ui/help/operations#help-{page}"


@dataclass(frozen=True)
class StaticFile:
    """One vendored asset, loaded once."""

    body: bytes
    media_type: str


def _load_static() -> tuple[dict[str, StaticFile], str]:
    files: dict[str, StaticFile] = {}
    digest = hashlib.blake2b(digest_size=6)
    root = resources.files("agent.web").joinpath("static")
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if not entry.is_file() or entry.name.startswith("."):
            continue
        body = entry.read_bytes()
        media = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
        if media.startswith("text/") or media.endswith(("javascript", "json")):
            media += "; charset=utf-8"
        files[entry.name] = StaticFile(body, media)
        digest.update(entry.name.encode() + b"\0" + body)
    return files, digest.hexdigest()


STATIC, ASSET_VERSION = _load_static()


def static_prefix() -> str:
    """URL prefix of the assets; it changes with their content (cache for a year)."""
    return f"/ui/static/{ASSET_VERSION}"


def lang_links(path: str, query: Mapping[str, str], lang: str) -> Markup:
    """Links that reload the current page in each language (the choice sticks in a cookie)."""
    links = []
    for code, label in (("zh_CN", "中文"), ("en", "English")):
        params = {k: v for k, v in query.items() if k != "lang"}
        params["lang"] = code
        links.append(element("a", label, href=f"{path}?{urlencode(params)}", hreflang=code,
                             class_="current" if code == lang else None,
                             data_lang=code))
    return Markup("".join(links))


def _page_catalogue(lang: str) -> dict[str, str]:
    """Return the strings the scripts may show: all but the CLI's (two are shared)."""
    return {k: v for k, v in catalogue(lang).items()
            if not k.startswith("cli.") or k in _SHARED_CLI_KEYS}


def _html_lang(lang: str) -> str:
    return "zh-CN" if lang == "zh_CN" else "en"


@dataclass(frozen=True)
class Page:
    """What differs between the dashboard's pages."""

    name: str
    title_key: str
    body: Markup
    scripts: Sequence[str]
    body_attrs: Mapping[str, Any] | None = None
    title_text: str | None = None  # the tab title instead of title_key's text (a seat's id)


def render_page(page: Page, *, principal: Principal, lang: str, path: str,
                query: Mapping[str, str], timezone: str = "UTC") -> str:
    """Return a full page for a signed-in user (``timezone``: [ui] timezone, as data-tz)."""
    user = principal.user
    session = principal.session
    entries = _NAV + (_ADMIN_NAV if user.role == Role.ADMIN else ())
    nav = Markup("".join(
        element("a", translate(key, lang), href=href, id=f"nav-{name}",
                class_="current" if name == page.name else None)
        for name, href, key in entries))
    prefix = static_prefix()
    scripts = Markup("".join(f'<script src="{escape(prefix)}/{escape(s)}" defer></script>'
                             for s in page.scripts))
    extra = attrs({**(page.body_attrs or {}), "data-tz": timezone})
    html = _TEMPLATES.render(
        "page.html", html_lang=_html_lang(lang), lang=lang, page=page.name,
        csrf=session.csrf_token if session else "", static=prefix,
        title=page.title_text or translate(page.title_key, lang),
        app_title=translate("ui.app_title", lang),
        i18n=json_block("bm-i18n", _page_catalogue(lang)),
        help=translate("ui.help", lang), help_href=HELP_URL.format(page=page.name),
        endpoints=json_block("bm-endpoints", ENDPOINTS), scripts=scripts, nav=nav,
        role=str(user.role), role_label=translate(f"role.{user.role}", lang),
        can_act="true" if can_act(principal) else "false",
        can_import="true" if can_import(principal) else "false",
        user=user.name, language=translate("ui.language", lang),
        langs=lang_links(path, query, lang), logout=translate("ui.logout", lang),
        body=page.body, body_attrs=extra)
    return html


def render_login(*, lang: str, csrf: str, next_url: str, username: str = "",
                 message: str = "", query: Mapping[str, str] | None = None) -> str:
    """Return the login page (``message``: why the last attempt failed)."""
    notice = element("div", message, class_="notice error", id="login-error", role="alert") \
        if message else Markup("")
    return _TEMPLATES.render(
        "login.html", html_lang=_html_lang(lang), lang=lang, static=static_prefix(),
        title=translate("ui.login", lang), app_title=translate("ui.app_title", lang),
        subtitle=translate("ui.login_subtitle", lang), message=notice, csrf=csrf,
        next=next_url, username=username, username_label=translate("ui.username", lang),
        password_label=translate("ui.password", lang), login=translate("ui.login", lang),
        langs=lang_links("/ui/login", dict(query or {}), lang))
