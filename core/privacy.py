"""Masking of personal data before it reaches a log line.

Residents' phone numbers and their families' e-mail addresses must never be
logged in full; the masked forms keep just enough to tell entries apart.
"""

from __future__ import annotations

import logging
import re

KEPT_DIGITS = 4

# E.164 (also URL-encoded, as in a logged query string) or a Japanese domestic
# number such as 090-1234-5678. The look-arounds keep runs of digits inside
# longer tokens (call SIDs, hex ids) untouched.
_PHONE = re.compile(
    r"(?<![0-9A-Za-z])"
    r"(?P<plus>\+|%2[Bb])?(?P<number>(?(plus)\d{6,15}|0\d{1,4}[- ]?\d{1,4}[- ]?\d{3,4}))"
    r"(?![0-9A-Za-z])"
)
_EMAIL = re.compile(r"(?P<local>[A-Za-z0-9._%+-]+)@(?P<domain>[A-Za-z0-9.-]+\.[A-Za-z]{2,})")


def mask_phone(text: str) -> str:
    """Mask every phone number in `text`, keeping the country code and the last four digits.

    >>> mask_phone("+819012345678")
    '+81******5678'
    """
    return _PHONE.sub(_mask_phone_match, text)


def mask_email(text: str) -> str:
    """Mask the local part of every e-mail address in `text`, keeping its first character.

    >>> mask_email("hanako@example.jp")
    'h*****@example.jp'
    """
    return _EMAIL.sub(_mask_email_match, text)


def _mask_phone_match(match: re.Match[str]) -> str:
    plus = match.group("plus") or ""
    number = match.group("number")
    # An international number keeps its first two digits: the country code, for Japan.
    shown_head = 2 if plus else 0
    digit_count = sum(character.isdigit() for character in number)
    masked: list[str] = []
    seen = 0
    for character in number:
        if not character.isdigit():
            masked.append(character)
            continue
        keep = seen < shown_head or seen >= digit_count - KEPT_DIGITS
        masked.append(character if keep else "*")
        seen += 1
    return plus + "".join(masked)


def _mask_email_match(match: re.Match[str]) -> str:
    local = match.group("local")
    return f"{local[0]}{'*' * max(len(local) - 1, 1)}@{match.group('domain')}"


def install_log_masking() -> None:
    """Mask phone numbers and email addresses in every log record, whoever handles it.

    A record factory rather than a handler filter, so that handlers added later
    (a test's capture, a log shipper) never see the raw text either.
    """
    current = logging.getLogRecordFactory()
    if getattr(current, "masks_personal_data", False):
        return

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = current(*args, **kwargs)
        message = record.getMessage()
        masked = mask_email(mask_phone(message))
        if masked != message:
            record.msg, record.args = masked, None
        return record

    factory.masks_personal_data = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
