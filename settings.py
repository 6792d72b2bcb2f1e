"""Configuration, read from the environment once, when the app is built.

The names and defaults are fixed by the product brief (PRODUCT.md §8).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import time
from pathlib import Path

from carriers.base import TWILIO_API_BASE_URL
from core.schedule import CallingHours

INSTANCE_DIR = Path("instance")
SENDGRID_API_HOST = "https://api.sendgrid.com"


class SettingsError(ValueError):
    """A configuration value that cannot be used; the message names it."""


@dataclass(frozen=True)
class Settings:
    database_url: str = f"sqlite:///{INSTANCE_DIR}/mimamori.db"
    secret_key: str = field(default="", repr=False)
    public_base_url: str = "http://127.0.0.1:5000"
    carrier: str = "sim"
    twilio_account_sid: str = ""
    twilio_auth_token: str = field(default="", repr=False)
    twilio_from_number: str = ""
    twilio_api_base_url: str = TWILIO_API_BASE_URL
    carrier_cps: float = 1.0
    mail_backend: str = "outbox"
    mail_outbox_dir: str = str(INSTANCE_DIR / "outbox")
    mail_from: str = "mimamori@localhost"
    sendgrid_api_key: str = field(default="", repr=False)
    sendgrid_api_host: str = SENDGRID_API_HOST
    default_timezone: str = "Asia/Tokyo"
    retry_delay_minutes: int = 30
    max_attempts: int = 2
    calling_hours: CallingHours = CallingHours(time(8, 0), time(20, 0))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        defaults = cls()

        def text(name: str, default: str) -> str:
            value = env.get(name, "").strip()
            return value or default

        def number(name: str, default: float, kind: type, low: float, high: float):
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise SettingsError(f"{name}={raw!r} is not a number") from None
            if not low <= value <= high:
                raise SettingsError(f"{name}={raw!r} must be between {low} and {high}")
            return value

        settings = cls(
            database_url=normalise_database_url(text("DATABASE_URL", defaults.database_url)),
            secret_key=text("SECRET_KEY", ""),
            public_base_url=text("PUBLIC_BASE_URL", defaults.public_base_url).rstrip("/"),
            carrier=text("CARRIER", defaults.carrier).lower(),
            twilio_account_sid=text("TWILIO_ACCOUNT_SID", ""),
            twilio_auth_token=text("TWILIO_AUTH_TOKEN", ""),
            twilio_from_number=text("TWILIO_FROM_NUMBER", ""),
            twilio_api_base_url=text("TWILIO_API_BASE_URL", defaults.twilio_api_base_url).rstrip("/"),
            carrier_cps=number("CARRIER_CPS", defaults.carrier_cps, float, 0.01, 1000),
            mail_backend=text("MAIL_BACKEND", defaults.mail_backend).lower(),
            mail_outbox_dir=text("MAIL_OUTBOX_DIR", defaults.mail_outbox_dir),
            mail_from=text("MAIL_FROM", defaults.mail_from),
            sendgrid_api_key=text("SENDGRID_API_KEY", ""),
            sendgrid_api_host=text("SENDGRID_API_HOST", defaults.sendgrid_api_host).rstrip("/"),
            default_timezone=text("DEFAULT_TIMEZONE", defaults.default_timezone),
            # The brief caps the retry delay at 60 minutes ("call again within the hour").
            retry_delay_minutes=number("RETRY_DELAY_MINUTES", defaults.retry_delay_minutes, int, 1, 60),
            max_attempts=number("MAX_ATTEMPTS", defaults.max_attempts, int, 1, 10),
            calling_hours=_calling_hours(text("CALLING_HOURS", "")) or defaults.calling_hours,
        )
        return settings.validated()

    def validated(self) -> Settings:
        if self.carrier not in ("sim", "twilio"):
            raise SettingsError(f"CARRIER={self.carrier!r}: use 'sim' or 'twilio'")
        if self.mail_backend not in ("outbox", "sendgrid"):
            raise SettingsError(f"MAIL_BACKEND={self.mail_backend!r}: use 'outbox' or 'sendgrid'")
        if self.carrier == "twilio":
            missing = [
                name
                for name, value in (
                    ("TWILIO_ACCOUNT_SID", self.twilio_account_sid),
                    ("TWILIO_AUTH_TOKEN", self.twilio_auth_token),
                    ("TWILIO_FROM_NUMBER", self.twilio_from_number),
                )
                if not value
            ]
            if missing:
                raise SettingsError(f"CARRIER=twilio needs {', '.join(missing)}")
        if self.mail_backend == "sendgrid" and not self.sendgrid_api_key:
            raise SettingsError("MAIL_BACKEND=sendgrid needs SENDGRID_API_KEY")
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(self.default_timezone)
        except Exception:
            raise SettingsError(f"DEFAULT_TIMEZONE={self.default_timezone!r} is not a known zone") from None
        return self

    def with_secret_key(self) -> Settings:
        """Fill SECRET_KEY from instance/secret_key, creating it on first use (development only)."""
        if self.secret_key:
            return self
        path = INSTANCE_DIR / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        return replace(self, secret_key=path.read_text().strip())

    @property
    def webhook_auth_token(self) -> str:
        """The key carrier webhooks are signed with: Twilio's auth token, or the simulator's."""
        if self.carrier == "twilio":
            return self.twilio_auth_token
        return sim_auth_token(self.secret_key)


def sim_auth_token(secret_key: str) -> str:
    import hashlib

    return hashlib.sha256(f"sim-carrier:{secret_key}".encode()).hexdigest()[:32]


def normalise_database_url(url: str) -> str:
    # Heroku-style URLs say postgres:// and SQLAlchemy's default driver is psycopg2; we ship psycopg 3.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _calling_hours(raw: str) -> CallingHours | None:
    if not raw:
        return None
    try:
        return CallingHours.parse(raw)
    except ValueError as error:
        raise SettingsError(f"CALLING_HOURS={raw!r}: {error}") from None
