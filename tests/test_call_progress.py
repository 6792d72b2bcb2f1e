"""Status callbacks in every state: the one-statement path changes exactly what the locked path would."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from checkins import calls
from checkins.calls import CallEvent, record_status
from store.models import CallAttempt, CheckIn
from tests.factories import add_resident

NOW = datetime(2026, 12, 5, 0, 30, tzinfo=UTC)
EARLIER = NOW - timedelta(minutes=5)
STATUSES = ["dialling", "queued", "initiated", "ringing", "in-progress", "completed", "busy", "no-answer",
            "failed", "canceled", "not_placed", "invalid_number"]
OUTCOMES = [None, "answered", "unanswered", "not_placed"]
EVENTS = ["queued", "initiated", "ringing", "in-progress", "completed", "busy", "no-answer", "failed", "canceled",
          "answered-by-nobody"]
CASES = list(itertools.product(STATUSES, OUTCOMES, EVENTS, [None, "human"]))


def attempts_in_every_state(db, resident_id: int, copy: str) -> list[int]:
    """One attempt (on its own day) per case, all placed at EARLIER; returns their ids in CASES order."""
    checkins = db.execute(insert(CheckIn).returning(CheckIn.id, sort_by_parameter_order=True), [
        dict(resident_id=resident_id, local_date=date(2026, 12, 5), channel="phone", slot=f"{copy}-{n}",
             status="calling", window_closes_at=NOW + timedelta(hours=10), unanswered_count=0, created_at=EARLIER)
        for n in range(len(CASES))
    ]).scalars().all()
    return db.execute(insert(CallAttempt).returning(CallAttempt.id, sort_by_parameter_order=True), [
        dict(checkin_id=checkin_id, number=1, to_number="+81312340001", status=status, outcome=outcome,
             call_sid=f"CA{copy}{n:030d}", dialling_at=EARLIER, placed_at=EARLIER,
             dial_lease_until=EARLIER if status == "dialling" else None)
        for n, (checkin_id, (status, outcome, _event, _answered_by)) in enumerate(zip(checkins, CASES, strict=True))
    ]).scalars().all()


def state(db, attempt_id: int) -> tuple:
    attempt = db.get(CallAttempt, attempt_id)
    checkin = attempt.checkin
    return (attempt.status, attempt.outcome, attempt.answered_by, attempt.answered_at, attempt.ended_at,
            attempt.placed_at, attempt.dial_lease_until, checkin.status, checkin.unanswered_count,
            checkin.next_attempt_at)


def test_the_one_statement_path_agrees_with_the_locked_path(db, session_factory, settings, monkeypatch):
    resident = add_resident(db, now=EARLIER)
    fast_ids = attempts_in_every_state(db, resident.id, "f")
    locked_ids = attempts_in_every_state(db, resident.id, "l")
    db.commit()

    def send(ids: list[int], copy: str) -> None:
        for n, (attempt_id, (_status, _outcome, event, answered_by)) in enumerate(zip(ids, CASES, strict=True)):
            with session_factory() as session:
                record_status(session, attempt_id, CallEvent(f"CA{copy}{n:030d}", event, answered_by), NOW, settings)

    send(fast_ids, "f")
    monkeypatch.setattr(calls, "_moving_forward", lambda status: None)  # every callback takes the locked path
    send(locked_ids, "l")

    db.expire_all()
    for case, fast_id, locked_id in zip(CASES, fast_ids, locked_ids, strict=True):
        assert state(db, fast_id) == state(db, locked_id), case


@pytest.fixture
def locked_reads(monkeypatch) -> list[int]:
    """The attempts that record_status read under a row lock (its general path)."""
    seen: list[int] = []
    original = calls._locked

    def spy(session, attempt_id, event):
        seen.append(attempt_id)
        return original(session, attempt_id, event)

    monkeypatch.setattr(calls, "_locked", spy)
    return seen


@pytest.mark.parametrize(("status", "outcome", "event", "one_statement"), [
    ("queued", "answered", "completed", True),  # the final callback of an answered call
    ("ringing", None, "in-progress", True),  # answered; nothing settled yet
    ("queued", None, "completed", False),  # ended unanswered: the day's retry rules must run
    ("completed", "answered", "completed", False),  # a repeat
    ("in-progress", None, "ringing", False),  # late
    ("dialling", None, "ringing", False),  # the dialler's lease must be cleared as well
])
def test_which_callbacks_take_the_one_statement_path(db, session_factory, settings, locked_reads,
                                                      status, outcome, event, one_statement):
    resident = add_resident(db, now=EARLIER)
    n = CASES.index((status, outcome, event, None))
    attempt_id = attempts_in_every_state(db, resident.id, "c")[n]
    db.commit()
    with session_factory() as session:
        record_status(session, attempt_id, CallEvent(f"CAc{n:030d}", event), NOW, settings)

    assert (locked_reads == []) is one_statement
    answered_at = db.scalar(select(CallAttempt.answered_at).where(CallAttempt.id == attempt_id))
    assert answered_at == (NOW if (status, event) == ("ringing", "in-progress") else None)
