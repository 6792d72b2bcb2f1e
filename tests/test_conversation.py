"""The check-in conversation, tested as plain Python: no database, no Flask, no clock."""

from __future__ import annotations

import ast
from datetime import date, time
from pathlib import Path

import pytest

import voice_scripts
from core.conversation import (
    HELP,
    MAX_TURNS,
    NO_ANSWER,
    REPEAT,
    Ask,
    Call,
    Finish,
    Heard,
    Position,
    normalise,
    opening,
    respond,
    understand,
)

JA = voice_scripts.load("ja")
EN = voice_scripts.load("en")
DAY = date(2026, 12, 5)


def call(script=JA, questions=("health",), local_time=time(9, 5)) -> Call:
    return Call(script, "山田 花子", questions, DAY, local_time)


def press(digits: str) -> Heard:
    return Heard(digits=digits)


def say(words: str, confidence: float = 0.9) -> Heard:
    return Heard(speech=words, confidence=confidence)


def test_opening_names_the_service_and_the_resident_then_asks_about_health():
    ask = opening(call())
    assert isinstance(ask, Ask)
    greeting, prompt = ask.lines
    assert "郵便局のみまもりでんわ" in greeting and "山田 花子さん" in greeting
    assert greeting.startswith("おはようございます")
    assert ask.question.key == "health" and "1" in prompt and "9" in prompt
    assert ask.position == Position(0, 0, 0)


@pytest.mark.parametrize("hour, expected", [(9, "おはよう"), (13, "こんにちは"), (19, "こんばんは")])
def test_greeting_follows_the_time_of_day(hour, expected):
    assert opening(call(local_time=time(hour, 0))).lines[0].startswith(expected)


@pytest.mark.parametrize("digit, value", [("1", "good"), ("2", "usual"), ("3", "unwell")])
def test_keypad_answer_settles_health_then_thanks_and_plays_the_daily_message(digit, value):
    turn = respond(call(), Position(), press(digit))
    assert turn.answer.value == value and turn.answer.question == "health"
    assert isinstance(turn.next, Finish)
    assert JA.thanks in turn.next.lines
    assert JA.daily_message(DAY) in turn.next.lines
    assert turn.next.lines[-1] == JA.goodbye


@pytest.mark.parametrize(
    "words, value",
    [
        ("げんきです", "good"),
        ("元気です", "good"),
        ("ゲンキ", "good"),
        ("はい", "good"),
        ("いつも通りです", "usual"),
        ("ふつう", "usual"),
        ("元気がないです", "unwell"),  # contains 元気, but means the opposite
        ("具合が悪い", "unwell"),
        ("だめ", "unwell"),
        ("ぐあいがわるいです", "unwell"),
        ("たすけて", HELP),
        ("もういちど", REPEAT),
    ],
)
def test_spoken_answers_are_understood(words, value):
    assert understand(JA, JA.questions["health"], say(words)) == value


@pytest.mark.parametrize("words, value", [("I'm fine", "good"), ("not well", "unwell"), ("as usual", "usual")])
def test_english_speech(words, value):
    assert understand(EN, EN.questions["health"], say(words)) == value


def test_low_confidence_speech_is_not_trusted_but_a_call_for_help_is():
    health = JA.questions["health"]
    assert understand(JA, health, say("げんき", confidence=0.1)) is None
    assert understand(JA, health, say("たすけて", confidence=0.1)) == HELP


@pytest.mark.parametrize("odd", [press("*"), press("#"), press("55"), press("7"), say(""), say("ざーざー"), Heard()])
def test_odd_input_is_re_asked_with_an_apology(odd):
    turn = respond(call(), Position(), odd)
    assert turn.answer is None and turn.understood is None
    assert isinstance(turn.next, Ask)
    assert turn.next.lines == (JA.reask, JA.questions["health"].prompt)
    assert turn.next.position == Position(0, 1, 1)


def test_after_two_re_asks_the_question_is_recorded_as_no_answer_and_the_call_moves_on():
    position = Position()
    for expected_reasks in (1, 2):
        turn = respond(call(), position, Heard())
        position = turn.next.position
        assert position.reasks == expected_reasks
    turn = respond(call(), position, Heard())
    assert turn.answer.value == NO_ANSWER
    assert isinstance(turn.next, Finish) and turn.next.lines[0] == JA.moving_on


def test_zero_repeats_the_question_without_using_a_re_ask():
    turn = respond(call(), Position(0, 1, 3), press("0"))
    assert turn.understood == REPEAT and turn.answer is None
    assert turn.next.lines == (JA.questions["health"].prompt,)
    assert turn.next.position == Position(0, 1, 4)


def test_endless_repeats_end_the_call_instead_of_looping():
    position, turns = Position(), 0
    step = None
    while turns < 50:
        step = respond(call(), position, press("0"))
        turns += 1
        if isinstance(step.next, Finish):
            break
        position = step.next.position
    assert isinstance(step.next, Finish) and turns <= MAX_TURNS


def test_help_key_ends_with_an_acknowledgement_and_no_daily_message():
    turn = respond(call(), Position(), press("9"))
    assert turn.answer.value == HELP
    assert turn.next.lines == (JA.help_ack, JA.goodbye)


def test_optional_questions_follow_health_in_order():
    flow = call(questions=("health", "medicine"))
    turn = respond(flow, Position(), press("1"))
    assert isinstance(turn.next, Ask) and turn.next.question.key == "medicine"
    turn = respond(flow, turn.next.position, say("飲みました"))
    assert turn.answer.value == "taken" and isinstance(turn.next, Finish)


def test_the_same_input_at_the_same_position_gives_the_same_turn():
    assert respond(call(), Position(0, 1, 1), press("2")) == respond(call(), Position(0, 1, 1), press("2"))


def test_normalise_folds_width_and_katakana():
    assert normalise("ＧＥＮＫＩ　ゲンキ！") == "genkiげんき"


def test_the_core_imports_no_framework():
    forbidden = ("flask", "sqlalchemy", "twilio", "sendgrid", "apscheduler", "requests")
    for path in Path("core").glob("*.py"):
        tree = ast.parse(path.read_text())
        names = [n.name for node in ast.walk(tree) if isinstance(node, ast.Import) for n in node.names]
        names += [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module]
        assert not [n for n in names if n.split(".")[0] in forbidden], path
