"""The outbox relay on both databases: queueing once per purpose, claiming, retrying, giving up."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from notify.compose import render_report, report_facts
from notify.delivery import (
    DeliveryReport,
    QueuedEmail,
    deliver_due_emails,
    queue_emails,
    queue_for_contacts,
    retry_delay,
)
from notify.mailer import OutgoingEmail, PermanentMailError, TransientMailError
from store.models import Email, Resident, StaffAlert
from tests.factories import add_calling_attempt, add_resident

NOW = datetime(2026, 12, 5, 0, 2, tzinfo=UTC)
FROM = "mimamori@example.org"
FACTS = report_facts("山田 花子", NOW.astimezone(ZoneInfo("Asia/Tokyo")), "good")
RENDERED = render_report("ja", "山田 花子", NOW.astimezone(ZoneInfo("Asia/Tokyo")), "good")


class RecordingMailer:
    """Records what was handed over; `fail_next` makes the next sends raise, in order."""

    def __init__(self) -> None:
        self.sent: list[OutgoingEmail] = []
        # Run inside send(), to simulate what other processes do meanwhile.
        self.during_send: list[Callable[[OutgoingEmail], None]] = []
        self._errors: list[Exception] = []
        self._lock = threading.Lock()

    def fail_next(self, *errors: Exception) -> None:
        self._errors.extend(errors)

    def send(self, email: OutgoingEmail) -> str:
        for action in self.during_send:
            action(email)
        with self._lock:
            if self._errors:
                raise self._errors.pop(0)
            self.sent.append(email)
            return f"provider-{len(self.sent)}"


@pytest.fixture
def resident_id(db: Session) -> int:
    resident = Resident(
        external_id="R-0001",
        name="山田 花子",
        phone="+81312345678",
        phone_status="ok",
        call_time=time(9, 0),
        timezone="Asia/Tokyo",
        language="ja",
        channel="phone",
        municipality="千代田区",
        active=True,
        created_at=NOW,
        updated_at=NOW,
    )
    db.add(resident)
    db.commit()
    return resident.id


@pytest.fixture
def mailer() -> RecordingMailer:
    return RecordingMailer()


def queue(session: Session, purpose: str, resident_id: int, to_email: str = "hanako@example.jp") -> bool:
    email = QueuedEmail(purpose, "report", to_email, "山田 一郎", "ja", FACTS, resident_id=resident_id)
    return queue_emails(session, [email], now=NOW) == 1


def deliver(
    session_factory: sessionmaker[Session], mailer: RecordingMailer, now: datetime = NOW, **options
) -> DeliveryReport:
    return deliver_due_emails(session_factory, mailer, now=now, owner="test", from_email=FROM, **options)


def email_rows(session_factory: sessionmaker[Session]) -> list[Email]:
    with session_factory() as session:
        return list(session.scalars(select(Email).order_by(Email.id)))


def alerts(session_factory: sessionmaker[Session]) -> list[StaffAlert]:
    with session_factory() as session:
        return list(session.scalars(select(StaffAlert)))


def test_queue_once_per_purpose(db: Session, resident_id: int) -> None:
    assert queue(db, "report:checkin-1:hanako@example.jp", resident_id) is True
    assert queue(db, "report:checkin-1:hanako@example.jp", resident_id) is False
    db.commit()

    [row] = db.scalars(select(Email)).all()
    assert (row.status, row.attempts, row.next_attempt_at, row.created_at) == ("pending", 0, NOW, NOW)
    assert (row.language, row.facts, row.subject) == ("ja", FACTS, None)  # rendered when first sent


def test_queue_for_contacts_writes_to_each_contact_in_their_language_once(
    db: Session, session_factory, mailer: RecordingMailer
) -> None:
    resident = add_resident(db, now=NOW, contacts=3)
    resident.contacts[1].language = "en"
    checkin = add_calling_attempt(db, resident, now=NOW, local_day=date(2026, 12, 5), closes=NOW).checkin
    db.commit()
    for _ in range(2):  # a replayed event queues nothing more
        queue_for_contacts(db, "report", FACTS, resident_id=resident.id, checkin_id=checkin.id, now=NOW)
        db.commit()

    rows = email_rows(session_factory)
    assert [(row.to_email, row.to_name, row.language) for row in rows] == [
        (contact.email, contact.name, contact.language or "ja") for contact in resident.contacts
    ]
    assert {(row.purpose, row.kind, row.checkin_id, row.status) for row in rows} == {
        (f"report:checkin-{checkin.id}:{c.email}", "report", checkin.id, "pending") for c in resident.contacts
    }
    assert deliver(session_factory, mailer) == DeliveryReport(sent=3)
    english = render_report("en", "山田 花子", NOW.astimezone(ZoneInfo("Asia/Tokyo")), "good")
    assert [email.subject for email in mailer.sent] == [RENDERED.subject, english.subject, RENDERED.subject]


def test_an_email_is_rendered_once_and_retried_with_the_same_text(
    db: Session, session_factory, mailer: RecordingMailer, resident_id: int
) -> None:
    queue(db, "report:checkin-1:hanako@example.jp", resident_id)
    db.commit()
    mailer.fail_next(TransientMailError("busy"))
    assert deliver(session_factory, mailer) == DeliveryReport(retried=1)

    [row] = email_rows(session_factory)
    assert (row.subject, row.text_body, row.html_body) == (RENDERED.subject, RENDERED.text, RENDERED.html)
    with session_factory.begin() as session:  # what was rendered is what is sent, whatever the facts say now
        session.execute(update(Email).values(facts={"resident": "別人"}))
    assert deliver(session_factory, mailer, NOW + timedelta(hours=1)) == DeliveryReport(sent=1)
    assert (mailer.sent[0].subject, mailer.sent[0].text) == (RENDERED.subject, RENDERED.text)


def test_an_email_that_cannot_be_rendered_fails_alone_and_alerts_staff(
    db: Session, session_factory, mailer: RecordingMailer, resident_id: int
) -> None:
    queue(db, "report:checkin-1:hanako@example.jp", resident_id)
    broken = QueuedEmail("report:checkin-2:hanako@example.jp", "report", "hanako@example.jp", "山田 一郎", "ja",
                         {"resident": "山田 花子"}, resident_id=resident_id)  # no time, no answer
    queue_emails(db, [broken], now=NOW)
    db.commit()

    assert deliver(session_factory, mailer) == DeliveryReport(sent=1, failed=1)
    assert [email.subject for email in mailer.sent] == [RENDERED.subject]
    failed = [row for row in email_rows(session_factory) if row.status == "failed"]
    assert [(row.purpose, row.subject) for row in failed] == [(broken.purpose, None)]
    [alert] = alerts(session_factory)
    assert alert.kind == "email_failed" and "could not be rendered" in alert.message
    assert "hanako@example.jp" not in alert.message
    assert deliver(session_factory, mailer, NOW + timedelta(hours=2)) == DeliveryReport()


def test_queue_leaves_the_commit_to_the_caller(db: Session, session_factory, resident_id: int) -> None:
    queue(db, "report:checkin-1:hanako@example.jp", resident_id)
    db.rollback()

    assert email_rows(session_factory) == []


def test_queue_racing_transactions_insert_one_row(db: Session, session_factory, resident_id: int) -> None:
    purpose = "report:checkin-1:hanako@example.jp"
    assert queue(db, purpose, resident_id) is True  # not committed yet: the other transaction must wait for it

    def other_transaction() -> bool:
        with session_factory() as session, session.begin():
            return queue(session, purpose, resident_id)

    with ThreadPoolExecutor(max_workers=1) as pool:
        other = pool.submit(other_transaction)
        db.commit()
        assert other.result(timeout=60) is False
    assert len(email_rows(session_factory)) == 1


def test_delivers_once_and_marks_sent(db: Session, session_factory, mailer: RecordingMailer, resident_id: int) -> None:
    queue(db, "report:checkin-1:hanako@example.jp", resident_id)
    queue(db, "report:checkin-1:taro@example.jp", resident_id, to_email="taro@example.jp")
    db.commit()

    assert deliver(session_factory, mailer) == DeliveryReport(sent=2)
    assert deliver(session_factory, mailer, NOW + timedelta(hours=1)) == DeliveryReport()

    assert [email.to_email for email in mailer.sent] == ["hanako@example.jp", "taro@example.jp"]
    first = mailer.sent[0]
    assert (first.from_email, first.category, first.created_at) == (FROM, "report", NOW)
    assert (first.subject, first.text, first.html) == (RENDERED.subject, RENDERED.text, RENDERED.html)
    assert first.message_key.startswith("report-") and "hanako" not in first.message_key
    rows = email_rows(session_factory)
    assert [(row.status, row.provider_id, row.sent_at, row.attempts) for row in rows] == [
        ("sent", "provider-1", NOW, 1),
        ("sent", "provider-2", NOW, 1),
    ]
    assert all(row.lease_until is None for row in rows)


def test_transient_failure_retries_after_backoff(
    db: Session, session_factory, mailer: RecordingMailer, resident_id: int
) -> None:
    queue(db, "report:checkin-1:hanako@example.jp", resident_id)
    db.commit()
    mailer.fail_next(TransientMailError("SendGrid 429: too many requests"))

    assert deliver(session_factory, mailer) == DeliveryReport(retried=1)
    [row] = email_rows(session_factory)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, NOW + timedelta(minutes=1))
    assert "429" in (row.last_error or "")

    assert deliver(session_factory, mailer, NOW + timedelta(seconds=59)) == DeliveryReport()
    assert deliver(session_factory, mailer, NOW + timedelta(minutes=1)) == DeliveryReport(sent=1)
    [row] = email_rows(session_factory)
    assert (row.status, row.attempts, row.sent_at) == ("sent", 2, NOW + timedelta(minutes=1))
    assert len(mailer.sent) == 1


def test_unexpected_error_is_retried_like_a_transient_one(
    db: Session, session_factory, mailer: RecordingMailer, resident_id: int
) -> None:
    queue(db, "report:checkin-1:hanako@example.jp", resident_id)
    db.commit()
    mailer.fail_next(RuntimeError("disk on fire"))

    assert deliver(session_factory, mailer) == DeliveryReport(retried=1)
    [row] = email_rows(session_factory)
    assert (row.status, row.last_error) == ("pending", "RuntimeError: disk on fire")


def test_backoff_doubles_up_to_an_hour() -> None:
    minutes = [retry_delay(attempt) / timedelta(minutes=1) for attempt in range(1, 10)]

    assert minutes == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_permanent_failure_fails_and_alerts_staff_with_a_masked_address(
    db: Session, session_factory, mailer: RecordingMailer, resident_id: int
) -> None:
    queue(db, "report:checkin-1:hanako@example.jp", resident_id)
    db.commit()
    mailer.fail_next(PermanentMailError("SendGrid 400: hanako@example.jp does not exist"))

    assert deliver(session_factory, mailer) == DeliveryReport(failed=1)
    assert deliver(session_factory, mailer, NOW + timedelta(days=1)) == DeliveryReport()

    [row] = email_rows(session_factory)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error is not None and "hanako@" not in row.last_error
    [alert] = alerts(session_factory)
    assert (alert.kind, alert.resident_id, alert.created_at) == ("email_failed", resident_id, NOW)
    assert "h*****@example.jp" in alert.message
    assert "hanako@" not in alert.message


def test_gives_up_after_eight_attempts(db: Session, session_factory, mailer: RecordingMailer, resident_id: int) -> None:
    queue(db, "report:checkin-1:hanako@example.jp", resident_id)
    db.execute(update(Email).values(attempts=7))
    db.commit()
    mailer.fail_next(TransientMailError("SendGrid 503: Service unavailable"))

    assert deliver(session_factory, mailer) == DeliveryReport(failed=1)

    [row] = email_rows(session_factory)
    assert (row.status, row.attempts) == ("failed", 8)
    assert (row.last_error or "").startswith("gave up after 8 attempts")
    assert [alert.kind for alert in alerts(session_factory)] == ["email_failed"]


def test_resends_when_the_lease_of_a_crashed_relay_ran_out(
    db: Session, session_factory, mailer: RecordingMailer, resident_id: int
) -> None:
    queue(db, "report:checkin-1:hanako@example.jp", resident_id)
    queue(db, "report:checkin-1:taro@example.jp", resident_id, to_email="taro@example.jp")
    db.flush()
    crashed, busy = db.scalars(select(Email).order_by(Email.id)).all()
    crashed.status, crashed.attempts, crashed.lease_until = "sending", 1, NOW - timedelta(seconds=1)
    busy.status, busy.attempts, busy.lease_until = "sending", 1, NOW + timedelta(minutes=1)
    db.commit()

    assert deliver(session_factory, mailer) == DeliveryReport(sent=1)

    assert [email.to_email for email in mailer.sent] == ["hanako@example.jp"]
    crashed, busy = email_rows(session_factory)
    assert (crashed.status, crashed.attempts) == ("sent", 2)
    assert (busy.status, busy.attempts) == ("sending", 1)


def test_a_relay_that_lost_its_lease_records_nothing(
    db: Session, session_factory, mailer: RecordingMailer, resident_id: int
) -> None:
    queue(db, "report:checkin-1:hanako@example.jp", resident_id)
    db.commit()

    def another_relay_takes_over(_: OutgoingEmail) -> None:
        with session_factory() as session, session.begin():
            session.execute(update(Email).values(attempts=Email.attempts + 1))

    mailer.during_send.append(another_relay_takes_over)

    assert deliver(session_factory, mailer) == DeliveryReport()
    [row] = email_rows(session_factory)
    assert (row.status, row.attempts, row.sent_at) == ("sending", 2, None)  # left to the relay that holds it now


def test_two_relays_send_each_email_exactly_once(
    db: Session, session_factory, mailer: RecordingMailer, resident_id: int
) -> None:
    for number in range(20):
        queue(db, f"report:checkin-{number}:hanako@example.jp", resident_id)
    db.commit()
    start = threading.Barrier(2)

    def relay() -> DeliveryReport:
        start.wait(timeout=30)
        return deliver(session_factory, mailer, batch=3)

    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = [future.result(timeout=120) for future in [pool.submit(relay), pool.submit(relay)]]

    assert sum(report.sent for report in reports) == 20
    assert Counter(Counter(email.message_key for email in mailer.sent).values()) == {1: 20}
    assert {row.status for row in email_rows(session_factory)} == {"sent"}
