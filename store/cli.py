"""`flask db ...`: migrations with Alembic."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from store import migrate

db_cli = AppGroup("db", help="Database migrations.")


def _url() -> str:
    return current_app.extensions["mimamori"].settings.database_url


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Migrate the database up to REVISION (default: the latest)."""
    migrate.upgrade(_url(), revision)


@db_cli.command("downgrade")
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Migrate the database down to REVISION."""
    migrate.downgrade(_url(), revision)


@db_cli.command("current")
def current() -> None:
    """Show the database's revision."""
    migrate.current(_url())


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
def revision(message: str) -> None:
    """Write a new migration from the difference between the models and the database."""
    migrate.revision(_url(), message)
