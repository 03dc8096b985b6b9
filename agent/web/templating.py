"""A tiny HTML templating helper: ``${name}`` placeholders, every value escaped by default.

jinja2 is not a dependency on purpose: the dashboard's pages are static shells whose data is
built in the browser with ``textContent``, so the server only fills a few names. A value is
HTML-escaped unless it is ``Markup`` (text a trusted helper here already escaped).
``json_block`` renders data for the page's scripts as JSON that cannot close its
``<script type="application/json">`` element (a data block: never executed, so the CSP
``script-src 'self'`` stands).
"""

from __future__ import annotations

import functools
import html
import json
import string
from collections.abc import Mapping
from importlib import resources
from typing import Any

__all__ = ["Markup", "Templates", "attrs", "element", "escape", "json_block"]


class Markup(str):
    """Text that is already safe to put into HTML as it is."""

    __slots__ = ()


def escape(value: Any) -> Markup:
    """Return ``value`` as HTML-safe text (Markup passes through unchanged)."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def attrs(values: Mapping[str, Any]) -> Markup:
    """Render ``name="value"`` pairs (None and False are left out, True is bare)."""
    parts = []
    for name, value in values.items():
        if value is None or value is False:
            continue
        key = name.rstrip("_").replace("_", "-")
        parts.append(key if value is True else f'{key}="{escape(value)}"')
    return Markup(" ".join(parts))


def element(tag: str, text: Any = "", **attributes: Any) -> Markup:
    """Render one element with escaped text and attributes."""
    rendered = attrs(attributes)
    opening = f"<{tag} {rendered}>" if rendered else f"<{tag}>"
    return Markup(f"{opening}{escape(text)}</{tag}>")


def json_block(element_id: str, data: Any) -> Markup:
    """Render ``data`` as a JSON data block the page's scripts read with JSON.parse."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    # "<", ">" and "&" as \u escapes: the text can never end the script element early.
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(f'<script type="application/json" id="{escape(element_id)}">{text}</script>')


class Templates:
    """The HTML files of ``agent/web/templates`` as ``string.Template`` objects."""

    def __init__(self, package: str = "agent.web", folder: str = "templates") -> None:
        self._root = resources.files(package).joinpath(folder)

    @functools.cache  # noqa: B019 - one Templates per process; the files never change
    def _load(self, name: str) -> string.Template:
        return string.Template(self._root.joinpath(name).read_text("utf-8"))

    def render(self, name: str, **values: Any) -> str:
        """Fill template ``name`` with ``values``, escaping each unless it is Markup."""
        safe = {key: escape(value) for key, value in values.items()}
        return self._load(name).substitute(safe)
