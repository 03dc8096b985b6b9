"""Re-export of ``baremetal.emulator.bmc_sim.ipmisim`` (moved into the package for the demo).

Tests keep importing from here; ports come from ``tests.support.ports.free_port`` so the
suite's single hand-out registry sees every port its BMCs use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from baremetal.emulator.bmc_sim import ipmisim as _impl
from baremetal.emulator.bmc_sim.ipmisim import (  # noqa: F401 - re-exported names
    HELPER,
    IpmiSimBmc,
    ipmi_sim_binary,
    lan_conf,
    rss_kib,
    stop_fleet,
    wait_ready,
)
from tests.support.ports import free_port


def launch_ipmi_sim(work_dir: Path, *, port: int | None = None, **knobs: Any) -> IpmiSimBmc:
    """Start one ipmi_sim on a port from the suite's free_port(); see the package module."""
    return _impl.launch_ipmi_sim(work_dir, port=port or free_port(), **knobs)


def start_ipmi_sim(work_dir: Path, **knobs: Any) -> IpmiSimBmc:
    """Start one ipmi_sim BMC and wait until it listens."""
    return _impl.start_ipmi_sim(work_dir, port=knobs.pop("port", None) or free_port(), **knobs)


def start_ipmi_sim_fleet(n: int, tmp_dir: Path, **knobs: Any) -> list[IpmiSimBmc]:
    """Start ``n`` ipmi_sim BMCs in parallel; stop them with stop_fleet."""
    ports = [free_port() for _ in range(n)]
    return _impl.start_ipmi_sim_fleet(n, tmp_dir, ports=ports, **knobs)
