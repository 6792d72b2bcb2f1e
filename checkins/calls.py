"""What happens during a call: the carrier's webhooks, as service functions.

Idempotent by construction: an input is stored once per (attempt, turn) and the
reply is computed from what was stored; call status only moves forward and an
ended attempt stays ended, so duplicate and out-of-order callbacks change nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import Update, bindparam, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

import voice_scripts
from carriers.base import Carrier, CarrierError
from checkins.outcomes import Day, escalate, mark_answered, mark_unanswered
from core.conversation import HELP, MAX_REASKS, MAX_TURNS, Ask, Call, Finish, Heard, Position, Script, opening, respond
from settings import Settings
from store.db import insert_or_ignore, one_of, outside_transaction
from store.models import Answer, CallAttempt, CheckIn, Resident

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
    """The resident (or a machine) picked up: greet them and ask the first question.

    Read-only in the common case: the call's progress is the status callbacks' to record (they
    carry AnsweredBy too). It writes only a call id the dialler has not committed yet, or a machine.
    """
    attempt, day, language = _in_context(outside_transaction(session), attempt_id, event)
    session.commit()  # hands back the autocommit connection; nothing was written
    call = _conversation(day, language, now)
    machine = bool(event.answered_by and event.answered_by.startswith(("machine", "fax")))
    if attempt.call_sid is None or machine:
        locked = _locked(session, attempt_id, event)
        _apply(locked, _progress(locked, event, now))
        session.commit()
    if machine:
        return Reply(Finish(()), call.script, attempt_id)  # counted as unanswered when the call ends
    return Reply(opening(call), call.script, attempt_id)


def hear(session: Session, attempt_id: int, position: Position, heard: Heard, event: CallEvent,
         now: datetime) -> Reply:
    """One answer from the resident: record it, act on it, and say what comes next."""
    attempt, day, language = _in_context(session, attempt_id, event, lock=True)
    call = _conversation(day, language, now)
    if not (0 <= position.question < len(call.question_keys) and 0 <= position.reasks <= MAX_REASKS
            and 0 <= position.turn < MAX_TURNS):
        raise BadPosition(f"no such step: {position}")
    turn = respond(call, position, heard)
    question = call.question(position.question)
    recorded = session.execute(
        insert_or_ignore(session, _answers),
        dict(attempt_id=attempt_id, turn=position.turn, question=question.key, mode=heard.mode,
             digits=heard.digits or None, transcript=heard.speech or None, confidence=heard.confidence,
             value=turn.understood, final=turn.answer is not None, heard_at=now),
    ).first()
    if recorded is None:
        # This turn was heard before (a retried webhook): reply from what was stored, act on nothing.
        session.rollback()
        stored = _stored_input(session, attempt_id, position.turn)
        return Reply(respond(call, position, stored).next, call.script, attempt_id)

    changes = _progress(attempt, event, now)
    if turn.answer is not None:
        if question.key == HEALTH:
            changes["outcome"] = "answered"
            mark_answered(session, day, turn.answer.value, now)
        elif turn.answer.value == HELP:
            escalate(session, day, HELP, now)
    _save(session, attempt_id, changes)
    session.commit()
    return Reply(turn.next, call.script, attempt_id)


def record_status(session: Session, attempt_id: int, event: CallEvent, now: datetime, settings: Settings) -> None:
    """A call progress event. Status only moves forward; the first final status decides the outcome."""
    moved = _moving_forward(event.status)
    if moved is not None:
        params = {"attempt_key": attempt_id, "event_sid": event.call_sid, "event_answered_by": event.answered_by,
                  "event_now": now}
        done = outside_transaction(session).execute(moved, params).first()
        session.commit()
        if done is not None:
            return
    attempt = _locked(session, attempt_id, event)
    _apply(attempt, _progress(attempt, event, now))
    if event.status in TERMINAL:
        mark_unanswered(session, attempt.checkin, attempt, now, settings)  # nothing if the outcome is known
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
                _apply(attempt, _progress(attempt, CallEvent(attempt.call_sid or "", status), now))
                mark_unanswered(session, attempt.checkin, attempt, now, settings)
    return len(ids)


# The webhooks read and write plain columns, not ORM objects: they run several times per call,
# and on this path the ORM's loading and unit of work cost more than the database round trips.
_attempts = CallAttempt.__table__
_checkins = CheckIn.__table__
_residents = Resident.__table__
_answers = Answer.__table__


@dataclass(frozen=True)
class AttemptState:
    """The columns of an attempt that the call-progress rules read."""

    id: int
    call_sid: str | None
    status: str
    outcome: str | None
    answered_by: str | None
    ended_at: datetime | None


_STATE_COLUMNS = [_attempts.c[name] for name in AttemptState.__dataclass_fields__]
_IN_CONTEXT = (
    select(*_STATE_COLUMNS, _checkins.c.id, _checkins.c.local_date, _residents.c.id, _residents.c.name,
           _residents.c.timezone, _residents.c.language)
    .join_from(_attempts, _checkins, _attempts.c.checkin_id == _checkins.c.id)
    .join(_residents, _checkins.c.resident_id == _residents.c.id)
    .where(_attempts.c.id == bindparam("attempt_id"))
)
# Locked for the gather: the status callbacks and the gather of one call may arrive together.
_IN_CONTEXT_LOCKED = _IN_CONTEXT.with_for_update(of=_attempts)
_UPDATE_ATTEMPT = update(_attempts).where(_attempts.c.id == bindparam("attempt_key"))  # SET: the keys given
_STORED_INPUT = select(_answers.c.digits, _answers.c.transcript, _answers.c.confidence).where(
    _answers.c.attempt_id == bindparam("attempt_id"), _answers.c.turn == bindparam("turn")
)
_STATE_WIDTH = len(_STATE_COLUMNS)


def _in_context(session: Session, attempt_id: int, event: CallEvent,
                *, lock: bool = False) -> tuple[AttemptState, Day, str]:
    """The attempt with its day and resident, in one query; returns the resident's language too."""
    row = session.execute(_IN_CONTEXT_LOCKED if lock else _IN_CONTEXT, {"attempt_id": attempt_id}).first()
    if row is None:
        raise UnknownAttempt(attempt_id)
    attempt = AttemptState(*row[:_STATE_WIDTH])
    _check_call(attempt, event)
    checkin_id, local_date, resident_id, name, timezone, language = row[_STATE_WIDTH:]
    return attempt, Day(checkin_id, local_date, resident_id, name, timezone), language


def _locked(session: Session, attempt_id: int, event: CallEvent) -> CallAttempt:
    """The attempt as an ORM object, locked until the transaction ends: for the paths that are rare."""
    attempt = session.get(CallAttempt, attempt_id, with_for_update=True)
    if attempt is None:
        raise UnknownAttempt(attempt_id)
    _check_call(attempt, event)
    return attempt


def _check_call(attempt: AttemptState | CallAttempt, event: CallEvent) -> None:
    if attempt.call_sid is not None and event.call_sid != attempt.call_sid:
        raise WrongCall(attempt.id)


def _progress(attempt: AttemptState | CallAttempt, event: CallEvent, now: datetime) -> dict[str, object]:
    """The columns a carrier event changes on an attempt; none for a repeated or out-of-date event."""
    changes: dict[str, object] = {}
    if attempt.call_sid is None and event.call_sid:
        changes["call_sid"] = event.call_sid  # the callback arrived before the dialler committed the id
    if event.answered_by and event.answered_by != attempt.answered_by:
        changes["answered_by"] = event.answered_by
    if event.status in TERMINAL and attempt.ended_at is None:
        changes["ended_at"] = now
    if attempt.status in TERMINAL or (attempt.outcome == "not_placed" and attempt.status != "dialling"):
        return changes  # final states are sticky, whatever order the callbacks come in
    if event.status in TERMINAL or _RANK.get(event.status, -1) > _RANK.get(attempt.status, 0):
        if attempt.status == "dialling":
            changes.update(placed_at=now, dial_lease_until=None)
        if event.status == "in-progress":
            changes["answered_at"] = now
        changes["status"] = event.status
    return changes


@lru_cache(maxsize=32)  # one statement per call status; bounded, as the status comes from the request
def _moving_forward(event_status: str) -> Update | None:
    """The common status callback as one conditional UPDATE, without a transaction around it.

    It matches only a placed call (its id known, its status live) that the event moves forward
    and whose outcome is already settled or not yet due; it sets what `_progress` would.
    Anything else matches no row and takes the locked path: a repeated or late event, a call id
    to adopt, and a call that ended unanswered, whose day the retry rules must settle.
    """
    final = event_status in TERMINAL
    movable = [status for status in LIVE if final or _RANK[status] < _RANK.get(event_status, -1)]
    if not movable:
        return None
    outcome = _attempts.c.outcome
    values: dict[str, object] = {
        "status": event_status,
        "answered_by": func.coalesce(bindparam("event_answered_by"), _attempts.c.answered_by),
    }
    if final:
        values["ended_at"] = func.coalesce(_attempts.c.ended_at, bindparam("event_now"))
    if event_status == "in-progress":
        values["answered_at"] = bindparam("event_now")
    return (
        update(_attempts)
        .where(
            _attempts.c.id == bindparam("attempt_key"),
            _attempts.c.call_sid == bindparam("event_sid"),
            one_of(_attempts.c.status, movable),
            one_of(outcome, ("answered", "unanswered")) if final else or_(outcome.is_(None), outcome != "not_placed"),
        )
        .values(values)
        .returning(_attempts.c.id)
    )


def _save(session: Session, attempt_id: int, changes: dict[str, object]) -> None:
    if changes:
        session.execute(_UPDATE_ATTEMPT, {"attempt_key": attempt_id, **changes})


def _apply(attempt: CallAttempt, changes: dict[str, object]) -> None:
    for column, value in changes.items():
        setattr(attempt, column, value)


def _stored_input(session: Session, attempt_id: int, turn: int) -> Heard:
    digits, transcript, confidence = session.execute(_STORED_INPUT, {"attempt_id": attempt_id, "turn": turn}).one()
    return Heard(digits=digits or "", speech=transcript or "", confidence=confidence)


def _conversation(day: Day, language: str, now: datetime) -> Call:
    return Call(
        script=voice_scripts.load(language),
        resident_name=day.resident_name,
        question_keys=voice_scripts.DEFAULT_QUESTIONS,
        local_day=day.local_date,
        local_time=day.local(now).time(),
    )
