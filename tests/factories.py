"""Rows for tests, with sensible defaults."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from sqlalchemy.orm import Session

from notify.mailer import OutgoingEmail
from store.models import CallAttempt, CheckIn, Contact, Resident


def add_resident(session: Session, *, now: datetime, external_id: str = "r-1", name: str = "山田 花子",
                 phone: str = "+81312340001", call_time: time = time(9, 0), contacts: int = 2,
                 language: str = "ja", timezone_name: str = "Asia/Tokyo") -> Resident:
    resident = Resident(
        external_id=external_id, name=name, phone=phone, call_time=call_time, timezone=timezone_name,
        language=language, channel="phone", phone_status="ok", active=True, created_at=now, updated_at=now,
        contacts=[Contact(position=n, name=f"家族 {n}", email=f"family{n}.{external_id}@example.org")
                  for n in range(1, contacts + 1)],
    )
    session.add(resident)
    session.flush()
    return resident


def add_calling_attempt(session: Session, resident: Resident, *, now: datetime, local_day: date,
                        closes: datetime, sid: str | None = "CA" + "a" * 32) -> CallAttempt:
    """A check-in with one attempt placed with the carrier, as the dialler leaves it."""
    checkin = CheckIn(resident_id=resident.id, local_date=local_day, channel="phone", slot="daily",
                      status="calling", window_closes_at=closes, created_at=now)
    session.add(checkin)
    session.flush()
    attempt = CallAttempt(checkin_id=checkin.id, number=1, to_number=resident.phone, status="queued",
                          call_sid=sid, dialling_at=now, placed_at=now)
    session.add(attempt)
    session.flush()
    return attempt


def sample_email(**overrides) -> OutgoingEmail:
    values = dict(
        message_key="report-0123abcd",
        to_email="hanako@example.jp",
        to_name="山田 一郎",
        from_email="mimamori@example.org",
        from_name="みまもりでんわ",
        subject="【みまもりでんわ】山田 花子さまの体調確認結果（12月5日）",
        text="山田 花子さまの体調確認の結果をお知らせします。\nお答え　：元気\n",
        html="<p>山田 花子さまの体調確認の結果をお知らせします。</p>\n",
        category="report",
        created_at=datetime(2026, 12, 5, 0, 2, tzinfo=UTC),
    )
    return OutgoingEmail(**{**values, **overrides})
