"""Schedule arithmetic: pure, with time passed in."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from core.schedule import (
    Absent,
    CallingHours,
    Retry,
    RetryRule,
    after_unanswered,
    calling_window,
    first_call_at,
    local_date,
    next_call_at,
)

TOKYO = "Asia/Tokyo"
HOURS = CallingHours.parse("08:00-20:00")
RULE = RetryRule(timedelta(minutes=30), 2)


def test_calling_hours_parse_and_print():
    assert str(CallingHours.parse("08:00-20:00")) == "08:00-20:00"
    assert CallingHours.parse("00:00-24:00").end is None
    for bad in ("8-20", "20:00-08:00", "08:00-25:00", "08:60-09:00", ""):
        with pytest.raises(ValueError):
            CallingHours.parse(bad)


def test_a_tokyo_morning_call_is_the_previous_evening_in_utc():
    due = first_call_at(date(2026, 12, 5), time(9, 0), TOKYO, HOURS)
    assert due == datetime(2026, 12, 5, 0, 0, tzinfo=UTC)
    assert local_date(datetime(2026, 12, 4, 22, 0, tzinfo=UTC), TOKYO) == date(2026, 12, 5)


def test_a_call_time_before_calling_hours_waits_for_them():
    assert first_call_at(date(2026, 12, 5), time(7, 0), TOKYO, HOURS) == datetime(2026, 12, 4, 23, 0, tzinfo=UTC)


def test_catch_up_is_immediate_within_hours_and_never_outside():
    window = calling_window(date(2026, 12, 5), TOKYO, HOURS)
    due = datetime(2026, 12, 5, 0, 0, tzinfo=UTC)  # 09:00 JST
    late = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)  # 11:00 JST: caught up at once
    assert next_call_at(due, late, window) == late
    assert next_call_at(due, datetime(2026, 12, 5, 11, 30, tzinfo=UTC), window) is None  # 20:30 JST


def test_unanswered_retries_after_the_delay_then_is_absent():
    closes = datetime(2026, 12, 5, 11, 0, tzinfo=UTC)
    now = datetime(2026, 12, 5, 0, 0, tzinfo=UTC)
    assert after_unanswered(1, now, RULE, closes) == Retry(now + timedelta(minutes=30))
    assert after_unanswered(2, now, RULE, closes) == Absent()


def test_a_retry_that_would_fall_after_hours_makes_the_day_absent():
    closes = datetime(2026, 12, 5, 11, 0, tzinfo=UTC)
    assert after_unanswered(1, closes - timedelta(minutes=10), RULE, closes) == Absent()


def test_dst_zones_keep_the_wall_clock_time():
    before = first_call_at(date(2026, 3, 7), time(9, 0), "America/New_York", HOURS)
    after = first_call_at(date(2026, 3, 9), time(9, 0), "America/New_York", HOURS)
    assert before.hour == 14 and after.hour == 13
