from __future__ import annotations

from core.privacy import mask_email


def test_addresses_in_provider_errors_are_masked() -> None:
    text = "550 rejected <hanako@example.jp>, cc taro.yamada@mail.example.com"

    assert mask_email(text) == "550 rejected <h*****@example.jp>, cc t**********@mail.example.com"
