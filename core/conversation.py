"""The check-in conversation, one flow for every channel.

A call is a sequence of turns. Each turn asks one question; what the resident
says or presses comes back as `Heard`, and `respond` decides the next turn. The
position in the flow travels with each turn (`Position`), so the same input at
the same position always gives the same result: a repeated webhook is harmless.

Channels render `Ask` and `Finish` (TwiML for the phone, JSON for a speaker);
none of them holds flow logic of its own.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, time

HELP = "help"
REPEAT = "repeat"
NO_ANSWER = "no_answer"

MAX_REASKS = 2  # re-asks after the first question: three hearings in all
MAX_TURNS = 12  # a bound on repeats ("0") so that no call loops for ever


@dataclass(frozen=True)
class Question:
    key: str
    prompt: str
    # keypad digit -> answer value, e.g. {"1": "good", "2": "usual", "3": "unwell"}
    digits: Mapping[str, str]
    # answer value -> spoken words that mean it
    words: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Script:
    """Everything the narrator says in one language (loaded from voice_scripts/)."""

    language: str
    speech_language: str  # BCP-47 for speech recognition, e.g. "ja-JP"
    voice: str
    speaking_rate: str  # SSML prosody rate; slower for listeners who are hard of hearing
    service_name: str
    greetings: Mapping[str, str]  # "morning" / "day" / "evening" -> template with {service} {name}
    reask: str
    help_ack: str
    thanks: str
    message_intro: str
    goodbye: str
    moving_on: str
    help_digit: str
    repeat_digit: str
    help_words: tuple[str, ...]
    repeat_words: tuple[str, ...]
    min_confidence: float
    questions: Mapping[str, Question]
    daily_messages: tuple[str, ...]  # indexed by day of a leap year: 0 = 1 January, 59 = 29 February

    def daily_message(self, day: date) -> str:
        return self.daily_messages[day_of_leap_year(day) % len(self.daily_messages)]


def day_of_leap_year(day: date) -> int:
    """0..365, with 29 February always at 59, so each calendar day keeps its own message."""
    return date(2024, day.month, day.day).timetuple().tm_yday - 1


@dataclass(frozen=True)
class Heard:
    """One input from the resident: keys pressed, or words spoken with the recogniser's confidence."""

    digits: str = ""
    speech: str = ""
    confidence: float | None = None

    @property
    def mode(self) -> str:
        if self.digits:
            return "keypad"
        if self.speech.strip():
            return "speech"
        return "silence"


@dataclass(frozen=True)
class Position:
    """Where a call is in the flow: which question, how many re-asks used, how many turns so far."""

    question: int = 0
    reasks: int = 0
    turn: int = 0


@dataclass(frozen=True)
class Ask:
    """Say `lines`, then listen for an answer to `question`."""

    question: Question
    lines: tuple[str, ...]
    position: Position

    @property
    def hints(self) -> tuple[str, ...]:
        return tuple(word for words in self.question.words.values() for word in words)


@dataclass(frozen=True)
class Finish:
    """Say `lines` and hang up."""

    lines: tuple[str, ...]


@dataclass(frozen=True)
class Answer:
    """What a question was finally answered with (a choice, `help`, or `no_answer`)."""

    question: str
    value: str
    heard: Heard


@dataclass(frozen=True)
class Turn:
    understood: str | None  # the value the input meant, `repeat`, `help`, or None if not understood
    answer: Answer | None  # set when the input settles the question
    next: Ask | Finish


@dataclass(frozen=True)
class Call:
    """The fixed facts of one call: who, in which language, which questions, on which local day."""

    script: Script
    resident_name: str
    question_keys: tuple[str, ...]
    local_day: date
    local_time: time = field(default=time(10, 0))

    def question(self, index: int) -> Question:
        return self.script.questions[self.question_keys[index]]


def opening(call: Call) -> Ask:
    script = call.script
    greeting = script.greetings[_part_of_day(call.local_time)].format(
        service=script.service_name, name=call.resident_name
    )
    question = call.question(0)
    return Ask(question, (greeting, question.prompt), Position())


def respond(call: Call, position: Position, heard: Heard) -> Turn:
    script = call.script
    question = call.question(position.question)
    understood = understand(script, question, heard)
    turn = position.turn + 1

    if understood == HELP:
        return Turn(HELP, Answer(question.key, HELP, heard), Finish((script.help_ack, script.goodbye)))
    if understood == REPEAT and turn < MAX_TURNS:
        return Turn(REPEAT, None, Ask(question, (question.prompt,), replace(position, turn=turn)))
    if understood not in (None, REPEAT):
        return Turn(understood, Answer(question.key, understood, heard), _after(call, position.question, turn))
    if position.reasks < MAX_REASKS and turn < MAX_TURNS:
        again = Position(position.question, position.reasks + 1, turn)
        return Turn(None, None, Ask(question, (script.reask, question.prompt), again))
    return Turn(None, Answer(question.key, NO_ANSWER, heard), _after(call, position.question, turn, moving_on=True))


def _after(call: Call, index: int, turn: int, *, moving_on: bool = False) -> Ask | Finish:
    script = call.script
    preface = (script.moving_on,) if moving_on else ()
    if index + 1 < len(call.question_keys):
        question = call.question(index + 1)
        return Ask(question, preface + (question.prompt,), Position(index + 1, 0, turn))
    message = script.daily_message(call.local_day)
    return Finish(preface + (script.thanks, script.message_intro, message, script.goodbye))


def understand(script: Script, question: Question, heard: Heard) -> str | None:
    """The meaning of one input, or None when it is silence, noise or a key we do not use."""
    if heard.digits:
        if heard.digits == script.help_digit:
            return HELP
        if heard.digits == script.repeat_digit:
            return REPEAT
        return question.digits.get(heard.digits)
    spoken = normalise(heard.speech)
    if not spoken:
        return None
    # Help is honoured however unsure the recogniser is: a false alarm costs less than a missed one.
    if _best_match(spoken, {HELP: script.help_words}) == HELP:
        return HELP
    if heard.confidence is not None and heard.confidence < script.min_confidence:
        return None
    vocabulary = {REPEAT: script.repeat_words, **question.words}
    return _best_match(spoken, vocabulary)


def _best_match(spoken: str, vocabulary: Mapping[str, tuple[str, ...]]) -> str | None:
    """The value whose word matches the longest part of what was said.

    Longest wins so that 元気がない (not well) beats the 元気 (good) inside it. Words
    of one character ("1") must be the whole utterance, or they would match noise.
    """
    best: tuple[int, str] | None = None
    for value, words in vocabulary.items():
        for word in words:
            word = normalise(word)
            if not word:
                continue
            hit = spoken == word if len(word) == 1 else word in spoken
            if hit and (best is None or len(word) > best[0]):
                best = (len(word), value)
    return best[1] if best else None


_KATAKANA = {code: code - 0x60 for code in range(ord("ァ"), ord("ヶ") + 1)}
_NOT_WORD = re.compile(r"[\s\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """Fold width, case and katakana to one form and drop punctuation, for matching speech."""
    folded = unicodedata.normalize("NFKC", text).casefold().translate(_KATAKANA)
    return _NOT_WORD.sub("", folded)


def _part_of_day(local_time: time) -> str:
    if local_time < time(10, 0):
        return "morning"
    if local_time < time(18, 0):
        return "day"
    return "evening"
