r"""One rule for values the DBC node puts unquoted on its ``sh -c`` line (docs/protocol.md §6.2).

The node builds ``ipmitool -H <host> [-p <port>] -U <user> -P <password> chassis ...``
(``baremetal.ipmi.ipmitool.dbc_command_line``) and runs it through ``sh -c``, the values not
quoted. A value is safe there only if sh (dash, bash, busybox ash) hands it to ipmitool
as exactly one argument, unchanged. So every such value must be a *shell word*:

- not empty (an empty value vanishes and shifts the following options);
- only ASCII letters, digits and ``. _ @ % + = : , / -``: no blanks (IFS splits on
  them), no quotes, ``\``, ``$``, backticks, ``; & | < > ( )`` (commands,
  redirections), no ``* ? [ ]`` (globs), ``{ }`` (bash brace expansion), ``~`` (tilde
  expansion: at a word start, and in bash also after ``=`` or ``:``), ``#`` (a comment
  at a word start), ``!`` (pipeline negation, history), ``^`` (a pipe in the Bourne
  shell), no control, non-ASCII or bidi characters;
- not starting with ``=`` (``=cmd`` expands to a path in zsh);
- ``%`` is harmless anywhere (it is special only to job-control builtins), so an IPv6
  scope id such as ``fe80::1%eth0`` passes; a scope id holding anything else does not.

``ipmi_port`` is an integer 1..65535 (written in decimal) or absent.

Every path that stores or sends these fields uses this module: the inventory's
validation (``agent.registry.inventory``), the request types sent to the node
(``baremetal.dbc.models``), the registry's outbox and start-up re-check
(``agent.registry.safety``) and the agent's DBC-path probe (``agent.monitor.reader``).
"""

from __future__ import annotations

import re

from baremetal.errors import UnsafeShellWord

__all__ = [
    "SHELL_FIELDS",
    "SHELL_WORD_RULE",
    "check_node_shell_fields",
    "check_shell_port",
    "check_shell_word",
    "is_shell_word",
    "unsafe_node_shell_field",
]

# The node's fields that end up on its shell line, in command-line order.
SHELL_FIELDS = ("ipmi_hostname", "ipmi_port", "ipmi_username", "ipmi_password")
SHELL_WORD_RULE = ("only ASCII letters, digits and . _ @ % + = : , / - (not empty, not "
                   "starting with '='): the DBC node passes it to sh unquoted")
_PORT_RULE = "an integer 1..65535"
_SHELL_WORD = re.compile(r"[A-Za-z0-9._@%+:,/-][A-Za-z0-9._@%+=:,/-]*")
_PORT_TEXT = re.compile(r"[1-9][0-9]{0,4}")


def is_shell_word(value: object) -> bool:
    """Tell whether ``value`` is a string sh passes on as one unchanged argument."""
    return isinstance(value, str) and _SHELL_WORD.fullmatch(value) is not None


def check_shell_word(field: str, value: object) -> str:
    """Return ``value`` if it is a shell word; else raise ``UnsafeShellWord(field)``."""
    if not is_shell_word(value):
        raise UnsafeShellWord(field, SHELL_WORD_RULE)
    return str(value)


def check_shell_port(field: str, port: object) -> None:
    """Raise ``UnsafeShellWord`` unless ``port`` is absent (None or "") or 1..65535."""
    if port is None or port == "":
        return
    if isinstance(port, bool) or not isinstance(port, int | str):
        raise UnsafeShellWord(field, _PORT_RULE)
    text = str(port)
    if not _PORT_TEXT.fullmatch(text) or int(text) > 65535:
        raise UnsafeShellWord(field, _PORT_RULE)


def check_node_shell_fields(*, hostname: object, port: object, username: object,
                            password: object) -> None:
    """Raise ``UnsafeShellWord`` naming the first field that is not safe on the node's line."""
    check_shell_word("ipmi_hostname", hostname)
    check_shell_port("ipmi_port", port)
    check_shell_word("ipmi_username", username)
    check_shell_word("ipmi_password", password)


def unsafe_node_shell_field(*, hostname: object, port: object, username: object,
                            password: object) -> str | None:
    """Return the name of the first unsafe field, or None when all four are safe."""
    try:
        check_node_shell_fields(hostname=hostname, port=port, username=username,
                                password=password)
    except UnsafeShellWord as exc:
        return exc.field
    return None
