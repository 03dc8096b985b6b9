"""The main part of each dashboard page (the shell around it is ``pages.render_page``)."""

from __future__ import annotations

from dataclasses import replace

from agent.accounts.auth import Principal
from agent.event_filters import ACTION_FAMILIES
from agent.i18n import translate
from agent.models import EventKind, Role
from agent.registry.inventory import CSV_FIELDS, OPTIONAL_FIELDS
from agent.web.access import can_act, can_import
from agent.web.help import manual_body, verdict_legend
from agent.web.pages import Page
from agent.web.templating import Markup, Templates, element, escape

__all__ = ["audit_page", "detail_page", "forbidden_page", "grid_page", "import_page",
           "manual_page", "seat_page", "seats_page", "users_page"]

_TEMPLATES = Templates()


def _viewer_note(principal: Principal, lang: str, allowed: bool) -> Markup:
    if allowed:
        return Markup("")
    return element("span", translate("ui.viewer_cannot_act", lang), class_="muted",
                   id="viewer-note")


def grid_page(principal: Principal, lang: str) -> Page:
    """Return the grid of every server."""
    def t(key: str) -> str:
        return translate(key, lang)
    body = _TEMPLATES.render(
        "grid.html", verdict_label=t("ui.verdict"), search_label=t("ui.search"),
        search_placeholder=t("ui.search_placeholder"), group_label=t("ui.group_by"),
        row=t("ui.row"), zone=t("ui.zone"), no_grouping=t("ui.no_grouping"),
        loading=t("ui.loading"), select_visible=t("ui.select_visible"),
        select_label=t("ui.select_by_label"), clear_selection=t("ui.clear_selection"),
        act=t("ui.act"), act_title=t("ui.act_title") if can_act(principal)
        else t("ui.viewer_cannot_act"),
        viewer_note=_viewer_note(principal, lang, can_act(principal)),
        legend=verdict_legend(lang))
    return Page("grid", "ui.dashboard", Markup(body), ("bootdev.js", "actions.js", "grid.js"))


def detail_page(principal: Principal, lang: str, uuid: str) -> Page:
    """Return one server's page."""
    def t(key: str) -> str:
        return translate(key, lang)
    body = _TEMPLATES.render(
        "detail.html", back=t("ui.dashboard"), uuid=uuid, state_label=t("ui.state"),
        act=t("ui.act"), act_title=t("ui.act_title") if can_act(principal)
        else t("ui.viewer_cannot_act"),
        viewer_note=_viewer_note(principal, lang, can_act(principal)),
        server_label=t("ui.server"), history_label=t("ui.history"),
        events_label=t("ui.events"))
    return Page("detail", "ui.server", Markup(body),
                ("bootdev.js", "actions.js", "events.js", "detail.js"), {"data-uuid": uuid})


def audit_page(lang: str) -> Page:
    """Return the paged event log (audit events first), with its filters."""
    def t(key: str) -> str:
        return translate(key, lang)
    options = [element("option", t("ui.all"), value="all")]
    options += [element("option", t(f"event_kind.{k}"), value=str(k)) for k in EventKind]
    families = [element("option", t("ui.all"), value="")]
    families += [element("option", t(f"action_family.{f}"), value=f) for f in ACTION_FAMILIES]
    body = _TEMPLATES.render(
        "audit.html", heading=t("ui.audit"),
        kind_label=t("ui.kind"), kind_options=Markup("".join(options)),
        family_label=t("ui.action_family"), family_options=Markup("".join(families)),
        server_placeholder=t("ui.server_filter"), actor_placeholder=t("ui.actor_filter"),
        from_label=t("ui.date_from"), to_label=t("ui.date_to"), clear=t("ui.clear_filters"),
        newer=t("ui.prev_page"), older=t("ui.next_page"))
    return Page("audit", "ui.audit", Markup(body), ("events.js",))


def seat_page(principal: Principal, lang: str, uuid: str) -> Page:
    """Return one server's page titled with the seat's id; admins get edit and delete."""
    page = detail_page(principal, lang, uuid)
    extra = ("confirm.js", "seat_edit.js") if principal.user.role == Role.ADMIN else ()
    return replace(page, title_text=uuid, scripts=(*page.scripts, *extra))


def users_page(principal: Principal, lang: str) -> Page:
    """Return the staff users page (admins only: the router refuses anyone else)."""
    def t(key: str) -> str:
        return translate(key, lang)
    roles = Markup("".join(element("option", t(f"role.{r}"), value=str(r)) for r in Role))
    body = _TEMPLATES.render(
        "users.html", heading=t("ui.users"), help=t("ui.users_help"), add=t("ui.user_add"),
        name_label=t("ui.username"), password=t("ui.password"), role=t("ui.role"), roles=roles,
        me=principal.user.name)
    return Page("users", "ui.users", Markup(body), ("confirm.js", "users.js"))


def forbidden_page(lang: str, page_name: str, title_key: str) -> Page:
    """Return the body shown to someone whose role does not open this page."""
    text = translate("ui.admin_only", lang)
    return Page(page_name, title_key, element("p", text, class_="notice error", id="forbidden"),
                ())


def import_page(principal: Principal, lang: str) -> Page:
    """Return the import page: upload a CSV or JSON file, see a per-row report."""
    def t(key: str) -> str:
        return translate(key, lang)
    allowed = can_import(principal)
    body = _TEMPLATES.render(
        "import.html", heading=t("ui.import_servers"), help=t("ui.import_help"),
        columns=Markup(",<wbr>".join(escape(c) for c in (*CSV_FIELDS, *OPTIONAL_FIELDS))),
        upload=t("ui.upload"),
        register_label=t("ui.register_after_import"), choose=t("ui.choose_file"),
        no_file=t("ui.no_file"), template=t("ui.import_template"),
        template_href="/api/v1/servers/import/template", preview=t("ui.import_preview"),
        viewer_note=_viewer_note(principal, lang, allowed), report=t("ui.import_report"))
    return Page("import", "ui.import", Markup(body), ("import.js",))


def seats_page(principal: Principal, lang: str) -> Page:
    """Return the seat-key approvals page (operators approve or reject; viewers look)."""
    def t(key: str) -> str:
        return translate(key, lang)
    allowed = can_act(principal)
    body = _TEMPLATES.render(
        "seats.html", heading=t("ui.seats_heading"), help=t("ui.seats_help"),
        approve_selected=t("ui.approve_selected"), reject_selected=t("ui.reject_selected"),
        approve_by_label=t("ui.approve_by_label"), label_placeholder=t("ui.label_placeholder"),
        disabled=Markup("") if allowed else Markup("disabled"),
        viewer_note=_viewer_note(principal, lang, allowed),
        device_heading=t("ui.device_id_changes"))
    return Page("seats", "ui.seats", Markup(body), ("seats.js",))


def manual_page(lang: str) -> Page:
    """Return the operations manual (verdicts link to its sections)."""
    return Page("manual", "ui.help_operations",
                manual_body(translate("ui.manual_missing", lang)), ())
