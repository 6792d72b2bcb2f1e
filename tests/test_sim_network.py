"""SimNetwork playing calls against real (signed) webhooks served by a small Flask app."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from flask import Flask, Response, request
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from carriers.base import DialRequest
from carriers.sim import (
    MAX_TWIML_REQUESTS,
    SIM_ACCOUNT_SID,
    SIM_FROM_NUMBER,
    Persona,
    Press,
    Say,
    Silence,
    SimCall,
    SimNetwork,
    default_persona,
)
from carriers.twilio import TwilioCarrier
from tests.servers import LiveServer

AUTH_TOKEN = "sim-network-test-token"
PRESSES_1 = "+819012345671"
SAYS_GENKI = "+819012345674"
NO_ANSWER = "+819012345676"
BUSY_THEN_PRESSES_1 = "+819012345677"
MACHINE = "+819012345678"
CUSTOM = "+819087654320"

QUESTION = "お元気ですか。元気なら1を押してください。"
THANKS = "ありがとうございました。"
NOTHING_HEARD = "入力が確認できませんでした。"


@dataclass(frozen=True)
class Hook:
    path: str
    form: dict[str, str]
    idempotency_token: str
    signed: bool  # X-Twilio-Signature valid for the URL and form received


class Ivr:
    """Stands in for the application's webhooks: serves TwiML by path and records every request."""

    def __init__(self) -> None:
        self.base_url = ""
        self.pages: dict[str, str | int] = {}  # path -> TwiML, or an HTTP status to fail with
        self.release = threading.Event()  # lets /ivr/slow answer
        self._hooks: list[Hook] = []
        self._lock = threading.Lock()

    def url(self, path: str) -> str:
        return self.base_url + path

    def record(self, hook: Hook) -> None:
        with self._lock:
            self._hooks.append(hook)

    def hooks(self, path: str | None = None) -> list[Hook]:
        with self._lock:
            return [hook for hook in self._hooks if path is None or hook.path == path]

    def statuses(self) -> list[str]:
        return [hook.form["CallStatus"] for hook in self.hooks("/ivr/status")]


def ivr_app(ivr: Ivr) -> Flask:
    app = Flask(__name__)
    validator = RequestValidator(AUTH_TOKEN)

    @app.post("/<path:name>")
    def webhook(name: str) -> Response:
        query = request.query_string.decode("ascii")
        url = ivr.base_url + request.path + (f"?{query}" if query else "")
        signed = validator.validate(url, request.form, request.headers.get("X-Twilio-Signature", ""))
        ivr.record(
            Hook(request.path, request.form.to_dict(), request.headers.get("I-Twilio-Idempotency-Token", ""), signed)
        )
        if not signed:
            return Response("bad signature", status=403)
        if request.path == "/ivr/status":
            return Response(status=204)
        if request.path == "/ivr/slow":
            ivr.release.wait(timeout=10)
        page = ivr.pages.get(request.path, 404)
        if isinstance(page, int):
            return Response("failing on purpose", status=page)
        return Response(page, mimetype="text/xml")

    return app


def ask(*, action: str = "/ivr/gather", on_empty: bool = False) -> str:
    response = VoiceResponse()
    gather = response.gather(
        input="dtmf speech",
        action=action,
        num_digits=1,
        language="ja-JP",
        action_on_empty_result=True if on_empty else None,
    )
    say = gather.say(language="ja-JP", voice="Polly.Mizuki")
    say.prosody("お元気ですか。", rate="85%")
    say.break_(time="300ms")
    say.prosody("元気なら1を押してください。", rate="85%")
    response.say(NOTHING_HEARD, language="ja-JP")
    response.hangup()
    return str(response)


def thanks() -> str:
    response = VoiceResponse()
    response.say(THANKS, language="ja-JP")
    response.hangup()
    return str(response)


@pytest.fixture
def ivr() -> Iterator[Ivr]:
    ivr = Ivr()
    ivr.pages.update({"/ivr/answer": ask(), "/ivr/gather": thanks()})
    server = LiveServer(ivr_app(ivr)).start()
    ivr.base_url = server.url
    yield ivr
    ivr.release.set()
    server.stop()


@pytest.fixture
def network(ivr) -> Iterator[SimNetwork]:
    network = SimNetwork(AUTH_TOKEN)
    network.start()
    yield network
    assert network.wait_idle()
    network.stop()


@pytest.fixture
def carrier(network) -> Iterator[TwilioCarrier]:
    carrier = TwilioCarrier(SIM_ACCOUNT_SID, AUTH_TOKEN, SIM_FROM_NUMBER, api_base_url=network.base_url)
    yield carrier
    carrier.close()


@pytest.fixture
def call(carrier, network, ivr):
    """Place one call, let it play to the end, and return the network's record of it."""

    def place(to: str, *, answer: str = "/ivr/answer", detect_machines: bool = True) -> SimCall:
        placed = carrier.dial(DialRequest(to, ivr.url(answer), ivr.url("/ivr/status"), detect_machines=detect_machines))
        assert network.wait_idle()
        [played] = [call for call in network.calls if call.sid == placed.sid]
        return played

    return place


def test_answer_webhook_is_signed_like_twilio(call, ivr):
    played = call(PRESSES_1)

    [answer] = ivr.hooks("/ivr/answer")
    assert answer.signed
    assert answer.form["CallSid"] == played.sid
    assert answer.form["AccountSid"] == SIM_ACCOUNT_SID
    assert answer.form["To"] == PRESSES_1
    assert answer.form["From"] == SIM_FROM_NUMBER
    assert answer.form["CallStatus"] == "in-progress"
    assert answer.form["Direction"] == "outbound-api"
    assert answer.form["ApiVersion"] == "2010-04-01"
    assert answer.form["AnsweredBy"] == "human"
    assert answer.idempotency_token
    assert all(hook.signed for hook in ivr.hooks())
    assert len({hook.idempotency_token for hook in ivr.hooks()}) == len(ivr.hooks())
    assert played.errors == []


def test_signature_covers_the_parameters(call, ivr):
    call(PRESSES_1)

    [answer] = ivr.hooks("/ivr/answer")
    validator = RequestValidator(AUTH_TOKEN)
    signature = validator.compute_signature(ivr.url("/ivr/answer"), answer.form)
    tampered = {**answer.form, "To": "+819000000000"}
    assert validator.validate(ivr.url("/ivr/answer"), answer.form, signature)
    assert not validator.validate(ivr.url("/ivr/answer"), tampered, signature)
    assert not RequestValidator("another-token").validate(ivr.url("/ivr/answer"), answer.form, signature)


def test_pressing_1_posts_digits_to_the_gather_action(call, ivr):
    played = call(PRESSES_1)

    [action] = ivr.hooks("/ivr/gather")
    assert action.form["Digits"] == "1"
    assert action.form["FinishedOnKey"] == ""
    assert "SpeechResult" not in action.form
    assert played.pressed == ["1"]
    assert played.status == "completed"


def test_everything_said_is_recorded_in_order_including_ssml(call):
    played = call(PRESSES_1)

    assert played.said == [QUESTION, THANKS]


def test_speech_posts_speech_result_and_confidence(call, ivr):
    played = call(SAYS_GENKI)

    [action] = ivr.hooks("/ivr/gather")
    assert action.form["SpeechResult"] == "げんきです"
    assert action.form["Confidence"] == "0.92"
    assert "Digits" not in action.form
    assert played.spoken == ["げんきです"]


def test_status_callbacks_follow_the_call(call, ivr):
    played = call(PRESSES_1)

    hooks = ivr.hooks("/ivr/status")
    assert ivr.statuses() == ["initiated", "ringing", "in-progress", "completed"]
    assert [hook.form["SequenceNumber"] for hook in hooks] == ["0", "1", "2", "3"]
    assert all(hook.form["CallbackSource"] == "call-progress-events" for hook in hooks)
    assert all(hook.form["Timestamp"].endswith("+0000") for hook in hooks)
    assert hooks[-1].form["CallDuration"] == str(played.duration)
    assert hooks[-1].form["AnsweredBy"] == "human"
    assert [path for path, _ in played.webhooks] == [
        "/ivr/status",
        "/ivr/status",
        "/ivr/status",
        "/ivr/answer",
        "/ivr/gather",
        "/ivr/status",
    ]


def test_no_answer_sends_only_status_callbacks(call, ivr):
    played = call(NO_ANSWER)

    assert ivr.hooks("/ivr/answer") == []
    assert ivr.statuses() == ["initiated", "ringing", "no-answer"]
    assert ivr.hooks("/ivr/status")[-1].form["CallDuration"] == "0"
    assert played.status == "no-answer"
    assert played.answered_by is None
    assert played.duration == 0


def test_answering_machine_is_detected(call, ivr):
    played = call(MACHINE)

    [answer] = ivr.hooks("/ivr/answer")
    assert answer.form["AnsweredBy"] == "machine_start"
    assert played.answered_by == "machine_start"
    # A machine says nothing: the Gather falls through to the next verb.
    assert ivr.hooks("/ivr/gather") == []
    assert played.said == [QUESTION, NOTHING_HEARD]


def test_without_machine_detection_there_is_no_answered_by(call, ivr):
    played = call(PRESSES_1, detect_machines=False)

    assert all("AnsweredBy" not in hook.form for hook in ivr.hooks())
    assert played.answered_by is None


def test_busy_first_then_answers_on_the_next_call(call, ivr):
    first = call(BUSY_THEN_PRESSES_1)
    assert first.status == "busy"
    assert ivr.hooks("/ivr/answer") == []
    assert ivr.statuses()[-1] == "busy"

    second = call(BUSY_THEN_PRESSES_1)

    assert second.status == "completed"
    assert (first.persona, second.persona) == ("busy-then-presses-1", "presses-1")
    assert [hook.form["Digits"] for hook in ivr.hooks("/ivr/gather")] == ["1"]
    assert {hook.form["CallSid"] for hook in ivr.hooks("/ivr/answer")} == {second.sid}


def test_duplicate_callbacks_repeat_the_idempotency_token(call, ivr, network):
    network.set_persona(CUSTOM, Persona("double", inputs=(Press("1"),), duplicate_callbacks=True))

    call(CUSTOM)

    hooks = ivr.hooks("/ivr/status")
    assert ivr.statuses() == [
        "initiated", "initiated", "ringing", "ringing", "in-progress", "in-progress", "completed", "completed"
    ]
    pairs = [(hooks[i], hooks[i + 1]) for i in range(0, len(hooks), 2)]
    assert all(a.idempotency_token == b.idempotency_token and a.form == b.form for a, b in pairs)
    assert len({hook.idempotency_token for hook in hooks}) == 4
    assert len(ivr.hooks("/ivr/answer")) == 1


def test_reordered_callbacks_deliver_completed_before_ringing(call, ivr, network):
    network.set_persona(CUSTOM, Persona("reorder", inputs=(Press("1"),), reorder_callbacks=True))

    call(CUSTOM)

    hooks = ivr.hooks("/ivr/status")
    assert ivr.statuses() == ["completed", "in-progress", "ringing", "initiated"]
    # The sequence numbers still tell the order the events happened in.
    assert [hook.form["SequenceNumber"] for hook in hooks] == ["3", "2", "1", "0"]
    assert [hook.path for hook in ivr.hooks()] == ["/ivr/answer", "/ivr/gather"] + ["/ivr/status"] * 4


def test_silence_with_action_on_empty_result_posts_without_input(call, ivr, network):
    ivr.pages["/ivr/answer"] = ask(on_empty=True)
    network.set_persona(CUSTOM, Persona("silent", inputs=(Silence(),)))

    played = call(CUSTOM)

    [action] = ivr.hooks("/ivr/gather")
    assert not {"Digits", "SpeechResult", "Confidence"} & action.form.keys()
    assert action.form["CallStatus"] == "in-progress"
    assert played.pressed == [] and played.spoken == []
    assert played.said == [QUESTION, THANKS]


def test_silence_without_action_on_empty_result_falls_through(call, ivr, network):
    network.set_persona(CUSTOM, Persona("silent"))

    played = call(CUSTOM)

    assert ivr.hooks("/ivr/gather") == []
    assert played.said == [QUESTION, NOTHING_HEARD]
    assert played.status == "completed"


def test_hanging_up_mid_call_skips_the_action(call, ivr, network):
    network.set_persona(CUSTOM, Persona("hangs-up", inputs=(Press("1"),), hang_up_after_gathers=1))

    played = call(CUSTOM)

    assert ivr.hooks("/ivr/gather") == []
    assert played.said == [QUESTION]
    assert played.pressed == []
    assert played.status == "completed"
    assert ivr.statuses()[-1] == "completed"


def test_later_gathers_take_later_inputs_and_relative_urls_resolve(call, ivr, network):
    ivr.pages["/ivr/answer"] = ask(action="step/2")
    ivr.pages["/ivr/step/2"] = ask(action="/ivr/redirect")
    redirect = VoiceResponse()
    redirect.redirect("gather")
    ivr.pages["/ivr/redirect"] = str(redirect)
    network.set_persona(CUSTOM, Persona("two-answers", inputs=(Press("3"), Say("いつもどおりです", 0.88))))

    played = call(CUSTOM)

    assert [hook.path for hook in ivr.hooks() if hook.path != "/ivr/status"] == [
        "/ivr/answer",
        "/ivr/step/2",
        "/ivr/redirect",
        "/ivr/gather",
    ]
    assert ivr.hooks("/ivr/step/2")[0].form["Digits"] == "3"
    assert ivr.hooks("/ivr/redirect")[0].form["SpeechResult"] == "いつもどおりです"
    assert played.said == [QUESTION, QUESTION, THANKS]


def test_key_presses_stop_at_num_digits_and_finish_on_key(call, ivr, network):
    response = VoiceResponse()
    response.gather(action="/ivr/gather", finish_on_key="#").say("番号を入力してください。")
    ivr.pages["/ivr/answer"] = str(response)
    network.set_persona(CUSTOM, Persona("keys", inputs=(Press("12#3"),)))

    call(CUSTOM)

    [action] = ivr.hooks("/ivr/gather")
    assert (action.form["Digits"], action.form["FinishedOnKey"]) == ("12", "#")


def test_speech_is_ignored_by_a_keypad_only_gather(call, ivr, network):
    response = VoiceResponse()
    response.gather(action="/ivr/gather", num_digits=1).say("1を押してください。")
    response.say(NOTHING_HEARD)
    ivr.pages["/ivr/answer"] = str(response)

    played = call(SAYS_GENKI)

    assert ivr.hooks("/ivr/gather") == []
    assert played.said == ["1を押してください。", NOTHING_HEARD]


def test_webhook_failure_ends_the_call_and_is_recorded(call, ivr):
    ivr.pages["/ivr/answer"] = 500

    played = call(PRESSES_1)

    assert played.status == "completed"
    assert played.errors == ["11200 POST /ivr/answer -> HTTP 500"]
    assert ivr.statuses()[-1] == "completed"


def test_bad_twiml_is_recorded(call, ivr):
    ivr.pages["/ivr/answer"] = "<Response><Say>unclosed</Response>"

    played = call(PRESSES_1)

    assert len(played.errors) == 1
    assert played.errors[0].startswith("12100 POST /ivr/answer")
    assert played.said == []


def test_a_redirect_loop_is_cut_off(call, ivr):
    loop = VoiceResponse()
    loop.redirect("/ivr/answer")
    ivr.pages["/ivr/answer"] = str(loop)

    played = call(PRESSES_1)

    assert len(ivr.hooks("/ivr/answer")) == MAX_TWIML_REQUESTS
    assert played.errors == [f"loop guard: more than {MAX_TWIML_REQUESTS} TwiML requests, hung up"]
    assert played.status == "completed"


def test_wait_idle_waits_for_webhooks_to_be_answered(carrier, network, ivr):
    carrier.dial(DialRequest(PRESSES_1, ivr.url("/ivr/slow"), ivr.url("/ivr/status")))

    assert not network.wait_idle(timeout=0.05)
    ivr.release.set()
    assert network.wait_idle()
    [played] = network.calls
    assert played.finished
    # /ivr/slow has no page: it answers 404 once released.
    assert played.errors == ["11200 POST /ivr/slow -> HTTP 404"]


def test_calls_is_a_snapshot(call, network):
    call(PRESSES_1)

    network.calls[0].said.append("changed outside")

    assert "changed outside" not in network.calls[0].said


def test_list_endpoint_pages_like_twilio(call, network):
    first = call(PRESSES_1)
    second = call(PRESSES_1)
    call(SAYS_GENKI)
    client = Client(SIM_ACCOUNT_SID, AUTH_TOKEN, environment={})
    client.api.base_url = network.base_url
    try:
        listed = client.calls.list(to=PRESSES_1, page_size=1)
        fetched = client.calls(first.sid).fetch()
    finally:
        client.http_client.session.close()

    assert [call.sid for call in listed] == [second.sid, first.sid]
    assert fetched.status == "completed"
    assert fetched.to == PRESSES_1
    assert fetched.direction == "outbound-api"
    assert fetched.answered_by == "human"
    assert fetched.date_created is not None


def test_rest_errors_have_twilio_shape(network):
    path = f"/2010-04-01/Accounts/{SIM_ACCOUNT_SID}/Calls/CA{'0' * 32}.json"
    url = network.base_url + path
    with requests.Session() as session:
        unauthorised = session.get(url, auth=(SIM_ACCOUNT_SID, "wrong"))
        missing = session.get(url, auth=(SIM_ACCOUNT_SID, AUTH_TOKEN))

    assert unauthorised.status_code == 401
    assert unauthorised.json()["code"] == 20003
    assert missing.status_code == 404
    assert missing.json() == {
        "code": 20404,
        "message": f"The requested resource {path} was not found",
        "more_info": "https://www.twilio.com/docs/errors/20404",
        "status": 404,
    }


@pytest.mark.parametrize(
    ("last_digit", "name", "pickup", "first_input"),
    [
        ("1", "presses-1", "human", Press("1")),
        ("2", "presses-2", "human", Press("2")),
        ("3", "presses-3", "human", Press("3")),
        ("4", "says-genki", "human", Say("げんきです", 0.92)),
        ("5", "silent", "human", None),
        ("6", "no-answer", "no-answer", None),
        ("7", "busy-then-presses-1", "busy", None),
        ("8", "answering-machine", "machine", None),
        ("9", "presses-9", "human", Press("9")),
        ("0", "says-itsumodoori", "human", Say("いつもどおりです", 0.88)),
    ],
)
def test_default_dial_plan(last_digit, name, pickup, first_input):
    persona = default_persona("+8190123456" + "7" + last_digit)

    assert (persona.name, persona.pickup) == (name, pickup)
    assert (persona.inputs[0] if persona.inputs else None) == first_input


def test_later_persona_chain():
    third = Persona("third")
    persona = Persona("first", pickup="busy", later=Persona("second", pickup="no-answer", later=third))

    assert [persona.for_call(index).name for index in range(4)] == ["first", "second", "third", "third"]


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError):
        Persona("typo", pickup="picks-up")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SimNetwork(AUTH_TOKEN).fail_next_creates("created-then-404")
