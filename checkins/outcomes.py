"""How a check-in ends, and the emails each ending queues (in the same transaction).

Every planned check-in ends answered, absent, paused or cancelled.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.conversation import HELP
from core.schedule import Absent, RetryRule, after_unanswered
from notify.compose import Rendered, render_absent, render_report, render_urgent
from notify.delivery import QueuedEmail, queue_emails
from settings import Settings
from store.models import CallAttempt, CheckIn, Contact, Resident, StaffAlert

URGENT_HEALTH = frozenset({"unwell", HELP})  # answers that also send the urgent email


def retry_rule(settings: Settings) -> RetryRule:
    return RetryRule(timedelta(minutes=settings.retry_delay_minutes), settings.max_attempts)


def mark_answered(session: Session, checkin: CheckIn, attempt: CallAttempt, health: str, now: datetime) -> None:
    """The health question is settled: close the day and tell the family at once."""
    attempt.outcome = "answered"
    if checkin.status in ("answered", "absent", "cancelled"):
        return  # a late answer on a day already closed changes nothing
    checkin.status = "answered"
    checkin.health = health
    checkin.next_attempt_at = None
    checkin.closed_at = now
    resident = checkin.resident
    local_when = now.astimezone(ZoneInfo(resident.timezone))
    _queue_for_contacts(
        session, "report", checkin, now, lambda language: render_report(language, resident.name, local_when, health)
    )
    if health in URGENT_HEALTH:
        escalate(session, checkin, health, now)


def escalate(session: Session, checkin: CheckIn, reason: str, now: datetime) -> None:
    """Urgent email to every recipient, once per check-in: "unwell", or "help" (at any question)."""
    resident = checkin.resident
    local_when = now.astimezone(ZoneInfo(resident.timezone))
    _queue_for_contacts(
        session, "urgent", checkin, now, lambda language: render_urgent(language, resident.name, local_when, reason)
    )


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
    resident = checkin.resident
    zone = ZoneInfo(resident.timezone)
    tried = [a.dialling_at.astimezone(zone) for a in checkin.attempts if a.outcome == "unanswered"]
    _queue_for_contacts(
        session, "absent", checkin, now, lambda language: render_absent(language, resident.name, checkin.local_date, tried)
    )


def cancel(session: Session, checkin: CheckIn, reason: str, now: datetime, alert: str | None = None) -> None:
    checkin.status = "cancelled"
    checkin.cancel_reason = reason
    checkin.next_attempt_at = None
    checkin.closed_at = now
    if alert:
        session.add(StaffAlert(resident_id=checkin.resident_id, kind=reason, message=alert, created_at=now))


def _queue_for_contacts(session: Session, kind: str, checkin: CheckIn, now: datetime, render) -> None:
    resident: Resident = checkin.resident
    rendered_by_language: dict[str, Rendered] = {}
    emails = []
    contacts = session.execute(
        select(Contact.email, Contact.name, Contact.language)
        .where(Contact.resident_id == resident.id)
        .order_by(Contact.position)
    )
    for contact in contacts:
        language = contact.language or "ja"
        if language not in rendered_by_language:
            rendered_by_language[language] = render(language)
        emails.append(QueuedEmail(
            purpose=f"{kind}:checkin-{checkin.id}:{contact.email}",
            kind=kind,
            to_email=contact.email,
            to_name=contact.name,
            rendered=rendered_by_language[language],
            resident_id=resident.id,
            checkin_id=checkin.id,
        ))
    queue_emails(session, emails, now=now)
