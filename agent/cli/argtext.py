"""argparse's own words (usage, errors, help headings) in the run's language.

argparse looks its messages up through the module-level ``_``/``ngettext`` (gettext) at
the moment it prints them; ``argparse_language(lang)`` swaps in the Chinese texts below
for the time the command line is parsed, then puts the originals back. English uses
argparse's own texts. The language is chosen before parsing: ``--lang`` on the command
line, else the locale, else Chinese (the café default).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from agent.cli.help_zh import ZH_HELP
from agent.i18n import normalize_lang, resolve_lang

__all__ = ["ZH_ARGPARSE", "argparse_language", "coded", "lang_from_argv", "parsing_lang"]

_PARSING: dict[str, str] = {"lang": "zh_CN"}  # the language of the parse under way

ZH_ARGPARSE: dict[str, str] = {
    "usage: ": "用法：",
    "positional arguments": "位置参数",
    "options": "选项",
    "optional arguments": "选项",
    "show this help message and exit": "显示此帮助并退出",
    "%(prog)s: error: %(message)s\n": "%(prog)s：错误：%(message)s\n",
    "the following arguments are required: %s": "缺少必需的参数：%s",
    "unrecognized arguments: %s": "无法识别的参数：%s",
    "invalid choice: %(value)r (choose from %(choices)s)":
        "无效的选项值：%(value)r（可选：%(choices)s）",
    "invalid %(type)s value: %(value)r": "无效的 %(type)s 值：%(value)r",
    "argument %(argument_name)s: %(message)s": "参数 %(argument_name)s：%(message)s",
    "expected one argument": "需要一个值",
    "expected at most one argument": "最多需要一个值",
    "expected at least one argument": "至少需要一个值",
    "expected %s argument": "需要 %s 个值",
    "expected %s arguments": "需要 %s 个值",
    "ambiguous option: %(option)s could match %(matches)s":
        "有歧义的选项：%(option)s 可以是 %(matches)s",
    "one of the arguments %s is required": "必须给出以下参数之一：%s",
    "not allowed with argument %s": "不能与参数 %s 同时使用",
    "ignored explicit argument %r": "忽略了多余的值 %r",
    "unexpected option string: %s": "意外的选项：%s",
    "unknown parser %(parser_name)r (choices: %(choices)s)":
        "未知的命令 %(parser_name)r（可选：%(choices)s）",
}


def parsing_lang() -> str:
    """Return the language of the parse under way (the last ``argparse_language``)."""
    return str(_PARSING["lang"])


def lang_from_argv(argv: Sequence[str]) -> str:
    """Return the language to parse in: ``--lang X``/``--lang=X`` in argv, else the locale."""
    explicit = None
    for index, arg in enumerate(argv):
        if arg == "--lang" and index + 1 < len(argv):
            explicit = argv[index + 1]
        elif arg.startswith("--lang="):
            explicit = arg.split("=", 1)[1]
    return resolve_lang(normalize_lang(explicit))


@contextmanager
def argparse_language(lang: str) -> Iterator[None]:
    """Make argparse speak ``lang`` inside the block."""
    _PARSING["lang"] = lang
    if lang != "zh_CN":
        yield
        return
    module: Any = argparse
    saved = module._, module.ngettext

    def gettext(message: str) -> str:
        return ZH_ARGPARSE.get(message, message)

    def ngettext(singular: str, plural: str, n: int) -> str:
        return gettext(singular if n == 1 else plural)

    formatter: Any = argparse.HelpFormatter
    saved_help = formatter._get_help_string

    def help_string(self: argparse.HelpFormatter, action: argparse.Action) -> str:
        text = str(saved_help(self, action) or "")
        return ZH_HELP.get(text, text)

    module._, module.ngettext = gettext, ngettext
    formatter._get_help_string = help_string
    try:
        yield
    finally:
        module._, module.ngettext = saved
        formatter._get_help_string = saved_help


def coded(prefix: str, codes: Sequence[str]) -> Any:
    """Return an argparse ``type``: a code (``offline``) or its name in either language.

    ``prefix`` is the catalogue namespace (``verdict``); an unknown value is refused with
    every accepted code and its name in ``lang``.
    """
    from agent.i18n import translate

    names = {code.lower(): code for code in codes}
    for code in codes:
        for each in ("zh_CN", "en"):
            names.setdefault(translate(f"{prefix}.{code}", each).strip().lower(), code)

    def convert(value: str) -> str:
        found = names.get(value.strip().lower())
        if found is None:
            lang = _PARSING["lang"]
            listed = ", ".join(f"{code} ({translate(f'{prefix}.{code}', lang)})"
                               for code in codes)
            raise argparse.ArgumentTypeError(
                translate("cli.bad_choice", lang, value=value, choices=listed))
        return found

    convert.__name__ = prefix
    return convert
