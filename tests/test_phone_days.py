"""Full days, driven through the simulated carrier network and the real webhooks over HTTP.

Each resident's behaviour is the sim's dial plan: the last digit of the number
(1/2/3 press that key, 4 speaks, 6 never answers, 7 busy then answers, 8 machine, 9 help).
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select

from carriers.base import DialRequest
from carriers.sim import Persona, Press
from checkins.dialing import Dialler, DialReport, Pacer
from checkins.planning import plan_checkins
from scheduler import jobs
from store.models import CallAttempt, CheckIn, PauseHold, Resident, StaffAlert
from tests.phone_system import PhoneSystem

NINE_JST = datetime(2026, 12, 5, 0, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def clock():
    with freeze_time(NINE_JST) as frozen:
        yield frozen


@pytest.fixture
def phone(settings, clock):
    system = PhoneSystem(settings)
    yield system
    system.close()


def run_at(phone: PhoneSystem, clock, at: datetime) -> str:
    clock.move_to(at)
    return phone.tick(at)


def test_a_good_day_keypad_1(phone, clock):
    phone.add_resident("r1", "+81312340001", now=NINE_JST)
    summary = run_at(phone, clock, NINE_JST)
    assert "planned=1 dialled=1" in summary and "emails_sent=2" in summary
    [call] = phone.sim.calls
    assert call.pressed == ["1"] and call.status == "completed" and not call.errors
    assert any("山田 花子さん" in line for line in call.said)
    checkin = phone.checkin("r1")
    assert (checkin.status, checkin.health) == ("answered", "good")
    [report] = phone.emails_to("family1.r1@example.org")
    assert "体調確認" in report["Subject"] and "元気" in report.get_body(("plain",)).get_content()


def test_a_spoken_answer(phone, clock):
    phone.add_resident("r4", "+81312340004", now=NINE_JST)
    run_at(phone, clock, NINE_JST)
    assert phone.checkin("r4").health == "good"
    assert phone.sim.calls[0].spoken == ["げんきです"]


def test_not_well_sends_reports_and_urgent_mail(phone, clock):
    phone.add_resident("r3", "+81312340003", now=NINE_JST)
    run_at(phone, clock, NINE_JST)
    assert phone.checkin("r3").health == "unwell"
    subjects = sorted(str(m["Subject"]) for m in phone.emails_to("family1.r3@example.org"))
    assert len(subjects) == 2 and any("至急" in s for s in subjects)


def test_help_key(phone, clock):
    phone.add_resident("r9", "+81312340009", now=NINE_JST)
    run_at(phone, clock, NINE_JST)
    assert phone.checkin("r9").health == "help"
    assert any("至急" in str(m["Subject"]) for m in phone.emails())


def test_no_answer_twice_then_absent(phone, clock):
    phone.add_resident("r6", "+81312340006", now=NINE_JST)
    run_at(phone, clock, NINE_JST)
    assert phone.checkin("r6").status == "scheduled"
    assert "dialled=0" in run_at(phone, clock, NINE_JST + 29 * MINUTE)  # not before the retry delay
    run_at(phone, clock, NINE_JST + 30 * MINUTE)
    checkin = phone.checkin("r6")
    assert (checkin.status, checkin.unanswered_count) == ("absent", 2)
    assert len(phone.calls_to("+81312340006")) == 2
    absent = phone.emails_to("family2.r6@example.org")
    assert len(absent) == 1 and "9:00、9:30" in absent[0].get_body(("plain",)).get_content()
    assert "dialled=0" in run_at(phone, clock, NINE_JST + 90 * MINUTE)  # nothing more today


def test_busy_then_answers_on_the_retry(phone, clock):
    phone.add_resident("r7", "+81312340007", now=NINE_JST)
    run_at(phone, clock, NINE_JST)
    run_at(phone, clock, NINE_JST + 30 * MINUTE)
    assert phone.attempts("r7") == [(1, "busy", "unanswered", None), (2, "completed", "answered", "human")]
    assert phone.checkin("r7").status == "answered"


def test_an_answering_machine_is_unanswered(phone, clock):
    phone.add_resident("r8", "+81312340008", now=NINE_JST)
    run_at(phone, clock, NINE_JST)
    assert phone.attempts("r8") == [(1, "completed", "unanswered", "machine_start")]
    assert phone.sim.calls[0].said == []  # nothing is read to a machine


def test_hanging_up_mid_call_is_unanswered(phone, clock):
    phone.add_resident("r1", "+81312340001", now=NINE_JST)
    phone.sim.set_persona("+81312340001", Persona("hangs-up", hang_up_after_gathers=1))
    run_at(phone, clock, NINE_JST)
    assert phone.checkin("r1").unanswered_count == 1


def test_duplicate_and_reordered_callbacks_change_nothing(phone, clock):
    phone.add_resident("r1", "+81312340001", now=NINE_JST)
    phone.add_resident("r6", "+81312340006", now=NINE_JST)
    phone.sim.set_persona("+81312340001", Persona("dup", inputs=(Press("1"),), duplicate_callbacks=True,
                                                   reorder_callbacks=True))
    phone.sim.set_persona("+81312340006", Persona("dup-no-answer", pickup="no-answer", duplicate_callbacks=True,
                                                   reorder_callbacks=True))
    run_at(phone, clock, NINE_JST)
    assert phone.attempts("r1") == [(1, "completed", "answered", "human")]
    assert phone.attempts("r6") == [(1, "no-answer", "unanswered", None)]
    assert phone.checkin("r6").unanswered_count == 1
    assert len(phone.emails()) == 2
    assert not any(call.errors for call in phone.sim.calls)


def test_webhooks_signed_with_another_key_are_refused(phone, clock):
    phone.sim._validator = type(phone.sim._validator)("not-the-token")  # a forger without the auth token
    phone.add_resident("r1", "+81312340001", now=NINE_JST)
    run_at(phone, clock, NINE_JST)
    [call] = phone.sim.calls
    assert call.pressed == [] and any("403" in error for error in call.errors)
    assert phone.checkin("r1").status == "calling"  # nothing recorded from forged requests


def test_rate_limited_then_placed(phone, clock):
    phone.add_resident("r1", "+81312340001", now=NINE_JST)
    phone.sim.fail_next_creates((429, 20429), (429, 20429))
    run_at(phone, clock, NINE_JST)
    assert len(phone.backoffs) == 2 and phone.backoffs[1] > phone.backoffs[0]
    assert len(phone.sim.calls) == 1 and phone.checkin("r1").status == "answered"


def test_an_ambiguous_carrier_error_is_reconciled_not_redialled(phone, clock):
    phone.add_resident("r1", "+81312340001", now=NINE_JST)
    phone.sim.fail_next_creates("created-then-500")
    run_at(phone, clock, NINE_JST)
    assert len(phone.sim.calls) == 1
    assert phone.checkin("r1").status == "answered"


def test_an_invalid_number_is_marked_and_not_retried(phone, clock):
    phone.add_resident("r1", "+81312340001", now=NINE_JST)
    phone.sim.fail_next_creates((400, 21211))
    run_at(phone, clock, NINE_JST)
    run_at(phone, clock, NINE_JST + 40 * MINUTE)
    assert len(phone.sim.calls) == 0
    checkin = phone.checkin("r1")
    assert (checkin.status, checkin.cancel_reason) == ("cancelled", "invalid_number")
    with phone.runtime.session_factory() as session:
        resident = session.scalars(select(Resident)).one()
        alert = session.scalars(select(StaffAlert)).one()
    assert resident.phone_status == "invalid"
    assert "21211" in alert.message and "+81312340001" not in alert.message


def test_calls_wait_for_calling_hours_and_catch_up_after_downtime(phone, clock):
    phone.add_resident("r1", "+81312340001", now=NINE_JST, call_time=time(7, 0))
    early = datetime(2026, 12, 4, 22, 30, tzinfo=UTC)  # 07:30 JST: before hours
    assert "dialled=0" in run_at(phone, clock, early)
    # The scheduler was down from 08:00 to 11:00; the call is made as soon as it is back.
    assert "dialled=1" in run_at(phone, clock, datetime(2026, 12, 5, 2, 0, tzinfo=UTC))
    assert phone.checkin("r1").status == "answered"


def test_nothing_is_dialled_after_hours_and_the_day_is_closed(phone, clock):
    phone.add_resident("r1", "+81312340001", now=NINE_JST - timedelta(days=1))
    summary = run_at(phone, clock, datetime(2026, 12, 5, 11, 30, tzinfo=UTC))  # 20:30 JST
    assert "dialled=0" in summary and phone.sim.calls == []
    checkin = phone.checkin("r1")
    assert (checkin.status, checkin.cancel_reason) == ("cancelled", "window_missed")


def test_a_pause_hold_skips_the_day(phone, clock):
    phone.add_resident("r1", "+81312340001", now=NINE_JST)
    with phone.runtime.session_factory.begin() as session:
        resident = session.scalars(select(Resident)).one()
        session.add(PauseHold(resident_id=resident.id, starts_on=date(2026, 12, 5), ends_on=date(2026, 12, 6),
                              reason="入院", created_at=NINE_JST))
    run_at(phone, clock, NINE_JST)
    assert phone.sim.calls == [] and phone.checkin("r1").status == "paused"


def test_the_next_day_is_planned_in_the_residents_zone(phone, clock):
    phone.add_resident("r1", "+81312340001", now=NINE_JST)
    run_at(phone, clock, NINE_JST)
    run_at(phone, clock, NINE_JST + timedelta(days=1))
    checkin = phone.checkin("r1")
    assert checkin.local_date == date(2026, 12, 6) and checkin.status == "answered"
    assert len(phone.sim.calls) == 2


def test_a_crash_after_dialling_is_reconciled_against_the_carrier(phone, clock):
    phone.add_resident("r1", "+81312340001", now=NINE_JST)
    phone.add_resident("r2", "+81312340002", now=NINE_JST)
    with phone.runtime.session_factory() as session:
        plan_checkins(session, phone.settings, NINE_JST)
    # A scheduler recorded both attempts as dialling, reached the carrier for r1 only, then died.
    dialler = Dialler(phone.runtime.session_factory, phone.carrier, phone.settings, "crashed",
                      Pacer(1000, phone.runtime.session_factory))
    ids = dialler._claim_due(NINE_JST, 10)
    attempts = {}
    for checkin_id in ids:
        with phone.runtime.session_factory.begin() as session:
            attempt = dialler._begin_attempt(session, checkin_id, NINE_JST, DialReport())
            attempts[attempt.to_number] = attempt.id
    phone.sim.set_persona("+81312340001", Persona("slow", pickup="no-answer"))
    phone.carrier.dial(DialRequest("+81312340001", "http://127.0.0.1:9/unused", "http://127.0.0.1:9/unused"))
    phone.sim.wait_idle()
    # Another scheduler, after the dial lease: adopts r1's call, redials r2 exactly once.
    run_at(phone, clock, NINE_JST + 3 * MINUTE)
    assert len(phone.calls_to("+81312340001")) == 1
    assert len(phone.calls_to("+81312340002")) == 1
    with phone.runtime.session_factory() as session:
        first = session.get(CallAttempt, attempts["+81312340001"])
        second = session.get(CallAttempt, attempts["+81312340002"])
        assert first.call_sid == phone.calls_to("+81312340001")[0].sid
        assert (second.status, second.outcome) == ("not_placed", "not_placed")
    assert phone.checkin("r2").status == "answered"


def test_a_crash_after_dialling_a_call_still_in_the_carriers_queue_is_reconciled(phone, clock):
    phone.add_resident("r1", "+81312340001", now=NINE_JST)
    with phone.runtime.session_factory() as session:
        plan_checkins(session, phone.settings, NINE_JST)
    # A scheduler recorded the attempt, the carrier accepted the call into the account's queue
    # (it has no start time yet), and the scheduler died before committing the call's id.
    dialler = Dialler(phone.runtime.session_factory, phone.carrier, phone.settings, "crashed",
                      Pacer(1000, phone.runtime.session_factory))
    [checkin_id] = dialler._claim_due(NINE_JST, 10)
    with phone.runtime.session_factory.begin() as session:
        attempt_id = dialler._begin_attempt(session, checkin_id, NINE_JST, DialReport()).id
    phone.sim.hold_queue()
    urls = phone.runtime.call_urls
    placed = phone.carrier.dial(DialRequest("+81312340001", urls.answer(attempt_id), urls.status(attempt_id)))

    clock.move_to(NINE_JST + 3 * MINUTE)  # another scheduler, after the dial lease
    report = jobs.run_calls(phone.runtime, NINE_JST + 3 * MINUTE)

    assert report.reconciled == 1 and report.dials.dialled == 0
    assert [call.sid for call in phone.calls_to("+81312340001")] == [placed.sid]
    phone.sim.release_queue()
    run_at(phone, clock, NINE_JST + 4 * MINUTE)
    assert len(phone.calls_to("+81312340001")) == 1
    assert phone.checkin("r1").status == "answered"


def test_two_schedulers_at_once_dial_each_resident_once(phone, clock):
    workers = 2
    for n in range(12):
        phone.add_resident(f"r{n}", f"+8131234{n:03d}1", now=NINE_JST)
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def scheduler():
        try:
            barrier.wait()
            phone.tick(NINE_JST)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=scheduler) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    phone.sim.wait_idle()
    assert errors == []
    numbers = [call.to for call in phone.sim.calls]
    assert len(numbers) == 12 and len(set(numbers)) == 12
    with phone.runtime.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(CallAttempt)) == 12
        assert session.scalar(select(func.count()).select_from(CheckIn)) == 12
    assert len(phone.emails()) == 24


def test_logs_never_carry_a_full_number_or_address(phone, clock, caplog):
    caplog.set_level("DEBUG")
    phone.add_resident("r1", "+81312340001", now=NINE_JST)
    phone.add_resident("r6", "+81312340006", now=NINE_JST)
    phone.sim.fail_next_creates((429, 20429))
    run_at(phone, clock, NINE_JST)
    run_at(phone, clock, NINE_JST + 30 * MINUTE)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "+81312340001" not in logged and "%2B81312340001" not in logged and "0312340001" not in logged
    assert "family1.r1@example.org" not in logged and "family2.r6@example.org" not in logged
    assert "0001" in logged  # the masked form keeps the last digits, so entries can be told apart
