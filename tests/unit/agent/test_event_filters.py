"""Action families and the audit date range (agent.event_filters)."""

from __future__ import annotations

from datetime import UTC
from zoneinfo import ZoneInfo

import pytest

from agent.errors import UnknownActionFamily, ValidationError
from agent.event_filters import cafe_zone, match_action, parse_instant

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_a_family_matches_its_actions_and_an_action_only_itself() -> None:
    power = match_action("power")
    assert "power_on" in power.actions and power.prefix == "power_"
    assert match_action("power_off").actions == ("power_off",)
    assert match_action("custom_thing", exists=True).actions == ("custom_thing",)


def test_an_unknown_family_names_the_families() -> None:
    with pytest.raises(UnknownActionFamily) as caught:
        match_action("powr")
    assert "power" in caught.value.message() and "import" in caught.value.message()


def test_dates_in_the_cafe_zone_and_with_an_offset() -> None:
    day_start = parse_instant("2026-12-03", field="from", zone=SHANGHAI)
    assert day_start == parse_instant("2026-12-02T16:00:00Z", field="from", zone=UTC)
    day_end = parse_instant("2026-12-03", field="to", zone=SHANGHAI, end_of_day=True)
    assert day_end - day_start == 86400
    assert parse_instant("2026-12-03T08:00", field="from", zone=SHANGHAI) == \
        parse_instant("2026-12-03T08:00+08:00", field="from", zone=UTC)


@pytest.mark.parametrize("text", ["yesterday", "9999-12-31", "2026-13-01", ""])
def test_bad_dates_are_validation_errors(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_instant(text, field="to", zone=UTC, end_of_day=True)


def test_cafe_zone_from_settings_or_utc() -> None:
    class Ui:
        timezone = "Asia/Shanghai"

    class Settings:
        ui = Ui()
    assert cafe_zone(Settings()) == SHANGHAI
    assert cafe_zone(object()) == UTC
