"""Schedule arithmetic: when a resident's check-in is due, when to retry, when to give up.

All instants are timezone-aware; stored and compared in UTC, reasoned about in the
resident's own zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MINUTES_PER_DAY = 24 * 60


def parse_hhmm(text: str, *, allow_midnight_end: bool = False) -> int:
    """'08:30' -> 510 minutes after midnight. '24:00' only where it can mean end of day."""
    hours, sep, minutes = text.strip().partition(":")
    if not sep or not (hours.isdigit() and minutes.isdigit()) or len(minutes) != 2 or len(hours) > 2:
        raise ValueError(f"{text!r} is not a time in HH:MM form")
    value = int(hours) * 60 + int(minutes)
    limit = MINUTES_PER_DAY if allow_midnight_end else MINUTES_PER_DAY - 1
    if int(minutes) > 59 or value > limit:
        raise ValueError(f"{text!r} is not a time of day")
    return value


def format_hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class CallingHours:
    """The local hours in which a resident may be called: [start, end)."""

    start: time
    end: time | None  # None means the end of the day (24:00)

    @classmethod
    def parse(cls, text: str) -> CallingHours:
        first, sep, second = text.partition("-")
        if not sep:
            raise ValueError("write calling hours as HH:MM-HH:MM")
        start = parse_hhmm(first)
        end = parse_hhmm(second, allow_midnight_end=True)
        if end <= start:
            raise ValueError("calling hours must end after they start")
        return cls(_time(start), None if end == MINUTES_PER_DAY else _time(end))

    @property
    def start_minute(self) -> int:
        return self.start.hour * 60 + self.start.minute

    @property
    def end_minute(self) -> int:
        return MINUTES_PER_DAY if self.end is None else self.end.hour * 60 + self.end.minute

    def contains(self, local_time: time) -> bool:
        minute = local_time.hour * 60 + local_time.minute
        return self.start_minute <= minute < self.end_minute

    def __str__(self) -> str:
        return f"{format_hhmm(self.start_minute)}-{format_hhmm(self.end_minute)}"


def _time(minutes: int) -> time:
    return time(minutes // 60, minutes % 60)


def local_date(now: datetime, zone: str) -> date:
    return now.astimezone(ZoneInfo(zone)).date()


def local_instant(day: date, minute_of_day: int, zone: str) -> datetime:
    """The UTC instant of a local wall-clock minute (24:00 is the next day's midnight)."""
    tz = ZoneInfo(zone)
    moment = datetime.combine(day, time(0), tzinfo=tz) + timedelta(minutes=minute_of_day)
    # Re-attach the zone so a DST change inside the day moves the wall clock, not the offset.
    wall = moment.replace(tzinfo=None)
    return datetime.combine(wall.date(), wall.time(), tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True)
class CallWindow:
    """One local day's calling window for one resident, in UTC."""

    opens: datetime
    closes: datetime

    def contains(self, instant: datetime) -> bool:
        return self.opens <= instant < self.closes


def calling_window(day: date, zone: str, hours: CallingHours) -> CallWindow:
    return CallWindow(
        local_instant(day, hours.start_minute, zone),
        local_instant(day, hours.end_minute, zone),
    )


def first_call_at(day: date, call_time: time, zone: str, hours: CallingHours) -> datetime:
    """When the day's first call is due: the call time, moved into the calling window."""
    window = calling_window(day, zone, hours)
    due = local_instant(day, call_time.hour * 60 + call_time.minute, zone)
    return min(max(due, window.opens), window.closes)


def next_call_at(due: datetime, now: datetime, window: CallWindow) -> datetime | None:
    """When a due call may actually be placed: now if it is late (catch-up), never outside the window."""
    at = max(due, window.opens)
    if at < now:
        at = now
    return at if window.contains(at) else None


@dataclass(frozen=True)
class RetryRule:
    retry_delay: timedelta
    max_attempts: int


@dataclass(frozen=True)
class Retry:
    at: datetime


@dataclass(frozen=True)
class Absent:
    """The day's attempts are spent (or the window closed after an unanswered call)."""


def after_unanswered(unanswered: int, now: datetime, rule: RetryRule, window_closes: datetime) -> Retry | Absent:
    """What follows an unanswered attempt; `unanswered` counts this one.

    A retry that would fall after calling hours never happens: the day is absent instead.
    """
    if unanswered >= rule.max_attempts:
        return Absent()
    at = now + rule.retry_delay
    if at >= window_closes:
        return Absent()
    return Retry(at)
