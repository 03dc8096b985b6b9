"""HTTPS for ``bm-agent``: ``init --tls``, ``tls fingerprint|make-cert``, ``serve``'s TLS.

``init --tls`` names ``[api] tls_cert``/``tls_key`` in the new config (beside the secrets
key) and makes a self-signed certificate there if the files do not exist yet (``agent.tls``):
SAN = the listen host plus every ``--tls-host``. Both ``init`` and ``tls fingerprint`` print
the SHA-256 fingerprint the boot hooks pin (``[agent] cert_sha256``, docs/hook.md).
``tls make-cert`` does the same for an installed agent whose config already names the pair.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import tomllib
from pathlib import Path
from typing import Any

from agent.cli.context import CliError, Ctx, ExitCode
from agent.config import Settings, env_name
from agent.config.keys import split_listen

__all__ = ["add_init_options", "cleartext_warning", "init_config_values", "make_init_cert",
           "register", "uvicorn_tls_files"]

_LOGGER = logging.getLogger(__name__)
CERT_NAME, KEY_NAME = "agent-tls.crt", "agent-tls.key"
_DEFAULT_LISTEN = "127.0.0.1:8700"


def add_init_options(init: argparse.ArgumentParser) -> None:
    """Add ``--tls`` and ``--tls-host`` to ``bm-agent init``."""
    init.add_argument("--tls", action="store_true",
                      help="serve HTTPS: make a self-signed certificate ([api] tls_cert/tls_key)")
    init.add_argument("--tls-host", action="append", default=[], metavar="HOST",
                      help="IP or name the certificate is for, besides the --listen host "
                           "(repeatable)")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``bm-agent tls fingerprint`` and ``bm-agent tls make-cert``."""
    tls = commands.add_parser("tls", parents=[common], help="the API's HTTPS certificate")
    sub = tls.add_subparsers(dest="tls_command", metavar="ACTION")
    sub.required = True
    show = sub.add_parser("fingerprint", parents=[common],
                          help="print the SHA-256 fingerprint of [api] tls_cert")
    show.set_defaults(handler=cmd_fingerprint)
    make = sub.add_parser("make-cert", parents=[common],
                          help="make the self-signed pair [api] tls_cert/tls_key name, if absent")
    make.add_argument("--tls-host", action="append", default=[], metavar="HOST",
                      help="IP or name the certificate is for, besides the [api] listen host "
                           "(repeatable)")
    make.set_defaults(handler=cmd_make_cert, tls=True)


def init_config_values(args: argparse.Namespace) -> dict[str, str]:
    """Config values ``init --tls`` writes: the pair beside the secrets key file."""
    if not args.tls:
        return {}
    folder = Path(args.key_file).parent if args.key_file else Path()
    return {"api.tls_cert": str(folder / CERT_NAME), "api.tls_key": str(folder / KEY_NAME)}


def make_init_cert(ctx: Ctx) -> dict[str, Any]:
    """For ``init --tls``: make the configured pair if absent; print its fingerprint."""
    if not ctx.args.tls:
        return {}
    pair, listen = _configured(ctx.config_path)
    if pair is None:
        raise CliError("cli.tls_not_in_config", path=ctx.config_path)
    cert, key = pair
    from agent.tls import certificate_hosts, fingerprint, make_self_signed

    created = not cert.exists() and not key.exists()
    if created:
        hosts = certificate_hosts([split_listen(listen)[0], *ctx.args.tls_host])
        digest = make_self_signed(cert, key, hosts)
        ctx.out.say("cli.tls_created", cert=cert, key=key, hosts=", ".join(hosts))
    else:
        ctx.settings()  # checks the pair (readable, matching) before printing anything
        digest = fingerprint(cert)
        ctx.out.say("cli.tls_kept", cert=cert)
    ctx.out.say("cli.tls_fingerprint", colons=digest.colons, plain=digest.plain)
    return {"tls_cert": str(cert), "tls_created": created, "sha256": digest.colons,
            "sha256_hex": digest.plain}


def cmd_make_cert(ctx: Ctx) -> int:
    """Make the pair an existing config names (no store, no users touched)."""
    report = make_init_cert(ctx)
    if ctx.out.json_mode:
        ctx.out.json({"ok": True, **report})
    return int(ExitCode.OK)


def _configured(config_path: Path) -> tuple[tuple[Path, Path] | None, str]:
    """Read ``[api] tls_cert``, ``tls_key`` and ``listen`` as load_settings would."""
    try:
        api = tomllib.loads(config_path.read_text(encoding="utf-8")).get("api", {})
    except (OSError, tomllib.TOMLDecodeError):
        api = {}

    def pick(name: str) -> str:
        value = os.environ.get(env_name("api", name), api.get(name, ""))
        return value.strip() if isinstance(value, str) else ""
    cert, key = pick("tls_cert"), pick("tls_key")
    if not cert or not key:
        return None, pick("listen") or _DEFAULT_LISTEN
    base = config_path.parent
    return (base / Path(cert).expanduser(), base / Path(key).expanduser()), \
        pick("listen") or _DEFAULT_LISTEN


def cmd_fingerprint(ctx: Ctx) -> int:
    """Print the SHA-256 fingerprint of the configured certificate."""
    settings = ctx.settings()
    if settings.api.tls_cert is None:
        raise CliError("cli.tls_off", path=ctx.config_path)
    from agent.tls import fingerprint

    digest = fingerprint(settings.api.tls_cert)
    if ctx.out.json_mode:
        ctx.out.json({"tls_cert": str(settings.api.tls_cert), "sha256": digest.colons,
                      "sha256_hex": digest.plain})
    else:
        ctx.out.say("cli.tls_fingerprint", colons=digest.colons, plain=digest.plain)
    return int(ExitCode.OK)


def uvicorn_tls_files(settings: Settings) -> tuple[str | None, str | None]:
    """Return uvicorn's ``ssl_certfile`` and ``ssl_keyfile`` (both None when TLS is off)."""
    if settings.api.tls_cert is None or settings.api.tls_key is None:
        return None, None
    return str(settings.api.tls_cert), str(settings.api.tls_key)


def cleartext_warning(settings: Settings) -> str | None:
    """Return the warning ``serve`` logs on a non-loopback address without TLS, else None."""
    host = settings.api.host
    if settings.api.tls or host == "localhost":
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None  # a host name: it may resolve to a LAN address
    mapped = getattr(address, "ipv4_mapped", None)
    if address is not None and (mapped or address).is_loopback:
        return None
    return (f"listening on {settings.api.listen} WITHOUT TLS: staff passwords, session "
            "cookies, API tokens and hook requests cross the network in clear text; "
            "set [api] tls_cert/tls_key (bm-agent init --tls) or keep [api] listen on "
            "127.0.0.1 (docs/operations.md)")
