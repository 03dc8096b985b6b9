"""Typed errors of bm-hook; each leaf carries the process exit code it maps to.

The tree::

    HookError                     root; exit code 1 if ever raised bare
    ├── ConfigError               bad or missing configuration, unreadable key file   (2)
    │   └── StateUnavailable      the per-machine state dir is not there (yet): the
    │                             resident mode retries (a disk mounted late)
    ├── NodeDown                  the node (or the agent) did not answer in time      (3)
    ├── DeepLinkDown              DeepLink's SDK or its LAN session is not there      (4)
    ├── AuthRefused               a signature, key, token or source IP was refused    (5)
    ├── NotConfirmed              the new code was sent but never read back           (6)
    ├── AwaitingApproval          staff must approve this PC (its seat key, or a new  (7)
    │                             DeepLink device code) in the dashboard first
    └── PinMismatch               the agent's TLS certificate is not the pinned one   (8)

Messages never carry secrets: they are built from step names, endpoints, error codes
and the peers' own (already masked) texts.
"""

from __future__ import annotations

import enum

__all__ = [
    "AuthRefused",
    "AwaitingApproval",
    "ConfigError",
    "DeepLinkDown",
    "ExitCode",
    "HookError",
    "NodeDown",
    "NotConfirmed",
    "PinMismatch",
    "StateUnavailable",
]


class ExitCode(enum.IntEnum):
    """Process exit codes of ``bm-hook`` (documented in docs/hook.md and ``--help``)."""

    OK = 0
    INTERNAL = 1
    CONFIG = 2
    NODE_UNREACHABLE = 3
    DEEPLINK_UNREACHABLE = 4
    AUTH_REFUSED = 5
    NOT_CONFIRMED = 6
    AWAITING_APPROVAL = 7
    TLS_PIN_MISMATCH = 8


class HookError(Exception):
    """Root of every error bm-hook raises on purpose."""

    exit_code: ExitCode = ExitCode.INTERNAL


class ConfigError(HookError):
    """The configuration or a key file is missing, unreadable or invalid."""

    exit_code = ExitCode.CONFIG


class StateUnavailable(ConfigError):
    """``[state] dir`` cannot be used now, but something this run needs lives there.

    Unlike other configuration errors it may heal by itself (the per-machine disk is
    mounted after the service starts), so the resident mode keeps retrying it.
    """


class NodeDown(HookError):
    """The bare-metal node (or, in agent mode, the agent) did not answer before the deadline."""

    exit_code = ExitCode.NODE_UNREACHABLE


class DeepLinkDown(HookError):
    """DeepLink's local SDK is unreachable, or DeepLink never connected to the node."""

    exit_code = ExitCode.DEEPLINK_UNREACHABLE


class AuthRefused(HookError):
    """The node or the agent refused our signature, key, token or source address."""

    exit_code = ExitCode.AUTH_REFUSED


class NotConfirmed(HookError):
    """The new verification code was sent but the node never reported it back."""

    exit_code = ExitCode.NOT_CONFIRMED


class AwaitingApproval(HookError):
    """The agent waits for staff to approve this PC's seat key or DeepLink device code."""

    exit_code = ExitCode.AWAITING_APPROVAL


class PinMismatch(HookError):
    """The agent's HTTPS certificate is not the one ``[agent] cert_sha256`` pins."""

    exit_code = ExitCode.TLS_PIN_MISMATCH
