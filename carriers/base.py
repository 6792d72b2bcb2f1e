"""The carrier port: what the check-in services need from a phone network."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

TWILIO_API_BASE_URL = "https://api.twilio.com"

# Carrier error codes that mean the number itself is wrong: retrying cannot help.
INVALID_NUMBER_CODES = frozenset({"21211", "21214", "21217", "13224"})


@dataclass(frozen=True)
class DialRequest:
    to: str  # E.164
    answer_url: str  # fetched when the call is answered
    status_url: str  # receives call progress events
    ring_seconds: int = 30
    detect_machines: bool = True


@dataclass(frozen=True)
class PlacedCall:
    sid: str
    status: str


class CarrierError(Exception):
    """The carrier refused or failed to place a call."""


class TransientCarrierError(CarrierError):
    """Not placed this time (rate limit, outage); safe to try again later."""


class PermanentCarrierError(CarrierError):
    """Refused for a reason that retrying will not fix."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def invalid_number(self) -> bool:
        return self.code in INVALID_NUMBER_CODES


class Carrier(Protocol):
    def dial(self, request: DialRequest) -> PlacedCall:
        """Place one call. Raises TransientCarrierError or PermanentCarrierError."""

    def find_calls(self, to: str, since: datetime) -> list[PlacedCall]:
        """Calls to `to` created at or after `since`: how a crash between dial and commit is reconciled."""

    def call_status(self, sid: str) -> str:
        """The carrier's current status of a call."""
