"""TwilioCarrier, the production adapter, against the simulated network's Twilio REST API."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from openapi_schema_validator import OAS30Validator

from carriers.base import DialRequest, PermanentCarrierError, TransientCarrierError
from carriers.sim import SIM_ACCOUNT_SID, SIM_FROM_NUMBER, SimNetwork
from carriers.twilio import TwilioCarrier
from core.privacy import mask_email, mask_phone
from tests.servers import serving

AUTH_TOKEN = "carrier-test-token"
PRESSES_1 = "+819012345671"


@pytest.fixture
def webhooks() -> Iterator[str]:
    """Somewhere for the simulated calls to go: every webhook gets an empty TwiML document."""

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/xml")])
        return [b"<Response/>"]

    with serving(app) as url:
        yield url


@pytest.fixture
def network(webhooks) -> Iterator[SimNetwork]:
    network = SimNetwork(AUTH_TOKEN)
    network.start()
    yield network
    assert network.wait_idle()
    network.stop()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def carrier(network, sleeps) -> Iterator[TwilioCarrier]:
    carrier = TwilioCarrier(
        SIM_ACCOUNT_SID, AUTH_TOKEN, SIM_FROM_NUMBER, api_base_url=network.base_url, sleep=sleeps.append
    )
    yield carrier
    carrier.close()


@pytest.fixture
def dial_request(webhooks):
    def build(to: str = PRESSES_1, **changes) -> DialRequest:
        return DialRequest(to=to, answer_url=f"{webhooks}/ivr/answer", status_url=f"{webhooks}/ivr/status", **changes)

    return build


def test_dial_sends_the_form_the_sdk_builds(carrier, network, dial_request, sleeps):
    placed = carrier.dial(dial_request(ring_seconds=25))

    [call] = network.calls
    assert placed.sid == call.sid and placed.sid.startswith("CA") and len(placed.sid) == 34
    assert placed.status == "queued"
    assert call.form == {
        "To": [PRESSES_1],
        "From": [SIM_FROM_NUMBER],
        "Url": [dial_request().answer_url],
        "Method": ["POST"],
        "StatusCallback": [dial_request().status_url],
        "StatusCallbackMethod": ["POST"],
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "Timeout": ["25"],
        "MachineDetection": ["Enable"],
    }
    assert sleeps == []


def test_dial_without_machine_detection_leaves_it_out(carrier, network, dial_request):
    carrier.dial(dial_request(detect_machines=False))

    [call] = network.calls
    assert "MachineDetection" not in call.form
    assert "AsyncAmd" not in call.form


def test_rate_limited_create_is_retried_after_backing_off(carrier, network, dial_request, sleeps):
    network.fail_next_creates((429, 20429), (429, 20429))

    placed = carrier.dial(dial_request())

    assert [call.sid for call in network.calls] == [placed.sid]
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 0.75
    assert 1.0 <= sleeps[1] <= 1.5


def test_invalid_number_is_permanent_and_not_retried(carrier, network, dial_request, sleeps):
    network.fail_next_creates((400, 21211))

    with pytest.raises(PermanentCarrierError) as raised:
        carrier.dial(dial_request())

    assert raised.value.code == "21211"
    assert raised.value.invalid_number
    # A retry would have succeeded (only one fault was queued) and created a call.
    assert network.calls == []
    assert sleeps == []


def test_number_the_network_cannot_parse_is_21211(carrier, network, dial_request):
    with pytest.raises(PermanentCarrierError) as raised:
        carrier.dial(dial_request(to="+8112"))

    assert raised.value.code == "21211"
    assert "Invalid 'To' Phone Number" in raised.value.message
    assert network.calls == []


def test_ambiguous_500_is_reconciled_instead_of_dialling_again(carrier, network, dial_request, sleeps):
    network.fail_next_creates("created-then-500")

    placed = carrier.dial(dial_request())

    [call] = network.calls
    assert placed.sid == call.sid
    assert len(sleeps) == 1


def test_ambiguous_failures_until_the_last_try_raise_transient(network, dial_request, sleeps):
    carrier = TwilioCarrier(
        SIM_ACCOUNT_SID, AUTH_TOKEN, SIM_FROM_NUMBER, api_base_url=network.base_url, max_tries=2, sleep=sleeps.append
    )
    network.fail_next_creates((500, 20500), (500, 20500))
    try:
        with pytest.raises(TransientCarrierError):
            carrier.dial(dial_request())
    finally:
        carrier.close()

    assert network.calls == []
    assert len(sleeps) == 1


def test_created_call_found_after_the_last_try_is_returned(network, dial_request, sleeps):
    carrier = TwilioCarrier(
        SIM_ACCOUNT_SID, AUTH_TOKEN, SIM_FROM_NUMBER, api_base_url=network.base_url, max_tries=1, sleep=sleeps.append
    )
    network.fail_next_creates("created-then-500")
    try:
        placed = carrier.dial(dial_request())
    finally:
        carrier.close()

    assert [call.sid for call in network.calls] == [placed.sid]


def test_wrong_auth_token_is_permanent(network, dial_request, sleeps):
    carrier = TwilioCarrier(
        SIM_ACCOUNT_SID, "not-the-token", SIM_FROM_NUMBER, api_base_url=network.base_url, sleep=sleeps.append
    )
    try:
        with pytest.raises(PermanentCarrierError) as raised:
            carrier.dial(dial_request())
    finally:
        carrier.close()

    assert raised.value.code == "20003"
    assert not raised.value.invalid_number
    assert network.calls == []
    assert sleeps == []


def test_unreachable_api_is_transient_and_never_dials_blind(dial_request, sleeps):
    network = SimNetwork(AUTH_TOKEN)
    closed_url = network.start()
    network.stop()
    carrier = TwilioCarrier(
        SIM_ACCOUNT_SID, AUTH_TOKEN, SIM_FROM_NUMBER, api_base_url=closed_url, timeout=2, sleep=sleeps.append
    )
    try:
        with pytest.raises(TransientCarrierError, match="could not check"):
            carrier.dial(dial_request())
    finally:
        carrier.close()

    # After the first connection error the carrier only tried to look for the call, not to create it again.
    assert len(sleeps) == 1


def test_find_calls_returns_recent_calls_to_the_number_newest_first(carrier, network, dial_request):
    before = datetime.now(ZoneInfo("Asia/Tokyo")) - timedelta(minutes=1)
    first = carrier.dial(dial_request())
    carrier.dial(dial_request(to="+819012345672"))
    second = carrier.dial(dial_request())

    found = carrier.find_calls(PRESSES_1, before)

    assert [call.sid for call in found] == [second.sid, first.sid]
    # A local time is converted to UTC before it reaches the filter.
    assert carrier.find_calls(PRESSES_1, datetime.now(ZoneInfo("Asia/Tokyo")) + timedelta(hours=1)) == []
    assert carrier.find_calls(PRESSES_1, datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1))


def test_find_calls_finds_a_call_still_waiting_in_the_accounts_queue(carrier, network, dial_request):
    before = datetime.now(UTC) - timedelta(seconds=5)
    network.hold_queue()
    queued = carrier.dial(dial_request())
    by_start_time = requests.get(  # what a lookup by StartTime> alone would see
        f"{network.base_url}/2010-04-01/Accounts/{SIM_ACCOUNT_SID}/Calls.json",
        params={"To": PRESSES_1, "StartTime>": before.strftime("%Y-%m-%dT%H:%M:%SZ")},
        auth=(SIM_ACCOUNT_SID, AUTH_TOKEN), timeout=10,
    ).json()["calls"]

    found = carrier.find_calls(PRESSES_1, before)
    network.release_queue()

    assert by_start_time == []  # a queued call has no start time yet, as on Twilio
    assert [(call.sid, call.status) for call in found] == [(queued.sid, "queued")]


def test_find_calls_with_a_wrong_token_is_permanent(network):
    carrier = TwilioCarrier(SIM_ACCOUNT_SID, "not-the-token", SIM_FROM_NUMBER, api_base_url=network.base_url)
    try:
        with pytest.raises(PermanentCarrierError) as raised:
            carrier.find_calls(PRESSES_1, datetime.now(UTC))
    finally:
        carrier.close()

    assert raised.value.code == "20003"


def test_call_status_follows_the_call(carrier, network, dial_request):
    placed = carrier.dial(dial_request())
    assert network.wait_idle()

    assert carrier.call_status(placed.sid) == "completed"


def test_call_status_of_unknown_call_is_permanent(carrier):
    with pytest.raises(PermanentCarrierError) as raised:
        carrier.call_status("CA" + "f" * 32)

    assert raised.value.code == "20404"


def test_logs_never_hold_a_full_phone_number(carrier, network, dial_request, caplog):
    caplog.set_level(logging.INFO)
    network.fail_next_creates((429, 20429), "created-then-500")

    carrier.dial(dial_request())
    assert network.wait_idle()

    assert "+81******5671" in caplog.text
    assert PRESSES_1 not in caplog.text
    assert PRESSES_1[1:] not in caplog.text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("+819012345678", "+81******5678"),
        ("call to +819012345678 failed", "call to +81******5678 failed"),
        ("To=%2B819012345678&PageSize=20", "To=%2B81******5678&PageSize=20"),
        ("090-1234-5678", "***-****-5678"),
        ("0312345678", "******5678"),
        ("CA0901234567890abcdef0123456789ab", "CA0901234567890abcdef0123456789ab"),
        ("2024-07-01 10:00", "2024-07-01 10:00"),
        ("", ""),
    ],
)
def test_mask_phone(text, masked):
    assert mask_phone(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("hanako@example.jp", "h*****@example.jp"),
        ("to a@b.co and taro.yamada@example.com", "to a*@b.co and t**********@example.com"),
        ("no address here", "no address here"),
    ],
)
def test_mask_email(text, masked):
    assert mask_email(text) == masked


def test_the_create_call_form_validates_against_twilios_openapi_document(carrier, network, dial_request):
    spec = json.loads((Path(__file__).parent / "specs" / "twilio_api_v2010_calls.json").read_text(encoding="utf-8"))
    operation = spec["paths"]["/2010-04-01/Accounts/{AccountSid}/Calls.json"]["post"]
    schema = dict(operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"])
    schema["components"] = spec["components"]
    carrier.dial(dial_request())
    [call] = network.calls
    # A form carries strings; read each field as the schema types it, as Twilio does.
    form = {}
    for name, values in call.form.items():
        kind = schema["properties"][name].get("type")
        form[name] = values if kind == "array" else int(values[0]) if kind == "integer" else values[0]
    assert list(OAS30Validator(schema).iter_errors(form)) == []
    assert set(schema["required"]) <= set(form)
    response = dict(operation["responses"]["201"]["content"]["application/json"]["schema"])
    response["components"] = spec["components"]
    resource = requests.get(f"{network.base_url}/2010-04-01/Accounts/{SIM_ACCOUNT_SID}/Calls/{call.sid}.json",
                            auth=(SIM_ACCOUNT_SID, AUTH_TOKEN), timeout=5)
    assert list(OAS30Validator(response).iter_errors(resource.json())) == []
