"""The resident CSV file (PRODUCT.md §8): parsing and validation, and writing it back. No database here.

A file is read whole and every problem is reported with its line number (the header
is line 1), so staff can fix a file in one go; the importer only runs on a clean file.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import time
from typing import Any

import phonenumbers

from core.schedule import CallingHours, parse_hhmm
from store.models import MAX_CONTACTS

CONTACT_COLUMNS = tuple(
    column for position in range(1, MAX_CONTACTS + 1) for column in (f"contact{position}_name", f"contact{position}_email")
)
COLUMNS = ("external_id", "name", "phone", "call_time", "language", "channel", "municipality", *CONTACT_COLUMNS)
REQUIRED_COLUMNS = ("external_id", "name", "phone", "call_time")
LANGUAGES = ("ja", "en")
CHANNELS = ("phone", "speaker")

MAX_EXTERNAL_ID = 64
MAX_NAME = 200
MAX_MUNICIPALITY = 100
MAX_PHONE_INPUT = 30
MAX_EMAIL = 254
QUOTE_LIMIT = 30

# Digits and the separators people write in Japanese numbers: hyphens, the dashes an IME
# produces (including ー), spaces and parentheses; "+" only in front.
_PHONE_TEXT = re.compile(r"\+?[0-9 ()\-\u2010-\u2015\u2212\u30fc]+")
_CONTACT_COLUMN = re.compile(r"contact(\d+)_(?:name|email)")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_EMAIL = re.compile(rf"(?P<local>{_ATOM}(?:\.{_ATOM})*)@(?:{_LABEL}\.)+[A-Za-z](?:[A-Za-z0-9-]*[A-Za-z0-9])?")

@dataclass(frozen=True)
class ContactRecord:
    position: int  # the column pair it came from, 1..MAX_CONTACTS
    name: str  # may be empty
    email: str


@dataclass(frozen=True)
class ResidentRecord:
    external_id: str
    name: str
    phone: str  # E.164
    call_time: time
    language: str = "ja"
    channel: str = "phone"
    municipality: str | None = None
    contacts: tuple[ContactRecord, ...] = ()


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str


@dataclass(frozen=True)
class ParsedFile:
    """The good rows and every problem; import only when `errors` is empty."""

    records: list[ResidentRecord]
    errors: list[RowError]


def parse_csv_bytes(data: bytes, *, calling_hours: CallingHours) -> ParsedFile:
    """Decode a file as UTF-8 (with or without a BOM) and parse it."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        # Excel's plain "CSV" is Shift_JIS in Japan; "CSV UTF-8" is the format we read.
        return ParsedFile([], [RowError(line, "the file is not UTF-8 text (save it as 'CSV UTF-8')")])
    return parse_csv(text, calling_hours=calling_hours)


def parse_csv(text: str, *, calling_hours: CallingHours) -> ParsedFile:
    """Parse a resident file. A bad header stops there: its rows cannot be read reliably."""
    # strict: a stray or unclosed quote is an error, not a silently merged value.
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    records: list[ResidentRecord] = []
    errors: list[RowError] = []
    first_seen: dict[str, int] = {}
    start = 1  # the line the next row starts on; a quoted value may span lines
    try:
        header = next(reader, None)
        if header is None:
            return ParsedFile([], [RowError(1, "the file is empty")])
        columns = [column.strip() for column in header]
        header_problems = _header_problems(columns)
        if header_problems:
            return ParsedFile([], [RowError(1, reason) for reason in header_problems])
        start = reader.line_num + 1
        for row in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(columns):
                errors.append(RowError(line, f"has {len(row)} values but the header has {len(columns)} columns"))
                continue
            values = dict(zip(columns, (cell.strip() for cell in row), strict=True))
            problems: list[str] = []
            record = _parse_row(values, calling_hours, problems)
            external_id = values.get("external_id", "")
            if external_id in first_seen:
                problems.append(f"external_id {_quote(external_id)} is also on line {first_seen[external_id]}")
            elif external_id:
                first_seen[external_id] = line
            errors.extend(RowError(line, problem) for problem in problems)
            if record is not None and not problems:
                records.append(record)
    except csv.Error as error:
        errors.append(RowError(start, f"the file is not valid CSV: {error}"))
    return ParsedFile(records, errors)


def to_csv(records: Iterable[ResidentRecord]) -> str:
    """The file `parse_csv` reads back to the same records: every column, canonical order."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for record in records:
        values = {
            "external_id": record.external_id,
            "name": record.name,
            "phone": record.phone,
            "call_time": record.call_time.strftime("%H:%M"),
            "language": record.language,
            "channel": record.channel,
            "municipality": record.municipality or "",
        }
        for contact in record.contacts:
            values[f"contact{contact.position}_name"] = contact.name
            values[f"contact{contact.position}_email"] = contact.email
        writer.writerow([values.get(column, "") for column in COLUMNS])
    return out.getvalue()


def _header_problems(columns: list[str]) -> list[str]:
    problems = []
    seen: set[str] = set()
    for index, column in enumerate(columns, start=1):
        if not column:
            problems.append(f"column {index} has no name")
        elif column in seen:
            problems.append(f"column {_quote(column)} appears more than once")
        elif column not in COLUMNS:
            match = _CONTACT_COLUMN.fullmatch(column)
            if match and int(match[1]) > MAX_CONTACTS:
                problems.append(f"column {_quote(column)}: a resident has at most {MAX_CONTACTS} report recipients")
            else:
                problems.append(f"unknown column {_quote(column)}")
        seen.add(column)
    problems.extend(f"missing required column {_quote(column)}" for column in REQUIRED_COLUMNS if column not in seen)
    return problems


def _parse_row(values: dict[str, str], hours: CallingHours, problems: list[str]) -> ResidentRecord | None:
    parsers: dict[str, Callable[[str], Any]] = {
        "external_id": lambda value: _text("external_id", value, MAX_EXTERNAL_ID),
        "name": lambda value: _text("name", value, MAX_NAME),
        "phone": _phone,
        "call_time": lambda value: _call_time(value, hours),
        "language": lambda value: _choice("language", value, LANGUAGES),
        "channel": lambda value: _choice("channel", value, CHANNELS),
        "municipality": _municipality,
    }
    fields: dict[str, Any] = {}
    for column, parse in parsers.items():
        try:
            fields[column] = parse(values.get(column, ""))
        except ValueError as error:
            problems.append(str(error))
    contacts = _contacts(values, problems)
    return None if problems else ResidentRecord(**fields, contacts=contacts)


def _text(column: str, value: str, limit: int) -> str:
    if not value:
        raise ValueError(f"{column} is required")
    if len(value) > limit:
        raise ValueError(f"{column} is longer than {limit} characters")
    return value


def _phone(value: str) -> str:
    if not value:
        raise ValueError("phone is required")
    text = unicodedata.normalize("NFKC", value)  # full-width digits and hyphens
    if len(text) > MAX_PHONE_INPUT:
        raise ValueError(f"phone {_quote(value)} is too long")
    if not _PHONE_TEXT.fullmatch(text):
        raise ValueError(f"phone {_quote(value)} may only hold digits, hyphens, spaces, parentheses and a leading +")
    try:
        number = phonenumbers.parse(text, "JP")
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ValueError(f"phone {_quote(value)} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _call_time(value: str, hours: CallingHours) -> time:
    if not value:
        raise ValueError("call_time is required")
    try:
        minutes = parse_hhmm(unicodedata.normalize("NFKC", value))
    except ValueError:
        raise ValueError(f"call_time {_quote(value)} is not a time in HH:MM form") from None
    at = time(minutes // 60, minutes % 60)
    if not hours.contains(at):
        raise ValueError(f"call_time {at:%H:%M} is outside calling hours {hours}")
    return at


def _choice(column: str, value: str, allowed: tuple[str, ...]) -> str:
    """One of `allowed`, in any case; empty means the first, the default."""
    if not value:
        return allowed[0]
    if value.lower() not in allowed:
        raise ValueError(f"{column} {_quote(value)} must be one of: {', '.join(allowed)}")
    return value.lower()


def _municipality(value: str) -> str | None:
    if len(value) > MAX_MUNICIPALITY:
        raise ValueError(f"municipality is longer than {MAX_MUNICIPALITY} characters")
    return value or None


def _contacts(values: dict[str, str], problems: list[str]) -> tuple[ContactRecord, ...]:
    contacts = []
    positions_by_email: dict[str, int] = {}
    for position in range(1, MAX_CONTACTS + 1):
        name_column, email_column = f"contact{position}_name", f"contact{position}_email"
        name, raw_email = values.get(name_column, ""), values.get(email_column, "")
        if not raw_email:
            if name:
                problems.append(f"{name_column} is set but {email_column} is empty")
            continue
        if len(name) > MAX_NAME:
            problems.append(f"{name_column} is longer than {MAX_NAME} characters")
        try:
            email = _email(email_column, raw_email)
        except ValueError as error:
            problems.append(str(error))
            continue
        # Addresses differ in case only in theory; one inbox must not get every report twice.
        key = email.lower()
        if key in positions_by_email:
            problems.append(f"{email_column} {_quote(email)} repeats contact{positions_by_email[key]}_email")
            continue
        positions_by_email[key] = position
        contacts.append(ContactRecord(position, name, email))
    return tuple(contacts)


def _email(column: str, value: str) -> str:
    # NFKC turns full-width input from a Japanese IME into ASCII; only ASCII addresses are
    # accepted, so that every mail backend can deliver to them.
    text = unicodedata.normalize("NFKC", value)
    if len(text) > MAX_EMAIL:
        raise ValueError(f"{column} is longer than {MAX_EMAIL} characters")
    match = _EMAIL.fullmatch(text)
    if match is None or len(match["local"]) > 64:
        raise ValueError(f"{column} {_quote(value)} is not a valid email address")
    return text


def _quote(value: str) -> str:
    """A value as it appears in a message: quoted, control characters escaped, at most 30 characters."""
    return repr(value if len(value) <= QUOTE_LIMIT else value[: QUOTE_LIMIT - 1] + "…")
