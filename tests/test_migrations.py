"""The migrations produce exactly the models' schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, insert, inspect, select

from store.migrate import downgrade, upgrade
from store.models import Base, Email


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


def test_going_down_past_rendering_by_the_relay_keeps_unsent_emails(database_url, engine):
    now = datetime(2026, 12, 5, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(insert(Email.__table__).values(
            purpose="report:checkin-1:a@example.org", kind="report", to_email="a@example.org", to_name="家族",
            language="ja", facts={"resident": "山田 花子"}, status="pending", attempts=0, next_attempt_at=now,
            created_at=now,
        ))
    with pytest.raises(RuntimeError, match="not rendered yet"):
        downgrade(database_url, "0001_initial")
    upgrade(database_url)  # the later revisions it did undo come back
    engine.dispose()
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Email.__table__)) == 1
    assert schema_differences(engine) == []
