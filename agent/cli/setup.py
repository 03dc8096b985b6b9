"""``bm-agent init``, ``users add|passwd|rm|list`` and ``serve``.

``init`` is idempotent: an existing config, key file, store or admin is kept (and said so);
only what is missing is created. The key file is created 0600 and the store 0600 (by
``Store.open``); the config holds no secret and is written 0640.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from agent.cli import tls as cli_tls
from agent.cli.argtext import coded
from agent.cli.context import CliError, Ctx, ExitCode, os_actor, os_login
from agent.config import render_default_config
from agent.models import Role
from agent.secrets import Secret, create_key_file, load_keys

__all__ = ["read_password", "register", "write_private_text"]

_LOGGER = logging.getLogger(__name__)
_DEFAULT_NODE_DAT = "/opt/dbc/dbc_baremetal_node/dat/node.dat"
# bm-agent init option -> config key it sets.
_INIT_KEYS = {
    "node_url": "node.url", "node_dat": "node.node_dat", "client_url": "node.client_url",
    "listen": "api.listen", "store": "store.path", "key_file": "secrets.key_file",
    "rentals_file": "check.rentals_file", "default_lang": "ui.default_lang",
}


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the init, users and serve commands."""
    init = commands.add_parser("init", parents=[common], help="write config, key, store, admin")
    init.add_argument("--admin", metavar="USER", help="name of the first admin user")
    init.add_argument("--password-file", metavar="FILE",
                      help="read the admin password from FILE ('-' = stdin)")
    init.add_argument("--node-url", help="DBC bare-metal node URL [node] url")
    init.add_argument("--node-dat", default=_DEFAULT_NODE_DAT,
                      help="the node's dat/node.dat [node] node_dat (default %(default)s)")
    init.add_argument("--client-url", help="optional DBC client node URL [node] client_url")
    init.add_argument("--listen", help="API address host:port [api] listen")
    init.add_argument("--store", help="SQLite file [store] path")
    init.add_argument("--key-file", help="secrets key file [secrets] key_file")
    init.add_argument("--rentals-file", help="rentals JSON [check] rentals_file")
    init.add_argument("--default-lang", choices=("zh_CN", "en"), help="[ui] default_lang")
    cli_tls.add_init_options(init)
    init.add_argument("--force", action="store_true",
                      help="rewrite an existing config file (the key and store are kept)")
    init.set_defaults(handler=cmd_init)

    users = commands.add_parser("users", parents=[common], help="staff users")
    sub = users.add_subparsers(dest="users_command", metavar="ACTION")
    sub.required = True
    add = sub.add_parser("add", parents=[common], help="add a user")
    add.add_argument("name")
    add.add_argument("--role", type=coded("role", [r.value for r in Role]), metavar="ROLE",
                     default=Role.VIEWER.value, help="viewer, operator or admin (or 只读…)")
    add.add_argument("--password-file", metavar="FILE", help="'-' = stdin")
    add.set_defaults(handler=cmd_users_add)
    passwd = sub.add_parser("passwd", parents=[common], help="set a user's password")
    passwd.add_argument("name")
    passwd.add_argument("--password-file", metavar="FILE", help="'-' = stdin")
    passwd.set_defaults(handler=cmd_users_passwd)
    remove = sub.add_parser("rm", parents=[common], help="remove a user")
    remove.add_argument("name")
    remove.set_defaults(handler=cmd_users_rm)
    listing = sub.add_parser("list", parents=[common], help="list users")
    listing.set_defaults(handler=cmd_users_list)

    serve = commands.add_parser("serve", parents=[common],
                                help="run the service: API, dashboard, monitor, registry")
    serve.set_defaults(handler=cmd_serve, configures_logging=True)


# --- helpers -------------------------------------------------------------------------


def write_private_text(path: Path, text: str, mode: int = 0o600) -> None:
    """Write ``text`` atomically to ``path`` with ``mode`` (never briefly wider)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_password(ctx: Ctx, source: str | None, user: str) -> Secret:
    """Read a password from a file (first line; '-' = stdin) or prompt twice on a terminal."""
    if source:
        try:
            text = sys.stdin.readline() if source == "-" else \
                Path(source).read_text(encoding="utf-8").split("\n", 1)[0]
        except OSError as exc:
            raise CliError("cli.cannot_read", path=source, detail=exc.strerror) from None
        return Secret(text.rstrip("\r\n"))
    if not sys.stdin.isatty():
        raise CliError("cli.password_needed", user=user)
    first = getpass.getpass(ctx.out.t("cli.password_prompt", user=user))
    if first != getpass.getpass(ctx.out.t("cli.password_repeat")):
        raise CliError("cli.passwords_differ")
    return Secret(first)


# --- init --------------------------------------------------------------------------


def cmd_init(ctx: Ctx) -> int:
    """Write the config (unless present), create the key file, the store and the first admin."""
    report: dict[str, Any] = {"config": str(ctx.config_path)}
    early = ctx.config_path.exists() and not ctx.args.force  # a kept config may name a pair
    tls = cli_tls.make_init_cert(ctx) if early else {}
    report["config_created"] = _init_config(ctx)
    report.update(tls if early else cli_tls.make_init_cert(ctx))
    settings = ctx.settings()
    key_file = settings.secrets.key_file
    report["key_file"], report["key_created"] = str(key_file), not key_file.exists()
    if key_file.exists():
        load_keys(key_file)  # refuses a key file others may read
        ctx.out.say("cli.key_kept", path=key_file)
    else:
        create_key_file(key_file)
        ctx.out.say("cli.key_created", path=key_file)
    store_path = settings.store.path
    report["store"], report["store_created"] = str(store_path), not store_path.exists()
    store_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    ctx.store()
    ctx.out.say("cli.store_created" if report["store_created"] else "cli.store_kept",
                path=store_path)
    report["admin"], report["admin_created"] = _init_admin(ctx)
    if not settings.node.node_dat.exists():
        ctx.out.warn("cli.node_dat_missing", path=settings.node.node_dat)
    if ctx.out.json_mode:
        ctx.out.json({"ok": True, **report})
    return int(ExitCode.OK)


def _init_config(ctx: Ctx) -> bool:
    path = ctx.config_path
    if path.exists() and not ctx.args.force:
        ctx.settings()  # validate it first, and speak its [ui] default_lang
        ctx.out.say("cli.config_kept", path=path)
        return False
    values = {key: getattr(ctx.args, option) for option, key in _INIT_KEYS.items()
              if getattr(ctx.args, option)}
    values.update(cli_tls.init_config_values(ctx.args))
    if ctx.args.admin:  # whoever runs init acts as the admin it creates (docs/cli.md)
        values["auth.os_users"] = f"{os_login()}={ctx.args.admin}"
    write_private_text(path, render_default_config(values), mode=0o640)
    ctx.out.say("cli.config_written", path=path)
    return True


def _init_admin(ctx: Ctx) -> tuple[str | None, bool]:
    store = ctx.store()
    name: str | None = ctx.args.admin
    if name is None:
        if store.users.count_active_admins() > 0:
            ctx.out.say("cli.admin_exists")
            return None, False
        if not sys.stdin.isatty():
            raise CliError("cli.admin_needed")
        name = input(ctx.out.t("cli.admin_prompt")).strip() or "admin"
    if any(user.name == name for user in store.users.all()):
        ctx.out.say("cli.admin_kept", user=name)
        return name, False
    password = read_password(ctx, ctx.args.password_file, name)
    ctx.authenticator().create_user(name=name, password=password, role=Role.ADMIN,
                                    actor=os_actor())
    ctx.out.say("cli.admin_created", user=name)
    return name, True


# --- users -------------------------------------------------------------------------


def cmd_users_add(ctx: Ctx) -> int:
    """Create a staff user."""
    actor = ctx.actor(Role.ADMIN)
    password = read_password(ctx, ctx.args.password_file, ctx.args.name)
    user = ctx.authenticator().create_user(name=ctx.args.name, password=password,
                                           role=Role(ctx.args.role), actor=actor)
    return _user_done(ctx, "cli.user_added", user.name, str(user.role))


def cmd_users_passwd(ctx: Ctx) -> int:
    """Set a user's password (ends their browser sessions and revokes their tokens)."""
    actor = ctx.actor(Role.ADMIN)
    ctx.store().users.get(name=ctx.args.name)  # not found before asking for a password
    password = read_password(ctx, ctx.args.password_file, ctx.args.name)
    user = ctx.authenticator().change_password(name=ctx.args.name, new_password=password,
                                               actor=actor).user
    return _user_done(ctx, "cli.user_password_set", user.name, str(user.role))


def cmd_users_rm(ctx: Ctx) -> int:
    """Remove a user with their tokens and sessions (the last admin stays)."""
    actor = ctx.actor(Role.ADMIN)
    ctx.authenticator().remove_user(name=ctx.args.name, actor=actor)
    return _user_done(ctx, "cli.user_removed", ctx.args.name, None)


def _user_done(ctx: Ctx, code: str, name: str, role: str | None) -> int:
    if ctx.out.json_mode:
        ctx.out.json({"ok": True, "user": name, "role": role})
    else:
        ctx.out.say(code, user=name)
    return int(ExitCode.OK)


def cmd_users_list(ctx: Ctx) -> int:
    """List staff users."""
    users = ctx.store().users.all()
    if ctx.out.json_mode:
        ctx.out.json([{"name": u.name, "role": str(u.role), "disabled": u.disabled,
                       "created_at": u.created_at} for u in users])
        return int(ExitCode.OK)

    ctx.out.table(["ui.username", "ui.role", "cli.col.disabled", "cli.col.created"],
                  [[u.name, ctx.out.t(f"role.{u.role}"), ctx.out.t("ui.yes" if u.disabled
                                                                    else "ui.no"),
                    ctx.out.ts(u.created_at)] for u in users])
    return int(ExitCode.OK)


# --- serve -------------------------------------------------------------------------


def cmd_serve(ctx: Ctx) -> int:
    """Run uvicorn with the API and the background work until SIGTERM or Ctrl-C."""
    settings = ctx.settings()
    level = logging.DEBUG if ctx.args.debug else getattr(logging, settings.log.level)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvicorn

    from agent.api import conn_guard
    from agent.api.app import create_app

    warning = cli_tls.cleartext_warning(settings)
    if warning:
        _LOGGER.warning("%s", warning)
    problem = conn_guard.check_uvicorn()
    if problem:
        raise CliError("cli.server_unsupported", detail=problem)
    before, after = conn_guard.raise_open_files_limit(settings.api.open_files)
    _LOGGER.info("open files limit: %d (was %d)", after, before)
    app = create_app(ctx.agent(), background=True)
    # proxy_headers=False: the hook relay trusts the TCP peer address (agent.api.app).
    # One worker, one process: pyghmi keeps its IPMI sessions in process-global tables
    # (docs/ipmi.md §3.3.8), so a second worker would fight the first over every BMC session.
    _LOGGER.info("serving with a single uvicorn worker: pyghmi IPMI sessions are "
                 "process-global and cannot be shared between worker processes")
    certfile, keyfile = cli_tls.uvicorn_tls_files(settings)
    # Connection limits against slow or half-sent requests: agent.api.conn_guard.
    config = uvicorn.Config(app, host=settings.api.host, port=settings.api.port, workers=1,
                            log_level=logging.getLevelName(level).lower(), access_log=False,
                            lifespan="on", log_config=None, proxy_headers=False,
                            ssl_certfile=certfile, ssl_keyfile=keyfile,
                            **conn_guard.uvicorn_options(settings.api))
    server = conn_guard.GuardedServer(config)
    host = f"[{settings.api.host}]" if ":" in settings.api.host else settings.api.host
    scheme = "https" if settings.api.tls else "http"
    ctx.out.warn("cli.listening", url=f"{scheme}://{host}:{settings.api.port}/")
    server.run()  # uvicorn turns SIGTERM/SIGINT into a graceful shutdown (lifespan stop)
    return int(ExitCode.OK if server.started else ExitCode.ERROR)
