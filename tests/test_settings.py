from __future__ import annotations

from datetime import time

import pytest

from settings import Settings, SettingsError


def test_defaults_are_the_brief_s():
    settings = Settings.from_env({})
    assert settings.database_url == "sqlite:///instance/mimamori.db"
    assert (settings.carrier, settings.mail_backend, settings.carrier_cps) == ("sim", "outbox", 1.0)
    assert (settings.retry_delay_minutes, settings.max_attempts) == (30, 2)
    assert str(settings.calling_hours) == "08:00-20:00" and settings.default_timezone == "Asia/Tokyo"
    assert settings.public_base_url == "http://127.0.0.1:5000"


def test_values_are_read_and_normalised():
    settings = Settings.from_env({
        "DATABASE_URL": "postgres://u@h/db", "PUBLIC_BASE_URL": "https://x.example/", "CARRIER_CPS": "5",
        "CALLING_HOURS": "09:30-24:00", "RETRY_DELAY_MINUTES": "45", "MAX_ATTEMPTS": "3",
    })
    assert settings.database_url == "postgresql+psycopg://u@h/db"
    assert settings.public_base_url == "https://x.example"
    assert settings.carrier_cps == 5 and settings.retry_delay_minutes == 45 and settings.max_attempts == 3
    assert settings.calling_hours.start == time(9, 30) and settings.calling_hours.end is None


@pytest.mark.parametrize("env, name", [
    ({"CARRIER": "pigeon"}, "CARRIER"),
    ({"MAIL_BACKEND": "fax"}, "MAIL_BACKEND"),
    ({"CARRIER": "twilio"}, "TWILIO_ACCOUNT_SID"),
    ({"MAIL_BACKEND": "sendgrid"}, "SENDGRID_API_KEY"),
    ({"RETRY_DELAY_MINUTES": "90"}, "RETRY_DELAY_MINUTES"),
    ({"CARRIER_CPS": "fast"}, "CARRIER_CPS"),
    ({"CALLING_HOURS": "20:00-08:00"}, "CALLING_HOURS"),
    ({"DEFAULT_TIMEZONE": "Mars/Olympus"}, "DEFAULT_TIMEZONE"),
])
def test_bad_values_name_the_variable(env, name):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)


def test_the_development_secret_is_generated_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = Settings().with_secret_key().secret_key
    second = Settings().with_secret_key().secret_key
    assert len(first) > 40 and first == second
    assert (tmp_path / "instance" / "secret_key").stat().st_mode & 0o077 == 0
    assert Settings(secret_key="given").with_secret_key().secret_key == "given"


def test_sim_and_twilio_webhooks_use_different_keys():
    sim = Settings(secret_key="s")
    twilio = Settings(secret_key="s", carrier="twilio", twilio_auth_token="tok")
    assert twilio.webhook_auth_token == "tok" and sim.webhook_auth_token not in ("s", "tok")
