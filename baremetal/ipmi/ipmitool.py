"""The ipmitool call exactly as the DBC bare-metal node makes it (docs/protocol.md §6.2).

The node builds one shell string (``ipmitool_client.cpp:29-65``)::

    ipmitool -H <host> [-p <port>] -U <user> -P <password> chassis power <cmd>
    ipmitool -H <host> [-p <port>] -U <user> -P <password> chassis bootdev <dev>

and runs it through ``popen`` (``sh -c '<string> 2>&1'``, ``utils.cpp:4-22``):

- no ``-I``: ipmitool then defaults to the IPMI 1.5 ``lan`` interface;
- ``-p`` only when a port is stored; no ``-C``/``-L``/``-N``/``-R``;
- the values are not quoted, so sh splits them on blanks (and would interpret
  metacharacters);
- stdout and stderr are merged, trailing newlines trimmed, inner newlines joined
  with `` <line> ``; the call failed iff the text contains ``Error:`` or ``error:``;
- there is no timeout.

Deviation, on purpose: ``run_dbc_ipmitool`` runs **without a shell**. The argv is the
blank-split command line (what sh makes of it when no value holds a metacharacter),
so a hostile hostname or password cannot inject commands; quotes, ``$``, ``;`` and
the like are passed to ipmitool literally instead of being interpreted by sh. It also
takes a timeout (the node has none) and raises ``IpmiTimeout`` when it expires.

The agent never lets a value reach the node (or its own probe) unless the blank-split
argv is exactly what sh makes of the line: every field must pass
``baremetal.ipmi.shell_word.check_node_shell_fields`` (a property test runs the line through
the real ``sh -c``). These functions themselves accept anything, as the node does, so
the emulator keeps behaving like the node for values stored by other means.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass

from baremetal.errors import IpmiTimeout, IpmiUnreachable

__all__ = [
    "BOOT_DEVICES",
    "POWER_COMMANDS",
    "DbcIpmitoolResult",
    "dbc_argv",
    "dbc_command_line",
    "parse_dbc_output",
    "redacted_command_line",
    "run_dbc_ipmitool",
]

_LOGGER = logging.getLogger(__name__)

POWER_COMMANDS = ("on", "off", "reset", "status")
BOOT_DEVICES = ("none", "pxe", "cdrom", "disk", "bios")
_VERBS = ("power", "bootdev")
_LINE_JOIN = " <line> "
_REDACTED = "******"


@dataclass(frozen=True)
class DbcIpmitoolResult:
    """What the node makes of one ipmitool run: success flag and the joined text."""

    ok: bool
    message: str


def _port_text(port: int | str | None) -> str:
    # The node stores the port as a decimal string; "" means "not stored".
    if port is None:
        return ""
    return str(port)


def dbc_command_line(
    hostname: str, port: int | str | None, username: str, password: str, verb: str, arg: str
) -> str:
    """Return the exact shell string the node builds (before it appends `` 2>&1``)."""
    if verb not in _VERBS:
        raise ValueError(f"verb must be one of {_VERBS}")
    cmd = "ipmitool -H " + hostname
    port_text = _port_text(port)
    if port_text:
        cmd += " -p " + port_text
    return cmd + " -U " + username + " -P " + password + " chassis " + verb + " " + arg


def redacted_command_line(
    hostname: str, port: int | str | None, username: str, verb: str, arg: str
) -> str:
    """Return the command line with the password replaced, for logs."""
    return dbc_command_line(hostname, port, username, _REDACTED, verb, arg)


def dbc_argv(
    hostname: str, port: int | str | None, username: str, password: str, verb: str, arg: str
) -> list[str]:
    """Return the argv sh passes for the node's string (blank word splitting only)."""
    # sh splits unquoted words on IFS blanks; an empty value therefore vanishes and
    # shifts the following options, exactly as on the node.
    return dbc_command_line(hostname, port, username, password, verb, arg).split()


def parse_dbc_output(text: str) -> DbcIpmitoolResult:
    """Turn raw merged ipmitool output into the node's (ok, message) pair."""
    message = text.rstrip("\n").replace("\n", _LINE_JOIN)
    failed = "Error:" in message or "error:" in message
    return DbcIpmitoolResult(ok=not failed, message=message)


def run_dbc_ipmitool(
    hostname: str,
    port: int | str | None,
    username: str,
    password: str,
    verb: str,
    arg: str,
    *,
    timeout_s: float,
    executable: str = "ipmitool",
) -> DbcIpmitoolResult:
    """Run the node's ipmitool command without a shell and parse its output.

    Raises ``IpmiTimeout`` when ipmitool outlives ``timeout_s`` and
    ``IpmiUnreachable`` when the ipmitool binary cannot be started.
    """
    argv = dbc_argv(hostname, port, username, password, verb, arg)
    argv[0] = executable
    _LOGGER.debug("run %s", redacted_command_line(hostname, port, username, verb, arg))
    try:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=timeout_s, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise IpmiTimeout(hostname, f"ipmitool gave no answer within {timeout_s:g} s") from exc
    except OSError as exc:
        raise IpmiUnreachable(hostname, f"cannot start {executable}: {exc.strerror}") from exc
    return parse_dbc_output(done.stdout.decode("utf-8", errors="surrogateescape"))
