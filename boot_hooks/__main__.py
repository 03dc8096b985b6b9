"""``bm-hook``: give this PC a fresh DeepLink verification code at boot and publish it."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from boot_hooks.config import load_config
from boot_hooks.errors import ExitCode, HookError
from boot_hooks.logs import SecretFilter, attach_rotating_log, mask_device_id, setup_logging
from boot_hooks.state import open_state

if TYPE_CHECKING:
    from boot_hooks.direct_flow import Outcome

__all__ = ["build_parser", "main"]

_LOGGER = logging.getLogger("boot_hooks")

EPILOG = """\
modes:
  direct  [server] key_file holds this PC's node_private_key; the hook signs itself
  agent   [agent] url is set; bm-agent signs for us; the PC holds the cafe token and its
          own seat key ([agent] seat_key_file, made on first boot, approved by staff)

environment overrides: BM_HOOK_<SECTION>_<KEY>, e.g. BM_HOOK_NODE_URL,
  BM_HOOK_SERVER_KEY_FILE, BM_HOOK_DEEPLINK_SDK, BM_HOOK_DEADLINES_NODE_S, BM_HOOK_STATE_DIR

--check prints one line per item (OK / WARNING / PROBLEM and the fix) and exits 0, or 2
  when any PROBLEM is listed; it contacts nothing and never prints a key

exit codes:
  0  done: the node reports the new code
  1  internal error (a bug; the log has a traceback)
  2  configuration error (bad file, missing key, loose key-file permissions)
  3  node (or agent) unreachable before [deadlines] node_s
  4  DeepLink unreachable: SDK missing, or never connected to the node
  5  auth refused: wrong key, bad hook token, wrong source IP
  6  not confirmed: the node never reported the new code back
  7  awaiting approval: staff must approve this PC's seat key (or its new DeepLink
     device code) in the dashboard; run again afterwards
  8  TLS pin mismatch: the agent's certificate is not [agent] cert_sha256 (nothing sent)
"""


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser (its --help documents the exit codes)."""
    parser = argparse.ArgumentParser(
        prog="bm-hook",
        description="Make a fresh DeepLink verification code and publish it via the DBC node.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file")
    parser.add_argument("--log-file", metavar="FILE",
                        help="also log to FILE (rewritten each run; default: bm-hook.log,"
                             " rotating, in [state] dir)")
    parser.add_argument("--check", action="store_true",
                        help="check config, key files and state dir; print a verdict per"
                             " item, contact nothing; exit 0 if all is fine, else 2")
    parser.add_argument("--for-image", action="store_true",
                        help="with --check: also fail if per-machine state (seat key, server"
                             " key, last code, status) sits in the state dir")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--resident", action="store_true",
                        help="retry until the code is published ([service] retry_s, "
                             "slow_retry_s), then stay idle until SIGTERM/SIGINT (systemd)")
    parser.add_argument("--service", action="store_true",
                        help="Windows: run as the bm-hook service (started by the Service "
                             "Control Manager, not by hand); same loop as --resident")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run once; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.for_image and not args.check:
        parser.error("--for-image goes with --check")
    if args.check:
        from boot_hooks.check import run_check

        return run_check(args.config, os.environ, for_image=args.for_image)
    secret_filter = setup_logging(args.verbose, args.log_file)
    if args.service:
        from boot_hooks.winservice import run_service

        return run_service(args.config, secret_filter)
    if args.resident:
        from boot_hooks.resident import main_resident

        return main_resident(args.config, secret_filter)
    try:
        outcome = _rotate_once(args, secret_filter)
    except HookError as exc:
        _LOGGER.error("failed (exit %d, %s): %s", exc.exit_code, exc.exit_code.name, exc)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        _LOGGER.error("interrupted")
        return int(ExitCode.INTERNAL)
    except Exception:
        _LOGGER.exception("internal error")
        return int(ExitCode.INTERNAL)
    _LOGGER.info(
        "done: node %s reports the new code for device %s (%.3f s)",
        outcome.node_id, mask_device_id(outcome.device_id), outcome.elapsed_s,
    )
    return int(ExitCode.OK)


def _rotate_once(args: argparse.Namespace, secret_filter: SecretFilter) -> Outcome:
    config = load_config(args.config, os.environ)
    state = open_state(config)
    if state.log_path and not args.log_file:
        attach_rotating_log(state.log_path, secret_filter)
    _LOGGER.info("start: %s mode, sdk %s, state %s", config.mode, config.sdk, state.where)
    if config.mode == "agent":
        from boot_hooks.agent_flow import run_agent

        return run_agent(config, secret_filter.add, state)
    from boot_hooks.direct_flow import run_direct

    return run_direct(config, secret_filter.add, state)


if __name__ == "__main__":
    sys.exit(main())
