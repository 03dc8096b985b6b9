"""The chain simulator: the DBC chain's JSON-RPC, answered as the DBC node's C++ parses it.

``HttpDBCChainClient.cpp`` (docs/protocol.md §14) asks the chain over HTTPS; tests cannot
reach it, so this peer answers the same calls on plain HTTP on 127.0.0.1:

- ``chain_getBlock`` -> ``result.block.header.number`` as a ``0x`` hex string;
- ``onlineProfile_getMachineInfo [node_id]`` -> ``result.machineStatus`` (``null`` result
  for a machine the chain does not know [inferred]);
- ``rentMachine_getRentOrder [node_id]`` or ``[<order id>]`` (a number) -> ``renter``,
  ``rentEnd``, ``rentStatus``, ``gpuNum``, ``gpuIndex``; no rent: the all-zero renter;
- ``onlineCommittee_getCommitteeOps [wallet, node_id]`` -> ``verifyTime`` (3 block numbers;
  ``[]`` for a wallet that is not verifying);
- the ``terminatingRental_*`` twins of the three machine calls.

State: ``ChainState`` — the current block and the machines, in the emulator's rentals
format (``baremetal/emulator/rentals.py``), so one file can drive both: ``status``
online/rented/verify/unknown becomes machineStatus online/rented/committeeVerifying/absent
(``chain_status`` overrides it with any raw string, e.g. ``creating``). A ``renting`` order
whose ``rent_end`` the current block has passed answers ``rentExpired``, as the chain
would; the machine's status is left as set (the node's timer checks the blocks itself).
Faults for tests: ``delay_s`` before every answer, ``raw_answers[method]`` sent verbatim.

Run: ``python -m baremetal.emulator.chain_sim --listen 127.0.0.1:9944 --state FILE``
(``bm-chain-sim``); the file is re-read when it changes. ``bm-node-emulator --chain URL``
makes the emulator's rental checks ask it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import ssl
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from baremetal.emulator.rentals import MachineRental, _machine_from

__all__ = ["ChainSimServer", "ChainState", "main"]

_LOGGER = logging.getLogger(__name__)
DEFAULT_RENTER = "5C4hrfjw9DjXZTzV3MwzrrAr9P1MJhSrvWGWqi1eSuyUpnhM"
_CHAIN_STATUS = {"online": "online", "rented": "rented", "verify": "committeeVerifying"}
MAX_BODY = 64 * 1024
_HASH = "0x" + "ab" * 32


@dataclass
class ChainState:
    """What the simulated chain knows; thread-safe, optionally backed by a JSON file."""

    current_block: int = 1000
    machines: dict[str, MachineRental] = field(default_factory=dict)
    chain_status: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    raw_answers: dict[str, bytes] = field(default_factory=dict)
    requests: deque[bytes] = field(default_factory=lambda: deque(maxlen=1000))
    path: Path | None = None
    _stamp: tuple[int, int] | None = None
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @classmethod
    def from_file(cls, path: Path) -> ChainState:
        """Build a state read from ``path`` now and again whenever the file changes."""
        state = cls(path=path)
        state.refresh()
        return state

    def load(self, raw: dict[str, Any]) -> None:
        """Replace the state with a document in the rentals format (+ ``chain_status``)."""
        machines = raw.get("machines", {})
        if not isinstance(machines, dict):
            raise TypeError("machines is not an object")
        parsed = {str(k): _machine_from(v) for k, v in machines.items()}
        overrides = {str(k): str(v["chain_status"]) for k, v in machines.items()
                     if isinstance(v, dict) and "chain_status" in v}
        with self.lock:
            self.current_block = int(raw.get("current_block", self.current_block) or 0)
            self.machines, self.chain_status = parsed, overrides

    def refresh(self) -> None:
        """Re-read the backing file if it changed (a bad file keeps the last good state)."""
        if self.path is None:
            return
        try:
            stat = os.stat(self.path)
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp == self._stamp:
                return
            self.load(json.loads(self.path.read_text(encoding="utf-8")))
            self._stamp = stamp
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            _LOGGER.warning("chain state %s ignored: %s", self.path, exc)

    # --- answers -----------------------------------------------------------------------

    def machine_status(self, node_id: str) -> str | None:
        """Return the raw machineStatus, None when the chain does not know the machine."""
        machine = self.machines.get(node_id)
        if node_id in self.chain_status:
            return self.chain_status[node_id]
        if machine is None:
            return None
        return _CHAIN_STATUS.get(machine.status)

    def rent_order(self, machine: MachineRental | None) -> dict[str, Any]:
        """Return one RentOrderDetail as the chain serialises it (camelCase)."""
        if machine is None or not machine.renter:
            return {"renter": DEFAULT_RENTER, "rentStart": 0, "confirmRent": 0, "rentEnd": 0,
                    "stakeAmount": "0", "rentStatus": "waitingVerifying", "gpuNum": 0,
                    "gpuIndex": []}
        status = machine.rent_status
        if status == "renting" and 0 < machine.rent_end < self.current_block:
            status = "rentExpired"
        return {"renter": machine.renter, "rentStart": 1, "confirmRent": 1,
                "rentEnd": machine.rent_end, "stakeAmount": "1000000000000000",
                "rentStatus": status, "gpuNum": 1, "gpuIndex": [0]}

    def answer(self, method: str, params: list[Any]) -> Any:
        """Return the ``result`` of one call; raise KeyError for an unknown method."""
        pallet, _, call = method.partition("_")
        if method == "chain_getBlock":
            return _block(self.current_block)
        if call == "getMachineInfo" and pallet in ("onlineProfile", "terminatingRental"):
            status = self.machine_status(str(params[0]) if params else "")
            return None if status is None else _machine_info(status)
        if call == "getRentOrder" and pallet in ("rentMachine", "terminatingRental"):
            return self.rent_order(self._order_target(params))
        if call == "getCommitteeOps" and pallet in ("onlineCommittee", "terminatingRental"):
            wallet, node_id = (str(p) for p in [*params, "", ""][:2])
            machine = self.machines.get(node_id)
            inside = machine is not None and wallet in machine.verifiers
            return {"verifyTime": [self.current_block - 1, 0, 0] if inside else []}
        raise KeyError(method)

    def _order_target(self, params: list[Any]) -> MachineRental | None:
        target = params[0] if params else ""
        if isinstance(target, int) and not isinstance(target, bool):
            return next((m for m in self.machines.values() if m.rent_order == str(target)),
                        None)
        return self.machines.get(str(target))


def _block(number: int) -> dict[str, Any]:
    header = {"parentHash": _HASH, "number": hex(number), "stateRoot": _HASH,
              "extrinsicsRoot": _HASH, "digest": {"logs": []}}
    return {"block": {"header": header, "extrinsics": []}, "justifications": None}


def _machine_info(status: str) -> dict[str, Any]:
    return {"controller": DEFAULT_RENTER, "machineStash": DEFAULT_RENTER, "renters": [],
            "bondingHeight": 1, "onlineHeight": 2, "lastOnlineHeight": 2,
            "initStakePerGpu": "0", "stakeAmount": "0", "machineStatus": status,
            "totalRentedDuration": 0, "totalRentedTimes": 0, "totalRentFee": "0",
            "totalBurnFee": "0",
            "machineInfoDetail": {"committee_upload_info": {"gpu_num": 1, "is_support": True},
                                  "staker_customize_info": {}},
            "rewardCommittee": [], "rewardDeadline": 0}


class _Handler(BaseHTTPRequestHandler):
    server: ChainSimServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed ACK

    def log_message(self, format: str, *args: Any) -> None:
        _LOGGER.debug("chain-sim %s", format % args)

    def do_POST(self) -> None:
        """Answer one JSON-RPC call."""
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 <= length <= MAX_BODY:
            self._send(413, b"")
            return
        body = self.rfile.read(length)
        self._send(200, self.server.reply(body))

    def _send(self, status: int, data: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (its deadline passed)


class ChainSimServer(ThreadingHTTPServer):
    """The JSON-RPC listener; ``state`` is what it answers from."""

    daemon_threads = True

    def __init__(self, host: str, port: int, state: ChainState,
                 tls: ssl.SSLContext | None = None) -> None:
        self.state = state
        self.scheme = "https" if tls else "http"
        super().__init__((host, port), _Handler)
        if tls is not None:  # the handshake runs in the request's thread, not in accept()
            self.socket = tls.wrap_socket(self.socket, server_side=True,
                                          do_handshake_on_connect=False)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a client that hung up at debug level; anything else as socketserver does."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            _LOGGER.debug("chain-sim: client %s hung up", client_address)
            return
        super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        """``http(s)://host:port`` of this listener."""
        host, port = self.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}"

    def start(self) -> threading.Thread:
        """Serve in a daemon thread."""
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                  name="chain-sim", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()

    def reply(self, body: bytes) -> bytes:
        """Return the bytes answering one request body."""
        state = self.state
        with state.lock:
            state.refresh()
            state.requests.append(body)
            delay = state.delay_s
        if delay:
            time.sleep(delay)
        try:
            doc = json.loads(body)
            method, params, call_id = doc["method"], doc.get("params", []), doc.get("id")
        except (ValueError, KeyError, TypeError):
            return _rpc_error(None, -32700, "Parse error")
        with state.lock:
            if method in state.raw_answers:
                return state.raw_answers[method]
            try:
                result = state.answer(str(method), params if isinstance(params, list) else [])
            except KeyError:
                return _rpc_error(call_id, -32601, "Method not found")
        return json.dumps({"jsonrpc": "2.0", "result": result, "id": call_id}).encode()


def _rpc_error(call_id: Any, code: int, message: str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "error": {"code": code, "message": message},
                       "id": call_id}).encode()


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host or "127.0.0.1", int(port)


def main(argv: list[str] | None = None) -> int:
    """Serve the chain simulator until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="bm-chain-sim", description=__doc__.split("\n")[0])
    parser.add_argument("--listen", type=_listen, default=("127.0.0.1", 9944))
    parser.add_argument("--state", type=Path, help="state JSON (the rentals format)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state = ChainState.from_file(args.state) if args.state else ChainState()
    server = ChainSimServer(args.listen[0], args.listen[1], state)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    print(f"bm-chain-sim ready url={server.url}", file=sys.stderr, flush=True)
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
