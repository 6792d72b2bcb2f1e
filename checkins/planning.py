"""Planning: one check-in row per resident and local day, created before it is due.

The database is the schedule. Planning is idempotent (a unique row per resident,
day, channel and slot), so any number of schedulers may plan at once, and a
scheduler that was down plans the missed day as soon as it is back.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from checkins.outcomes import cancel
from core.schedule import calling_window, first_call_at, local_date
from settings import Settings
from store.models import CheckIn, PauseHold, Resident

PLAN_BATCH = 500


def plan_checkins(session: Session, settings: Settings, now: datetime) -> int:
    """Create today's check-in for every resident not yet planned for their local today.

    Returns how many check-ins were created. Commits in batches.
    """
    # No zone is more than 14 hours ahead of UTC, so every local "today" is at most this date.
    # Residents already planned for their own today still match late in the UTC day and are
    # skipped in Python; at national scale a stored next-planning instant would spare that scan.
    latest_local_today = (now + timedelta(hours=14)).date()
    created, after_id = 0, 0
    while True:
        residents = session.scalars(
            select(Resident)
            .where(
                Resident.id > after_id,
                Resident.active.is_(True),
                Resident.channel == "phone",
                Resident.phone_status == "ok",
                or_(Resident.planned_through.is_(None), Resident.planned_through < latest_local_today),
            )
            .order_by(Resident.id)
            .limit(PLAN_BATCH)
            .with_for_update(skip_locked=True, of=Resident)
            .options(selectinload(Resident.pause_holds))
        ).all()
        for resident in residents:
            today = local_date(now, resident.timezone)
            if resident.planned_through is None or resident.planned_through < today:
                created += _plan_day(session, resident, today, settings, now)
                resident.planned_through = today
        session.commit()
        if len(residents) < PLAN_BATCH:
            return created
        after_id = residents[-1].id


def _plan_day(session: Session, resident: Resident, day: date, settings: Settings, now: datetime) -> int:
    window = calling_window(day, resident.timezone, settings.calling_hours)
    if now >= window.closes and resident.created_at >= window.opens:
        return 0  # registered after today's calling hours: the first call is tomorrow
    checkin = CheckIn(
        resident_id=resident.id,
        local_date=day,
        channel="phone",
        slot="daily",
        status="scheduled",
        next_attempt_at=first_call_at(day, resident.call_time, resident.timezone, settings.calling_hours),
        window_closes_at=window.closes,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(checkin)
    except IntegrityError:
        return 0  # planned already by another scheduler
    if is_paused(resident.pause_holds, day):
        checkin.status = "paused"
        checkin.next_attempt_at = None
        checkin.closed_at = now
    elif now >= window.closes:
        cancel(session, checkin, "window_missed", now, alert="today's check-in could not be made within calling hours")
    return 1


def is_paused(holds: list[PauseHold], day: date) -> bool:
    return any(hold.starts_on <= day <= hold.ends_on for hold in holds)
