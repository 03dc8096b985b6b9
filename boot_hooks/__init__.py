"""bm-hook: a fresh DeepLink verification code at every boot, published through the DBC node.

Run as ``bm-hook --config FILE`` (see ``boot_hooks.__main__`` and docs/hook.md).
"""

from boot_hooks.errors import ExitCode, HookError

__all__ = ["ExitCode", "HookError"]
