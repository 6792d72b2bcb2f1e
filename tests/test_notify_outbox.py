from __future__ import annotations

from dataclasses import replace
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from notify.mailer import PermanentMailError
from notify.outbox import OutboxMailer
from tests.factories import sample_email

EMAIL = sample_email()


def parse(path: Path) -> EmailMessage:
    with path.open("rb") as handle:
        return BytesParser(policy=policy.default).parse(handle)


def test_writes_a_parseable_multipart_message(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"  # created on first use

    name = OutboxMailer(outbox).send(EMAIL)

    message = parse(outbox / name)
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == EMAIL.subject
    assert message["From"].addresses == (Address("みまもりでんわ", addr_spec="mimamori@example.org"),)
    assert message["To"].addresses == (Address("山田 一郎", addr_spec="hanako@example.jp"),)
    assert parsedate_to_datetime(message["Date"]) == EMAIL.created_at
    assert message["Message-ID"] == "<report-0123abcd@mimamori.local>"
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    assert plain.get_content_charset() == html.get_content_charset() == "utf-8"
    assert plain.get_content() == EMAIL.text
    assert html.get_content() == EMAIL.html


def test_raw_headers_are_ascii_encoded_words(tmp_path: Path) -> None:
    name = OutboxMailer(tmp_path).send(EMAIL)

    head = (tmp_path / name).read_bytes().split(b"\n\n", 1)[0]
    head.decode("ascii")  # non-ASCII names and subjects travel as RFC 2047 encoded words
    assert b"<hanako@example.jp>" in head


def test_sending_twice_replaces_the_same_file(tmp_path: Path) -> None:
    mailer = OutboxMailer(tmp_path)

    first = mailer.send(EMAIL)
    second = mailer.send(EMAIL)

    assert first == second == "report-0123abcd.eml"
    assert [path.name for path in tmp_path.iterdir()] == [first]  # no second copy, no temp file left


def test_message_key_cannot_escape_the_directory(tmp_path: Path) -> None:
    email = replace(EMAIL, message_key="../etc/passwd x")

    name = OutboxMailer(tmp_path / "outbox").send(email)

    assert name == "_etc_passwd_x.eml"
    assert (tmp_path / "outbox" / name).exists()
    assert parse(tmp_path / "outbox" / name)["Message-ID"] == "<_etc_passwd_x@mimamori.local>"


@pytest.mark.parametrize("address", ["no-at-sign", "hanako@example.jp\r\nBcc: x@example.com"])
def test_malformed_address_is_permanent(tmp_path: Path, address: str) -> None:
    email = replace(EMAIL, to_email=address)

    with pytest.raises(PermanentMailError):
        OutboxMailer(tmp_path).send(email)
    assert list(tmp_path.iterdir()) == []
