from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest

import voice_scripts
from voice_scripts import read_daily_messages


def test_japanese_has_a_different_message_for_every_day_of_a_leap_year():
    lines = Path("voice_scripts/ja/daily_messages.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 366
    day = date(2024, 1, 1)
    for line in lines:
        stamp, message = line.split("\t")
        assert stamp == f"{day:%m-%d}"
        assert 20 <= len(message) <= 100 and not re.search(r"[A-Za-z0-9]", message)
        day += timedelta(days=1)
    messages = voice_scripts.load("ja").daily_messages
    assert len(set(messages)) == 366


def test_the_message_is_chosen_by_calendar_day_in_any_year():
    script = voice_scripts.load("ja")
    assert script.daily_message(date(2026, 3, 1)) == script.daily_messages[60]
    assert script.daily_message(date(2028, 2, 29)) == script.daily_messages[59]
    assert script.daily_message(date(2026, 12, 31)) != script.daily_message(date(2026, 12, 30))


def test_a_smaller_set_is_spread_over_the_year():
    script = voice_scripts.load("en")
    assert 40 <= len(set(script.daily_messages)) < 366
    assert script.daily_message(date(2026, 1, 3)) == script.daily_message(date(2026, 1, 1))


def test_every_question_offers_digits_and_words_in_both_languages():
    ja, en = voice_scripts.load("ja"), voice_scripts.load("en")
    assert ja.questions.keys() == en.questions.keys()
    for script in (ja, en):
        health = script.questions["health"]
        assert set(health.digits.values()) == {"good", "usual", "unwell"}
        assert set(health.words) == {"good", "usual", "unwell"}
        assert script.help_digit == "9" and script.repeat_digit == "0"


def test_a_malformed_message_file_names_the_line(tmp_path):
    path = tmp_path / "daily_messages.txt"
    path.write_text("01-01\tおはようございます。\n13-40\tだめ\n", encoding="utf-8")
    with pytest.raises(ValueError, match=":2:"):
        read_daily_messages(path)


def test_unknown_language_is_refused():
    with pytest.raises(ValueError):
        voice_scripts.load("fr")
