"""The mailer port: what the delivery relay needs from an email provider."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


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

