"""Test driver: a process that imports and registers servers through the Registry.

Run as ``python -m tests.integration.registry_driver --store DB --key-file K --node-url U
--node-dat D --count N [--batch-size B] [--kill-after-adds K] [--pause-after-add S]``.
It prints one line per step (``imported``, ``queued``, ``add ok``, ``run ...``,
``finished``) so a test can follow it and SIGKILL it mid-way. ``--kill-after-adds K``
makes the process SIGKILL itself right after the K-th successful ``bare_metal/add``
answer, before anything is recorded: the worst moment for exactly-once.

Also the shared helpers of the registry integration tests (``inventory_csv``,
``open_store``, ``make_registry``, ``node_servers``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agent.config import read_node_dat
from agent.models import OutboxState
from agent.registry.inventory import parse_inventory
from agent.registry.service import Registry
from agent.secrets import Sealer, create_key_file
from agent.store import Store
from baremetal.dbc.auth import NodeKeyAuth
from baremetal.dbc.client import Client
from baremetal.dbc.http import LOCAL_TIMEOUT_S
from baremetal.dbc.models import AddedServer, BareMetalServer, NewServer

__all__ = ["inventory_csv", "make_registry", "node_servers", "open_store", "server_row"]

HEADER = "uuid,ip,os,desc,ipmi_hostname,ipmi_username,ipmi_password,ipmi_port,mac,labels\n"


def server_row(index: int, *, prefix: str = "pc") -> str:
    """One CSV row for server ``index`` (distinct ip, BMC and password per server)."""
    return (f"{prefix}-{index:03d},10.0.{index // 200}.{index % 200 + 10},Windows 10,"
            f"seat {index},10.1.{index // 200}.{index % 200 + 10},admin,pw{index:03d}x,623,,"
            f"row={chr(65 + index % 6)};zone={'vip' if index % 2 else 'hall'}\n")


def inventory_csv(count: int, *, start: int = 1, prefix: str = "pc") -> bytes:
    """A CSV inventory of ``count`` valid servers."""
    rows = "".join(server_row(i, prefix=prefix) for i in range(start, start + count))
    return (HEADER + rows).encode()


def open_store(path: Path, key_file: Path, *, clock: Callable[[], float] = time.time) -> Store:
    """Open (creating the key file if needed) the agent store with its sealer."""
    create_key_file(key_file, exist_ok=True)
    return Store.open(path, sealer=Sealer.from_key_file(key_file), clock=clock)


def make_registry(store: Store, node_url: str, manager_key: str, *, batch_size: int = 20,
                  client: Client | None = None, clock: Callable[[], float] = time.time,
                  timeout_s: float = LOCAL_TIMEOUT_S) -> Registry:
    """A Registry talking to the bare-metal node's own HTTP with the local deadline."""
    node = client or Client(node_url, timeout_s=timeout_s, connect_timeout_s=1.0)
    return Registry(store=store, node=node, manager_key=manager_key, batch_size=batch_size,
                    clock=clock)


def node_servers(node_url: str, manager_key: str, expected: Sequence[str] = ()
                 ) -> list[BareMetalServer]:
    """Every server the node holds (manager-signed, past the cap for ``expected`` ids)."""
    with Client(node_url, timeout_s=LOCAL_TIMEOUT_S) as client:
        listing = client.list_all_bare_metal(NodeKeyAuth(manager_key), expected)
    return list(listing.servers)


class _KillingClient(Client):
    """A node client that dies (SIGKILL) right after the K-th add answer arrived."""

    def __init__(self, *args: Any, kill_after: int, pause_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._kill_after = kill_after
        self._pause_s = pause_s
        self._adds = 0

    def add_bare_metal(self, servers: Sequence[NewServer], auth: Any, *,
                       timeout_s: float | None = None) -> list[AddedServer]:
        added = super().add_bare_metal(servers, auth, timeout_s=timeout_s)
        self._adds += 1
        print(f"add ok {self._adds} ({len(added)} servers)", flush=True)
        if self._adds == self._kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(self._pause_s)
        return added


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="registry_driver")
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--key-file", type=Path, required=True)
    parser.add_argument("--node-url", required=True)
    parser.add_argument("--node-dat", type=Path, required=True)
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=3)
    parser.add_argument("--kill-after-adds", type=int, default=0)
    parser.add_argument("--pause-after-add", type=float, default=0.0)
    parser.add_argument("--deadline-s", type=float, default=60.0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Import, queue and register; exit 0 when the outbox is drained."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    key = read_node_dat(args.node_dat).private_key.reveal()
    client = _KillingClient(args.node_url, timeout_s=LOCAL_TIMEOUT_S, connect_timeout_s=1.0,
                            kill_after=args.kill_after_adds, pause_s=args.pause_after_add)
    with open_store(args.store, args.key_file) as store:
        registry = make_registry(store, args.node_url, key, batch_size=args.batch_size,
                                 client=client)
        print(f"recovered {registry.recover()}", flush=True)
        outcome = registry.import_servers(parse_inventory(inventory_csv(args.count)),
                                          actor="driver")
        print(f"imported {len(outcome.created)} {len(outcome.unchanged)}", flush=True)
        print(f"queued {registry.register_pending(actor='driver')}", flush=True)
        deadline = time.monotonic() + args.deadline_s
        while time.monotonic() < deadline:
            run = registry.process_outbox(limit=args.batch_size * 2)
            print(f"run claimed={run.claimed} done={run.done} deferred={run.deferred} "
                  f"reconciled={run.reconciled}", flush=True)
            counts = store.outbox.counts()
            if counts[OutboxState.PENDING] == 0 and counts[OutboxState.CLAIMED] == 0:
                print("finished", flush=True)
                return 0
            time.sleep(0.05)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
