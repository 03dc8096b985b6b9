"""The demo café: 8 GPU PCs in two zones, their inventory CSV, rentals and agent config.

Two PCs are deliberately interesting:

- ``PC-A03`` has a BMC with IPMI 1.5 disabled: IPMI 2.0 works, but the DBC node's own
  ``ipmitool`` call (IPMI 1.5 ``lan``) fails, so the agent reports ``dbc_path_broken``
  (only with ``ipmi_sim``: the fake BMC has no IPMI 1.5 at all, so the probe is off then);
- ``PC-B04`` is not rented (``online`` in the rentals file): the emulator's idle timer
  powers it off (docs/protocol.md §6.4) and the agent reports ``expected_off``.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import render_default_config
from baremetal.emulator.bmc_sim.fleet import BmcSpec

__all__ = ["CAFE", "DemoPc", "agent_config", "inventory_csv", "new_password", "rentals",
           "specs_for"]

IDLE_UUID = "PC-B04"
BROKEN_DBC_UUID = "PC-A03"
_RENTER = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"  # well-known dev account (Alice)


@dataclass(frozen=True)
class DemoPc:
    """One GPU PC of the demo café."""

    uuid: str
    desc: str
    row: str
    zone: str
    source_ip: str  # where its DeepLink connects from (= the registered ip)

    @property
    def rented(self) -> bool:
        """Every PC but the idle one is rented."""
        return self.uuid != IDLE_UUID


CAFE: tuple[DemoPc, ...] = (
    DemoPc("PC-A01", "A排1号 RTX 4090 电竞主机", "A", "大厅", "127.0.0.11"),
    DemoPc("PC-A02", "A排2号 RTX 4090 电竞主机", "A", "大厅", "127.0.0.12"),
    DemoPc("PC-A03", "A排3号 RTX 4080 (BMC 未开 IPMI 1.5)", "A", "大厅", "127.0.0.13"),
    DemoPc("PC-A04", "A排4号 RTX 4080 主播机", "A", "大厅", "127.0.0.14"),
    DemoPc("PC-B01", "B排1号 RTX 4090 包间", "B", "包间", "127.0.0.21"),
    DemoPc("PC-B02", "B排2号 RTX 4090 包间", "B", "包间", "127.0.0.22"),
    DemoPc("PC-B03", "B排3号 RTX 3090 双人包间", "B", "包间", "127.0.0.23"),
    DemoPc("PC-B04", "B排4号 RTX 3090 空闲未出租", "B", "包间", "127.0.0.24"),
)


def new_password(length: int = 16) -> str:
    """Return a random password of letters and digits (also a valid DeepLink code)."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def specs_for(cafe: Sequence[DemoPc], *, user: str, passwords: Mapping[str, str],
              ipmi15_off: bool) -> list[BmcSpec]:
    """One BMC spec per PC (the broken-DBC-path PC without IPMI 1.5 when ``ipmi15_off``)."""
    return [BmcSpec(user=user, password=passwords[pc.uuid], initial_power="on",
                    ipmi15=not (ipmi15_off and pc.uuid == BROKEN_DBC_UUID)) for pc in cafe]


def inventory_csv(cafe: Sequence[DemoPc], bmcs: Sequence[Any]) -> str:
    """Return the CSV a café would import: the node's field names plus mac and labels."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["uuid", "ip", "os", "desc", "ipmi_hostname", "ipmi_username",
                     "ipmi_password", "ipmi_port", "mac", "labels"])
    for index, (pc, bmc) in enumerate(zip(cafe, bmcs, strict=True)):
        writer.writerow([pc.uuid, pc.source_ip, "Windows 10", pc.desc, bmc.host, bmc.user,
                         bmc.password, bmc.port, f"52:54:00:12:34:{index + 1:02x}",
                         f"row={pc.row};zone={pc.zone}"])
    return buffer.getvalue()


def rentals(cafe: Sequence[DemoPc], node_ids: Mapping[str, str]) -> str:
    """Return the rentals JSON (emulator format): every PC rented but the idle one."""
    machines = {
        node_ids[pc.uuid]: ({"status": "rented", "renter": _RENTER, "rent_status": "renting",
                             "rent_order": f"demo-{pc.uuid.lower()}"}
                            if pc.rented else {"status": "online"})
        for pc in cafe if pc.uuid in node_ids
    }
    return json.dumps({"current_block": 1000, "machines": machines}, ensure_ascii=False,
                      indent=1)


def agent_config(*, node_url: str, client_url: str, node_dat: Path, listen: str,
                 rentals_file: Path, dbc_path_probe: bool, lang: str, os_users: str) -> str:
    """Return the demo agent's config: short intervals so changes show within seconds."""
    return render_default_config({
        "node.url": node_url, "node.client_url": client_url, "node.node_dat": str(node_dat),
        "node.timeout_s": 10.0, "node.client_timeout_s": 10.0,
        "store.path": "agent.db", "secrets.key_file": "secrets.key", "api.listen": listen,
        "check.interval_s": 5.0, "check.jitter_s": 0.5, "check.deadline_s": 2.0,
        "check.dbc_path_probe": dbc_path_probe, "check.rentals_file": str(rentals_file),
        "actions.verify_deadline_s": 15.0, "actions.verify_interval_s": 0.5,
        "ui.default_lang": lang, "auth.os_users": os_users,
    })
