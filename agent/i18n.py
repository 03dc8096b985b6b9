"""Messages in Chinese (zh_CN) and English (en) from ``agent/locales/<lang>.json``.

API:

- ``translate(code, lang=None, **params) -> str``: the catalogue text for ``code`` with
  ``{placeholders}`` filled; falls back to English, then to the code itself; a missing
  parameter stays visible as ``{name}`` rather than raising;
- ``translate_error(exc, lang=None)``: the same for an ``AgentError`` (its code and params);
- ``resolve_lang(explicit=None, *, environ=None, default="zh_CN") -> "zh_CN" | "en"``:
  the explicit choice (``--lang``, a user setting), else ``LC_ALL``/``LC_MESSAGES``/``LANG``
  (the first one set; ``zh*`` -> zh_CN, ``en*`` -> en), else ``default``;
- ``catalogue(lang)``: the whole mapping (loaded once, on first use).

Keys: error codes are flat (``server_not_found``, see ``agent.errors``); everything else is
namespaced: ``verdict.*``, ``verdict_help.*``, ``reason.*`` (cross-check reasons),
``power.*``, ``action.*``, ``bootdev.*``, ``result.*``, ``role.*``, ``registration.*``,
``event_kind.*``, ``outbox.*``, ``import.*`` (inventory RowError codes, with ``{field}``
and ``{detail}``), ``ui.*`` and ``cli.*``. Both catalogues have the same keys and the same
placeholders per key (a unit test checks it).
"""

from __future__ import annotations

import functools
import json
import os
import string
from collections.abc import Mapping
from importlib import resources
from typing import Any

from agent.errors import AgentError

__all__ = ["DEFAULT_LANG", "LANGS", "catalogue", "normalize_lang", "placeholders",
           "resolve_lang", "translate", "translate_error"]

LANGS = ("zh_CN", "en")
DEFAULT_LANG = "zh_CN"
_LOCALE_VARS = ("LC_ALL", "LC_MESSAGES", "LANG")


def normalize_lang(value: str | None) -> str | None:
    """Map ``zh``, ``zh-CN``, ``zh_CN.UTF-8``… to zh_CN and ``en*`` to en; else None."""
    if not value:
        return None
    text = value.strip().lower()
    if text.startswith("zh"):
        return "zh_CN"
    if text.startswith("en"):
        return "en"
    return None


def resolve_lang(explicit: str | None = None, *, environ: Mapping[str, str] | None = None,
                 default: str = DEFAULT_LANG) -> str:
    """Choose the language: explicit, else the locale variables, else ``default``."""
    chosen = normalize_lang(explicit)
    if chosen:
        return chosen
    env = os.environ if environ is None else environ
    for name in _LOCALE_VARS:
        if env.get(name):
            return normalize_lang(env[name]) or default
    return default


@functools.cache
def catalogue(lang: str) -> Mapping[str, str]:
    """Return the catalogue of ``lang`` (one of LANGS)."""
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}")
    text = resources.files("agent").joinpath("locales", f"{lang}.json").read_text("utf-8")
    data = json.loads(text)
    return {key: value for key, value in data.items() if not key.startswith("_")}


class _KeepMissing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def translate(code: str, lang: str | None = None, **params: Any) -> str:
    """Return the message for ``code`` in ``lang`` (resolved as in resolve_lang)."""
    chosen = resolve_lang(lang)
    template = catalogue(chosen).get(code) or catalogue("en").get(code)
    if template is None:
        return code
    try:
        return template.format_map(_KeepMissing(params))
    except (ValueError, IndexError, AttributeError):
        return template


def translate_error(exc: AgentError, lang: str | None = None) -> str:
    """Return the message of an AgentError in ``lang``."""
    return translate(type(exc).code, lang, **exc.params)  # HookRefused: the class's code


def placeholders(template: str) -> set[str]:
    """Return the ``{names}`` used in a template."""
    return {name for _text, name, _spec, _conv in string.Formatter().parse(template) if name}
