"""Cron lines: every mistake names its field; slots are walked exactly (UTC, celery's rules)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from farm.schedules.cron import CronError, latest_slot, next_slot, parse_cron, slots_between


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)  # 2026-12-07 is a Monday


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("0 2 * *", "has 4 fields"),
        ("61 2 * * *", "field minute '61'"),
        ("0 x * * *", "field hour 'x' is not valid (not a number)"),
        ("0 2 0 * *", "field day of month '0'"),
        ("0 2 * 13 *", "field month '13'"),
        ("0 2 * * 7", "field day of week '7'"),
        ("*/0 2 * * *", "field minute '*/0'"),
        ("0 0 30 2 *", "never occurs"),
    ],
)
def test_a_bad_cron_names_its_field(line: str, message: str) -> None:
    with pytest.raises(CronError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        parse_cron(line)


def test_latest_and_next_slots() -> None:
    nightly = parse_cron("0 2 * * *")
    assert latest_slot(nightly, at(7, 1, 59)) == at(6, 2)
    assert latest_slot(nightly, at(7, 2, 0)) == at(7, 2)  # a slot is due at its own minute
    assert next_slot(nightly, at(7, 2, 0)) == at(8, 2)
    office = parse_cron("*/15 9-17 * * mon-fri")
    assert latest_slot(office, at(6, 12)) == at(4, 17, 45)  # a Sunday: Friday's last slot
    assert next_slot(office, at(5, 12)) == at(7, 9)
    assert slots_between(nightly, at(1, 3), at(4, 3)) == 3  # 2, 3 and 4 December
    assert slots_between(parse_cron("* * * * *"), at(1), at(2), limit=50) == 50
