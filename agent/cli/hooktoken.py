"""``bm-agent hook-token new``: make the café's hook token (ed25519) for the boot hooks.

Two files in ``--dir`` (default: the config file's directory), never overwritten:

- ``hook-token.key`` (mode 0600): ``hook_token=<seed hex>``, the line bm-hook reads from
  ``[agent] token_key_file`` and the only line ``install.ps1 -TokenKeyFile`` accepts. It
  goes onto the GPU PCs (or into the diskless image), not onto the agent host;
- ``hook-token.pub``: ``hook_token_public=<public key hex>``, which the agent reads from
  ``[hook] token_public_key`` (``agent.hook.signing.load_public_key``).

The fingerprint printed is the first 16 hex of SHA-256 over the public key, as the
dashboard and ``bm-hook --check`` show key fingerprints.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from agent.cli.context import CliError, Ctx, ExitCode
from agent.hook.signing import generate_hook_keypair, load_public_key

__all__ = ["PRIVATE_NAME", "PUBLIC_NAME", "register"]

PRIVATE_NAME = "hook-token.key"
PUBLIC_NAME = "hook-token.pub"
_PRIVATE_HEADER = ("# bm-hook cafe hook token: PRIVATE. For the GPU PCs ([agent] token_key_file,\n"
                   "# install.ps1 -TokenKeyFile); the agent needs only hook-token.pub.\n")
_PUBLIC_HEADER = ("# bm-hook cafe hook token: public key, for the agent's\n"
                  "# [hook] token_public_key. Not a key for the PCs.\n")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``bm-agent hook-token new``."""
    token = commands.add_parser("hook-token", parents=[common],
                                help="the cafe's hook token for bm-hook / 启动钩子令牌")
    sub = token.add_subparsers(dest="hook_token_command", metavar="ACTION")
    sub.required = True
    new = sub.add_parser("new", parents=[common],
                         help=f"make {PRIVATE_NAME} (for the PCs) and {PUBLIC_NAME} "
                              "(for [hook] token_public_key); never overwrites")
    new.add_argument("--dir", metavar="DIR",
                     help="where to write both files (default: the config file's directory)")
    new.set_defaults(handler=cmd_new)


def cmd_new(ctx: Ctx) -> int:
    """Make the key pair; print where each file goes and the public key's fingerprint."""
    folder = Path(ctx.args.dir or ctx.config_path.parent).expanduser().absolute()
    private, public = folder / PRIVATE_NAME, folder / PUBLIC_NAME
    for path in (private, public):
        if path.exists() or path.is_symlink():
            raise CliError("cli.hook_token_exists", ExitCode.CONFLICT, path=path)
    seed, public_hex = generate_hook_keypair()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_new(private, f"{_PRIVATE_HEADER}hook_token={seed.reveal()}\n", 0o600)
        try:
            _write_new(public, f"{_PUBLIC_HEADER}hook_token_public={public_hex}\n", 0o644)
        except BaseException:
            private.unlink(missing_ok=True)
            raise
    except FileExistsError as exc:
        raise CliError("cli.hook_token_exists", ExitCode.CONFLICT, path=exc.filename) from None
    except OSError as exc:
        raise CliError("cli.cannot_write", ExitCode.ERROR, path=exc.filename or folder,
                       detail=exc.strerror) from None
    load_public_key(public)  # the file the agent will read parses as it will read it
    _report(ctx, private, public, public_hex)
    return int(ExitCode.OK)


def _write_new(path: Path, text: str, mode: int) -> None:
    """Create ``path`` with ``mode`` (O_EXCL, no symlink followed); never briefly wider."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)  # the umask narrowed 0644 perhaps; 0600 stays 0600
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            fd = -1
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        if fd >= 0:
            os.close(fd)
        path.unlink(missing_ok=True)
        raise


def _report(ctx: Ctx, private: Path, public: Path, public_hex: str) -> None:
    fingerprint = hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()[:16]
    if ctx.out.json_mode:
        ctx.out.json({"ok": True, "token_key_file": str(private), "public_key_file": str(public),
                      "public_key": public_hex, "fingerprint": fingerprint})
        return
    ctx.out.say("cli.hook_token_made", key=private, public=public,
                public_toml=json.dumps(str(public)), fingerprint=fingerprint)
