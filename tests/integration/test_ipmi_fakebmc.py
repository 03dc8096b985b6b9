"""baremetal.ipmi.client against the repo's fake BMC (real IPMI 2.0 over loopback UDP).

ipmitool (``-I lanplus -C 3``) is the independent client that confirms our writes.
"""

from __future__ import annotations

import threading
import time

import pytest

from baremetal.errors import (
    IpmiAuthError,
    IpmiBusy,
    IpmiError,
    IpmiTimeout,
    IpmiUnreachable,
)
from baremetal.ipmi.client import BmcClient, BootFlags, PowerState
from tests.support.bmc import SELECTOR_TEXT, run_ipmitool, timed

SLACK_S = 0.5  # scheduling slack on top of a deadline


def _ipmitool_power(peer) -> str:
    result = run_ipmitool(peer, "chassis", "power", "status")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_power_control_confirmed_by_ipmitool(fake_bmc, bmc_client):
    bmc = fake_bmc(initial_power="off")
    addr = bmc.address()
    assert bmc_client.read_power(addr, 5) is PowerState.OFF
    bmc_client.set_power(addr, "on", 5)
    assert bmc_client.read_power(addr, 5) is PowerState.ON
    assert _ipmitool_power(bmc) == "Chassis Power is on"
    bmc_client.set_power(addr, "reset", 5)
    assert bmc.state()["last_control"] == "reset"
    assert bmc_client.read_power(addr, 5) is PowerState.ON
    bmc_client.set_power(addr, "soft", 5)
    assert bmc.state()["last_control"] == "soft"
    assert _ipmitool_power(bmc) == "Chassis Power is off"
    bmc_client.set_power(addr, "on", 5)
    bmc_client.set_power(addr, "off", 5)
    assert bmc_client.read_power(addr, 5) is PowerState.OFF
    assert bmc_client.cipher_suite(addr) == 3  # the fake speaks suite 3 only


def test_power_changed_behind_our_back_is_seen(fake_bmc, bmc_client):
    bmc = fake_bmc(initial_power="off")
    assert bmc_client.read_power(bmc.address(), 5) is PowerState.OFF
    bmc.set_power("on")
    assert bmc_client.read_power(bmc.address(), 5) is PowerState.ON
    result = run_ipmitool(bmc, "chassis", "power", "off")
    assert result.returncode == 0, result.stderr
    assert bmc_client.read_power(bmc.address(), 5) is PowerState.OFF


@pytest.mark.parametrize(
    ("device", "persistent", "uefi"),
    [("pxe", False, False), ("disk", True, False), ("cdrom", False, True),
     ("bios", True, True), ("none", False, False)],
)
def test_boot_flags_round_trip_confirmed_by_ipmitool(fake_bmc, bmc_client, device, persistent, uefi):
    bmc = fake_bmc()
    addr = bmc.address()
    assert bmc_client.set_boot(addr, device, persistent=persistent, uefi=uefi, deadline_s=5) is True
    flags = bmc_client.read_boot(addr, 5)
    selector = {"none": 0, "pxe": 1, "disk": 2, "cdrom": 5, "bios": 6}[device]
    assert flags == BootFlags(device, selector, True, persistent, uefi)
    out = run_ipmitool(bmc, "chassis", "bootparam", "get", "5").stdout
    assert "Boot Flag Valid" in out
    assert ("all future boots" if persistent else "only next boot") in out
    assert ("BIOS EFI boot" if uefi else "legacy") in out
    assert f"Boot Device Selector : {SELECTOR_TEXT[device]}" in out


def test_boot_device_written_by_ipmitool_is_read_back(fake_bmc, bmc_client):
    bmc = fake_bmc()
    result = run_ipmitool(bmc, "chassis", "bootdev", "cdrom", "options=persistent,efiboot")
    assert result.returncode == 0, result.stderr
    assert bmc_client.read_boot(bmc.address(), 5) == BootFlags("cdrom", 5, True, True, True)


def test_one_time_override_is_used_up_by_the_next_boot(fake_bmc, bmc_client):
    bmc = fake_bmc(initial_power="off")
    addr = bmc.address()
    bmc_client.set_boot(addr, "pxe", deadline_s=5)
    bmc_client.set_power(addr, "on", 5)
    assert bmc_client.read_boot(addr, 5) == BootFlags("default", 1, False, False, False)
    bmc_client.set_boot(addr, "disk", persistent=True, deadline_s=5)
    bmc_client.set_power(addr, "reset", 5)
    assert bmc_client.read_boot(addr, 5).device == "disk"


def test_valid_bit_timer_is_disabled_where_supported(fake_bmc, bmc_client):
    keeps = fake_bmc(valid_timeout=0.5)
    clears = fake_bmc(valid_timeout=0.5, reject_timer_param=True)
    assert bmc_client.set_boot(keeps.address(), "pxe", deadline_s=5) is True
    # A BMC refusing parameter 3 (OpenBMC) still takes the device; we only learn the timer runs.
    assert bmc_client.set_boot(clears.address(), "pxe", deadline_s=5) is False
    assert bmc_client.read_boot(clears.address(), 5).device == "pxe"
    time.sleep(0.8)
    assert bmc_client.read_boot(keeps.address(), 5).device == "pxe"
    assert bmc_client.read_boot(clears.address(), 5) == BootFlags("default", 1, False, False, False)


def test_wrong_password_is_an_auth_error_at_once(fake_bmc, bmc_client):
    bmc = fake_bmc(password="right-pw-42")
    outcome, seconds = timed(bmc_client.read_power, bmc.address(password="wrong-pw-17"), 5)
    assert isinstance(outcome, IpmiAuthError)
    assert "wrong IPMI user name or password" in str(outcome)
    assert "wrong-pw-17" not in str(outcome) and "right-pw-42" not in str(outcome)
    assert seconds < 1.0
    outcome, _ = timed(bmc_client.read_power, bmc.address(username="intruder"), 5)
    assert isinstance(outcome, IpmiAuthError)
    assert "does not know user 'intruder'" in str(outcome)
    assert bmc_client.read_power(bmc.address(), 5) is PowerState.OFF  # right credentials still work


def test_busy_bmc_is_reported_as_busy(fake_bmc, bmc_client):
    bmc = fake_bmc(busy=True)
    with pytest.raises(IpmiBusy, match="0xC0"):
        bmc_client.read_power(bmc.address(), 5)
    with pytest.raises(IpmiBusy):
        bmc_client.set_power(bmc.address(), "on", 5)


def test_closed_port_is_unreachable_at_once(dead_bmc, bmc_client):
    outcome, seconds = timed(bmc_client.read_power, dead_bmc, 5)
    assert isinstance(outcome, IpmiUnreachable)
    assert seconds < 1.0


@pytest.mark.slow
def test_silent_bmc_fails_within_the_deadline(fake_bmc, bmc_client):
    bmc = fake_bmc()
    bmc.freeze()  # port bound, nothing answers: the probe waits 0.5 + 1 + 1.5 s
    outcome, seconds = timed(bmc_client.read_power, bmc.address(), 2.0)
    # The probe's last wait is cut to the deadline, so either class may arrive first.
    assert isinstance(outcome, IpmiTimeout | IpmiUnreachable)
    assert seconds < 2.0 + SLACK_S
    outcome, seconds = timed(bmc_client.read_power, bmc.address(), 5.0)
    assert isinstance(outcome, IpmiUnreachable)
    assert seconds < 3.0 + SLACK_S


def test_bmc_dying_after_login_costs_one_deadline_and_recovers(fake_bmc, bmc_client):
    bmc, other = fake_bmc(), fake_bmc(initial_power="on")
    assert bmc_client.read_power(bmc.address(), 2) is PowerState.OFF
    bmc.freeze()
    outcome, seconds = timed(bmc_client.read_power, bmc.address(), 1.5)
    assert isinstance(outcome, IpmiTimeout)
    assert 1.4 < seconds < 1.5 + SLACK_S
    outcome, seconds = timed(bmc_client.read_power, other.address(), 2)
    assert outcome is PowerState.ON and seconds < 0.5
    bmc.thaw()
    recovered = None
    for _ in range(10):
        outcome, _ = timed(bmc_client.read_power, bmc.address(), 2)
        if outcome is PowerState.OFF:
            recovered = outcome
            break
    assert recovered is PowerState.OFF


def test_slow_bmc_times_out_without_delaying_the_next_bmc(fake_bmc, bmc_client):
    slow, fast = fake_bmc(slow=2.0), fake_bmc(initial_power="on")
    bmc_client.read_power(fast.address(), 5)  # log in to both first: only the commands are slow
    outcome, seconds = timed(bmc_client.read_power, slow.address(), 0.5)
    assert isinstance(outcome, IpmiTimeout)
    assert seconds < 0.5 + SLACK_S
    outcome, seconds = timed(bmc_client.read_power, fast.address(), 5)
    assert outcome is PowerState.ON and seconds < 0.3


@pytest.mark.slow
def test_lossy_bmc_still_answers_through_retransmits(fake_bmc, bmc_client):
    bmc = fake_bmc(drop_rate=0.25, initial_power="on")
    results = [bmc_client.read_power(bmc.address(), 8) for _ in range(8)]
    assert results == [PowerState.ON] * 8


def test_second_client_to_the_same_bmc_does_not_hang(fake_bmc):
    bmc = fake_bmc(initial_power="on")
    results: list[object] = []

    def read_with_fresh_client() -> None:
        second = BmcClient()
        try:
            results.append(second.read_power(bmc.address(), 5))
        finally:
            second.close()

    first = BmcClient()
    try:
        assert first.read_power(bmc.address(), 5) is PowerState.ON
        for _ in range(2):  # str credentials would hang here (docs/ipmi.md §3.3.2)
            thread = threading.Thread(target=read_with_fresh_client, daemon=True)
            thread.start()
            thread.join(10)
            assert not thread.is_alive(), "a second Command to the same BMC hung"
        assert first.read_power(bmc.address(), 5) is PowerState.ON
    finally:
        first.close()
    assert results == [PowerState.ON, PowerState.ON]


# The same load on both peers: the repo's fake BMC (timed: the pyghmi wake-up fix) and
# OpenIPMI's ipmi_sim, an independent implementation (slower, fewer turns, not timed).
@pytest.mark.parametrize(("peer", "turns", "max_elapsed_s"), [
    ("fake_bmc", 25, 6.0),
    pytest.param("ipmi_sim", 10, None, marks=pytest.mark.ipmisim),
])
def test_sixteen_threads_on_four_bmcs_read_correctly(request, peer, turns, max_elapsed_s):
    start_bmc = request.getfixturevalue(peer)
    bmcs = [start_bmc(initial_power=("on" if n % 2 else "off")) for n in range(4)]
    expected = {bmc.port: PowerState.ON if n % 2 else PowerState.OFF for n, bmc in enumerate(bmcs)}
    calls: list[tuple[str, str | None]] = []
    bmc_client = BmcClient(on_call=lambda addr, op, s, kind: calls.append((op, kind)))
    wrong: list[object] = []

    def worker(index: int) -> None:
        for turn in range(turns):
            bmc = bmcs[(index + turn) % 4]
            try:
                got = bmc_client.read_power(bmc.address(), 5)
            except IpmiError as exc:
                got = exc
            if got is not expected[bmc.port]:
                wrong.append(got)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    started = time.monotonic()
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        bmc_client.close()
    elapsed = time.monotonic() - started
    assert wrong == []
    if max_elapsed_s is not None:
        # ~0.2 s on loopback; 12.5 s without the pyghmi wake-up fix (ipmi_session.py).
        assert elapsed < max_elapsed_s
    assert len(calls) == 16 * turns and all(kind is None for _op, kind in calls)


def test_forget_logs_out_and_the_next_call_logs_in_again(fake_bmc, bmc_client):
    bmc = fake_bmc()
    bmc_client.read_power(bmc.address(), 5)
    bmc_client.forget(bmc.address())
    assert bmc_client.cipher_suite(bmc.address()) is None
    assert bmc_client.read_power(bmc.address(), 5) is PowerState.OFF
    assert bmc_client.cipher_suite(bmc.address()) == 3
