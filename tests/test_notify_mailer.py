from __future__ import annotations

from notify.mailer import mask_address, mask_addresses


def test_mask_address_keeps_first_letter_and_domain() -> None:
    assert mask_address("hanako@example.jp") == "h*****@example.jp"
    assert mask_address("a@example.jp") == "a*@example.jp"
    assert mask_address("not-an-address") == "********"


def test_mask_addresses_in_free_text() -> None:
    text = "550 rejected <hanako@example.jp>, cc taro.yamada@mail.example.com"

    assert mask_addresses(text) == "550 rejected <h*****@example.jp>, cc t**********@mail.example.com"
