"""The narrator's words, per language, loaded from the text files beside this module.

`<lang>/prompts.toml` holds prompts, question sets and speech vocabulary;
`<lang>/daily_messages.txt` holds `MM-DD<TAB>message` lines. A language with
fewer messages than days uses each message until the next listed date.
"""

from __future__ import annotations

import tomllib
from datetime import date, timedelta
from functools import cache
from pathlib import Path

from core.conversation import Question, Script

HERE = Path(__file__).parent
LANGUAGES = ("ja", "en")
DEFAULT_LANGUAGE = "ja"
DEFAULT_QUESTIONS = ("health",)
_LEAP_YEAR = 2024


@cache
def load(language: str = DEFAULT_LANGUAGE) -> Script:
    if language not in LANGUAGES:
        raise ValueError(f"no voice script for language {language!r}")
    folder = HERE / language
    data = tomllib.loads((folder / "prompts.toml").read_text(encoding="utf-8"))
    lines, words = data["lines"], data["words"]
    questions = {
        key: Question(
            key=key,
            prompt=spec["prompt"],
            digits=dict(spec["digits"]),
            words={value: tuple(options) for value, options in spec["words"].items()},
        )
        for key, spec in data["questions"].items()
    }
    return Script(
        language=data["language"],
        speech_language=data["speech_language"],
        voice=data["voice"],
        speaking_rate=data["speaking_rate"],
        service_name=data["service_name"],
        greetings=dict(data["greetings"]),
        reask=lines["reask"],
        help_ack=lines["help_ack"],
        thanks=lines["thanks"],
        message_intro=lines["message_intro"],
        goodbye=lines["goodbye"],
        moving_on=lines["moving_on"],
        help_digit=data["help_digit"],
        repeat_digit=data["repeat_digit"],
        help_words=tuple(words["help"]),
        repeat_words=tuple(words["repeat"]),
        min_confidence=float(data["min_confidence"]),
        questions=questions,
        daily_messages=read_daily_messages(folder / "daily_messages.txt"),
    )


def read_daily_messages(path: Path) -> tuple[str, ...]:
    """One message for each day of a leap year, in calendar order."""
    dated: dict[date, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        stamp, sep, message = line.partition("\t")
        try:
            month, day = (int(part) for part in stamp.split("-"))
            when = date(_LEAP_YEAR, month, day)
        except ValueError:
            raise ValueError(f"{path.name}:{number}: expected MM-DD<TAB>message") from None
        if not sep or not message.strip():
            raise ValueError(f"{path.name}:{number}: the message is empty")
        dated[when] = message.strip()
    if not dated:
        raise ValueError(f"{path.name}: no messages")
    days, current = [], dated[max(dated)]  # days before the first listed date wrap round the year
    when = date(_LEAP_YEAR, 1, 1)
    while when.year == _LEAP_YEAR:
        current = dated.get(when, current)
        days.append(current)
        when += timedelta(days=1)
    return tuple(days)
