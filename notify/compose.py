"""Render the family emails (report, urgent, absent) from templates, per language.

Pure: no database, no Flask. Times come in already converted to the resident's zone.
Each `{kind}.{language}.txt` template starts with the subject line, then a blank line, then the body.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

LANGUAGES = ("ja", "en")
DEFAULT_LANGUAGE = "ja"
# "help" is listed too: a resident who presses 9 ends the call with that as the health answer.
HEALTH = ("good", "usual", "unwell", "no_answer", "help")
URGENT_REASONS = ("unwell", "help")

_JA_WEEKDAYS = "月火水木金土日"
_EN_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_EN_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)

_env = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_env.filters["clock"] = lambda moment: f"{moment.hour}:{moment.minute:02d}"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render_report(language: str, resident_name: str, local_when: datetime, health: str) -> Rendered:
    _known(health, HEALTH)
    _aware(local_when)
    return _render("report", language, resident_name, local_when.date(), health=health, when=local_when)


def render_urgent(language: str, resident_name: str, local_when: datetime, reason: str) -> Rendered:
    _known(reason, URGENT_REASONS)
    _aware(local_when)
    return _render("urgent", language, resident_name, local_when.date(), reason=reason, when=local_when)


def render_absent(language: str, resident_name: str, local_date: date, attempt_times: list[datetime]) -> Rendered:
    _aware(*attempt_times)
    return _render("absent", language, resident_name, local_date, attempt_times=sorted(attempt_times))


# What an email says, as stored with the queued email (JSON) until the relay renders it.
# Built and checked when the event happens, so that a bad value fails there and not in the relay.


def report_facts(resident_name: str, local_when: datetime, health: str) -> dict[str, str]:
    _known(health, HEALTH)
    _aware(local_when)
    return {"resident": resident_name, "when": local_when.isoformat(), "health": health}


def urgent_facts(resident_name: str, local_when: datetime, reason: str) -> dict[str, str]:
    _known(reason, URGENT_REASONS)
    _aware(local_when)
    return {"resident": resident_name, "when": local_when.isoformat(), "reason": reason}


def absent_facts(resident_name: str, local_date: date, attempt_times: list[datetime]) -> dict[str, object]:
    _aware(*attempt_times)
    return {"resident": resident_name, "date": local_date.isoformat(), "tried": [t.isoformat() for t in attempt_times]}


def render_email(kind: str, language: str, facts: Mapping[str, Any]) -> Rendered:
    """Render a queued email from its stored facts."""
    name = facts["resident"]
    if kind == "report":
        return render_report(language, name, datetime.fromisoformat(facts["when"]), facts["health"])
    if kind == "urgent":
        return render_urgent(language, name, datetime.fromisoformat(facts["when"]), facts["reason"])
    if kind == "absent":
        tried = [datetime.fromisoformat(moment) for moment in facts["tried"]]
        return render_absent(language, name, date.fromisoformat(facts["date"]), tried)
    raise ValueError(f"no template for {kind!r} emails")


def _render(kind: str, language: str, resident_name: str, local_date: date, **context: object) -> Rendered:
    # A contact may carry a language we have no templates for; Japanese is the product default.
    language = language if language in LANGUAGES else DEFAULT_LANGUAGE
    context.update(
        resident=" ".join(resident_name.split()),  # one line: the name also goes into the Subject header
        full_date=_full_date(language, local_date),
        short_date=_short_date(language, local_date),
    )
    head = _env.get_template(f"{kind}.{language}.txt").render(context)
    subject, _, text = head.partition("\n\n")
    html = _env.get_template(f"{kind}.{language}.html").render(context, subject=subject, language=language)
    return Rendered(subject=subject.strip(), text=text, html=html)


def _known(value: str, known: tuple[str, ...]) -> None:
    if value not in known:
        raise ValueError(f"unknown answer or reason {value!r}")


def _aware(*moments: datetime) -> None:
    if any(moment.tzinfo is None for moment in moments):
        raise ValueError("naive datetime: pass the resident's local time with its zone")


def _full_date(language: str, day: date) -> str:
    if language == "ja":
        return f"{day.year}年{day.month}月{day.day}日({_JA_WEEKDAYS[day.weekday()]})"
    return f"{_EN_WEEKDAYS[day.weekday()]} {day.day} {_EN_MONTHS[day.month - 1]} {day.year}"


def _short_date(language: str, day: date) -> str:
    if language == "ja":
        return f"{day.month}月{day.day}日"
    return f"{day.day} {_EN_MONTHS[day.month - 1][:3]}"
