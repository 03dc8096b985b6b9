"""A pyghmi-based fake BMC for tests: power, full boot-flag emulation and fault knobs.

Run as a subprocess (pyghmi keeps process-global session tables, so never in the test
process)::

    python -m baremetal.emulator.bmc_sim.fakebmc --port P --user U --password PW [--slow S] [--busy]
        [--drop-rate R] [--state-file F] [--initial-power on|off] [--valid-timeout S]
        [--reject-timer-param]

It binds 127.0.0.1 only and prints ``fakebmc ready on 127.0.0.1:P`` once listening.

Fixes over pyghmi's stock server (docs/ipmi.md §3.3.3):

- it answers "no cipher suite match" (RMCP+ status 0x11) to any proposal other than suite 3,
  so a pyghmi 1.6.19 client falls back from SHA-256 to SHA-1 instead of crashing;
- it answers RAKP2 "unauthorized name" (0x0D) to an unknown user instead of staying silent.

Boot flags (parameter 5) are stored raw: valid, persistent, UEFI and selector read back as
written. The valid bit clears ``--valid-timeout`` seconds (default 60) after a write unless
parameter 3 disabled that timer, and a one-time override is used up by the next power-on or
reset. ``--reject-timer-param`` answers 0x80 to parameter 3, as OpenBMC does.

Control "behind the agent's back": the JSON state file (``power``, ``boot_flags`` (5 ints),
``timer_disabled``, ``last_control``) is re-read before every request when its inode, size
or mtime changed, and rewritten (atomically) after every change. Tests edit it with an
atomic replace (``tests.support.bmc`` does this).

Faults: ``--slow S`` sleeps S seconds before every post-login request (the BMC is
single-threaded, as much firmware is); ``--busy`` answers 0xC0 to every chassis command;
``--drop-rate R`` silently ignores that fraction of post-login requests.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyghmi.ipmi.bmc as pyghmi_bmc
import pyghmi.ipmi.private.constants as constants
import pyghmi.ipmi.private.serversession as serversession

__all__ = ["FakeBmc", "FakeState", "Sha1OnlySession", "StateFile", "main", "parse_args"]

_SUITE3 = {12: 1, 20: 1, 28: 1}  # offsets of the auth, integrity, confidentiality algorithms
_RMCP_NO_CIPHER_MATCH = 0x11
_RAKP_UNAUTHORIZED_NAME = 0x0D
_CC_BUSY, _CC_PARAM_UNSUPPORTED, _CC_LENGTH = 0xC0, 0x80, 0xC7
_VALID, _PERSISTENT = 0x80, 0x40


class Sha1OnlySession(serversession.ServerSession):
    """pyghmi's server session, refusing non-suite-3 proposals instead of ignoring them."""

    def create_open_session_response(self, request: Any) -> Any:
        """Answer an RMCP+ open-session request; refuse any suite but 3 (status 0x11)."""
        if len(request) < 32 or any(request[i] != alg for i, alg in _SUITE3.items()):
            self.clientsessionid = request[4:8]
            self.managedsessionid = os.urandom(4)
            return bytearray([request[0], _RMCP_NO_CIPHER_MATCH, 0, 0]) + request[4:8]
        return super().create_open_session_response(request)

    def _got_rakp1(self, data: Any) -> None:
        name = bytes(data[28:]).decode("utf-8", "replace")
        if data[27] == 0 or self.authdata.get(name) is None:
            reply = bytearray([data[0], _RAKP_UNAUTHORIZED_NAME, 0, 0]) + self.clientsessionid
            self.send_payload(reply, constants.payload_types["rakp2"], retry=False)
            return
        super()._got_rakp1(data)


@dataclass
class FakeState:
    """What the fake BMC remembers; mirrored to the state file."""

    power: str = "off"
    boot_flags: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])
    timer_disabled: bool = False
    last_control: str = ""


class StateFile:
    """The JSON file tests use to read and change the BMC's state."""

    def __init__(self, path: Path, initial: FakeState) -> None:
        self.path = path
        self.state = initial
        self._seen: tuple[int, int, int] | None = None
        if path.exists():
            self.refresh()
        else:
            self.save()

    def refresh(self) -> bool:
        """Reload the file if it changed since we last read or wrote it; True if reloaded."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return False
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if key == self._seen:
            return False
        try:
            raw = json.loads(self.path.read_text())
            self.state = FakeState(**{**asdict(self.state), **raw})
        except (ValueError, TypeError) as exc:
            print(f"fakebmc: ignoring unreadable state file: {exc}", file=sys.stderr)
        self._seen = key
        return True

    def save(self) -> None:
        """Write the state atomically."""
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".fakebmc-")
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(self.state), fh)
        os.replace(tmp, self.path)
        st = self.path.stat()
        self._seen = (st.st_ino, st.st_size, st.st_mtime_ns)


class FakeBmc(pyghmi_bmc.Bmc):
    """pyghmi Bmc with stateful power, raw boot flags and fault injection."""

    def __init__(self, args: argparse.Namespace, store: StateFile) -> None:
        super().__init__({args.user: args.password}, port=args.port, address="127.0.0.1")
        self.args = args
        self.store = store
        self.boot_set_at = time.monotonic()
        self.rng = random.Random()  # noqa: S311 - fault injection, not cryptography

    @property
    def state(self) -> FakeState:
        """The current state (as last read from or written to the state file)."""
        return self.store.state

    # --- request entry: faults, then pyghmi's dispatch --------------------------------
    def handle_raw_request(self, request: Any, session: Any) -> None:
        """Apply the fault knobs, then let pyghmi dispatch the request."""
        if self.store.refresh():
            self.boot_set_at = time.monotonic()
        if self.args.drop_rate and self.rng.random() < self.args.drop_rate:
            return
        if self.args.slow:
            time.sleep(self.args.slow)
        if self.args.busy and request["netfn"] == 0:
            session.send_ipmi_response(code=_CC_BUSY)
            return
        super().handle_raw_request(request, session)

    # --- power ---------------------------------------------------------------------------
    def get_power_state(self) -> str:
        """Chassis power: ``on`` or ``off``."""
        return self.state.power

    def _control(self, name: str, power: str, boots: bool) -> int:
        if boots:
            self._consume_one_time_boot()
        self.state.power = power
        self.state.last_control = name
        self.store.save()
        return 0

    def power_on(self) -> int:
        """Power on (uses up a one-time boot override when it boots)."""
        return self._control("on", "on", boots=self.state.power == "off")

    def power_off(self) -> int:
        """Hard power off."""
        return self._control("off", "off", boots=False)

    def power_shutdown(self) -> int:
        """Soft off: the simulated OS shuts down at once."""
        return self._control("soft", "off", boots=False)

    def power_reset(self) -> int:
        """Reset: power stays as it is; a running machine reboots."""
        return self._control("reset", self.state.power, boots=self.state.power == "on")

    def power_cycle(self) -> int:
        """Power cycle: ends on."""
        return self._control("cycle", "on", boots=True)

    def _consume_one_time_boot(self) -> None:
        flags = self.state.boot_flags
        if flags[0] & _VALID and not flags[0] & _PERSISTENT:
            flags[0] &= ~_VALID & 0xFF

    # --- boot options --------------------------------------------------------------------
    def _expire_valid_bit(self) -> None:
        flags = self.state.boot_flags
        expired = time.monotonic() - self.boot_set_at > self.args.valid_timeout
        if flags[0] & _VALID and not self.state.timer_disabled and expired:
            flags[0] &= ~_VALID & 0xFF
            self.store.save()

    def get_system_boot_options(self, request: Any, session: Any) -> None:
        """Answer Get System Boot Options for parameters 3, 4 and 5."""
        param = request["data"][0] & 0x7F if request["data"] else -1
        if param == 5:
            self._expire_valid_bit()
            return session.send_ipmi_response(data=[1, 5, *self.state.boot_flags])
        if param == 3:
            return session.send_ipmi_response(data=[1, 3, 0x08 if self.state.timer_disabled else 0])
        if param == 4:
            return session.send_ipmi_response(data=[1, 4, 0, 0])
        return session.send_ipmi_response(code=_CC_PARAM_UNSUPPORTED)

    def set_system_boot_options(self, request: Any, session: Any) -> None:
        """Store Set System Boot Options parameters 3 and 5 raw; acknowledge 0 and 4."""
        data = list(request["data"])
        param = data[0] & 0x7F if data else -1
        if param == 3 and len(data) >= 2:
            if self.args.reject_timer_param:
                return session.send_ipmi_response(code=_CC_PARAM_UNSUPPORTED)
            self.state.timer_disabled = bool(data[1] & 0x08)
        elif param == 5 and len(data) >= 3:
            self.state.boot_flags = [*data[1:6], 0, 0, 0][:5]
            self.boot_set_at = time.monotonic()
        elif param in (0, 4) and len(data) >= 2:
            return session.send_ipmi_response()  # set-in-progress / boot info ack: accepted
        elif param in (3, 5):
            return session.send_ipmi_response(code=_CC_LENGTH)
        else:
            return session.send_ipmi_response(code=_CC_PARAM_UNSUPPORTED)
        self.store.save()
        return session.send_ipmi_response()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the fake BMC's command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--slow", type=float, default=0.0)
    parser.add_argument("--busy", action="store_true")
    parser.add_argument("--drop-rate", type=float, default=0.0)
    parser.add_argument("--state-file", type=Path)
    parser.add_argument("--initial-power", choices=("on", "off"), default="off")
    parser.add_argument("--valid-timeout", type=float, default=60.0)
    parser.add_argument("--reject-timer-param", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the fake BMC until killed."""
    args = parse_args(argv)
    # The stock server creates sessions through this module-level name (sessionless_data).
    serversession.ServerSession = Sha1OnlySession
    state_path = args.state_file or Path(tempfile.mkdtemp(prefix="fakebmc-")) / "state.json"
    store = StateFile(state_path, FakeState(power=args.initial_power))
    bmc = FakeBmc(args, store)
    print(f"fakebmc ready on 127.0.0.1:{args.port} state={state_path}", flush=True)
    bmc.listen(timeout=30)


if __name__ == "__main__":
    main()
