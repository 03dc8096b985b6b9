"""``bm-agent backup FILE``, ``restore FILE`` and ``upgrade-check``: keeping the store safe.

- ``backup`` makes an online copy of the store (SQLite backup API: the service keeps
  running). The copy never contains the secrets key: with ``--with-key`` the key file is
  copied beside it as ``FILE.key`` (0600), otherwise a warning says where the key is and
  that the backup cannot be used without it.
- ``restore`` refuses while another process (the service) has the store open, checks the
  backup (integrity, a bm-agent store, schema not newer than this code), checks that the
  key (the current one, or ``FILE.key`` with ``--with-key``) opens every sealed value in
  it, keeps the old store as ``<store>.bak-<UTC time>`` (with its -wal/-shm) and only then
  puts the backup in place; migrations of an older backup run there and then.
- ``upgrade-check`` reads the store's schema version without changing anything and says
  whether this code will migrate it, can use it as is, or must refuse it (exit 2 when it is
  newer than this code, 1 when it is corrupt).

Every step is an audit event in the store it concerns (``store.backup``, ``store.restore``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path
from typing import Any

from agent.cli.context import CliError, Ctx, ExitCode
from agent.config import Settings
from agent.errors import UnsealFailed
from agent.models import EventKind, Role
from agent.secrets import Sealer, load_keys
from agent.store import SCHEMA_VERSION, Store, check_store_file, restore_backup, store_in_use

__all__ = ["cmd_backup", "cmd_restore", "cmd_upgrade_check", "key_copy_path", "register"]

_SIDE_FILES = ("", "-wal", "-shm")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the backup, restore and upgrade-check commands."""
    backup = commands.add_parser("backup", parents=[common],
                                 help="online backup of the store / 在线备份数据库")
    backup.add_argument("file", type=Path, help="backup file to write (replaced atomically)")
    backup.add_argument("--with-key", action="store_true",
                        help="also copy the secrets key to FILE.key (mode 0600)")
    backup.set_defaults(handler=cmd_backup)

    restore = commands.add_parser("restore", parents=[common],
                                  help="replace the store by a backup (service stopped) / 恢复")
    restore.add_argument("file", type=Path, help="backup file made by `bm-agent backup`")
    restore.add_argument("--with-key", action="store_true",
                         help="also restore the secrets key from FILE.key")
    restore.set_defaults(handler=cmd_restore)

    check = commands.add_parser("upgrade-check", parents=[common],
                                help="can this version use the store? / 升级前检查")
    check.set_defaults(handler=cmd_upgrade_check)


def key_copy_path(backup: Path) -> Path:
    """Where ``--with-key`` puts (and looks for) the key beside a backup."""
    return backup.with_name(backup.name + ".key")


def _aside_name(path: Path) -> Path:
    """Return ``<path>.bak-<UTC time>`` (``.N`` added if taken): never overwrite a .bak."""
    base = f"{path.name}.bak-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    candidate, n = path.with_name(base), 0
    while any(Path(f"{candidate}{suffix}").exists() for suffix in _SIDE_FILES):
        n += 1
        candidate = path.with_name(f"{base}.{n}")
    return candidate


def _copy_private(src: Path, dest: Path) -> None:
    """Copy ``src`` to ``dest`` atomically with mode 0600 (never briefly wider)."""
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out, src.open("rb") as source:
            shutil.copyfileobj(source, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _same_owner(path: Path, like: os.stat_result) -> None:
    # restore runs as root while the service runs as bm-agent: hand the files back.
    if os.geteuid() == 0:
        os.chown(path, like.st_uid, like.st_gid)


# --- backup ------------------------------------------------------------------------


def cmd_backup(ctx: Ctx) -> int:
    """Write an online backup of the store; handle the secrets key explicitly."""
    settings = ctx.settings()
    store_path = settings.store.path
    dest = Path(ctx.args.file).absolute()
    if not store_path.is_file():
        raise CliError("cli.store_missing", ExitCode.ERROR, path=store_path)
    if dest in {Path(f"{store_path}{suffix}") for suffix in _SIDE_FILES}:
        raise CliError("cli.backup_over_store", path=dest)
    if not dest.parent.is_dir():
        raise CliError("cli.cannot_write", path=dest, detail="no such directory")
    key_file = settings.secrets.key_file
    if ctx.args.with_key:
        load_keys(key_file)  # a missing or insecure key file fails before any work
    actor = ctx.actor(Role.ADMIN, host_task=True)
    with Store.open(store_path, busy_timeout_s=settings.store.busy_timeout_s) as store:
        store.backup_to(dest)
        version = store.schema_version()
        key_copy = _copy_key(key_file, dest) if ctx.args.with_key else None
        store.events.append(actor=actor, kind=EventKind.AUDIT, action="store.backup",
                            result="ok", detail={"file": str(dest),
                                                 "with_key": key_copy is not None})
    ctx.out.say("cli.backup_written", path=dest)
    if key_copy is not None:
        ctx.out.say("cli.backup_key_copied", path=key_copy)
    else:
        ctx.out.warn("cli.backup_without_key", path=key_file, option="--with-key")
    if ctx.out.json_mode:
        ctx.out.json({"ok": True, "file": str(dest), "schema_version": version,
                      "key_file": str(key_copy) if key_copy else None,
                      "key_not_included": key_copy is None, "live_key_file": str(key_file)})
    return int(ExitCode.OK)


def _copy_key(key_file: Path, backup: Path) -> Path:
    dest = key_copy_path(backup)
    _copy_private(key_file, dest)
    _fsync_dir(dest.parent)
    return dest


# --- restore -----------------------------------------------------------------------


def cmd_restore(ctx: Ctx) -> int:
    """Replace the store by a checked backup; the old store is kept as ``.bak-<time>``."""
    settings = ctx.settings()
    store_path = settings.store.path
    src = Path(ctx.args.file).absolute()
    if store_in_use(store_path):
        raise CliError("cli.store_in_use", ExitCode.CONFLICT, path=store_path)
    key_source = _restore_key_source(settings, src, ctx.args.with_key)
    actor = ctx.actor(Role.ADMIN, host_task=True)
    tmp = store_path.with_name(f".{store_path.name}.restore-{os.getpid()}")
    try:
        version, sealed = _prepare_restore(src, tmp, Sealer.from_key_file(key_source),
                                           key_source, settings)
        kept = _swap_in(tmp, store_path)
    finally:
        for suffix in _SIDE_FILES:
            Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    old_key = _install_key(key_source, settings.secrets.key_file) if ctx.args.with_key else None
    with Store.open(store_path, sealer=Sealer.from_key_file(settings.secrets.key_file),
                    busy_timeout_s=settings.store.busy_timeout_s) as store:
        store.events.append(actor=actor, kind=EventKind.AUDIT, action="store.restore",
                            result="ok", detail={"file": str(src), "schema_version": version,
                                                 "previous_store": str(kept) if kept else None,
                                                 "key_restored": old_key is not None})
    _say_restored(ctx, src, version, kept, old_key, settings.secrets.key_file, sealed)
    return int(ExitCode.OK)


def _restore_key_source(settings: Settings, src: Path, with_key: bool) -> Path:
    if not src.is_file():
        raise CliError("cli.backup_missing", ExitCode.NOT_FOUND, path=src)
    if not with_key:
        return settings.secrets.key_file
    key = key_copy_path(src)
    if not key.is_file():
        raise CliError("cli.backup_key_missing", ExitCode.NOT_FOUND, path=key)
    return key


def _prepare_restore(src: Path, tmp: Path, sealer: Sealer, key_source: Path,
                     settings: Settings) -> tuple[int, int]:
    """Copy the checked backup to ``tmp``, migrate it and prove the key opens it."""
    version = restore_backup(src, tmp)  # integrity, schema not too new, a bm-agent store
    with Store.open(tmp, sealer=sealer, busy_timeout_s=settings.store.busy_timeout_s) as copy:
        try:
            sealed = copy.servers.verify_sealer()
        except UnsealFailed:
            raise CliError("cli.restore_wrong_key", ExitCode.ERROR, path=key_source,
                           option="--with-key") from None
    return version, sealed


def _swap_in(tmp: Path, store_path: Path) -> Path | None:
    """Move the old store (and its -wal/-shm) aside, then rename ``tmp`` into place."""
    like = store_path.stat() if store_path.exists() else store_path.parent.stat()
    kept: Path | None = None
    if store_path.exists():
        kept = _aside_name(store_path)
        for suffix in _SIDE_FILES:  # the -wal may hold committed data: it moves too
            old = Path(f"{store_path}{suffix}")
            if old.exists():
                os.replace(old, f"{kept}{suffix}")
    _same_owner(tmp, like)
    os.replace(tmp, store_path)
    _fsync_dir(store_path.parent)
    return kept


def _install_key(source: Path, key_file: Path) -> Path | None:
    """Put the backup's key in place; keep the current one as ``.bak-<time>``."""
    if key_file.exists() and source.read_bytes() == key_file.read_bytes():
        return None
    like = key_file.stat() if key_file.exists() else key_file.parent.stat()
    old = None
    if key_file.exists():
        old = _aside_name(key_file)
        _copy_private(key_file, old)
    _copy_private(source, key_file)
    _same_owner(key_file, like)
    _fsync_dir(key_file.parent)
    return old


def _say_restored(ctx: Ctx, src: Path, version: int, kept: Path | None, old_key: Path | None,
                  key_file: Path, sealed: int) -> None:
    if ctx.out.json_mode:
        ctx.out.json({"ok": True, "file": str(src), "schema_version": version,
                      "supported_version": SCHEMA_VERSION, "sealed_values": sealed,
                      "previous_store": str(kept) if kept else None,
                      "previous_key": str(old_key) if old_key else None})
        return
    ctx.out.say("cli.restored", path=src, version=version)
    if kept is not None:
        ctx.out.say("cli.restore_old_kept", path=kept)
    if old_key is not None:
        ctx.out.say("cli.restore_key_replaced", path=key_file, old=old_key)


# --- upgrade-check -----------------------------------------------------------------


def cmd_upgrade_check(ctx: Ctx) -> int:
    """Say whether this version can open the store, and whether it will migrate it."""
    store_path = ctx.settings().store.path
    report: dict[str, Any] = {"store": str(store_path), "supported_version": SCHEMA_VERSION}
    if not store_path.is_file():
        code, found = "cli.upgrade_no_store", None
    else:
        found = check_store_file(store_path)  # StoreTooNew: exit 2, StoreCorrupt: exit 1
        code = "cli.upgrade_ok" if found == SCHEMA_VERSION else "cli.upgrade_will_migrate"
    report.update(ok=True, schema_version=found, will_migrate=code == "cli.upgrade_will_migrate")
    if ctx.out.json_mode:
        ctx.out.json(report)
    else:
        ctx.out.say(code, path=store_path, found=found, supported=SCHEMA_VERSION)
    return int(ExitCode.OK)
