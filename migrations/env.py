"""Alembic environment: the URL comes from farm (config.attributes["db_url"]) so secrets stay out of files."""

from __future__ import annotations

from alembic import context

from farm.db.models import Base
from farm.db.session import get_engine

config = context.config
url = config.attributes.get("db_url")


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    with get_engine(url).connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
