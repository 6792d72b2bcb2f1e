"""Dialling rules that need no network: pacing, claims, leases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from freezegun import freeze_time
from sqlalchemy import event, select

from carriers.base import PlacedCall
from checkins.calls import CallEvent, record_status, sweep_silent_calls
from checkins.dialing import CallUrls, Dialler, Pacer
from checkins.planning import plan_checkins
from store.models import CallAttempt
from tests.factories import add_calling_attempt, add_resident

NINE_JST = datetime(2026, 12, 5, 0, 0, tzinfo=UTC)


class FakeTime:
    """A wall clock that moves only when someone sleeps."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.slept: list[float] = []

    def clock(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


def test_the_pacer_spaces_calls_at_the_cps_limit(session_factory):
    fake = FakeTime(NINE_JST)
    pacer = Pacer(2, session_factory, sleep=fake.sleep, clock=fake.clock)
    for _ in range(4):
        pacer.wait()
    assert fake.slept == [0.5, 0.5, 0.5]


def test_the_pacer_does_not_wait_when_calls_are_already_slow(session_factory):
    fake = FakeTime(NINE_JST)
    pacer = Pacer(1, session_factory, sleep=fake.sleep, clock=fake.clock)
    pacer.wait()
    fake.now += timedelta(seconds=5)
    pacer.wait()
    assert fake.slept == []


def test_two_schedulers_share_the_accounts_cps_limit(session_factory):
    """The carrier's limit is per account: two processes together place at most CARRIER_CPS calls a second."""
    fake = FakeTime(NINE_JST)  # one clock: the machines' clocks are in step
    first, second = (Pacer(2, session_factory, sleep=fake.sleep, clock=fake.clock) for _ in range(2))
    moments = []
    for pacer in (first, second, first, second, second):
        pacer.wait()
        moments.append(fake.now)
    assert [(moment - NINE_JST).total_seconds() for moment in moments] == [0, 0.5, 1.0, 1.5, 2.0]


def test_a_moment_taken_by_another_scheduler_meanwhile_is_not_taken_twice(session_factory, monkeypatch):
    fake = FakeTime(NINE_JST)
    pacer, rival = (Pacer(1, session_factory, sleep=fake.sleep, clock=fake.clock) for _ in range(2))
    pacer.wait()  # 09:00:00 is taken; 09:00:01 is next
    original_begin = session_factory.begin
    raced = []

    def begin_after_the_rival():
        if not raced:  # the rival reserves between our read and our write
            raced.append(True)
            rival_moment = rival._reserve()
            assert rival_moment == NINE_JST + timedelta(seconds=1)
        return original_begin()

    monkeypatch.setattr(session_factory, "begin", begin_after_the_rival)
    assert pacer._reserve() == NINE_JST + timedelta(seconds=2)


def test_webhook_urls_carry_only_ids_and_the_step():
    urls = CallUrls("https://m.example")
    assert urls.answer(7) == "https://m.example/ivr/calls/7/answer"
    assert urls.gather(7, 0, 1, 2) == "https://m.example/ivr/calls/7/gather?q=0&r=1&t=2"


class Unreachable:
    def dial(self, request):  # pragma: no cover - a claim must not dial
        raise AssertionError("no dialling in a claim")


def test_a_claimed_check_in_is_not_claimed_again_until_its_lease_expires(db, session_factory, settings):
    for n in range(3):
        add_resident(db, now=NINE_JST, external_id=f"r{n}", phone=f"+8131234000{n}")
    db.commit()
    assert plan_checkins(db, settings, NINE_JST) == 3
    first = Dialler(session_factory, Unreachable(), settings, "one")
    second = Dialler(session_factory, Unreachable(), settings, "two")
    assert len(first._claim_due(NINE_JST, 2)) == 2
    assert len(second._claim_due(NINE_JST, 10)) == 1
    assert second._claim_due(NINE_JST, 10) == []
    assert len(second._claim_due(NINE_JST + timedelta(minutes=5), 10)) == 3


def test_planning_twice_plans_once(db, settings):
    add_resident(db, now=NINE_JST)
    db.commit()
    assert plan_checkins(db, settings, NINE_JST) == 1
    assert plan_checkins(db, settings, NINE_JST + timedelta(minutes=1)) == 0
    assert plan_checkins(db, settings, NINE_JST + timedelta(days=1)) == 1


class CarrierThatKnows:
    """The carrier's answer when asked about a call whose final callback never came."""

    def __init__(self, status: str):
        self.status = status
        self.asked: list[str] = []

    def call_status(self, sid: str) -> str:
        self.asked.append(sid)
        return self.status


def silent_call(db, placed_minutes_ago: int):
    resident = add_resident(db, now=NINE_JST)
    placed = NINE_JST - timedelta(minutes=placed_minutes_ago)
    attempt = add_calling_attempt(db, resident, now=placed, local_day=date(2026, 12, 5),
                                  closes=NINE_JST + timedelta(hours=11))
    attempt.status = "ringing"
    db.commit()
    return attempt.id


def test_a_call_whose_final_callback_never_came_is_settled_by_asking_the_carrier(db, session_factory, settings):
    attempt_id = silent_call(db, placed_minutes_ago=31)
    carrier = CarrierThatKnows("no-answer")
    assert sweep_silent_calls(session_factory, carrier, settings, NINE_JST) == 1
    db.expire_all()
    attempt = db.get(CallAttempt, attempt_id)
    assert carrier.asked == [attempt.call_sid]
    assert (attempt.status, attempt.outcome) == ("no-answer", "unanswered")
    assert attempt.checkin.status == "scheduled" and attempt.checkin.unanswered_count == 1


def test_a_recent_call_is_left_alone_and_an_endless_one_is_ended(db, session_factory, settings):
    recent = silent_call(db, placed_minutes_ago=5)
    carrier = CarrierThatKnows("in-progress")
    assert sweep_silent_calls(session_factory, carrier, settings, NINE_JST) == 0
    assert sweep_silent_calls(session_factory, carrier, settings, NINE_JST + timedelta(hours=3)) == 1
    db.expire_all()
    assert db.get(CallAttempt, recent).outcome == "unanswered"


class RecordingCarrier:
    def __init__(self) -> None:
        self.dialled: list[str] = []

    def dial(self, request):
        self.dialled.append(request.to)
        return PlacedCall(f"CA{len(self.dialled):032d}", "queued")


def test_each_attempt_is_timed_and_leased_from_when_it_is_dialled(db, session_factory, settings):
    """Pacing stretches a pass: the third call of a pass at 1 call a second is dialled 2 s after the first,
    and its dial lease must run from then, or another scheduler could reconcile it before the dial."""
    for n in range(3):
        add_resident(db, now=NINE_JST, external_id=f"r{n}", phone=f"+8131234000{n}")
    db.commit()
    plan_checkins(db, settings, NINE_JST)
    with freeze_time(NINE_JST) as frozen:
        pacer = Pacer(1, session_factory, sleep=lambda seconds: frozen.tick(seconds))
        carrier = RecordingCarrier()
        report = Dialler(session_factory, carrier, settings, "one", pacer).place_due_calls(NINE_JST)

    assert report.dialled == 3
    attempts = db.scalars(select(CallAttempt).order_by(CallAttempt.dialling_at)).all()
    assert [(a.dialling_at - NINE_JST).total_seconds() for a in attempts] == [0, 1, 2]
    assert {a.placed_at - a.dialling_at for a in attempts} == {timedelta(0)}


def test_recording_the_call_keeps_what_its_webhooks_recorded_first(db, engine, session_factory, settings):
    """The carrier may run the call before the dialler commits its id: a call that has already ended
    unanswered must stay ended when the dialler records it."""
    add_resident(db, now=NINE_JST, phone="+81312340006")
    db.commit()
    plan_checkins(db, settings, NINE_JST)
    carrier = RecordingCarrier()
    sid = "CA" + "0" * 31 + "1"  # the carrier's id for its first call
    early = []

    def final_callback_first(connection, cursor, statement, parameters, context, executemany):
        # Just as the dialler writes the call's id, the call's final status callback lands.
        if carrier.dialled and not early and statement.startswith("UPDATE call_attempts"):
            early.append(True)
            with session_factory() as lookup:
                attempt_id = lookup.scalar(select(CallAttempt.id))
            with session_factory() as webhook:
                record_status(webhook, attempt_id, CallEvent(sid, "no-answer"), NINE_JST, settings)

    event.listen(engine, "before_cursor_execute", final_callback_first)
    try:
        Dialler(session_factory, carrier, settings, "one", Pacer(1000, session_factory)).place_due_calls(NINE_JST)
    finally:
        event.remove(engine, "before_cursor_execute", final_callback_first)

    assert early
    db.expire_all()
    attempt = db.scalars(select(CallAttempt)).one()
    assert (attempt.call_sid, attempt.status, attempt.outcome) == (sid, "no-answer", "unanswered")
    assert attempt.checkin.status == "scheduled" and attempt.checkin.unanswered_count == 1
