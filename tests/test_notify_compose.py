"""Rendered emails, compared with the snapshot files in tests/snapshots/ (UPDATE_SNAPSHOTS=1 rewrites them)."""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from notify.compose import (
    absent_facts,
    render_absent,
    render_email,
    render_report,
    render_urgent,
    report_facts,
    urgent_facts,
)

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
TOKYO = ZoneInfo("Asia/Tokyo")
ANSWERED = datetime(2026, 12, 5, 9, 2, tzinfo=TOKYO)
NAMES = {"ja": "山田 花子", "en": "Hanako Yamada"}


def assert_snapshot(name: str, actual: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"no snapshot {name}: run with UPDATE_SNAPSHOTS=1 and review the file"
    assert actual == path.read_text(encoding="utf-8"), f"{name} differs from its snapshot"


CASES = {
    "report": lambda language: render_report(language, NAMES[language], ANSWERED, "good"),
    "report-unwell": lambda language: render_report(language, NAMES[language], ANSWERED, "unwell"),
    "urgent-unwell": lambda language: render_urgent(language, NAMES[language], ANSWERED, "unwell"),
    "urgent-help": lambda language: render_urgent(language, NAMES[language], ANSWERED, "help"),
    "absent": lambda language: render_absent(
        language, NAMES[language], date(2026, 12, 5), [ANSWERED.replace(hour=9, minute=30), ANSWERED.replace(minute=0)]
    ),
}


@pytest.mark.parametrize("language", ["ja", "en"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_email_matches_snapshot(case: str, language: str) -> None:
    rendered = CASES[case](language)

    assert_snapshot(f"{case}.{language}.txt", f"Subject: {rendered.subject}\n\n{rendered.text}")
    assert_snapshot(f"{case}.{language}.html", rendered.html)


def test_japanese_report_subject_and_facts() -> None:
    rendered = render_report("ja", "山田 花子", ANSWERED, "good")

    assert rendered.subject == "【みまもりでんわ】山田 花子さまの体調確認結果（12月5日）"
    assert "2026年12月5日(土) 9:02" in rendered.text
    assert "2026年12月5日(土) 9:02" in rendered.html
    assert '<html lang="ja">' in rendered.html


@pytest.mark.parametrize(
    ("health", "ja", "en"),
    [
        ("good", "元気", "Feeling well"),
        ("usual", "いつも通り", "As usual"),
        ("unwell", "元気がない", "Not feeling well"),
        ("no_answer", "お答えなし", "No answer"),
        ("help", "助けを求める応答", "Asked for help"),
    ],
)
def test_report_states_the_answer_in_words(health: str, ja: str, en: str) -> None:
    japanese = render_report("ja", "山田 花子", ANSWERED, health)
    english = render_report("en", "Hanako Yamada", ANSWERED, health)

    assert f"お答え　：{ja}\n" in japanese.text
    assert f">{ja}</td>" in japanese.html
    assert f"Answer:  {en}\n" in english.text
    assert f">{en}</td>" in english.html


def test_urgent_and_absent_say_what_to_do() -> None:
    for rendered in (
        render_urgent("ja", "山田 花子", ANSWERED, "help"),
        render_absent("ja", "山田 花子", date(2026, 12, 5), [ANSWERED]),
    ):
        for part in (rendered.text, rendered.html):
            assert "直接ご連絡ください" in part
            assert "緊急通報サービスではありません" in part
            assert "119番" in part


def test_html_escapes_the_name_and_text_keeps_it() -> None:
    rendered = render_report("en", "Hanako <b>Yamada</b> & co", ANSWERED, "good")

    assert "<b>" not in rendered.html
    assert "Hanako &lt;b&gt;Yamada&lt;/b&gt; &amp; co" in rendered.html
    assert "Hanako <b>Yamada</b> & co" in rendered.text


def test_name_with_line_breaks_cannot_break_the_subject_line() -> None:
    rendered = render_report("ja", "山田\r\n花子", ANSWERED, "good")

    assert rendered.subject == "【みまもりでんわ】山田 花子さまの体調確認結果（12月5日）"


def test_unknown_language_falls_back_to_japanese() -> None:
    assert render_report("fr", "山田 花子", ANSWERED, "good") == render_report("ja", "山田 花子", ANSWERED, "good")


def test_rejects_unknown_values_and_naive_times() -> None:
    with pytest.raises(ValueError):
        render_report("ja", "山田 花子", ANSWERED, "fine")
    with pytest.raises(ValueError):
        render_urgent("ja", "山田 花子", ANSWERED, "bored")
    with pytest.raises(ValueError):
        render_report("ja", "山田 花子", ANSWERED.replace(tzinfo=None), "good")
    with pytest.raises(ValueError):
        render_absent("ja", "山田 花子", date(2026, 12, 5), [ANSWERED.replace(tzinfo=None)])



@pytest.mark.parametrize("language", ["ja", "en"])
def test_stored_facts_render_the_same_email(language: str) -> None:
    name = NAMES[language]
    tried = [ANSWERED.replace(hour=9, minute=30), ANSWERED.replace(minute=0)]
    cases = [
        ("report", report_facts(name, ANSWERED, "unwell"), render_report(language, name, ANSWERED, "unwell")),
        ("urgent", urgent_facts(name, ANSWERED, "help"), render_urgent(language, name, ANSWERED, "help")),
        ("absent", absent_facts(name, date(2026, 12, 5), tried), render_absent(language, name, date(2026, 12, 5), tried)),
    ]
    for kind, facts, expected in cases:
        assert render_email(kind, language, json.loads(json.dumps(facts))) == expected  # as stored: JSON


def test_facts_are_checked_when_the_event_happens() -> None:
    with pytest.raises(ValueError):
        report_facts("山田 花子", ANSWERED, "fine")
    with pytest.raises(ValueError):
        urgent_facts("山田 花子", ANSWERED, "bored")
    with pytest.raises(ValueError):
        absent_facts("山田 花子", date(2026, 12, 5), [ANSWERED.replace(tzinfo=None)])
    with pytest.raises(ValueError):
        render_email("newsletter", "ja", {"resident": "山田 花子"})
