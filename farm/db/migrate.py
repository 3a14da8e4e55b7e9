"""Alembic, driven from code: the only way the schema is created, in tests too."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import migrations
from farm.db.session import get_engine, redact
from farm.errors import FarmError

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["db_url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    assert head is not None
    return head


def current_revision(url: str) -> str | None:
    with get_engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def ensure_schema(url: str) -> None:
    """Create the schema on an empty database; refuse to touch one that is behind (say how to fix)."""
    current = current_revision(url)
    if current == head_revision():
        return
    if current is None:
        upgrade(url)
        return
    raise FarmError(
        f"database {redact(url)} is at revision {current}, not {head_revision()}: run `farm db upgrade`"
    )
