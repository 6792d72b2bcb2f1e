"""Alembic environment: the database URL comes from the caller (store.migrate), never from a file."""

from alembic import context

from settings import Settings
from store.db import make_engine
from store.models import Base

config = context.config
database_url = config.attributes.get("database_url") or Settings.from_env().database_url


def run_migrations() -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                compare_type=True,
                render_as_batch=connection.dialect.name == "sqlite",
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
    finally:
        engine.dispose()  # also when a revision refuses to run


run_migrations()
