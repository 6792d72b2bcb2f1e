"""What happens during a call: the carrier's webhooks, as service functions.

Idempotent by construction: an input is stored once per (attempt, turn) and the
reply is computed from what was stored; call status only moves forward and an
ended attempt stays ended, so duplicate and out-of-order callbacks change nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, joinedload, sessionmaker

import voice_scripts
from carriers.base import Carrier, CarrierError
from checkins.outcomes import escalate, mark_answered, mark_unanswered
from core.conversation import HELP, MAX_REASKS, MAX_TURNS, Ask, Call, Finish, Heard, Position, Script, opening, respond
from settings import Settings
from store.db import insert_or_ignore
from store.models import Answer, CallAttempt, CheckIn

log = logging.getLogger(__name__)

HEALTH = "health"
TERMINAL = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
_RANK = {"dialling": 0, "queued": 1, "initiated": 1, "ringing": 2, "in-progress": 3}  # final states rank above all
LIVE = frozenset(_RANK) - {"dialling"}  # placed with the carrier, not yet ended
SILENT_CALL_AFTER = timedelta(minutes=30)  # no final callback by then: ask the carrier
GIVE_UP_CALL_AFTER = timedelta(hours=2)


class UnknownAttempt(LookupError):
    pass


class WrongCall(ValueError):
    """The webhook names a call that is not this attempt's."""


class BadPosition(ValueError):
    pass


@dataclass(frozen=True)
class CallEvent:
    """The parts of a carrier webhook the services use."""

    call_sid: str
    status: str
    answered_by: str | None = None


@dataclass(frozen=True)
class Reply:
    step: Ask | Finish
    script: Script
    attempt_id: int


def answer_call(session: Session, attempt_id: int, event: CallEvent, now: datetime) -> Reply:
    """The resident (or a machine) picked up: greet them and ask the first question."""
    attempt = _attempt(session, attempt_id, event)
    call = _call_context(attempt, now)
    _advance(attempt, event, now)
    if attempt.answered_by and attempt.answered_by.startswith(("machine", "fax")):
        session.commit()
        return Reply(Finish(()), call.script, attempt.id)  # counted as unanswered when the call ends
    attempt.answered_at = attempt.answered_at or now
    session.commit()
    return Reply(opening(call), call.script, attempt.id)


def hear(session: Session, attempt_id: int, position: Position, heard: Heard, event: CallEvent,
         now: datetime) -> Reply:
    """One answer from the resident: record it, act on it, and say what comes next."""
    attempt = _attempt(session, attempt_id, event)
    call = _call_context(attempt, now)
    if not (0 <= position.question < len(call.question_keys) and 0 <= position.reasks <= MAX_REASKS
            and 0 <= position.turn < MAX_TURNS):
        raise BadPosition(f"no such step: {position}")
    turn = respond(call, position, heard)
    question = call.question(position.question)
    recorded = session.execute(
        insert_or_ignore(session, Answer.__table__),
        dict(attempt_id=attempt.id, turn=position.turn, question=question.key, mode=heard.mode,
             digits=heard.digits or None, transcript=heard.speech or None, confidence=heard.confidence,
             value=turn.understood, final=turn.answer is not None, heard_at=now),
    ).first()
    if recorded is None:
        # This turn was heard before (a retried webhook): reply from what was stored, act on nothing.
        session.rollback()
        stored = _stored_input(session, attempt_id, position.turn)
        return Reply(respond(call, position, stored).next, call.script, attempt_id)

    if turn.answer is not None:
        checkin = attempt.checkin
        if question.key == HEALTH:
            mark_answered(session, checkin, attempt, turn.answer.value, now)
        elif turn.answer.value == HELP:
            escalate(session, checkin, HELP, now)
    session.commit()
    return Reply(turn.next, call.script, attempt.id)


def record_status(session: Session, attempt_id: int, event: CallEvent, now: datetime, settings: Settings) -> None:
    """A call progress event. Status only moves forward; the first final status decides the outcome."""
    attempt = _attempt(session, attempt_id, event, with_context=False)  # the day is loaded only if it must change
    _advance(attempt, event, now)
    if event.status in TERMINAL:
        _end(session, attempt, now, settings)
    session.commit()


def sweep_silent_calls(session_factory: sessionmaker[Session], carrier: Carrier, settings: Settings,
                       now: datetime) -> int:
    """Settle calls whose final callback never came, by asking the carrier; none stays open for ever."""
    with session_factory() as session:
        ids = session.scalars(
            select(CallAttempt.id).where(
                CallAttempt.status.in_(LIVE),
                CallAttempt.placed_at < now - SILENT_CALL_AFTER,
                CallAttempt.outcome.is_(None),
            )
        ).all()
    for attempt_id in ids:
        with session_factory.begin() as session:
            attempt = session.get(CallAttempt, attempt_id, with_for_update=True)
            if attempt.outcome is not None:
                continue
            try:
                status = carrier.call_status(attempt.call_sid) if attempt.call_sid else "failed"
            except CarrierError as error:
                log.warning("could not ask the carrier about attempt %s: %s", attempt_id, error)
                continue
            if status not in TERMINAL and attempt.placed_at < now - GIVE_UP_CALL_AFTER:
                status = "failed"
            if status in TERMINAL:
                _advance(attempt, CallEvent(attempt.call_sid or "", status), now)
                _end(session, attempt, now, settings)
    return len(ids)


_ATTEMPT = select(CallAttempt).where(CallAttempt.id == bindparam("attempt_id"))
# The conversation needs the day and the resident too: one query for all three.
_ATTEMPT_IN_CONTEXT = _ATTEMPT.options(joinedload(CallAttempt.checkin).joinedload(CheckIn.resident))


def _attempt(session: Session, attempt_id: int, event: CallEvent, *, with_context: bool = True) -> CallAttempt:
    query = _ATTEMPT_IN_CONTEXT if with_context else _ATTEMPT
    attempt = session.scalars(query, {"attempt_id": attempt_id}).first()
    if attempt is None:
        raise UnknownAttempt(attempt_id)
    if attempt.call_sid is None:
        attempt.call_sid = event.call_sid  # the callback arrived before the dialler committed the id
    elif event.call_sid != attempt.call_sid:
        raise WrongCall(attempt_id)
    return attempt


def _advance(attempt: CallAttempt, event: CallEvent, now: datetime) -> None:
    if event.answered_by:
        attempt.answered_by = event.answered_by
    if attempt.status in TERMINAL or (attempt.outcome == "not_placed" and attempt.status != "dialling"):
        return  # final states are sticky, whatever order the callbacks come in
    if event.status in TERMINAL or _RANK.get(event.status, -1) > _RANK.get(attempt.status, 0):
        if attempt.status == "dialling":
            attempt.placed_at = now
            attempt.dial_lease_until = None
        attempt.status = event.status


def _end(session: Session, attempt: CallAttempt, now: datetime, settings: Settings) -> None:
    if attempt.ended_at is None:
        attempt.ended_at = now
    if attempt.outcome is None:
        mark_unanswered(session, attempt.checkin, attempt, now, settings)


def _stored_input(session: Session, attempt_id: int, turn: int) -> Heard:
    row = session.scalars(select(Answer).where(Answer.attempt_id == attempt_id, Answer.turn == turn)).one()
    return Heard(digits=row.digits or "", speech=row.transcript or "", confidence=row.confidence)


def _call_context(attempt: CallAttempt, now: datetime) -> Call:
    checkin = attempt.checkin
    resident = checkin.resident
    return Call(
        script=voice_scripts.load(resident.language),
        resident_name=resident.name,
        question_keys=voice_scripts.DEFAULT_QUESTIONS,
        local_day=checkin.local_date,
        local_time=now.astimezone(ZoneInfo(resident.timezone)).time(),
    )
