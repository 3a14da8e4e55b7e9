"""Alembic, driven from code: the only way the schema is created, in tests too.

Every schema change runs on one connection, in one transaction, under a lock: on PostgreSQL an advisory
lock, on SQLite the write lock (BEGIN IMMEDIATE, with DDL inside the transaction: see
``farm.db.session.schema_engine``). So a migration that fails half-way leaves the database exactly as it
was (its old revision and tables), and processes that meet a brand-new database at once (32 first
``farm submit``s) create the schema once: the others wait for the lock, then find it at head.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from farm import migrations
from farm.db.session import get_engine, redact, schema_engine
from farm.errors import FarmError

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent

#: The PostgreSQL advisory lock key schema changes take ("farm" in ASCII): held until the transaction ends.
PG_SCHEMA_LOCK = 0x6661726D


def alembic_config(url: str, version_locations: list[Path] | None = None) -> Config:
    """``version_locations`` adds script folders (tests add a failing migration this way)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if version_locations:
        folders = [MIGRATIONS_DIR / "versions", *version_locations]
        cfg.set_main_option("path_separator", "os")
        cfg.set_main_option("version_locations", os.pathsep.join(str(f) for f in folders))
    cfg.attributes["db_url"] = url
    return cfg


@contextmanager
def schema_lock(url: str) -> Iterator[Connection]:
    """A connection in a transaction that holds the schema lock; commits on success, rolls back on error."""
    engine = schema_engine(url)
    try:
        with engine.connect() as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_SCHEMA_LOCK})
            yield conn
    finally:
        if engine.dialect.name == "sqlite":  # schema_engine made a dedicated engine for this
            engine.dispose()
            # SQLite connections pooled before the change keep their schema cache for PRAGMAs (an
            # inspector would see no new indexes): the shared engine starts afresh.
            get_engine(url).dispose()


def upgrade(url: str, revision: str = "head", *, config: Config | None = None) -> None:
    """Migrate to ``revision``, all steps in one transaction: a failure anywhere changes nothing."""
    cfg = config or alembic_config(url)
    with schema_lock(url) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(url: str, revision: str) -> None:
    cfg = alembic_config(url)
    with schema_lock(url) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    assert head is not None
    return head


def current_revision(url: str) -> str | None:
    with get_engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def ensure_schema(url: str) -> None:
    """Create the schema on an empty database; refuse to touch one that is behind (say how to fix).

    The common case (already at head) reads one row and takes no lock."""
    current = current_revision(url)
    if current is None:
        cfg = alembic_config(url)
        with schema_lock(url) as conn:
            current = MigrationContext.configure(conn).get_current_revision()  # again, under the lock
            if current is None:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                return
    if current != head_revision():
        raise FarmError(
            f"database {redact(url)} is at revision {current}, not {head_revision()}: run `farm db upgrade`"
        )
