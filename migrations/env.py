"""Alembic environment: farm.db.migrate hands over its connection (config.attributes["connection"]), already
in the one transaction that holds the schema lock, so every migration of a run commits or rolls back
together. The URL comes from farm too, so secrets stay out of files."""

from __future__ import annotations

from alembic import context

from farm.db.models import Base

config = context.config


def run_migrations_offline() -> None:
    url = config.attributes.get("db_url")
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes["connection"]
    # transactional_ddl: Alembic assumes SQLite has none, but schema_engine gives it (see farm.db.session)
    context.configure(
        connection=connection, target_metadata=Base.metadata, render_as_batch=True, transactional_ddl=True
    )
    with context.begin_transaction():  # a no-op: the caller's transaction is the one
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
