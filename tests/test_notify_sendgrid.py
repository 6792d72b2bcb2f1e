"""The SendGrid adapter against a local HTTP fake of /v3/mail/send."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from python_http_client.exceptions import BadRequestsError
from sendgrid import SendGridAPIClient

from notify.mailer import PermanentMailError, TransientMailError
from notify.sendgrid import SendGridMailer
from tests.factories import sample_email
from tests.fakes.sendgrid import FakeSendGrid

API_KEY = "SG.test-key-not-secret"
EMAIL = sample_email(text="お答え　：元気\n", html="<p>お答え：元気</p>\n")


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(API_KEY) as fake:
        yield fake


@pytest.fixture
def mailer(fake: FakeSendGrid) -> SendGridMailer:
    return SendGridMailer(API_KEY, host=fake.start(), timeout=5)


def test_sends_a_payload_that_validates_against_the_spec(fake: FakeSendGrid, mailer: SendGridMailer) -> None:

    message_id = mailer.send(EMAIL)

    assert message_id == fake.message_ids[0]
    assert fake.rejected == []
    [payload] = fake.sent
    assert list(fake.validator.iter_errors(payload)) == []
    assert payload["from"] == {"email": "mimamori@example.org", "name": "みまもりでんわ"}
    assert payload["personalizations"] == [{"to": [{"email": "hanako@example.jp", "name": "山田 一郎"}]}]
    assert payload["subject"] == EMAIL.subject
    assert payload["content"] == [
        {"type": "text/plain", "value": EMAIL.text},
        {"type": "text/html", "value": EMAIL.html},
    ]
    assert payload["categories"] == ["report"]
    assert payload["custom_args"] == {"message_key": "report-0123abcd"}


def test_fake_rejects_a_payload_the_spec_does_not_allow(fake: FakeSendGrid) -> None:
    client = SendGridAPIClient(API_KEY, host=fake.start())

    with pytest.raises(BadRequestsError) as raised:
        client.send({"personalizations": [{"to": [{"name": "no address"}]}], "subject": "x"})

    assert raised.value.status_code == 400
    assert fake.sent == [] and len(fake.rejected) == 1
    fields = {error["field"] for error in raised.value.to_dict["errors"]}
    assert {None, "personalizations.0.to.0"} <= fields  # `from` missing; `to` without `email`


def test_display_names_drop_characters_sendgrid_refuses(fake: FakeSendGrid, mailer: SendGridMailer) -> None:
    mailer.send(replace(EMAIL, to_name="Yamada, Ichiro; son"))

    assert fake.sent[0]["personalizations"][0]["to"][0]["name"] == "Yamada Ichiro son"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limits_and_outages_are_transient(fake: FakeSendGrid, mailer: SendGridMailer, status: int) -> None:
    fake.fail_next(status)

    with pytest.raises(TransientMailError, match=str(status)):
        mailer.send(EMAIL)
    assert fake.sent == []
    assert mailer.send(EMAIL) == fake.message_ids[0]  # the next try goes through


def test_bad_request_is_permanent_with_sendgrids_reason(fake: FakeSendGrid, mailer: SendGridMailer) -> None:
    fake.fail_next(400)

    with pytest.raises(PermanentMailError) as raised:
        mailer.send(EMAIL)

    assert str(raised.value) == "SendGrid 400: The to email does not contain a valid address."


def test_wrong_api_key_is_permanent_and_not_echoed(fake: FakeSendGrid) -> None:
    mailer = SendGridMailer("SG.wrong-key", host=fake.start())

    with pytest.raises(PermanentMailError, match="401") as raised:
        mailer.send(EMAIL)

    assert "SG." not in str(raised.value)
    assert fake.sent == []


def test_unreachable_server_is_transient() -> None:
    with FakeSendGrid(API_KEY) as stopped:
        host = stopped.start()
    mailer = SendGridMailer(API_KEY, host=host, timeout=5)

    with pytest.raises(TransientMailError, match="unreachable"):
        mailer.send(EMAIL)
