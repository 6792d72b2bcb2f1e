"""Dialling: claim due check-ins, record each attempt, then ask the carrier to call.

Never two dials for one attempt:
- a due check-in is claimed with a row lock (SKIP LOCKED) and a lease, so two
  schedulers never take the same one;
- the attempt is committed as `dialling` before the carrier is asked, so a crash
  leaves a trace;
- an attempt left `dialling` (a crash between the dial and the commit of its
  call id) is reconciled against the carrier's list of calls before anything is
  dialled again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from carriers.base import Carrier, DialRequest, PermanentCarrierError, TransientCarrierError
from checkins.outcomes import cancel, mark_absent
from checkins.planning import is_paused
from core.privacy import mask_phone
from settings import Settings
from store.db import dialect_insert
from store.models import CallAttempt, CheckIn, RateLimit, Resident, StaffAlert

log = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=2)
DIAL_LEASE = timedelta(minutes=2)  # how long a `dialling` attempt is trusted to its dialler
NOT_PLACED_RETRY = timedelta(minutes=1)  # the carrier was busy: try again soon, it costs no attempt


@dataclass
class DialReport:
    dialled: int = 0
    not_placed: int = 0
    invalid: int = 0
    closed: int = 0
    reconciled: int = 0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Pacer:
    """Spaces calls 1/`per_second` apart across every scheduler process on the database: the
    carrier's calls-per-second limit is the account's, not a process's.

    Each call reserves the next free moment of the shared rate (a compare-and-set on one row,
    so no two processes take the same moment), then waits for it. Like the leases, this
    assumes the machines' clocks are in step.
    """

    def __init__(self, per_second: float, session_factory: sessionmaker[Session], *, name: str = "carrier-calls",
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], datetime] = _utcnow):
        self.interval = timedelta(seconds=1.0 / per_second)
        self.session_factory = session_factory
        self.name = name
        self.sleep = sleep
        self.clock = clock

    def wait(self) -> None:
        moment = self._reserve()
        delay = (moment - self.clock()).total_seconds()
        if delay > 0:
            self.sleep(delay)

    def _reserve(self) -> datetime:
        while True:
            now = self.clock()
            with self.session_factory.begin() as session:
                seen = session.scalar(select(RateLimit.next_free_at).where(RateLimit.name == self.name))
                moment = now if seen is None else max(now, seen)
                if seen is None:  # the first use on this database
                    taken = session.execute(
                        dialect_insert(session.get_bind().dialect.name, RateLimit.__table__)
                        .values(name=self.name, next_free_at=moment + self.interval)
                        .on_conflict_do_nothing()
                    ).rowcount
                else:
                    taken = session.execute(
                        update(RateLimit)
                        .where(RateLimit.name == self.name, RateLimit.next_free_at == seen)
                        .values(next_free_at=moment + self.interval)
                    ).rowcount
            if taken:
                return moment  # otherwise another process took that moment first: look again


@dataclass(frozen=True)
class CallUrls:
    """The webhook URLs of one attempt; only its id goes into them, nothing personal."""

    base: str

    def answer(self, attempt_id: int) -> str:
        return f"{self.base}/ivr/calls/{attempt_id}/answer"

    def gather(self, attempt_id: int, question: int, reasks: int, turn: int) -> str:
        return f"{self.base}/ivr/calls/{attempt_id}/gather?q={question}&r={reasks}&t={turn}"

    def status(self, attempt_id: int) -> str:
        return f"{self.base}/ivr/calls/{attempt_id}/status"


@dataclass
class Dialler:
    session_factory: sessionmaker[Session]
    carrier: Carrier
    settings: Settings
    owner: str
    pacer: Pacer | None = None

    def __post_init__(self) -> None:
        self.pacer = self.pacer or Pacer(self.settings.carrier_cps, self.session_factory)
        self.urls = CallUrls(self.settings.public_base_url)

    def place_due_calls(self, now: datetime, limit: int = 100) -> DialReport:
        report = DialReport()
        started = time.monotonic()
        for checkin_id in self._claim_due(now, limit):
            self.pacer.wait()
            # Pacing makes a pass last: each attempt's times (and its dial lease) start when it is dialled.
            self._dial_one(checkin_id, now + timedelta(seconds=time.monotonic() - started), report)
        return report

    def call_now(self, checkin_id: int, now: datetime) -> DialReport:
        """Dial one check-in at once (an extra call asked for by staff), with the same records."""
        report = DialReport()
        self.pacer.wait()
        self._dial_one(checkin_id, now, report)
        return report

    def _claim_due(self, now: datetime, limit: int) -> list[int]:
        with self.session_factory.begin() as session:
            due = (
                select(CheckIn.id)
                .where(
                    CheckIn.status == "scheduled",
                    CheckIn.next_attempt_at <= now,
                    or_(CheckIn.lease_until.is_(None), CheckIn.lease_until < now),
                )
                .order_by(CheckIn.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            ids = list(session.scalars(due))
            if not ids:
                return []
            # The conditional update is the claim on SQLite, which has no row locks.
            claimed = session.scalars(
                update(CheckIn)
                .where(
                    CheckIn.id.in_(ids),
                    CheckIn.status == "scheduled",
                    or_(CheckIn.lease_until.is_(None), CheckIn.lease_until < now),
                )
                .values(lease_owner=self.owner, lease_until=now + CLAIM_LEASE + self.pacer.interval * len(ids))
                .returning(CheckIn.id)
            ).all()
            return sorted(claimed)

    def _dial_one(self, checkin_id: int, now: datetime, report: DialReport) -> None:
        with self.session_factory.begin() as session:
            attempt = self._begin_attempt(session, checkin_id, now, report)
            if attempt is None:
                return
            attempt_id, to_number = attempt.id, attempt.to_number
        request = DialRequest(
            to=to_number,
            answer_url=self.urls.answer(attempt_id),
            status_url=self.urls.status(attempt_id),
        )
        try:
            placed = self.carrier.dial(request)
        except PermanentCarrierError as error:
            self._refused(attempt_id, error, now, report)
        except TransientCarrierError as error:
            self._not_placed(attempt_id, str(error), now, report)
        else:
            with self.session_factory.begin() as session:
                _adopt(session, attempt_id, placed.sid, placed.status, now)
            report.dialled += 1
            log.info("dialled attempt %s to %s", attempt_id, mask_phone(to_number))

    def _begin_attempt(self, session: Session, checkin_id: int, now: datetime, report: DialReport) -> CallAttempt | None:
        checkin = session.get(CheckIn, checkin_id, with_for_update=True)
        if checkin is None or checkin.status != "scheduled":
            return None
        resident: Resident = checkin.resident
        checkin.lease_owner = checkin.lease_until = None
        if now >= checkin.window_closes_at:
            _close_unreached(session, checkin, now)
            report.closed += 1
            return None
        if is_paused(resident.pause_holds, checkin.local_date):
            checkin.status, checkin.next_attempt_at, checkin.closed_at = "paused", None, now
            report.closed += 1
            return None
        if resident.phone_status != "ok" or not resident.active:
            cancel(session, checkin, "not_callable", now)
            report.closed += 1
            return None
        attempt = CallAttempt(
            checkin_id=checkin.id,
            number=len(checkin.attempts) + 1,
            to_number=resident.phone,
            status="dialling",
            dialling_at=now,
            dial_lease_until=now + DIAL_LEASE,
        )
        session.add(attempt)
        checkin.status = "calling"
        session.flush()
        return attempt

    def _refused(self, attempt_id: int, error: PermanentCarrierError, now: datetime, report: DialReport) -> None:
        with self.session_factory.begin() as session:
            attempt = session.get(CallAttempt, attempt_id)
            checkin = attempt.checkin
            attempt.error_code, attempt.error_message = error.code, error.message[:300]
            attempt.outcome = "not_placed"
            attempt.ended_at = now
            if error.invalid_number:
                attempt.status = "invalid_number"
                checkin.resident.phone_status = "invalid"
                cancel(session, checkin, "invalid_number", now,
                       alert=f"the carrier rejected the phone number {mask_phone(attempt.to_number)} "
                             f"(error {error.code}); please check it")
                report.invalid += 1
            else:
                attempt.status = "failed"
                session.add(StaffAlert(resident_id=checkin.resident_id, kind="carrier_error",
                                       message=f"the carrier refused a call (error {error.code})", created_at=now))
                _reschedule(checkin, now + NOT_PLACED_RETRY, now)
                report.not_placed += 1
        log.warning("carrier refused attempt %s: error %s", attempt_id, error.code)

    def _not_placed(self, attempt_id: int, reason: str, now: datetime, report: DialReport) -> None:
        with self.session_factory.begin() as session:
            attempt = session.get(CallAttempt, attempt_id)
            attempt.status, attempt.outcome, attempt.ended_at = "not_placed", "not_placed", now
            attempt.error_message = reason[:300]
            _reschedule(attempt.checkin, now + NOT_PLACED_RETRY, now)
        report.not_placed += 1
        log.warning("attempt %s not placed: %s", attempt_id, reason)

    def reconcile_stale_dials(self, now: datetime) -> int:
        """Settle attempts left `dialling` by a crash: adopt the call if the carrier made it, else redial later."""
        with self.session_factory() as session:
            stale = session.scalars(
                select(CallAttempt.id).where(CallAttempt.status == "dialling", CallAttempt.dial_lease_until < now)
            ).all()
        settled = 0
        for attempt_id in stale:
            with self.session_factory.begin() as session:
                attempt = session.get(CallAttempt, attempt_id, with_for_update=True)
                if attempt is None or attempt.status != "dialling" or attempt.dial_lease_until >= now:
                    continue
                calls = self.carrier.find_calls(attempt.to_number, attempt.dialling_at - timedelta(seconds=5))
                known = set(session.scalars(
                    select(CallAttempt.call_sid).where(CallAttempt.call_sid.in_([c.sid for c in calls]))
                ))
                found = [c for c in calls if c.sid not in known]  # a call already tied to another attempt is not ours
                if found:
                    _adopt(session, attempt_id, found[0].sid, found[0].status, now)
                else:
                    attempt.status, attempt.outcome, attempt.ended_at = "not_placed", "not_placed", now
                    _reschedule(attempt.checkin, now, now)
                settled += 1
        return settled


def _adopt(session: Session, attempt_id: int, sid: str, status: str, now: datetime) -> None:
    """Link the carrier's call to the attempt.

    One statement that reads nothing beforehand: the call's first webhooks may already have
    recorded its id and moved it on (even ended it), and that must not be overwritten.
    """
    dialling = CallAttempt.status == "dialling"
    session.execute(
        update(CallAttempt)
        .where(CallAttempt.id == attempt_id)
        .values(call_sid=func.coalesce(CallAttempt.call_sid, sid),
                status=case((dialling, status or "queued"), else_=CallAttempt.status),
                placed_at=case((dialling, now), else_=CallAttempt.placed_at),
                dial_lease_until=None)
        .execution_options(synchronize_session=False)
    )


def _reschedule(checkin: CheckIn, at: datetime, now: datetime) -> None:
    if checkin.status == "calling":
        checkin.status = "scheduled"
        checkin.next_attempt_at = at


def _close_unreached(session: Session, checkin: CheckIn, now: datetime) -> None:
    """Calling hours are over: absent if the resident was called and did not answer, else cancelled."""
    if checkin.unanswered_count:
        mark_absent(session, checkin, now)
    else:
        cancel(session, checkin, "window_missed", now, alert="today's check-in could not be made within calling hours")


def close_expired(session_factory: sessionmaker[Session], now: datetime) -> int:
    """Close check-ins still waiting when their calling window has closed."""
    with session_factory.begin() as session:
        expired = session.scalars(
            select(CheckIn)
            .where(CheckIn.status == "scheduled", CheckIn.window_closes_at <= now)
            .with_for_update(skip_locked=True)
        ).all()
        for checkin in expired:
            _close_unreached(session, checkin, now)
        return len(expired)
