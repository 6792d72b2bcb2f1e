"""The mailer port: what the delivery relay needs from an email provider."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

_ADDRESS = re.compile(r"([^\s@<>()\"',;:]+)@([^\s@<>()\"',;:]+)")


@dataclass(frozen=True)
class OutgoingEmail:
    message_key: str  # stable per email: the Message-ID basis and the idempotency key
    to_email: str
    to_name: str
    from_email: str
    from_name: str
    subject: str
    text: str
    html: str
    category: str  # report | urgent | absent
    created_at: datetime


class MailError(Exception):
    """The provider did not accept the email."""


class TransientMailError(MailError):
    """Not accepted this time (rate limit, outage, timeout); try again later."""


class PermanentMailError(MailError):
    """Will never be accepted as it is (bad address, rejected payload, bad credentials)."""


class Mailer(Protocol):
    def send(self, email: OutgoingEmail) -> str:
        """Hand one email to the provider and return its message id.

        Raises TransientMailError or PermanentMailError.
        """


def mask_address(address: str) -> str:
    """hanako@example.jp -> h*****@example.jp: enough for staff to recognise, too little to harvest."""
    local, at, domain = address.rpartition("@")
    if not at:
        return "*" * min(len(address), 8)
    return f"{local[:1]}{'*' * max(len(local) - 1, 1)}@{domain}"


def mask_addresses(text: str) -> str:
    """Mask every address inside a free-text message (provider errors may echo them)."""
    return _ADDRESS.sub(lambda match: mask_address(match.group(0)), text)
