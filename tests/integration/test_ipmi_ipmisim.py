"""baremetal.ipmi.client against OpenIPMI's ipmi_sim: an independent IPMI implementation.

ipmi_sim drops the persistent and UEFI bits and never sets the valid bit (docs/ipmi.md §5),
so boot checks here look at the selector only; persistence is covered against the fake BMC.
"""

from __future__ import annotations

import time

import pytest

from baremetal.errors import IpmiAuthError, IpmiTimeout, IpmiUnreachable, IpmiUnsupported
from baremetal.ipmi.client import BmcClient, PowerState
from tests.peers.ipmisim import start_ipmi_sim, start_ipmi_sim_fleet, stop_fleet
from tests.support.bmc import SELECTOR_TEXT, run_ipmitool, timed

pytestmark = pytest.mark.ipmisim

SLACK_S = 0.5
SELECTORS = {"none": 0, "pxe": 1, "disk": 2, "cdrom": 5, "bios": 6}
SIM_NAMES = {"none": "none", "pxe": "pxe", "disk": "default", "cdrom": "cdrom", "bios": "bios"}


def test_dbc_style_ipmitool_works_when_ipmi15_is_enabled(ipmi_sim):
    bmc = ipmi_sim(initial_power="on")
    # Exactly as the DBC node runs it: no -I, so IPMI 1.5 "lan" (docs/protocol.md §6.2).
    result = run_ipmitool(bmc, "chassis", "power", "status", interface=None, timeout=20)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Chassis Power is on"


def test_power_control_confirmed_by_ipmitool(ipmi_sim, bmc_client):
    bmc = ipmi_sim(initial_power="off")
    addr = bmc.address()
    assert bmc_client.read_power(addr, 5) is PowerState.OFF
    bmc_client.set_power(addr, "on", 5)
    assert bmc_client.read_power(addr, 5) is PowerState.ON
    assert run_ipmitool(bmc, "chassis", "power", "status").stdout.strip() == "Chassis Power is on"
    bmc_client.set_power(addr, "reset", 5)
    assert bmc_client.read_power(addr, 5) is PowerState.ON
    bmc_client.set_power(addr, "soft", 5)
    assert run_ipmitool(bmc, "chassis", "power", "status").stdout.strip() == "Chassis Power is off"
    bmc_client.set_power(addr, "on", 5)
    bmc_client.set_power(addr, "off", 5)
    assert bmc.power() == "off"
    assert bmc.controls() == ["power 1", "reset 1", "shutdown 1", "power 1", "power 0"]
    assert bmc_client.cipher_suite(addr) == 3  # ipmi_sim has no SHA-256: pyghmi fell back


def test_power_changed_behind_our_back_is_seen(ipmi_sim, bmc_client):
    bmc = ipmi_sim(initial_power="off")
    assert bmc_client.read_power(bmc.address(), 5) is PowerState.OFF
    bmc.set_power("on")
    assert bmc_client.read_power(bmc.address(), 5) is PowerState.ON


@pytest.mark.parametrize("device", ["pxe", "disk", "cdrom", "bios", "none"])
def test_boot_device_confirmed_by_ipmitool(ipmi_sim, bmc_client, device):
    bmc = ipmi_sim()
    assert bmc_client.set_boot(bmc.address(), device, deadline_s=5) is True
    assert bmc_client.read_boot(bmc.address(), 5).selector == SELECTORS[device]
    assert bmc.boot() == SIM_NAMES[device]
    out = run_ipmitool(bmc, "chassis", "bootparam", "get", "5").stdout
    assert f"Boot Device Selector : {SELECTOR_TEXT[device]}" in out


def test_boot_device_changed_by_ipmitool_is_read_back(ipmi_sim, bmc_client):
    bmc = ipmi_sim()
    result = run_ipmitool(bmc, "chassis", "bootdev", "cdrom")
    assert result.returncode == 0, result.stderr
    assert bmc_client.read_boot(bmc.address(), 5).selector == SELECTORS["cdrom"]


def test_ipmi15_disabled_breaks_only_the_dbc_path(ipmi_sim, bmc_client):
    bmc = ipmi_sim(ipmi15=False, initial_power="on")
    lan = run_ipmitool(bmc, "chassis", "power", "status", interface="lan", timeout=30)
    dbc_way = run_ipmitool(bmc, "chassis", "power", "status", interface=None, timeout=30)
    lanplus = run_ipmitool(bmc, "chassis", "power", "status", interface="lanplus")
    assert lan.returncode != 0 and "IPMI v1.5" in lan.stderr
    assert dbc_way.returncode != 0
    assert lanplus.returncode == 0 and lanplus.stdout.strip() == "Chassis Power is on"
    assert bmc_client.read_power(bmc.address(), 5) is PowerState.ON


def test_ipmi15_only_bmc_is_refused_by_policy_without_hanging(ipmi_sim, bmc_client):
    bmc = ipmi_sim(ipmi20=False)
    assert run_ipmitool(bmc, "chassis", "power", "status", interface="lan").returncode == 0
    for _ in range(2):  # pyghmi's own 1.5 path would hang the second login
        outcome, seconds = timed(bmc_client.read_power, bmc.address(), 5)
        assert isinstance(outcome, IpmiUnsupported)
        assert "IPMI 1.5" in str(outcome)
        assert seconds < 1.0


def test_wrong_password_is_an_auth_error_at_once(ipmi_sim, bmc_client):
    bmc = ipmi_sim(password="sim-right-7")
    outcome, seconds = timed(bmc_client.read_power, bmc.address(password="sim-wrong-8"), 5)
    assert isinstance(outcome, IpmiAuthError)
    assert "wrong IPMI user name or password" in str(outcome)
    assert "sim-wrong-8" not in str(outcome)
    assert seconds < 1.0


def test_stopped_bmc_is_unreachable_and_frozen_bmc_times_out(ipmi_sim, bmc_client):
    stopped, frozen = ipmi_sim(), ipmi_sim()
    bmc_client.read_power(stopped.address(), 5)
    bmc_client.read_power(frozen.address(), 5)
    stopped.stop()
    frozen.freeze()
    outcome, seconds = timed(bmc_client.read_power, frozen.address(), 1.5)
    assert isinstance(outcome, IpmiTimeout)
    assert seconds < 1.5 + SLACK_S
    bmc_client.forget(stopped.address())  # a fresh login meets the closed port
    outcome, seconds = timed(bmc_client.read_power, stopped.address(), 5)
    assert isinstance(outcome, IpmiUnreachable)
    assert seconds < 1.0


def test_slow_bmc_times_out_without_delaying_the_next_bmc(ipmi_sim, bmc_client):
    slow, fast = ipmi_sim(), ipmi_sim(initial_power="on")
    bmc_client.read_power(slow.address(), 5)
    slow.set_slow(2.0)
    outcome, seconds = timed(bmc_client.read_power, slow.address(), 0.8)
    assert isinstance(outcome, IpmiTimeout)
    assert seconds < 0.8 + SLACK_S
    outcome, seconds = timed(bmc_client.read_power, fast.address(), 5)
    assert outcome is PowerState.ON and seconds < 0.5


def test_a_port_already_taken_by_ipmi_sim_is_detected(ipmi_sim, tmp_path):
    first = ipmi_sim()
    with pytest.raises(RuntimeError, match="shared"):
        start_ipmi_sim(tmp_path / "intruder", port=first.port)


def test_fleet_starts_answers_and_stops_by_pid(ipmi_sim, bmc_client, tmp_path):
    fleet = start_ipmi_sim_fleet(6, tmp_path / "fleet", initial_power="on")
    try:
        assert len({bmc.port for bmc in fleet}) == 6
        assert [bmc_client.read_power(bmc.address(), 5) for bmc in fleet] == [PowerState.ON] * 6
    finally:
        stop_fleet(fleet)
    assert not any(bmc.alive() for bmc in fleet)


# ipmi_sim drops a session after 30 s without traffic; pyghmi's keepalive falls due after
# 24-29 s. Waiting past both is what a monitor does between passes at the 60 s default.
IDLE_PAST_BMC_TIMEOUT_S = 35.0


@pytest.mark.slow
def test_sessions_the_bmcs_dropped_between_passes_do_not_stall_the_next_pass(ipmi_sim):
    """Regression: at the 60 s interval every read of the third pass timed out.

    The first login of a pass made pyghmi fire keepalives for every other idle session;
    the BMCs had dropped them, so each stayed "in command" for minutes and our logout of
    it waited behind that. Two passes with a pause longer than the BMC's session timeout.
    """
    bmcs = [ipmi_sim(initial_power="on") for _ in range(4)]
    bmc_client = BmcClient(max_workers=4)
    try:
        assert [bmc_client.read_power(bmc.address(), 3) for bmc in bmcs] == [PowerState.ON] * 4
        time.sleep(IDLE_PAST_BMC_TIMEOUT_S)
        results = [timed(bmc_client.read_power, bmc.address(), 3) for bmc in bmcs]
    finally:
        bmc_client.close()
    assert [outcome for outcome, _ in results] == [PowerState.ON] * 4
    assert max(seconds for _, seconds in results) < 1.0
