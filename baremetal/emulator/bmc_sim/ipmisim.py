"""Start OpenIPMI's ``ipmi_sim`` as an independent IPMI peer (docs/ipmi.md §5).

Used by the tests (through ``tests.peers.ipmisim``), the benchmarks and ``bm-agent demo``.

Each BMC gets its own directory with a generated ``lan.conf`` / ``sim.emu``, a state dir for
ipmi_sim and a state dir for ``chassis_helper.sh`` (power, boot device, slow knob: plain
files that tests may rewrite behind a client's back).

Knobs:

- ``ipmi15=False``: empty ``allowed_auths_*`` lines, so IPMI 1.5 logins fail
  (``ipmitool -I lan``, the DBC node's way) while IPMI 2.0 (``-I lanplus -C 3``) works;
- ``ipmi20=False``: no ``guid`` line, so ipmi_sim offers no RMCP+ (an IPMI-1.5-only BMC);
- ``slow``: the helper sleeps that long on every chassis request;
- dead: ``stop()`` (port left with no BMC) or ``freeze()`` (SIGSTOP: port bound, silent).

ipmi_sim sets SO_REUSEADDR, so two instances can share a UDP port without error. After
start we check in /proc that every socket on the port belongs to our PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baremetal.emulator.bmc_sim.procs import ChildProcess, free_port
from baremetal.ipmi.client import BmcAddress

__all__ = [
    "HELPER",
    "IpmiSimBmc",
    "ipmi_sim_binary",
    "lan_conf",
    "launch_ipmi_sim",
    "rss_kib",
    "start_ipmi_sim",
    "start_ipmi_sim_fleet",
    "stop_fleet",
    "wait_ready",
]

HELPER = Path(__file__).with_name("chassis_helper.sh")
_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
_EMU = "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\nmc_enable 0x20\n"
_BOOT_NAMES = {"none", "pxe", "default", "cdrom", "bios"}


def ipmi_sim_binary() -> str | None:
    """Path of ipmi_sim, or None when the openipmi package is not installed."""
    return shutil.which("ipmi_sim")


def _check_safe(what: str, value: str) -> None:
    # Values go into lan.conf between double quotes and through ipmi_sim's popen shell.
    if not value or not set(value) <= _SAFE:
        raise ValueError(f"{what} {value!r}: use letters, digits, '_', '-', '.' only")


def lan_conf(port: int, user: str, password: str, helper_cmd: str, *, ipmi15: bool,
             ipmi20: bool) -> str:
    """Text of lan.conf for one loopback BMC with one admin user."""
    auths = " md5" if ipmi15 else ""
    lines = [
        'name "ci-bmc"',
        "set_working_mc 0x20",
        "  startlan 1",
        f"    addr 127.0.0.1 {port}",
        "    priv_limit admin",
        *(f"    allowed_auths_{level}{auths}" for level in ("callback", "user", "operator",
                                                             "admin")),
        *(["    guid a123456789abcdefa123456789abcdef"] if ipmi20 else []),
        "  endlan",
        f'  chassis_control "{helper_cmd}"',
        f'  user 2 true "{user}" "{password}" admin 10 md5',
    ]
    return "\n".join(lines) + "\n"


def _udp_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table, encoding="ascii") as fh:
                next(fh)
                for line in fh:
                    cols = line.split()
                    if int(cols[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(cols[9])
        except OSError:
            continue
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    found: set[str] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for entry in fd_dir.iterdir() if fd_dir.exists() else ():
        try:
            target = os.readlink(entry)
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(target[8:-1])
    return found


@dataclass
class IpmiSimBmc:
    """One running ipmi_sim BMC and the files that hold its chassis state."""

    host: str
    port: int
    user: str
    password: str
    state_dir: Path
    proc: ChildProcess

    def address(self, **override: str) -> BmcAddress:
        """BmcAddress of this BMC, optionally with other ``username`` / ``password``."""
        return BmcAddress(host=self.host, port=self.port,
                          username=override.get("username", self.user),
                          password=override.get("password", self.password))

    # --- chassis state, as the helper keeps it -------------------------------------------
    def power(self) -> str:
        """Power as the helper holds it: ``on`` or ``off``."""
        text = self._read("power", "0")
        return "on" if text == "1" else "off"

    def set_power(self, state: str) -> None:
        """Change power behind every client's back."""
        self._write("power", "1" if state == "on" else "0")

    def boot(self) -> str:
        """Boot device as ipmi_sim stores it (``default`` means the hard-disk selector)."""
        return self._read("boot", "none")

    def set_boot(self, name: str) -> None:
        """Change the stored boot device behind every client's back."""
        if name not in _BOOT_NAMES:
            raise ValueError(f"ipmi_sim knows only {sorted(_BOOT_NAMES)}")
        self._write("boot", name)

    def set_slow(self, seconds: float) -> None:
        """Make the helper sleep ``seconds`` on every chassis request (0 turns it off)."""
        if seconds:
            self._write("slow", f"{seconds:g}")
        else:
            (self.state_dir / "slow").unlink(missing_ok=True)

    def controls(self) -> list[str]:
        """Set requests the helper received, oldest first (``power 1``, ``boot pxe`` ...)."""
        return self._read("controls", "").splitlines()

    # --- process -------------------------------------------------------------------------
    def alive(self) -> bool:
        """Tell whether the ipmi_sim process still runs."""
        return self.proc.alive()

    def stop(self) -> None:
        """Stop ipmi_sim by PID (SIGCONT first in case it is frozen)."""
        if self.proc.alive():
            os.kill(self.proc.pid, signal.SIGCONT)
        self.proc.stop()

    def freeze(self) -> None:
        """SIGSTOP: the port stays bound but nothing answers (a hung BMC)."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after ``freeze``."""
        os.kill(self.proc.pid, signal.SIGCONT)

    def _read(self, name: str, default: str) -> str:
        try:
            return (self.state_dir / name).read_text().strip()
        except FileNotFoundError:
            return default

    def _write(self, name: str, value: str) -> None:
        tmp = self.state_dir / f".{name}.test"
        tmp.write_text(value + "\n")
        os.replace(tmp, self.state_dir / name)


def launch_ipmi_sim(work_dir: Path, *, user: str = "admin", password: str = "password",  # noqa: S107
                    port: int | None = None, ipmi15: bool = True, ipmi20: bool = True,
                    initial_power: str = "off", die_with_parent: bool = False) -> IpmiSimBmc:
    """Start one ipmi_sim without waiting for it; call ``wait_ready`` before use.

    ``die_with_parent``: the BMC gets SIGTERM if its launcher dies (the demo uses it).
    """
    binary = ipmi_sim_binary()
    if binary is None:
        raise RuntimeError("ipmi_sim not installed (Debian package openipmi)")
    _check_safe("user", user)
    _check_safe("password", password)
    if set(str(work_dir)) & set("'\"\\\n"):
        raise ValueError(f"work dir {work_dir} must not contain quotes or backslashes")
    port = port or free_port()
    state_dir, sim_dir = work_dir / "chassis", work_dir / "sim-state"
    for folder in (state_dir, sim_dir):
        folder.mkdir(parents=True, exist_ok=True)
    (state_dir / "power").write_text("1\n" if initial_power == "on" else "0\n")
    conf = work_dir / "lan.conf"
    # Run through sh: an installed wheel may not keep the helper's executable bit.
    conf.write_text(lan_conf(port, user, password, f"/bin/sh '{HELPER}' '{state_dir}'",
                             ipmi15=ipmi15, ipmi20=ipmi20))
    emu = work_dir / "sim.emu"
    emu.write_text(_EMU)
    args = [binary, "-c", str(conf), "-f", str(emu), "-s", str(sim_dir), "-n"]
    proc = ChildProcess(args, work_dir / "ipmi_sim.log", die_with_parent=die_with_parent)
    return IpmiSimBmc("127.0.0.1", port, user, password, state_dir, proc)


def wait_ready(bmc: IpmiSimBmc, timeout: float = 10.0) -> None:
    """Wait until the BMC's UDP port is bound by its own PID and by no other process."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not bmc.proc.alive():
            raise RuntimeError(f"ipmi_sim exited at start: {bmc.proc.log()[-500:]}")
        on_port, ours = _udp_inodes(bmc.port), _socket_inodes(bmc.proc.pid)
        if on_port and on_port <= ours:
            return
        if on_port - ours and on_port & ours:
            raise RuntimeError(f"UDP port {bmc.port} is shared with another process")
        time.sleep(0.01)
    raise TimeoutError(f"ipmi_sim did not bind 127.0.0.1:{bmc.port} in {timeout}s")


def start_ipmi_sim(work_dir: Path, **knobs: Any) -> IpmiSimBmc:
    """Start one ipmi_sim BMC (knobs as ``launch_ipmi_sim``) and wait until it listens."""
    bmc = launch_ipmi_sim(work_dir, **knobs)
    try:
        wait_ready(bmc)
    except Exception:
        bmc.stop()
        raise
    return bmc


def start_ipmi_sim_fleet(n: int, tmp_dir: Path, *, ports: Sequence[int] = (),
                         **knobs: Any) -> list[IpmiSimBmc]:
    """Start ``n`` ipmi_sim BMCs in parallel (one process each); stop them with stop_fleet.

    ``ports``: the UDP ports to use, in order (default: fresh ``free_port()`` ones).
    """
    fleet: list[IpmiSimBmc] = []
    try:
        for index in range(n):
            port = ports[index] if index < len(ports) else None
            fleet.append(launch_ipmi_sim(tmp_dir / f"bmc{index:03d}", port=port, **knobs))
        for bmc in fleet:
            wait_ready(bmc)
    except Exception:
        stop_fleet(fleet)
        raise
    return fleet


def stop_fleet(fleet: list[IpmiSimBmc]) -> None:
    """Stop every BMC of a fleet by PID."""
    for bmc in fleet:
        bmc.stop()


def rss_kib(pid: int) -> int:
    """Resident memory of a process in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
