"""``bm-agent``: the agent's command line (console script ``bm-agent = agent.cli:main``).

Commands work directly on the local store through ``Agent.build(settings)``, so they work
while the service is down; actions and ``check`` go straight to the BMCs over IPMI like
the service does. ``--json`` prints exactly one JSON document on stdout; without it, people
get tables and messages in Chinese or English (``--lang``, else the locale, else
``[ui] default_lang``). Every failure becomes one ``ErrorType: message`` line on stderr and
a documented exit code (``ExitCode``; docs/cli.md); ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence

from agent.cli import actions as cli_actions
from agent.cli import hooktoken as cli_hooktoken
from agent.cli import ops as cli_ops
from agent.cli import seats as cli_seats
from agent.cli import servers as cli_servers
from agent.cli import setup as cli_setup
from agent.cli import tls as cli_tls
from agent.cli.argtext import argparse_language, lang_from_argv, parsing_lang
from agent.cli.context import (
    CliError,
    Ctx,
    ExitCode,
    error_message,
    error_text,
    exit_code_for,
)
from agent.cli.output import Output
from agent.config import CONFIG_ENV, DEFAULT_CONFIG_PATH
from agent.errors import AgentError
from agent.i18n import resolve_lang
from baremetal.errors import BaremetalError

__all__ = ["ExitCode", "build_parser", "main", "run"]

_LOGGER = logging.getLogger(__name__)

_EXIT_TEXTS = (
    (ExitCode.OK, "ok / 成功"),
    (ExitCode.ERROR, "error (store, secrets, node refused, internal) / 一般错误"),
    (ExitCode.USAGE, "usage: bad option, value, file or config; store too new / "
     "用法、输入或配置错误；数据库版本过新"),
    (ExitCode.NOT_FOUND, "not found (server, user) / 对象不存在"),
    (ExitCode.CONFLICT, "conflict (exists, action in progress) / 冲突"),
    (ExitCode.PARTIAL, "partial failure in a batch / 批量操作部分失败"),
    (ExitCode.UNREACHABLE, "DBC node or BMC unreachable / 节点或 BMC 无法连接"),
    (ExitCode.DENIED, "authentication or permission refused / 认证或权限被拒绝"),
    (ExitCode.UNCONFIRMED, "not confirmed: several seats or a rented seat without --yes "
     "and no terminal, or answered no / 未确认：多台或出租中的机器需要 --yes 或在终端确认"),
    (ExitCode.INTERRUPTED, "interrupted (Ctrl-C) / 被中断"),
)


def _in_lang(text: str) -> str:
    """Return the half of an ``English / 中文`` text in the language being parsed in."""
    english, _sep, chinese = text.rpartition(" / ")
    return (chinese if parsing_lang() == "zh_CN" else english) if english else text


def _epilog() -> str:
    lines = [f"  {int(code):<3}  {_in_lang(text)}" for code, text in _EXIT_TEXTS]
    return _in_lang("exit codes / 退出码") + ":\n" + "\n".join(lines)


def _common_options(suppress: bool) -> argparse.ArgumentParser:
    # The same options are accepted before and after the command; sub-parsers use
    # SUPPRESS defaults so they never overwrite a value given before the command.
    parent = argparse.ArgumentParser(add_help=False)
    default = argparse.SUPPRESS if suppress else None
    parent.add_argument("--config", metavar="FILE", default=default,
                        help=f"config file (env {CONFIG_ENV}, default {DEFAULT_CONFIG_PATH})")
    parent.add_argument("--lang", choices=("zh_CN", "en"), default=default,
                        help="message language (default: the locale, then [ui] default_lang)")
    parent.add_argument("--json", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="print one JSON document on stdout, for scripts")
    parent.add_argument("--debug", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="debug logging and tracebacks on errors")
    parent.add_argument("--user", metavar="NAME", default=default,
                        help="staff account recorded as the actor (default: the OS login's "
                             "[auth] os_users entry, or the account of the same name)")
    return parent


def build_parser() -> argparse.ArgumentParser:
    """Return the full command-line parser (its --help lists the exit codes)."""
    parser = argparse.ArgumentParser(
        prog="bm-agent", parents=[_common_options(suppress=False)],
        description=_in_lang("bm-agent: DBC bare-metal inventory, IPMI cross-check and staff "
                             "actions / bm-agent：裸金属服务器清单、IPMI 交叉核验与运维操作"),
        epilog=_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    common = _common_options(suppress=True)
    for module in (cli_setup, cli_tls, cli_servers, cli_actions, cli_ops, cli_seats,
                   cli_hooktoken):
        module.register(commands, common)
    from agent.demo import command as demo  # registered last: it is not a store command

    demo.register(commands, common)
    return parser


def _configure_logging(debug: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def run(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code (argparse exits 2 itself on usage errors)."""
    words = list(sys.argv[1:] if argv is None else argv)
    with argparse_language(lang_from_argv(words)):
        args = build_parser().parse_args(words)
    out = Output(lang=resolve_lang(args.lang), json_mode=bool(args.json))
    if not getattr(args, "configures_logging", False):
        _configure_logging(args.debug)
    ctx = Ctx(args, out)
    try:
        return int(args.handler(ctx))
    except (AgentError, BaremetalError, CliError, OSError) as exc:
        return _report(exc, ctx)
    except KeyboardInterrupt:
        print(out.t("cli.interrupted"), file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:  # the last line of defence: one line, the traceback in --debug
        _LOGGER.debug("unexpected error", exc_info=True)
        return _report(exc, ctx)
    finally:
        ctx.close()


def _report(exc: BaseException, ctx: Ctx) -> int:
    code = exit_code_for(exc)
    if ctx.args.debug:
        traceback.print_exception(exc, file=sys.stderr)
    print(error_text(exc, ctx.out.lang), file=sys.stderr)
    if ctx.out.json_mode:
        ctx.out.json({"ok": False, "exit_code": int(code), "error": type(exc).__name__,
                      "code": getattr(exc, "code", None),
                      "message": error_message(exc, ctx.out.lang)})
    return int(code)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: run and exit with the command's code."""
    sys.exit(run(argv))
