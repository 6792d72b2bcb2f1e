"""How a check-in ends, and the emails each ending queues (in the same transaction).

Every planned check-in ends answered, absent, paused or cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from core.conversation import HELP
from core.schedule import Absent, RetryRule, after_unanswered
from notify.compose import absent_facts, report_facts, urgent_facts
from notify.delivery import queue_for_contacts
from settings import Settings
from store.db import one_of
from store.models import CallAttempt, CheckIn, StaffAlert

URGENT_HEALTH = frozenset({"unwell", HELP})  # answers that also send the urgent email
CLOSED = ("answered", "absent", "cancelled")  # a day in one of these takes no further answer

_checkins = CheckIn.__table__


@dataclass(frozen=True)
class Day:
    """The check-in a call belongs to, as closing it and writing to the family need it."""

    checkin_id: int
    local_date: date
    resident_id: int
    resident_name: str
    timezone: str

    @classmethod
    def of(cls, checkin: CheckIn) -> Day:
        resident = checkin.resident
        return cls(checkin.id, checkin.local_date, resident.id, resident.name, resident.timezone)

    def local(self, when: datetime) -> datetime:
        return when.astimezone(ZoneInfo(self.timezone))


def retry_rule(settings: Settings) -> RetryRule:
    return RetryRule(timedelta(minutes=settings.retry_delay_minutes), settings.max_attempts)


# One conditional statement: of two webhooks answering the same day at once, only one closes it.
_CLOSE_ANSWERED = (
    update(_checkins)
    .where(_checkins.c.id == bindparam("day_id"), ~one_of(_checkins.c.status, CLOSED))
    .values(status="answered", health=bindparam("day_health"), next_attempt_at=None,
            closed_at=bindparam("day_closed_at"))
    .returning(_checkins.c.id)
)


def mark_answered(session: Session, day: Day, health: str, now: datetime) -> bool:
    """The health question is settled: close the day and tell the family at once.

    Returns False, and queues nothing, when the day was already closed (a late answer).
    The caller marks the attempt answered.
    """
    closed = session.execute(_CLOSE_ANSWERED, {"day_id": day.checkin_id, "day_health": health,
                                               "day_closed_at": now}).first()
    if closed is None:
        return False
    _queue_for_contacts(session, "report", day, report_facts(day.resident_name, day.local(now), health), now)
    if health in URGENT_HEALTH:
        escalate(session, day, health, now)
    return True


def escalate(session: Session, day: Day, reason: str, now: datetime) -> None:
    """Urgent email to every recipient, once per check-in: "unwell", or "help" (at any question)."""
    _queue_for_contacts(session, "urgent", day, urgent_facts(day.resident_name, day.local(now), reason), now)


def mark_unanswered(session: Session, checkin: CheckIn, attempt: CallAttempt, now: datetime, settings: Settings) -> None:
    """An attempt ended without a health answer: retry later, or declare the day absent."""
    if attempt.outcome is not None:
        return
    attempt.outcome = "unanswered"
    if checkin.status != "calling":
        return
    checkin.unanswered_count += 1
    decision = after_unanswered(checkin.unanswered_count, now, retry_rule(settings), checkin.window_closes_at)
    if isinstance(decision, Absent):
        mark_absent(session, checkin, now)
    else:
        checkin.status = "scheduled"
        checkin.next_attempt_at = decision.at


def mark_absent(session: Session, checkin: CheckIn, now: datetime) -> None:
    checkin.status = "absent"
    checkin.next_attempt_at = None
    checkin.closed_at = now
    day = Day.of(checkin)
    tried = [day.local(a.dialling_at) for a in checkin.attempts if a.outcome == "unanswered"]
    _queue_for_contacts(session, "absent", day, absent_facts(day.resident_name, day.local_date, tried), now)


def cancel(session: Session, checkin: CheckIn, reason: str, now: datetime, alert: str | None = None) -> None:
    checkin.status = "cancelled"
    checkin.cancel_reason = reason
    checkin.next_attempt_at = None
    checkin.closed_at = now
    if alert:
        session.add(StaffAlert(resident_id=checkin.resident_id, kind=reason, message=alert, created_at=now))


def _queue_for_contacts(session: Session, kind: str, day: Day, facts: dict[str, object], now: datetime) -> None:
    queue_for_contacts(session, kind, facts, resident_id=day.resident_id, checkin_id=day.checkin_id, now=now)
