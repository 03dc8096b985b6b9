"""What every ``bm-agent`` command shares: exit codes, the run context, the error mapping.

``Ctx`` loads the settings, builds the ``Agent`` (or just the store, for user commands)
on first use, says who the actor is, and closes everything at the end. ``exit_code_for``
and ``error_text`` turn any ``AgentError``/``BaremetalError`` into the documented exit
code and a translated ``ErrorType: message`` line.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import errors as ae
from agent.cli.output import Output
from agent.config import Settings, load_settings, resolve_config_path
from agent.i18n import catalogue, normalize_lang, translate_error
from agent.models import Role
from agent.timefmt import load_zone
from baremetal import errors as be

if TYPE_CHECKING:
    from agent.accounts.auth import Authenticator
    from agent.app import Agent
    from agent.store import Store

__all__ = ["CliError", "Ctx", "ExitCode", "error_message", "error_text", "exit_code_for",
           "os_actor",
           "os_login"]

_LOGGER = logging.getLogger(__name__)


class ExitCode(IntEnum):
    """Exit codes of ``bm-agent`` (docs/cli.md lists them)."""

    OK = 0
    ERROR = 1           # anything else: store, secrets, node refused, internal error
    USAGE = 2           # bad command line, invalid value or file, bad configuration
    NOT_FOUND = 3       # no such server, user or event
    CONFLICT = 4        # already exists, action in progress, last admin
    PARTIAL = 5         # a batch where some items failed (rows, servers)
    UNREACHABLE = 6     # the DBC node or a BMC did not answer in time
    DENIED = 7          # authentication failed, role too low, rate limited
    UNCONFIRMED = 8     # off/soft/reset or several seats: no --yes and no terminal, or "no"
    INTERRUPTED = 130   # Ctrl-C


class CliError(Exception):
    """A command-line problem with an i18n ``code``, its params and an exit code."""

    def __init__(self, code: str, exit_code: ExitCode = ExitCode.USAGE, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.exit_code = exit_code
        self.params = params


# First match wins: leaves before their parents.
_AGENT_EXITS: tuple[tuple[type[ae.AgentError], ExitCode], ...] = (
    # A store newer than the code will not fix itself: exit 2, which the systemd unit's
    # RestartPreventExitStatus=2 treats as final instead of restarting ten times.
    (ae.StoreTooNew, ExitCode.USAGE),
    (ae.ConfigError, ExitCode.USAGE),
    (ae.ValidationError, ExitCode.USAGE),
    (ae.NotFound, ExitCode.NOT_FOUND),
    (ae.Conflict, ExitCode.CONFLICT),
    (ae.AuthFailed, ExitCode.DENIED),
    (ae.PermissionDenied, ExitCode.DENIED),
    (ae.RateLimited, ExitCode.DENIED),
)
# BaremetalError family -> (exit code, the catalogue code the API uses for it too).
_BAREMETAL: tuple[tuple[type[be.BaremetalError], ExitCode, str], ...] = (
    (be.DeepLinkNotConnected, ExitCode.ERROR, "deeplink_not_connected"),
    (be.TransportError, ExitCode.UNREACHABLE, "node_unreachable"),
    (be.ApiError, ExitCode.ERROR, "node_error"),
    (be.DecodeError, ExitCode.ERROR, "node_error"),
    (be.IpmiUnreachable, ExitCode.UNREACHABLE, "bmc_unreachable"),
    (be.IpmiTimeout, ExitCode.UNREACHABLE, "bmc_unreachable"),
    (be.IpmiError, ExitCode.ERROR, "bmc_error"),
    (be.InvalidInput, ExitCode.USAGE, "invalid_input"),
)


def _transport_cause(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, be.TransportError | be.IpmiUnreachable | be.IpmiTimeout):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def exit_code_for(exc: BaseException) -> ExitCode:
    """Return the documented exit code for an exception."""
    if isinstance(exc, CliError):
        return exc.exit_code
    if isinstance(exc, ae.AgentError):
        for cls, code in _AGENT_EXITS:
            if isinstance(exc, cls):
                return code
        return ExitCode.UNREACHABLE if _transport_cause(exc) else ExitCode.ERROR
    if isinstance(exc, be.BaremetalError):
        for bcls, code, _key in _BAREMETAL:
            if isinstance(exc, bcls):
                return code
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    return ExitCode.ERROR


def error_text(exc: BaseException, lang: str) -> str:
    """Return ``ErrorType: message`` (Chinese: ``错误：message``) in ``lang``."""
    text = _error_line(exc, lang)
    if lang == "zh_CN" and not isinstance(exc, CliError):
        message = text.split(": ", 1)[-1]
        return f"{Output(lang=lang, json_mode=False).t('cli.error')}：{message}"
    return text


def error_message(exc: BaseException, lang: str) -> str:
    """Return the message part alone (no error type), for ``--json`` answers."""
    return _error_line(exc, lang).split(": ", 1)[-1]


def _error_line(exc: BaseException, lang: str) -> str:
    name = type(exc).__name__
    if isinstance(exc, CliError):
        out = Output(lang=lang, json_mode=False)
        return f"{out.t('cli.error')}: {out.t(exc.code, **exc.params)}"
    if isinstance(exc, ae.AgentError):
        return f"{name}: {translate_error(exc, lang)}"
    if isinstance(exc, be.BaremetalError):
        for cls, _code, key in _BAREMETAL:
            if isinstance(exc, cls) and key in catalogue(lang):
                return f"{name}: {Output(lang=lang, json_mode=False).t(key, detail=str(exc))}"
    return f"{name}: {exc}"


def os_login() -> str:
    """Return the OS login running the command (its uid when it has no name)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def os_actor() -> str:
    """Return ``cli:<login>``: the actor of ``init`` only (no staff account exists yet)."""
    return f"cli:{os_login()}"


class Ctx:
    """One command's run: parsed arguments, output, and lazily built settings and agent."""

    def __init__(self, args: argparse.Namespace, out: Output) -> None:
        self.args = args
        self.out = out
        self.config_path: Path = resolve_config_path(getattr(args, "config", None)).absolute()
        self._settings: Settings | None = None
        self._agent: Agent | None = None
        self._store: Store | None = None

    def settings(self) -> Settings:
        """Load the settings once (and adopt ``[ui] default_lang`` if no language was chosen)."""
        if self._settings is None:
            self._settings = load_settings(self.config_path)
            self.out.zone = load_zone(self._settings.ui.timezone)
            if not self.args.lang and not _locale_lang():
                self.out.lang = self._settings.ui.default_lang
        return self._settings

    def agent(self) -> Agent:
        """Build the agent once (store, BMC client, node client, registry, monitor, actions)."""
        if self._agent is None:
            from agent.app import Agent  # heavy imports only for commands that need them

            self._agent = Agent.build(self.settings())
        return self._agent

    def store(self) -> Store:
        """Return the agent's store (opened alone when the full agent is not needed)."""
        if self._agent is not None:
            return self._agent.store
        if self._store is None:
            from agent.secrets import Sealer
            from agent.store import Store

            settings = self.settings()
            self._store = Store.open(settings.store.path,
                                     sealer=Sealer.from_key_file(settings.secrets.key_file),
                                     busy_timeout_s=settings.store.busy_timeout_s)
        return self._store

    def authenticator(self) -> Authenticator:
        """Users and passwords over the store."""
        from agent.accounts.auth import Authenticator

        return Authenticator.from_settings(self.store(), self.settings().auth)

    def actor(self, needed: Role, *, host_task: bool = False) -> str:
        """Return the audit actor: a staff account (exists, enabled, role high enough).

        ``--user NAME``, else the OS login's ``[auth] os_users`` entry, else the account
        named like the OS login; with none of them the command is refused (exit 7), except
        a ``host_task`` (backup, restore: the host's own upkeep, run by the installer or
        cron before any staff exists), which is recorded as ``cli:<login>``.
        """
        name = getattr(self.args, "user", None) or self._os_staff_name(host_task)
        if name is None:
            return os_actor()
        user = self.store().users.get(name=name)
        if user.disabled:
            raise ae.AuthFailed("user disabled")
        if not user.role.allows(needed):
            raise ae.PermissionDenied(needed=str(needed))
        return user.name

    def _os_staff_name(self, host_task: bool) -> str | None:
        login = os_login()
        mapped = dict(self.settings().auth.os_users).get(login)
        if mapped:
            return mapped
        if host_task:  # the store is not opened here: restore replaces it
            return None
        if any(user.name == login for user in self.store().users.all()):
            return login
        raise CliError("cli.actor_unknown", ExitCode.DENIED, login=login)

    def close(self) -> None:
        """Stop the agent and close the store."""
        if self._agent is not None:
            self._agent.stop()
            self._agent = None
        if self._store is not None:
            self._store.close()
            self._store = None


def _locale_lang() -> str | None:
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if os.environ.get(name):
            return normalize_lang(os.environ[name])
    return None
