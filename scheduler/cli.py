"""`flask scheduler run` and `flask scheduler tick [--at ISO-8601]`."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from flask import current_app
from flask.cli import AppGroup

from scheduler.jobs import tick as run_tick
from scheduler.runner import build_scheduler

scheduler_cli = AppGroup("scheduler", help="Plan and place check-in calls, deliver email.")


def parse_instant(_context, _param, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO-8601 date and time") from None
    if instant.tzinfo is None:
        raise click.BadParameter("give a time zone, e.g. 2026-12-05T09:00+09:00 or ...Z")
    return instant.astimezone(UTC)


@scheduler_cli.command("run")
def run() -> None:
    """Run the scheduler until interrupted."""
    runtime = current_app.extensions["mimamori"]
    click.echo(f"scheduler: carrier={runtime.settings.carrier} mail={runtime.settings.mail_backend}; Ctrl-C to stop")
    try:
        build_scheduler(runtime).start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        runtime.close()


@scheduler_cli.command("tick")
@click.option("--at", "at", metavar="ISO-8601", callback=parse_instant, help="Act as of this instant instead of now.")
def tick(at: datetime | None) -> None:
    """One pass of all due work: plan, dial, retry, mark absent, deliver email."""
    runtime = current_app.extensions["mimamori"]
    now = at or datetime.now(UTC)
    try:
        click.echo(run_tick(runtime, now))
    finally:
        runtime.close()
