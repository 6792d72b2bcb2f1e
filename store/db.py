"""Engines and sessions. One engine per process; one session per request or job."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from sqlalchemy import Engine, Insert, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, **options) -> Engine:
    if url.startswith("sqlite"):
        _ensure_sqlite_folder(url)
        engine = create_engine(url, connect_args={"timeout": 30}, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    options.setdefault("pool_pre_ping", True)
    return create_engine(url, **options)


def _ensure_sqlite_folder(url: str) -> None:
    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    # WAL lets the web process read while the scheduler writes; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def insert_or_ignore(session: Session, table: Table) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id, for the session's database.

    Idempotent writes in one statement. Execute it with the rows as parameters: the statement
    is built once per database and table, and compiled once, which matters in webhooks.
    """
    return _insert_or_ignore(session.get_bind().dialect.name, table)


@cache
def _insert_or_ignore(dialect: str, table: Table) -> Insert:
    if dialect == "postgresql":
        statement = postgresql.insert(table)
    elif dialect == "sqlite":
        statement = sqlite.insert(table)
    else:
        raise ValueError(f"PostgreSQL and SQLite are supported, not {dialect}")
    return statement.on_conflict_do_nothing().returning(table.c.id)
