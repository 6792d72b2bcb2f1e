"""The outbox relay: emails are queued as rows in the event's transaction and delivered afterwards.

Delivery is at least once per purpose: a relay that crashes between the provider's
acceptance and the commit leaves a `sending` row whose lease runs out, and the email is
sent again. Two relays never hold the same row at the same time.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import JSON, Insert, Integer, String, and_, bindparam, func, literal, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.privacy import mask_email
from notify.compose import DEFAULT_LANGUAGE, render_email
from notify.mailer import Mailer, OutgoingEmail, PermanentMailError, TransientMailError
from store.db import dialect_insert, insert_or_ignore
from store.models import Contact, Email, StaffAlert

log = logging.getLogger(__name__)
_emails = Email.__table__

MAX_ATTEMPTS = 8
MAX_BACKOFF = timedelta(minutes=60)
SENDER_NAME = "みまもりでんわ"
_ERROR_LENGTH = 500  # Email.last_error


@dataclass(frozen=True)
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0


@dataclass(frozen=True)
class QueuedEmail:
    purpose: str
    kind: str
    to_email: str
    to_name: str
    language: str
    facts: Mapping[str, Any]  # what it says: notify.compose.*_facts
    resident_id: int | None = None
    checkin_id: int | None = None


def queue_emails(session: Session, emails: list[QueuedEmail], *, now: datetime) -> int:
    """Record emails to send, once per purpose, in one statement; returns how many were new.

    Does not commit: the emails become real with the caller's transaction. A concurrent
    transaction queueing the same purpose waits on the unique index and then does nothing.
    """
    if not emails:
        return 0
    rows = [
        dict(purpose=e.purpose, kind=e.kind, resident_id=e.resident_id, checkin_id=e.checkin_id,
             to_email=e.to_email, to_name=e.to_name, language=e.language, facts=e.facts, status="pending",
             attempts=0, next_attempt_at=now, created_at=now)
        for e in emails
    ]
    return len(session.execute(insert_or_ignore(session, _emails), rows).all())  # no row for a known purpose


def queue_for_contacts(session: Session, kind: str, facts: Mapping[str, Any], *, resident_id: int,
                       checkin_id: int, now: datetime) -> None:
    """One email of `kind` about a check-in to each of the resident's report contacts, each in
    the contact's language, once per contact however often the event is replayed.

    A single INSERT ... SELECT from the contacts: it runs in the answering webhook. Does not commit.
    """
    session.execute(_queue_for_contacts(session.get_bind().dialect.name), {
        "purpose_prefix": f"{kind}:checkin-{checkin_id}:", "kind": kind, "facts": facts,
        "resident_id": resident_id, "checkin_id": checkin_id, "now": now,
    })


@cache
def _queue_for_contacts(dialect: str) -> Insert:
    contacts = Contact.__table__
    now = bindparam("now", type_=_emails.c.created_at.type)
    recipients = (
        select(
            bindparam("purpose_prefix", type_=String) + contacts.c.email,
            bindparam("kind", type_=String),
            contacts.c.resident_id,
            bindparam("checkin_id", type_=Integer),
            contacts.c.email,
            contacts.c.name,
            func.coalesce(contacts.c.language, DEFAULT_LANGUAGE),
            bindparam("facts", type_=JSON),
            literal("pending"),
            literal(0),
            now,
            now,
        )
        .where(contacts.c.resident_id == bindparam("resident_id"))
        .order_by(contacts.c.position)
    )
    columns = ["purpose", "kind", "resident_id", "checkin_id", "to_email", "to_name", "language", "facts",
               "status", "attempts", "next_attempt_at", "created_at"]
    return dialect_insert(dialect, _emails).from_select(columns, recipients).on_conflict_do_nothing()


def deliver_due_emails(
    session_factory: sessionmaker[Session],
    mailer: Mailer,
    *,
    now: datetime,
    owner: str,
    from_email: str,
    batch: int = 50,
    lease: timedelta = timedelta(minutes=5),
) -> DeliveryReport:
    """Send every email due at `now`, a batch at a time. Safe to run in several processes at once."""
    outcomes: Counter[str] = Counter()
    while (claims := _claim(session_factory, now=now, batch=batch, lease=lease, from_email=from_email)) is not None:
        log.info("relay %s claimed %d email(s)", owner, len(claims))
        for claim in claims:
            outcomes[_deliver(session_factory, mailer, claim, now=now) if claim.email else "failed"] += 1
    return DeliveryReport(sent=outcomes["sent"], retried=outcomes["pending"], failed=outcomes["failed"])


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4, 8 ... minutes after the 1st, 2nd, 3rd, 4th ... failed attempt, at most an hour."""
    return min(timedelta(minutes=2 ** min(attempts - 1, 10)), MAX_BACKOFF)


def message_key(email: Email) -> str:
    # Derived from the purpose (stable across retries and relays) but hashed: purposes hold addresses.
    return f"{email.kind}-{hashlib.sha256(email.purpose.encode()).hexdigest()[:32]}"


@dataclass(frozen=True)
class _Claim:
    """A row this relay holds the lease on, copied out so that no session stays open while sending."""

    id: int
    attempts: int  # including this one; also tells whether another relay has taken the row over since
    resident_id: int | None
    email: OutgoingEmail | None  # None: it could not be rendered, and failed


def _claim(
    session_factory: sessionmaker[Session], *, now: datetime, batch: int, lease: timedelta, from_email: str
) -> list[_Claim] | None:
    """Mark up to `batch` due rows `sending` under a lease, in a committed transaction of their own.

    None when nothing is due; an empty list when every row seen was claimed by another relay first.
    """
    due = or_(
        and_(Email.status == "pending", Email.next_attempt_at <= now),
        and_(Email.status == "sending", Email.lease_until < now),  # its relay died mid-send
    )
    with session_factory() as session, session.begin():
        # Row locks keep PostgreSQL relays apart; the conditional UPDATE is what counts on SQLite,
        # where writers take turns and a row claimed meanwhile no longer matches `due`.
        ids = session.scalars(
            select(Email.id)
            .where(due)
            .order_by(Email.next_attempt_at, Email.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).all()
        if not ids:
            return None
        claimed = session.scalars(
            update(Email)
            .where(Email.id.in_(ids), due)
            .values(status="sending", lease_until=now + lease, attempts=Email.attempts + 1)
            .returning(Email.id)
            .execution_options(synchronize_session=False)
        ).all()
        rows = session.scalars(select(Email).where(Email.id.in_(claimed)).order_by(Email.id))
        return [_Claim(row.id, row.attempts, row.resident_id, _ready(session, row, now, from_email)) for row in rows]


def _ready(session: Session, row: Email, now: datetime, from_email: str) -> OutgoingEmail | None:
    """Render a queued email once, on its first claim; retries send the very same text.

    An email that cannot be rendered fails at once, with a staff alert, and holds up no other.
    """
    if row.subject is None:
        try:
            rendered = render_email(row.kind, row.language, row.facts)
        except Exception as error:
            log.error("relay: email %d cannot be rendered (%s)", row.id, type(error).__name__)  # values stay out of logs
            reason = f"could not be rendered: {type(error).__name__}: {error}"
            row.status, row.lease_until, row.last_error = "failed", None, reason[:_ERROR_LENGTH]
            session.add(StaffAlert(resident_id=row.resident_id, kind="email_failed", created_at=now,
                                   message=f"{row.kind} email to {mask_email(row.to_email)} {reason}"))
            return None
        row.subject, row.text_body, row.html_body = rendered.subject, rendered.text, rendered.html
    return _outgoing(row, from_email)


def _deliver(session_factory: sessionmaker[Session], mailer: Mailer, claim: _Claim, *, now: datetime) -> str:
    """Send one claimed email (no transaction is open meanwhile), then record the outcome."""
    try:
        provider_id = mailer.send(claim.email)
    except PermanentMailError as error:
        return _record(session_factory, claim, now, "failed", last_error=f"rejected: {error}")
    except Exception as error:  # TransientMailError, or a fault nobody foresaw: both are worth a retry
        if not isinstance(error, TransientMailError):
            log.exception("relay: unexpected error sending email %d", claim.id)
        reason = f"{type(error).__name__}: {error}"
        if claim.attempts >= MAX_ATTEMPTS:
            reason = f"gave up after {claim.attempts} attempts; {reason}"
            return _record(session_factory, claim, now, "failed", last_error=reason)
        return _record(
            session_factory, claim, now, "pending", last_error=reason, next_attempt_at=now + retry_delay(claim.attempts)
        )
    return _record(session_factory, claim, now, "sent", provider_id=provider_id, sent_at=now)


def _record(session_factory: sessionmaker[Session], claim: _Claim, now: datetime, status: str, **values) -> str:
    if "last_error" in values:
        values["last_error"] = mask_email(values["last_error"])[:_ERROR_LENGTH]
    masked = mask_email(claim.email.to_email)
    with session_factory() as session, session.begin():
        # Only the holder of the lease records an outcome; a relay that outlived its lease defers.
        recorded = session.execute(
            update(Email)
            .where(Email.id == claim.id, Email.status == "sending", Email.attempts == claim.attempts)
            .values(status=status, lease_until=None, **values)
            .returning(Email.id)
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()
        if recorded is None:
            log.warning("relay: email %d was taken over before its outcome (%s) was recorded", claim.id, status)
            return "lost"
        if status == "failed":
            session.add(
                StaffAlert(
                    resident_id=claim.resident_id,
                    kind="email_failed",
                    message=f"{claim.email.category} email to {masked} could not be delivered: {values['last_error']}",
                    created_at=now,
                )
            )
    log.info("relay: email %d to %s is %s", claim.id, masked, status)
    return status


def _outgoing(row: Email, from_email: str) -> OutgoingEmail:
    return OutgoingEmail(
        message_key=message_key(row),
        to_email=row.to_email,
        to_name=row.to_name,
        from_email=from_email,
        from_name=SENDER_NAME,
        subject=row.subject,
        text=row.text_body,
        html=row.html_body,
        category=row.kind,
        created_at=row.created_at,
    )
