"""Dead and slow BMCs cost their deadline and nothing more; passes never overlap; overruns show.

Dead here means both kinds: a stopped ipmi_sim (closed port, fails at once) and a frozen one
(SIGSTOP: the port is bound, nothing answers, so only the deadline ends the wait). Slow is
a chassis helper that sleeps longer than the deadline on every request.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.models import EventKind
from agent.monitor.crosscheck import Verdict
from tests.integration.test_monitor_verdicts import Rig, add_server, rigs
from tests.peers.ipmisim import start_ipmi_sim_fleet, stop_fleet

pytestmark = pytest.mark.ipmisim


@pytest.fixture
def rig_factory(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    """Monitor/Actions rigs on a temp store, closed after the test."""
    with rigs(tmp_path) as make:
        yield make

DEADLINE_S = 2.0


def test_dead_frozen_and_slow_bmcs_do_not_delay_the_others(rig_factory, tmp_path) -> None:
    fleet = start_ipmi_sim_fleet(16, tmp_path / "fleet", initial_power="on")
    try:
        stopped, frozen, slow = fleet[0], fleet[1:4], fleet[4]
        stopped.stop()
        for bmc in frozen:
            bmc.freeze()
        slow.set_slow(DEADLINE_S * 3)
        rig = rig_factory(deadline_s=DEADLINE_S, pool_size=8)
        for index, bmc in enumerate(fleet):
            add_server(rig.store, f"seat-{index:02d}", bmc)
        for label in ("cold", "warm"):
            started = time.monotonic()
            report = rig.monitor.run_pass()
            elapsed = time.monotonic() - started
            assert elapsed < DEADLINE_S + 1.0, f"{label} pass took {elapsed:.2f} s"
            by_uuid = {r.uuid: r for r in report.results}
            bad = {"seat-00", "seat-01", "seat-02", "seat-03", "seat-04"}
            assert all(by_uuid[u].verdict == Verdict.UNREACHABLE for u in bad), label
            healthy = [r for u, r in by_uuid.items() if u not in bad]
            assert all(r.verdict == Verdict.OK for r in healthy), \
                [(label, r.uuid, r.detail) for r in healthy if r.verdict != Verdict.OK]
            # No healthy read waits for a bad BMC beyond the deadline. (While the slow BMC's
            # session retransmits, pyghmi can hold a healthy answer up to its ~1 s retransmit
            # timer: measured up to 1.3 s on a cold pass, 0.1 s warm; see the report.)
            slowest = max(r.latency_ms or 0 for r in healthy)
            assert slowest < DEADLINE_S * 1000, f"{label}: a healthy BMC took {slowest:.0f} ms"
        assert by_uuid["seat-00"].reasons == ("ipmi_unreachable",)  # closed port: at once
        # A silent BMC ends at the deadline as a timeout, or as "no answer" when the login
        # probe gives up a moment before it; the slow one answers nothing in time.
        silent = {"ipmi_timeout", "ipmi_unreachable"}
        assert all(by_uuid[f"seat-0{i}"].reasons[0] in silent for i in range(1, 5))
        errors = rig.metrics.ipmi_errors
        assert errors.value(op="read_power", kind="timeout") + \
            errors.value(op="read_power", kind="unreachable") >= 2 * 5
    finally:
        for bmc in fleet:
            if bmc.alive():
                bmc.thaw()
        stop_fleet(fleet)


def test_unreachable_servers_are_read_first_on_the_next_pass(rig_factory, ipmi_sim) -> None:
    # Pool of 1: were the frozen BMC read last, the pass would end a deadline after the rest.
    healthy = [ipmi_sim(initial_power="on") for _ in range(3)]
    frozen = ipmi_sim(initial_power="on")
    rig = rig_factory(deadline_s=DEADLINE_S, pool_size=1)
    for index, bmc in enumerate(healthy):
        add_server(rig.store, f"seat-{index}", bmc)
    add_server(rig.store, "seat-frozen", frozen)
    assert rig.check("seat-frozen").verdict == Verdict.OK
    frozen.freeze()
    try:
        first = rig.monitor.run_pass()
        assert [r.uuid for r in first.results][-1] == "seat-frozen"
        assert first.results[-1].verdict == Verdict.UNREACHABLE
        second = rig.monitor.run_pass()
        assert second.results[0].uuid == "seat-frozen"
    finally:
        frozen.thaw()


def test_loop_never_overlaps_and_reports_overruns(rig_factory, ipmi_sim) -> None:
    bmc = ipmi_sim(initial_power="on")
    bmc.set_slow(0.25)  # power + boot reads: > 0.5 s per pass, each read within its deadline
    rig = rig_factory(interval_s=0.3, jitter_s=0.01, deadline_s=1.5)
    add_server(rig.store, "seat-slow", bmc)
    rig.monitor.start()
    try:
        deadline = time.monotonic() + 15
        while rig.metrics.pass_overruns.value() < 2:
            assert time.monotonic() < deadline, "no overrun reported"
            time.sleep(0.05)
    finally:
        rig.monitor.stop(timeout_s=10)
    server_id = rig.store.servers.get_by_uuid(uuid="seat-slow").id
    stamps = [r.ts for r in reversed(rig.store.checks.history(server_id=server_id))]
    assert len(stamps) >= 2
    # Never overlapped: a pass starts only after the previous one (>= 0.5 s) ended.
    assert all(b - a >= 0.5 for a, b in itertools.pairwise(stamps)), stamps
    events = rig.store.events.page(kinds=[EventKind.SYSTEM]).items
    overruns = [e for e in events if e.action == "pass_overrun"]
    assert overruns and overruns[0].detail["interval_s"] == 0.3
    assert overruns[0].detail["duration_s"] > 0.3
    assert rig.monitor.last_pass is not None and rig.monitor.last_pass.results[0].power == "on"
