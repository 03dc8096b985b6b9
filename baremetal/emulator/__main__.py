"""``bm-node-emulator``: the DBC bare-metal node, and optionally a client node, in one process.

    bm-node-emulator --listen 127.0.0.1:5002 --data-dir DIR
        [--deeplink-listen HOST:PORT] [--client-listen HOST:PORT --rentals FILE]
        [--chain URL ... | --chain-sim-listen HOST:PORT]
        [--node-version 0.4.1.8] [--prune-first-s 180 --prune-every-s 900 --prune-gap-s 3]

Environment: ``BM_EMULATOR_RELAY_TIMEOUT_S`` (default 30) is the client's P2P timer.
Logs go to stderr, one line per request (method, URI, status, errcode), no secrets.
A line starting ``bm-node-emulator ready`` is printed once every listener is up.
``--chain`` (repeatable: hosts tried in turn) makes the rental checks and the idle timer ask
a chain (``bm-chain-sim``, ``baremetal/emulator/chain_sim.py``) through ``baremetal.chain``
instead of reading ``--rentals``: the agent's ``[chain] hosts`` can name the same one.
``--chain-sim-listen`` runs that simulator in this process, serving the ``--rentals`` file,
and makes the emulator ask it.
SIGTERM and SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from baremetal.emulator.app import EmulatorHttpServer
from baremetal.emulator.authority import SessionIds
from baremetal.emulator.backends import (
    DeepLinkSource,
    EmptyRoom,
    LanDeepLink,
    PowerBackend,
    RoomLike,
    StoredDeepLink,
)
from baremetal.emulator.chain_sim import ChainSimServer, ChainState
from baremetal.emulator.context import HttpContext, Relay, ServiceList
from baremetal.emulator.deeplink_lan import DeepLinkLanServer, DeepLinkRoom
from baremetal.emulator.node_side import NodeSide
from baremetal.emulator.prune import PruneTimer
from baremetal.emulator.rentals import RentalBook, RentalView
from baremetal.emulator.store import BareMetalStore, load_or_create_identity

__all__ = ["main"]

_LOGGER = logging.getLogger("baremetal.emulator")
DEFAULT_VERSION = "0.4.1.8"
LAN_SERVICE_VERSION = (0, 4, 1, 7)


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host or "127.0.0.1", int(port)


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad version {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bm-node-emulator", description=__doc__.split("\n")[0])
    parser.add_argument("--listen", type=_host_port, default=("127.0.0.1", 5002))
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--deeplink-listen", type=_host_port)
    parser.add_argument("--client-listen", type=_host_port)
    parser.add_argument("--rentals", type=Path, help="rentals JSON (see rentals.py)")
    parser.add_argument("--chain", action="append", default=[], metavar="URL",
                        help="ask this chain (JSON-RPC) instead of --rentals; repeatable")
    parser.add_argument("--chain-timeout-s", type=float, default=5.0)
    parser.add_argument("--chain-sim-listen", type=_host_port,
                        help="serve --rentals as a chain simulator here and ask it")
    parser.add_argument("--node-version", default=DEFAULT_VERSION)
    parser.add_argument("--node-name", default=socket.gethostname() or "null")
    parser.add_argument("--prune-first-s", type=float, default=180.0)
    parser.add_argument("--prune-every-s", type=float, default=900.0)
    parser.add_argument("--prune-gap-s", type=float, default=3.0)
    parser.add_argument("--ipmitool", default="ipmitool", help="ipmitool executable")
    parser.add_argument("--ipmitool-timeout-s", type=float, default=120.0,
                        help="kill ipmitool after this long (the node has no timeout)")
    parser.add_argument("--log-level", default="INFO")
    return parser


def _check_ipmitool(executable: str) -> None:
    # IpmiToolClient::Init: `ipmitool -V` must print "ipmitool version".
    try:
        out = subprocess.run([executable, "-V"], capture_output=True, timeout=10, check=False)
        text = (out.stdout + out.stderr).decode("utf-8", errors="replace")
    except (OSError, subprocess.TimeoutExpired):
        text = ""
    if "ipmitool version" not in text:
        raise SystemExit("ipmitool is not installed")


def _start_chain_sim(args: argparse.Namespace) -> ChainSimServer:
    state = ChainState.from_file(args.rentals) if args.rentals else ChainState()
    host, port = args.chain_sim_listen
    server = ChainSimServer(host, port, state)
    server.start()
    args.chain = [server.url, *args.chain]
    return server


def _rental_view(args: argparse.Namespace) -> RentalView:
    if not args.chain:
        return RentalBook(args.rentals)
    from baremetal.chain import ChainClient  # requests is loaded only when asked for
    from baremetal.emulator.chain_book import ChainRentalBook

    return ChainRentalBook(ChainClient(args.chain, timeout_s=args.chain_timeout_s))


class Emulator:
    """All listeners and threads of one emulated node."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        data_dir: Path = args.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        identity = load_or_create_identity(data_dir)
        self.manager_id = identity.node_id
        self.store = BareMetalStore(data_dir)
        self.chain_sim = _start_chain_sim(args) if args.chain_sim_listen else None
        self.rentals = _rental_view(args)
        power = PowerBackend(self.store, executable=args.ipmitool,
                             timeout_s=args.ipmitool_timeout_s)
        self.lan: DeepLinkLanServer | None = None
        deeplink: DeepLinkSource = StoredDeepLink(self.store)
        if _version(args.node_version) >= LAN_SERVICE_VERSION:
            deeplink = LanDeepLink(self._start_lan() if args.deeplink_listen else EmptyRoom())
        self.node = NodeSide(self.manager_id, args.node_version, self.store, power, deeplink,
                             self.rentals, SessionIds(data_dir))
        timeout_s = float(os.environ.get("BM_EMULATOR_RELAY_TIMEOUT_S", "30"))
        services = ServiceList(self.manager_id, self.store)
        relay = Relay(self.node, services, timeout_s)
        self.servers = [self._http(args.listen, HttpContext(
            "baremetal", self.manager_id, args.node_version, args.node_name, relay, services,
            self.node), timeout_s)]
        if args.client_listen:
            client_id = load_or_create_identity(data_dir / "client").node_id
            self.servers.append(self._http(args.client_listen, HttpContext(
                "client", client_id, args.node_version, args.node_name, relay, services),
                timeout_s))
        self.prune = PruneTimer(self.store, self.rentals, power, first_s=args.prune_first_s,
                                every_s=args.prune_every_s, gap_s=args.prune_gap_s)

    def _start_lan(self) -> RoomLike:
        room = DeepLinkRoom()
        host, port = self.args.deeplink_listen
        self.lan = DeepLinkLanServer(host, port, room)
        self.lan.start()
        return room

    @staticmethod
    def _http(addr: tuple[str, int], ctx: HttpContext, hold_s: float) -> EmulatorHttpServer:
        return EmulatorHttpServer(addr[0], addr[1], ctx, no_reply_hold_s=hold_s)

    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set, then shut everything down."""
        threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2},
                                    name=f"http-{s.context.role}", daemon=True)
                   for s in self.servers]
        for thread in threads:
            thread.start()
        self.prune.start()
        self._print_ready()
        stop.wait()
        _LOGGER.info("stopping")
        self.prune.stop()
        for server in self.servers:
            server.shutdown()
            server.server_close()
        if self.lan is not None:
            self.lan.stop()
        if self.chain_sim is not None:
            self.chain_sim.stop()

    def _print_ready(self) -> None:
        parts = [f"{s.context.role}=http://{s.server_name}:{s.server_port}"
                 for s in self.servers]
        if self.lan is not None:
            parts.append(f"deeplink={self.lan.host}:{self.lan.port}")
        if self.chain_sim is not None:
            parts.append(f"chain={self.chain_sim.url}")
        parts.append(f"manager_id={self.manager_id}")
        print("bm-node-emulator ready " + " ".join(parts), file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the emulator until SIGTERM or SIGINT."""
    args = _parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _check_ipmitool(args.ipmitool)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    Emulator(args).run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
