"""`flask residents import FILE.csv` and `flask residents export` (PRODUCT.md §8)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from residents.records import parse_csv_bytes, to_csv
from residents.service import export_records, import_residents

residents_cli = AppGroup("residents", help="Import and export residents as CSV.")


@residents_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_command(file: Path) -> None:
    """Create or update residents from FILE (UTF-8 CSV). A file with any bad row changes nothing."""
    mimamori = current_app.extensions["mimamori"]
    parsed = parse_csv_bytes(file.read_bytes(), calling_hours=mimamori.settings.calling_hours)
    if parsed.errors:
        click.echo(f"rejected {file}: {_count(len(parsed.errors), 'problem')}", err=True)
        for error in parsed.errors:
            click.echo(f"line {error.line}: {error.reason}", err=True)
        raise click.exceptions.Exit(1)
    with mimamori.session_factory.begin() as session:
        summary = import_residents(
            session,
            parsed.records,
            now=datetime.now(UTC),
            default_timezone=mimamori.settings.default_timezone,
        )
    click.echo(
        f"imported {_count(summary.total, 'resident')}: "
        f"{summary.created} created, {summary.updated} updated, {summary.unchanged} unchanged"
    )


@residents_cli.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
def export_command(output: Path | None) -> None:
    """Write every resident as CSV, in the format `import` reads."""
    mimamori = current_app.extensions["mimamori"]
    with mimamori.session_factory() as session:
        records = export_records(session)
    if output is None:
        click.echo(to_csv(records), nl=False)
        return
    # The BOM makes Excel read the file as UTF-8; import accepts it.
    output.write_text(to_csv(records), encoding="utf-8-sig", newline="")
    click.echo(f"exported {_count(len(records), 'resident')} to {output}")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
