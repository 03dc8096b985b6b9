"""Pure verdict rules of agent.monitor.crosscheck, one table row per situation."""

import pytest

from agent.monitor.crosscheck import (
    BootObservation,
    DbcPathObservation,
    Expectation,
    Prior,
    Reading,
    Verdict,
    judge,
    power_from_dbc_text,
)

ON = Reading(power="on", boot=BootObservation("disk", True, True, False))
OFF = Reading(power="off")


NO_INTENT = Expectation()
FIRST_PASS = Prior()


def run(reading, expectation=NO_INTENT, prior=FIRST_PASS, confirmations=2):
    return judge(reading, expectation, prior, grace_s=30, confirmations=confirmations)


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        ("auth", Verdict.AUTH_FAILED),
        ("unreachable", Verdict.UNREACHABLE),
        ("timeout", Verdict.UNREACHABLE),
        ("busy", Verdict.UNREACHABLE),
        ("unsupported", Verdict.UNSUPPORTED),
        ("something-new", Verdict.UNREACHABLE),
    ],
)
def test_ipmi_errors_decide_first(error, verdict):
    result = run(Reading(ipmi_error=error), prior=Prior(Verdict.MISMATCH, 5))
    assert result.verdict is verdict
    assert result.discrepant_passes == 0


def test_plain_reading_without_intent_is_ok():
    assert run(ON).verdict is Verdict.OK


def test_action_in_grace_not_yet_visible_is_transitioning():
    expectation = Expectation(power="on", action_age_s=3)
    assert run(OFF, expectation).verdict is Verdict.TRANSITIONING


def test_action_in_grace_already_visible_is_ok():
    assert run(ON, Expectation(power="on", action_age_s=3)).verdict is Verdict.OK


def test_mismatch_needs_two_consecutive_reads():
    expectation = Expectation(power="on", action_age_s=300)
    first = run(OFF, expectation, Prior(Verdict.OK, 0))
    assert first.verdict is Verdict.OK and first.discrepant_passes == 1
    assert "power_differs_from_request" in first.reasons
    second = run(OFF, expectation, Prior(first.verdict, first.discrepant_passes))
    assert second.verdict is Verdict.MISMATCH


def test_discrepancy_that_clears_resets_the_counter():
    expectation = Expectation(power="on", action_age_s=300)
    result = run(ON, expectation, Prior(Verdict.OK, 1))
    assert result.verdict is Verdict.OK and result.discrepant_passes == 0


def test_unconfirmed_discrepancy_keeps_a_settled_prior_verdict():
    result = run(OFF, Expectation(power="on", action_age_s=300), Prior(Verdict.DBC_PATH_BROKEN, 0))
    assert result.verdict is Verdict.DBC_PATH_BROKEN


def test_dbc_view_disagreeing_with_bmc_is_a_discrepancy():
    reading = Reading(power="on", dbc_path=DbcPathObservation(True, "Chassis Power is off"))
    assert run(reading, confirmations=1).verdict is Verdict.MISMATCH
    reading = Reading(power="on", dbc_power_status="Chassis Power is off")
    assert run(reading, confirmations=1).reasons == ("power_differs_from_dbc",)


def test_dbc_path_failure_with_working_ipmi_is_dbc_path_broken():
    failure = "Error: Unable to establish LAN session <line> Unable to get Chassis Power Status"
    reading = Reading(power="on", dbc_path=DbcPathObservation(False, failure))
    assert run(reading).verdict is Verdict.DBC_PATH_BROKEN


def test_off_and_not_rented_is_expected_off_even_if_staff_wanted_on():
    expectation = Expectation(power="on", action_age_s=900, rented=False)
    assert run(OFF, expectation).verdict is Verdict.EXPECTED_OFF


def test_off_and_rented_against_staff_intent_is_mismatch():
    expectation = Expectation(power="on", action_age_s=900, rented=True)
    assert run(OFF, expectation, confirmations=1).verdict is Verdict.MISMATCH


def test_lost_persistent_boot_device_is_a_discrepancy_one_time_is_not():
    reading = Reading(power="on", boot=BootObservation("default", False, False, False))
    persistent = Expectation(boot_device="pxe", boot_persistent=True, action_age_s=600)
    one_time = Expectation(boot_device="pxe", boot_persistent=False, action_age_s=600)
    assert run(reading, persistent, confirmations=1).verdict is Verdict.MISMATCH
    assert run(reading, one_time, confirmations=1).verdict is Verdict.OK


@pytest.mark.parametrize(
    ("text", "power"),
    [
        ("Chassis Power is on", "on"),
        ("Chassis Power is off\n", "off"),
        ("Power is on", "on"),
        ("Chassis Power Control: Up/On", None),
        ("Error: Unable to establish LAN session", None),
    ],
)
def test_power_from_dbc_text(text, power):
    assert power_from_dbc_text(text) == power
