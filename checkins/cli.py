"""`flask checkins call EXTERNAL_ID` and `flask demo seed`."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func, select

from checkins.dialing import Dialler
from core.schedule import calling_window, local_date
from residents.records import ContactRecord, ResidentRecord
from residents.service import import_residents
from store.models import CheckIn, Resident

checkins_cli = AppGroup("checkins", help="Check-in calls.")
demo_cli = AppGroup("demo", help="The demonstration data set.")


@checkins_cli.command("call")
@click.argument("external_id")
def call(external_id: str) -> None:
    """Place an extra check-in call to a resident now (within calling hours only)."""
    runtime = current_app.extensions["mimamori"]
    settings = runtime.settings
    now = datetime.now(UTC)
    try:
        with runtime.session_factory.begin() as session:
            resident = session.scalars(select(Resident).where(Resident.external_id == external_id)).first()
            if resident is None:
                raise click.ClickException(f"no resident with external_id {external_id!r}")
            if resident.phone_status != "ok":
                raise click.ClickException(f"{external_id}: the phone number is marked invalid")
            day = local_date(now, resident.timezone)
            window = calling_window(day, resident.timezone, settings.calling_hours)
            if not window.contains(now):
                raise click.ClickException(f"outside calling hours ({settings.calling_hours}, {resident.timezone})")
            checkin = CheckIn(
                resident_id=resident.id, local_date=day, channel="phone",
                slot=f"extra-{now.astimezone(ZoneInfo(resident.timezone)):%H%M%S}", status="scheduled",
                next_attempt_at=now, window_closes_at=window.closes, created_at=now,
            )
            session.add(checkin)
            session.flush()
            checkin_id = checkin.id
        report = Dialler(runtime.session_factory, runtime.carrier, settings, runtime.owner).call_now(checkin_id, now)
        runtime.wait_for_calls()
    finally:
        runtime.close()
    if not report.dialled:
        raise click.ClickException(f"{external_id}: the call could not be placed (see the log)")
    click.echo(f"called {external_id} (check-in {checkin_id})")


DEMO_FAMILY = ("家族 太郎", "family{n}@example.org")
# Numbers end in the digit that picks the simulated resident's behaviour (see carriers/sim.py).
DEMO_RESIDENTS = (
    ("demo-1", "山田 花子", "+81312340001"),  # presses 1: good
    ("demo-2", "佐藤 一郎", "+81312340002"),  # presses 2: as usual
    ("demo-3", "鈴木 ハナ", "+81312340004"),  # says げんきです
    ("demo-4", "高橋 実", "+81312340003"),  # presses 3: not well -> urgent email
    ("demo-5", "田中 トメ", "+81312340006"),  # never answers -> absent email
    ("demo-6", "伊藤 清", "+81312340007"),  # busy, then answers on the retry
)


@demo_cli.command("seed")
def seed() -> None:
    """Add the demo residents if the database has none, due now."""
    runtime = current_app.extensions["mimamori"]
    settings = runtime.settings
    now = datetime.now(UTC)
    with runtime.session_factory.begin() as session:
        if session.scalar(select(func.count()).select_from(Resident)):
            click.echo("residents exist already; demo data not added")
            return
        local_now = now.astimezone(ZoneInfo(settings.default_timezone))
        call_time = local_now.time().replace(second=0, microsecond=0)  # already due: called at the first pass
        records = [
            ResidentRecord(
                external_id=external_id, name=name, phone=phone, call_time=call_time, language="ja",
                channel="phone", municipality="デモ市",
                contacts=(ContactRecord(1, DEMO_FAMILY[0], DEMO_FAMILY[1].format(n=n)),),
            )
            for n, (external_id, name, phone) in enumerate(DEMO_RESIDENTS, start=1)
        ]
        import_residents(session, records, now=now, default_timezone=settings.default_timezone)
    click.echo(f"added {len(records)} demo residents, first calls at {call_time:%H:%M} ({settings.default_timezone}), "
               f"calling hours {settings.calling_hours}, retry after {settings.retry_delay_minutes} min")
    click.echo(f"emails will appear in {settings.mail_outbox_dir}/")
