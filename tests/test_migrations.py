"""The migrations produce exactly the models' schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from store.migrate import downgrade, upgrade
from store.models import Base


def schema_differences(engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def test_migrated_schema_matches_the_models(engine):
    assert schema_differences(engine) == []


def test_migrations_go_down_and_up_again(database_url, engine):
    downgrade(database_url, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(database_url)
    engine.dispose()
    assert schema_differences(engine) == []
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
