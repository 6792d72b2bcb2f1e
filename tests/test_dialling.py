"""Dialling rules that need no network: pacing, claims, leases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from checkins.calls import sweep_silent_calls
from checkins.dialing import CallUrls, Dialler, Pacer
from checkins.planning import plan_checkins
from store.models import CallAttempt
from tests.factories import add_calling_attempt, add_resident

NINE_JST = datetime(2026, 12, 5, 0, 0, tzinfo=UTC)


def test_the_pacer_spaces_calls_at_the_cps_limit():
    slept: list[float] = []
    now = [100.0]
    pacer = Pacer(2, sleep=lambda s: (slept.append(s), now.__setitem__(0, now[0] + s)), clock=lambda: now[0])
    for _ in range(4):
        pacer.wait()
    assert slept == [0.5, 0.5, 0.5]


def test_the_pacer_does_not_wait_when_calls_are_already_slow():
    slept: list[float] = []
    now = [0.0]
    pacer = Pacer(1, sleep=slept.append, clock=lambda: now[0])
    pacer.wait()
    now[0] = 5.0
    pacer.wait()
    assert slept == []


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
