"""What the dashboard is shown without waiting for anyone (issue 13, items 1 and 2).

- ``rental_view``: the chain's cached answer (never a chain call), stale while the chain is
  down, else the rentals file; ``RentalOut`` gives the end as ISO-8601 UTC.
- ``GridCache.request_pass``: a first load asks for one monitor pass when the last one is
  older than FRESH_S, never two at once, none when the data is fresh.

No sockets: stand-ins for the chain client and the monitor.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from agent.api.schemas import RentalOut
from agent.monitor.rental_source import RentalSource, RentalView, rental_view
from agent.monitor.rentals import RentalsFile
from agent.web.grid_cache import FRESH_S, GridCache
from baremetal.chain import ChainRentals, ChainUnreachable


class _Chain:
    """A chain client stand-in: counts calls, can go down."""

    def __init__(self) -> None:
        self.calls = 0
        self.down = False

    def machine_status(self, node_id: str) -> str:
        self.calls += 1
        if self.down:
            raise ChainUnreachable("onlineProfile_getMachineInfo", "down")
        return "rented"

    def current_renter(self, node_id: str) -> tuple[str, int]:
        return "5Renter", 1600

    def current_block(self) -> int:
        return 1000


def test_a_page_never_asks_the_chain_and_sees_stale_when_it_is_down(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    client = _Chain()
    chain = ChainRentals(client, ttl_s=0.0, clock=lambda: now[0])  # type: ignore[arg-type]
    source = RentalSource(chain, None)
    assert rental_view(source, "n1") == RentalView()  # nothing asked yet: unknown
    assert client.calls == 0
    assert source.rented("n1") is True  # the monitor's pass asks
    asked = client.calls
    view = rental_view(source, "n1")
    assert client.calls == asked  # the page only peeks
    assert view == RentalView("rented", now[0] + 600 * 6, False)
    assert RentalOut.from_view(view).model_dump() == {
        "state": "rented", "until": "2027-01-15T09:00:00Z", "stale": False}
    client.down = True
    now[0] += 100
    assert source.rented("n1") is True  # the last answer, the chain down
    assert rental_view(source, "n1").stale is True


def test_rentals_file_when_the_chain_never_answered(tmp_path: Path) -> None:
    path = tmp_path / "rentals.json"
    path.write_text(json.dumps({"machines": {"n1": {"status": "online"},
                                             "n2": {"status": "rented"}}}))
    source = RentalSource(None, RentalsFile(path))
    assert rental_view(source, "n1") == RentalView("idle")
    assert rental_view(source, "n2") == RentalView("rented")  # no end time from a file
    assert rental_view(source, "n3") == RentalView()
    assert rental_view(None, "n1") == RentalView()
    assert RentalOut.from_view(None).model_dump() == {"state": "unknown", "until": None,
                                                      "stale": False}


class _Monitor:
    def __init__(self, ended_at: float) -> None:
        self.last_pass: Any = SimpleNamespace(started_at=ended_at - 1.0, duration_s=1.0)
        self.passes = 0
        self.release = threading.Event()

    def run_pass(self) -> None:
        self.passes += 1
        self.release.wait(5)


def _cache(monitor: _Monitor) -> GridCache:
    agent = SimpleNamespace(monitor=monitor, settings=SimpleNamespace(
        check=SimpleNamespace(interval_s=60.0)), rental_view=lambda _n: RentalView(),
        server_statuses=list, deeplink_statuses=lambda: (set(), []))
    return GridCache(agent)  # type: ignore[arg-type]


def test_a_first_load_after_idle_asks_for_one_pass() -> None:
    monitor = _Monitor(ended_at=1000.0)
    cache = _cache(monitor)
    assert cache.request_pass(1000.0 + FRESH_S - 0.1) is None  # fresh enough: nothing
    asked = cache.request_pass(1040.0)  # 40 s of quiet, as found
    assert asked == 1040.0
    assert cache.request_pass(1041.0) == 1040.0  # already asked: not a second pass
    monitor.release.set()
    for _ in range(100):
        if cache.request_pass(1041.0) is None or monitor.passes > 1:
            break
        threading.Event().wait(0.01)
    assert monitor.passes >= 1
