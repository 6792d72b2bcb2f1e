"""The tables. Times are UTC instants; local dates and wall-clock times say so in their names.

Every outgoing effect is a row before it happens: a call attempt is written as
`dialling` before the carrier is asked, an email as `pending` before it is sent.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

MAX_CONTACTS = 4


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite hands back naive values otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store aware UTC instants only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {datetime: UTCDateTime()}


class Resident(Base):
    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(20))  # E.164
    phone_status: Mapped[str] = mapped_column(String(16), default="ok")  # ok | invalid
    call_time: Mapped[time] = mapped_column(Time)  # local wall-clock time
    timezone: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8), default="ja")
    channel: Mapped[str] = mapped_column(String(16), default="phone")
    municipality: Mapped[str | None] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The last local date whose check-in has been planned; lets the planner skip the rest.
    planned_through: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    contacts: Mapped[list[Contact]] = relationship(
        back_populates="resident", order_by="Contact.position", cascade="all, delete-orphan"
    )
    pause_holds: Mapped[list[PauseHold]] = relationship(back_populates="resident", cascade="all, delete-orphan")

    __table_args__ = (Index(None, "planned_through"),)


class Contact(Base):
    """A report recipient (報告先): at most four per resident."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    language: Mapped[str | None] = mapped_column(String(8))

    resident: Mapped[Resident] = relationship(back_populates="contacts")

    __table_args__ = (
        UniqueConstraint("resident_id", "position"),
        CheckConstraint(f"position BETWEEN 1 AND {MAX_CONTACTS}", name="position_range"),
    )


class PauseHold(Base):
    """No calls from `starts_on` to `ends_on`, both local dates, inclusive (hospital stay, travel)."""

    __tablename__ = "pause_holds"

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"), index=True)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]

    resident: Mapped[Resident] = relationship(back_populates="pause_holds")

    __table_args__ = (CheckConstraint("ends_on >= starts_on", name="ordered"),)


class CheckIn(Base):
    """One resident's check-in for one local day on one channel; it outlives any single call.

    status: scheduled (waiting for `next_attempt_at`) -> calling -> scheduled ... and finally
    answered | absent | paused | cancelled.
    """

    __tablename__ = "checkins"

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"))
    local_date: Mapped[date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(16), default="phone")
    slot: Mapped[str] = mapped_column(String(32), default="daily")  # daily, or extra-HHMMSS
    status: Mapped[str] = mapped_column(String(16))
    next_attempt_at: Mapped[datetime | None]
    window_closes_at: Mapped[datetime]
    unanswered_count: Mapped[int] = mapped_column(Integer, default=0)
    health: Mapped[str | None] = mapped_column(String(16))
    cancel_reason: Mapped[str | None] = mapped_column(String(64))
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]

    resident: Mapped[Resident] = relationship()
    attempts: Mapped[list[CallAttempt]] = relationship(back_populates="checkin", order_by="CallAttempt.number")

    __table_args__ = (
        UniqueConstraint("resident_id", "local_date", "channel", "slot"),
        Index(None, "status", "next_attempt_at"),
    )


class CallAttempt(Base):
    """One outbound call. Written as `dialling` before the carrier is asked to dial.

    status follows the carrier's call states (queued, ringing, in-progress, completed, busy,
    no-answer, failed, canceled) after our own `dialling`, `not_placed` and `invalid_number`.
    outcome is set once, when the attempt ends: answered | unanswered | not_placed.
    """

    __tablename__ = "call_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    checkin_id: Mapped[int] = mapped_column(ForeignKey("checkins.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    to_number: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(16))
    call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    answered_by: Mapped[str | None] = mapped_column(String(32))
    error_code: Mapped[str | None] = mapped_column(String(16))
    error_message: Mapped[str | None] = mapped_column(String(300))
    last_sequence: Mapped[int | None] = mapped_column(Integer)
    dialling_at: Mapped[datetime]
    dial_lease_until: Mapped[datetime | None]
    placed_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]  # when the carrier reported the call answered (in-progress)
    ended_at: Mapped[datetime | None]

    checkin: Mapped[CheckIn] = relationship(back_populates="attempts")
    answers: Mapped[list[Answer]] = relationship(back_populates="attempt", order_by="Answer.turn")

    __table_args__ = (UniqueConstraint("checkin_id", "number"), Index(None, "status", "dial_lease_until"))


class Answer(Base):
    """Everything heard during a call, one row per turn; `value` is what it was understood to mean."""

    __tablename__ = "answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("call_attempts.id", ondelete="CASCADE"))
    turn: Mapped[int] = mapped_column(Integer)
    question: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(16))  # keypad | speech | silence
    digits: Mapped[str | None] = mapped_column(String(32))
    transcript: Mapped[str | None] = mapped_column(Text)
    confidence: Mapped[float | None] = mapped_column(Float)
    value: Mapped[str | None] = mapped_column(String(16))
    final: Mapped[bool] = mapped_column(Boolean, default=False)  # settles the question
    heard_at: Mapped[datetime]

    attempt: Mapped[CallAttempt] = relationship(back_populates="answers")

    __table_args__ = (UniqueConstraint("attempt_id", "turn"),)


class Email(Base):
    """An outgoing email, queued in the transaction of the event that causes it.

    The event records what the email says (`facts`, in the recipient's `language`); the relay
    renders it when it first sends it and keeps the text as sent. Rendering is thus out of the
    webhooks, and a family's emails for one event are queued by a single INSERT ... SELECT.
    `purpose` is unique: one email per purpose and recipient, however often the event is replayed.
    status: pending -> sending -> sent | failed (pending again after a transient error).
    """

    __tablename__ = "emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # report | urgent | absent
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id", ondelete="SET NULL"))
    checkin_id: Mapped[int | None] = mapped_column(ForeignKey("checkins.id", ondelete="SET NULL"))
    to_email: Mapped[str] = mapped_column(String(254))
    to_name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8))
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)  # see notify.compose.render_email
    subject: Mapped[str | None] = mapped_column(String(300))  # rendered by the relay
    text_body: Mapped[str | None] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    provider_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]

    __table_args__ = (Index(None, "status", "next_attempt_at"),)


class StaffAlert(Base):
    """Something staff must look at: an invalid number, an email that could not be delivered."""

    __tablename__ = "staff_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]


class RateLimit(Base):
    """A rate shared by every process on this database: the next moment free to use it.

    `carrier-calls` paces calls at CARRIER_CPS across all scheduler processes.
    """

    __tablename__ = "rate_limits"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_free_at: Mapped[datetime]
