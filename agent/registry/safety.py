"""Stored IPMI fields the node runs through ``sh -c``: checked before each send and at start.

Import and PATCH refuse a value that is not one plain shell word (``baremetal.ipmi.shell_word``),
but a store written by an older version, or a restored backup, may hold one, e.g. an
``ipmi_hostname`` of ``fe80::1%;cd;touch x;`` that the node would execute as root the next
time a renter asks for power. So:

- ``check_stored_shell_fields`` raises ``UnsafeNodeValue`` (server uuid and field, never
  the value) and is called by the outbox right before a ``bare_metal/add`` or
  ``bare_metal/modify`` is built: such a server is never registered or modified;
- ``recheck_stored_values`` runs once at service start (``RegistryWorker.start``): every
  such server is marked ``failed`` with a ``state_detail`` naming the field, and gets a
  ``registry`` event ``recheck``/``refused`` and a warning in the log, so staff see it on
  the dashboard before anything else happens.

Once staff change the field to a safe value (PATCH or import), ``clear_unsafe_mark``
puts a never-registered server back to ``pending``; a registered one gets its modify.
"""

from __future__ import annotations

import logging

from agent.errors import UnsafeNodeValue
from agent.models import ACTOR_REGISTRY, EventKind, RegistrationState, Server
from agent.store import Store
from baremetal.errors import UnsafeShellWord
from baremetal.ipmi.shell_word import check_node_shell_fields

__all__ = ["check_stored_shell_fields", "clear_unsafe_mark", "recheck_stored_values",
           "unsafe_detail"]

_LOGGER = logging.getLogger(__name__)
_MARKER = "is not safe on the DBC node's shell command line"  # in UnsafeNodeValue.template
_STILL_ON_NODE = (" The node still holds the value it was registered with: change the field "
                  "now so the node gets a safe one.")


def check_stored_shell_fields(store: Store, server: Server) -> None:
    """Raise ``UnsafeNodeValue`` if a stored field the node puts on its shell line is unsafe."""
    creds = store.servers.credentials(server_id=server.id)
    try:
        check_node_shell_fields(hostname=server.ipmi_host, port=server.ipmi_port,
                                username=server.ipmi_user,
                                password=creds.ipmi_password.reveal())
    except UnsafeShellWord as exc:
        raise UnsafeNodeValue(server=server.uuid, field=exc.field, reason=exc.rule) from None


def unsafe_detail(server: Server, exc: UnsafeNodeValue) -> str:
    """Return the ``state_detail`` of a server refused for an unsafe stored value."""
    return exc.message() + (_STILL_ON_NODE if server.node_id else "")


def recheck_stored_values(store: Store) -> list[UnsafeNodeValue]:
    """Mark every server whose stored shell-line fields are unsafe (service start)."""
    found: list[UnsafeNodeValue] = []
    for server in store.servers.find():
        if server.state == RegistrationState.DELETING:
            continue  # a delete sends no IPMI field
        try:
            check_stored_shell_fields(store, server)
        except UnsafeNodeValue as exc:
            found.append(exc)
            _mark(store, server, exc)
    return found


def _mark(store: Store, server: Server, exc: UnsafeNodeValue) -> None:
    _LOGGER.warning("start-up re-check: server %s: stored %s is unsafe on the node's shell "
                    "line; it is not sent to the node until changed", server.uuid, exc.field)
    with store.transaction():
        store.servers.set_registration(server_id=server.id, state=RegistrationState.FAILED,
                                       detail=unsafe_detail(server, exc))
        store.events.append(actor=ACTOR_REGISTRY, kind=EventKind.REGISTRY, action="recheck",
                            server_uuid=server.uuid, result="refused",
                            detail={"field": exc.field, "error": exc.message(),
                                    "on_node": server.node_id is not None})


def clear_unsafe_mark(store: Store, server: Server) -> None:
    """After a change: put a never-registered server refused as unsafe back to pending."""
    if (server.state != RegistrationState.FAILED or server.node_id is not None
            or _MARKER not in server.state_detail):
        return
    try:
        check_stored_shell_fields(store, server)
    except UnsafeNodeValue:
        return
    store.servers.set_registration(server_id=server.id, state=RegistrationState.PENDING)
