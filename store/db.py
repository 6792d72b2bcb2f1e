"""Engines and sessions. One engine per process; one session per request or job."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

from sqlalchemy import ColumnElement, Connection, Engine, Insert, Table, create_engine, event, literal
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, **options) -> Engine:
    if url.startswith("sqlite"):
        _ensure_sqlite_folder(url)
        engine = create_engine(url, connect_args={"timeout": 30}, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No pool_pre_ping: it costs a round trip per checkout. A connection found dead instead
    # invalidates the pool: a web view runs once more at once (app.py), a scheduler pass
    # fails and the next one, seconds later, runs on new connections.
    return create_engine(url, **options)


def is_lost_connection(error: BaseException) -> bool:
    """The database connection died under the statement (a restart, a failover): worth one more try."""
    return isinstance(error, DBAPIError) and error.connection_invalidated


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


def outside_transaction(session: Session) -> Connection:
    """The session's connection in autocommit mode, for one statement that needs no transaction
    around it (a read, or a single conditional write): no BEGIN and COMMIT round trips.

    Call it first in the session; `session.commit()` then hands the connection back, and the
    session's next statement starts an ordinary transaction.
    """
    return session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def one_of(column: ColumnElement, values: Iterable[object]) -> ColumnElement[bool]:
    """`column IN (...)` for a fixed set of values, written into a statement built once.

    A plain `in_(list)` is expanded anew at every execution, which shows in the webhooks.
    """
    return column.in_([literal(value) for value in values])


def insert_or_ignore(session: Session, table: Table) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id, for the session's database.

    Idempotent writes in one statement. Execute it with the rows as parameters: the statement
    is built once per database and table, and compiled once, which matters in webhooks.
    """
    return _insert_or_ignore(session.get_bind().dialect.name, table)


@cache
def _insert_or_ignore(dialect: str, table: Table) -> Insert:
    return dialect_insert(dialect, table).on_conflict_do_nothing().returning(table.c.id)


def dialect_insert(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """The INSERT construct with ON CONFLICT for the named database."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"PostgreSQL and SQLite are supported, not {dialect}")
