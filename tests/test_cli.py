"""The fixed commands (PRODUCT.md §8), run through Flask's CLI runner."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from freezegun import freeze_time
from sqlalchemy import create_engine, inspect, select

from app import create_app
from scheduler.runner import build_scheduler
from store.models import CheckIn, Resident
from tests.phone_system import PhoneSystem

NINE_JST = datetime(2026, 12, 5, 0, 0, tzinfo=UTC)


@pytest.fixture
def phone(settings):
    with freeze_time(NINE_JST):
        system = PhoneSystem(settings)
        yield system
        system.close()


def invoke(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def test_db_upgrade_creates_the_schema(settings, tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    app = create_app(replace(settings, database_url=url))
    result = invoke(app, "db", "upgrade")
    assert result.exit_code == 0, result.output
    engine = create_engine(url)
    assert {"residents", "checkins", "call_attempts", "answers", "emails"} <= set(inspect(engine).get_table_names())
    engine.dispose()
    app.extensions["mimamori"].close()


def test_scheduler_tick_at_an_instant_runs_the_whole_pass(phone):
    phone.add_resident("r1", "+81312340001", now=NINE_JST)
    result = invoke(phone.app, "scheduler", "tick", "--at", "2026-12-05T09:00:00+09:00")
    assert result.exit_code == 0, result.output
    assert "planned=1 dialled=1" in result.output and "emails_sent=2" in result.output
    assert phone.checkin("r1").status == "answered"


@pytest.mark.parametrize("at", ["2026-12-05T09:00", "tomorrow"])
def test_scheduler_tick_refuses_an_instant_without_a_zone_or_unreadable(phone, at):
    result = invoke(phone.app, "scheduler", "tick", "--at", at)
    assert result.exit_code == 2 and "--at" in result.output
    assert phone.sim.calls == []


def test_checkins_call_places_an_extra_call(phone):
    phone.add_resident("r1", "+81312340001", now=NINE_JST)
    result = invoke(phone.app, "checkins", "call", "r1")
    assert result.exit_code == 0, result.output
    with phone.runtime.session_factory() as session:
        checkin = session.scalars(select(CheckIn)).one()
    assert checkin.slot.startswith("extra-") and checkin.status == "answered"
    assert len(phone.sim.calls) == 1


def test_checkins_call_refuses_unknown_residents_and_after_hours(phone):
    phone.add_resident("r1", "+81312340001", now=NINE_JST)
    assert "no resident" in invoke(phone.app, "checkins", "call", "nobody").output
    with freeze_time(datetime(2026, 12, 5, 12, 0, tzinfo=UTC)):  # 21:00 JST
        result = invoke(phone.app, "checkins", "call", "r1")
    assert result.exit_code == 1 and "outside calling hours" in result.output
    assert phone.sim.calls == []


def test_demo_seed_adds_residents_once(settings):
    app = create_app(settings)
    first = invoke(app, "demo", "seed")
    second = invoke(app, "demo", "seed")
    assert first.exit_code == 0 and "added 6 demo residents" in first.output
    assert "residents exist already" in second.output
    with app.extensions["mimamori"].session_factory() as session:
        assert len(session.scalars(select(Resident)).all()) == 6
    app.extensions["mimamori"].close()


def test_the_scheduler_has_fixed_jobs_that_never_overlap(settings):
    app = create_app(settings)
    scheduler = build_scheduler(app.extensions["mimamori"])
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"checkins.calls", "notify.mail"}
    for job in jobs.values():
        assert job.max_instances == 1 and job.coalesce is True
    assert str(scheduler.timezone) == "UTC"
    app.extensions["mimamori"].close()
