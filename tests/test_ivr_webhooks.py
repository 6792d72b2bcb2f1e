"""The /ivr/ webhooks through Flask's test client: signatures, TwiML, idempotency, outcomes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from freezegun import freeze_time
from sqlalchemy import create_engine, func, select, text
from twilio.request_validator import RequestValidator

from store.models import Answer, CallAttempt, CheckIn, Email
from tests.factories import add_calling_attempt, add_resident

NOW = datetime(2026, 12, 5, 0, 5, tzinfo=UTC)  # 09:05 in Tokyo
CLOSES = datetime(2026, 12, 5, 11, 0, tzinfo=UTC)  # 20:00 in Tokyo
SID = "CA" + "a" * 32


@pytest.fixture
def frozen():
    with freeze_time(NOW) as clock:
        yield clock


@pytest.fixture
def attempt_id(db, frozen):
    resident = add_resident(db, now=NOW)
    attempt = add_calling_attempt(db, resident, now=NOW, local_day=date(2026, 12, 5), closes=CLOSES)
    db.commit()
    return attempt.id


class Carrier:
    """Posts webhooks the way Twilio does: form-encoded and signed against the public URL."""

    def __init__(self, app, settings):
        self.client = app.test_client()
        self.base = settings.public_base_url
        self.validator = RequestValidator(settings.webhook_auth_token)

    def post(self, path: str, sign: bool = True, **params):
        params.setdefault("CallSid", SID)
        params.setdefault("AccountSid", "AC" + "0" * 32)
        headers = {"X-Twilio-Signature": self.validator.compute_signature(self.base + path, params)} if sign else {}
        return self.client.post(path, data=params, headers=headers)

    def answer(self, attempt_id: int, **params):
        return self.post(f"/ivr/calls/{attempt_id}/answer", CallStatus="in-progress", **params)

    def gather(self, attempt_id: int, q=0, r=0, t=0, **params):
        return self.post(f"/ivr/calls/{attempt_id}/gather?q={q}&r={r}&t={t}", CallStatus="in-progress", **params)

    def status(self, attempt_id: int, status: str, **params):
        return self.post(f"/ivr/calls/{attempt_id}/status", CallStatus=status, **params)


@pytest.fixture
def carrier(app, settings):
    return Carrier(app, settings)


def twiml(response) -> ET.Element:
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/xml"
    return ET.fromstring(response.data)


def spoken(root: ET.Element) -> list[str]:
    return ["".join(say.itertext()) for say in root.iter("Say")]


def emails(db, kind: str | None = None) -> list[Email]:
    query = select(Email).order_by(Email.id)
    if kind:
        query = query.where(Email.kind == kind)
    db.expire_all()
    return list(db.scalars(query))


def checkin_of(db, attempt_id: int) -> CheckIn:
    db.expire_all()
    return db.get(CallAttempt, attempt_id).checkin


def test_answer_greets_by_name_and_gathers_keys_and_japanese_speech(carrier, attempt_id):
    root = twiml(carrier.answer(attempt_id, AnsweredBy="human"))
    gather = root.find("Gather")
    assert gather.get("input") == "dtmf speech" and gather.get("language") == "ja-JP"
    assert gather.get("actionOnEmptyResult") == "true" and gather.get("numDigits") == "1"
    action = urlparse(gather.get("action"))
    assert action.path == f"/ivr/calls/{attempt_id}/gather"
    assert parse_qs(action.query) == {"q": ["0"], "r": ["0"], "t": ["0"]}
    says = gather.findall("Say")
    assert {say.get("voice") for say in says} == {"Polly.Mizuki"}
    assert says[0].find("prosody").get("rate") == "85%"
    assert "山田 花子さん" in spoken(root)[0] and "郵便局のみまもりでんわ" in spoken(root)[0]
    assert gather.find("Pause") is not None  # a pause before the choices


@pytest.mark.parametrize("signature", [None, "forged", "c2lnbmF0dXJl"])
def test_unsigned_or_forged_webhooks_are_refused_and_change_nothing(carrier, attempt_id, db, signature):
    path = f"/ivr/calls/{attempt_id}/gather?q=0&r=0&t=0"
    headers = {"X-Twilio-Signature": signature} if signature else {}
    response = carrier.client.post(path, data={"CallSid": SID, "Digits": "1"}, headers=headers)
    assert response.status_code == 403
    assert db.scalar(select(func.count()).select_from(Answer)) == 0
    assert checkin_of(db, attempt_id).status == "calling"


def test_a_signature_for_other_parameters_is_refused(carrier, attempt_id, settings):
    path = f"/ivr/calls/{attempt_id}/gather?q=0&r=0&t=0"
    signature = carrier.validator.compute_signature(settings.public_base_url + path, {"CallSid": SID, "Digits": "1"})
    response = carrier.client.post(path, data={"CallSid": SID, "Digits": "3"}, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403


def test_unknown_attempt_is_404(carrier, attempt_id):
    assert carrier.answer(attempt_id + 1000).status_code == 404


def test_a_call_sid_that_is_not_the_attempts_is_refused(carrier, attempt_id, db):
    assert carrier.gather(attempt_id, Digits="1", CallSid="CA" + "b" * 32).status_code == 409
    assert checkin_of(db, attempt_id).status == "calling"


def test_an_unknown_step_is_400(carrier, attempt_id):
    assert carrier.gather(attempt_id, q=5, Digits="1").status_code == 400
    assert carrier.post(f"/ivr/calls/{attempt_id}/gather?q=x&r=0&t=0", Digits="1").status_code == 400


def test_keypad_1_records_the_answer_closes_the_day_and_queues_one_report_per_recipient(carrier, attempt_id, db):
    root = twiml(carrier.gather(attempt_id, Digits="1"))
    assert root[-1].tag == "Hangup"
    assert any("今日のひとこと" in line for line in spoken(root))
    checkin = checkin_of(db, attempt_id)
    assert (checkin.status, checkin.health, checkin.closed_at) == ("answered", "good", NOW)
    answer = db.scalars(select(Answer)).one()
    assert (answer.mode, answer.digits, answer.value, answer.final) == ("keypad", "1", "good", True)
    reports = emails(db, "report")
    assert [e.to_email for e in reports] == ["family1.r-1@example.org", "family2.r-1@example.org"]
    assert emails(db, "urgent") == []


def test_not_well_queues_urgent_email_too(carrier, attempt_id, db):
    twiml(carrier.gather(attempt_id, Digits="3"))
    assert checkin_of(db, attempt_id).health == "unwell"
    assert len(emails(db, "report")) == 2 and len(emails(db, "urgent")) == 2


def test_help_key_escalates_at_once(carrier, attempt_id, db):
    root = twiml(carrier.gather(attempt_id, Digits="9"))
    assert "ご家族にお知らせします" in " ".join(spoken(root))
    assert checkin_of(db, attempt_id).health == "help"
    assert len(emails(db, "urgent")) == 2


def test_spoken_answer_is_recorded_with_transcript_and_confidence(carrier, attempt_id, db):
    twiml(carrier.gather(attempt_id, SpeechResult="元気がないです", Confidence="0.87"))
    answer = db.scalars(select(Answer)).one()
    assert (answer.mode, answer.transcript, answer.confidence, answer.value) == ("speech", "元気がないです", 0.87, "unwell")


@pytest.mark.parametrize("odd", [{"Digits": "*"}, {"Digits": "#"}, {"Digits": "55"}, {},
                                 {"SpeechResult": "", "Confidence": "0.0"}, {"SpeechResult": "ざわざわ", "Confidence": "0.9"}])
def test_odd_input_is_re_asked_and_the_day_stays_open(carrier, attempt_id, db, odd):
    root = twiml(carrier.gather(attempt_id, **odd))
    action = parse_qs(urlparse(root.find("Gather").get("action")).query)
    assert action == {"q": ["0"], "r": ["1"], "t": ["1"]}
    assert checkin_of(db, attempt_id).status == "calling"
    assert emails(db, "urgent") == []


def test_a_repeated_gather_records_once_and_replies_the_same(carrier, attempt_id, db):
    first = carrier.gather(attempt_id, Digits="3")
    second = carrier.gather(attempt_id, Digits="3")
    assert first.data == second.data
    assert db.scalar(select(func.count()).select_from(Answer)) == 1
    assert len(emails(db)) == 4


def test_a_replayed_turn_with_other_input_keeps_the_first(carrier, attempt_id, db):
    carrier.gather(attempt_id, Digits="1")
    carrier.gather(attempt_id, Digits="3")
    assert checkin_of(db, attempt_id).health == "good"
    assert emails(db, "urgent") == []


def test_status_only_moves_forward(carrier, attempt_id, db):
    carrier.gather(attempt_id, Digits="1")
    assert carrier.status(attempt_id, "completed", CallDuration="40").status_code == 204
    assert carrier.status(attempt_id, "ringing").status_code == 204
    assert carrier.status(attempt_id, "completed").status_code == 204
    db.expire_all()
    attempt = db.get(CallAttempt, attempt_id)
    assert (attempt.status, attempt.outcome, attempt.ended_at) == ("completed", "answered", NOW)
    assert checkin_of(db, attempt_id).status == "answered"


def test_no_answer_schedules_a_retry_after_the_delay(carrier, attempt_id, db):
    carrier.status(attempt_id, "ringing")
    carrier.status(attempt_id, "no-answer")
    carrier.status(attempt_id, "no-answer")  # duplicate
    checkin = checkin_of(db, attempt_id)
    assert (checkin.status, checkin.unanswered_count) == ("scheduled", 1)
    assert checkin.next_attempt_at == NOW + timedelta(minutes=30)
    assert emails(db) == []


def test_second_unanswered_attempt_makes_the_day_absent(carrier, attempt_id, db, frozen):
    carrier.status(attempt_id, "busy")
    checkin = checkin_of(db, attempt_id)
    checkin.status = "calling"
    second = CallAttempt(checkin_id=checkin.id, number=2, to_number=checkin.resident.phone, status="queued",
                         call_sid="CA" + "c" * 32, dialling_at=NOW, placed_at=NOW)
    db.add(second)
    db.commit()
    carrier.status(second.id, "no-answer", CallSid=second.call_sid)
    checkin = checkin_of(db, attempt_id)
    assert (checkin.status, checkin.unanswered_count) == ("absent", 2)
    assert len(emails(db, "absent")) == 2


def test_an_answering_machine_hears_nothing_and_counts_as_unanswered(carrier, attempt_id, db):
    root = twiml(carrier.answer(attempt_id, AnsweredBy="machine_start"))
    assert [child.tag for child in root] == ["Hangup"]
    carrier.status(attempt_id, "completed", AnsweredBy="machine_start")
    assert checkin_of(db, attempt_id).unanswered_count == 1


def test_hanging_up_before_the_health_answer_counts_as_unanswered(carrier, attempt_id, db):
    twiml(carrier.answer(attempt_id, AnsweredBy="human"))
    carrier.status(attempt_id, "completed", CallDuration="5")
    checkin = checkin_of(db, attempt_id)
    assert (checkin.status, checkin.unanswered_count) == ("scheduled", 1)


def test_completed_before_ringing_stays_completed(carrier, attempt_id, db):
    carrier.status(attempt_id, "no-answer")
    carrier.status(attempt_id, "ringing")
    carrier.status(attempt_id, "initiated")
    db.expire_all()
    assert db.get(CallAttempt, attempt_id).status == "no-answer"
    assert checkin_of(db, attempt_id).unanswered_count == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_webhook_outlives_a_database_restart(carrier, attempt_id, engine, database_url, db, caplog):
    assert carrier.answer(attempt_id).status_code == 200  # the app's pool now holds an open connection
    terminator = create_engine(database_url)
    with terminator.begin() as connection:
        killed = connection.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )).all()
    terminator.dispose()
    assert killed

    root = twiml(carrier.gather(attempt_id, Digits="1"))

    assert "running it once more" in caplog.text  # the first try met the dead connection
    assert root.find("Hangup") is not None
    engine.dispose()  # the tests' own pool lost its connections too
    assert checkin_of(db, attempt_id).status == "answered"
