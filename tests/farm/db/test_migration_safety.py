"""A migration that fails half-way changes nothing: every step of an upgrade runs in one transaction, on
SQLite too (whose Python driver would otherwise commit each CREATE TABLE on its own)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from farm.db import migrate
from farm.db.session import dispose_engines, get_engine

FAILING = '''"""fails half-way: a new table and a new column, then an error"""

import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("half_done", sa.Column("id", sa.Integer(), primary_key=True))
    with op.batch_alter_table("boards") as batch:
        batch.add_column(sa.Column("half_done", sa.Integer(), nullable=True))
    raise RuntimeError("this migration fails half-way")


def downgrade() -> None:
    pass
'''


def _failing_config(url: str, tmp_path: Path):
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "9999_fails.py").write_text(FAILING.format(head=migrate.head_revision()))
    return migrate.alembic_config(url, version_locations=[versions])


def _columns(url: str, table: str) -> set[str]:
    return {c["name"] for c in inspect(get_engine(url)).get_columns(table)}


def _fails_and_changes_nothing(url: str, tmp_path: Path) -> None:
    migrate.upgrade(url)
    before = set(inspect(get_engine(url)).get_table_names())
    boards = _columns(url, "boards")
    with pytest.raises(RuntimeError, match="fails half-way"):
        migrate.upgrade(url, config=_failing_config(url, tmp_path))
    dispose_engines()  # look with fresh connections: nothing cached from before
    assert migrate.current_revision(url) == migrate.head_revision()
    assert set(inspect(get_engine(url)).get_table_names()) == before
    assert _columns(url, "boards") == boards


def test_failed_migration_leaves_sqlite_as_it_was(tmp_path: Path) -> None:
    _fails_and_changes_nothing(f"sqlite:///{tmp_path / 'm.db'}", tmp_path)


@pytest.mark.postgres
def test_failed_migration_leaves_postgres_as_it_was(pg_url: str, tmp_path: Path) -> None:
    _fails_and_changes_nothing(pg_url, tmp_path)


def test_failed_first_upgrade_leaves_sqlite_empty(tmp_path: Path) -> None:
    """From an empty file: the five good migrations before the failing one are rolled back with it."""
    url = f"sqlite:///{tmp_path / 'e.db'}"
    with pytest.raises(RuntimeError, match="fails half-way"):
        migrate.upgrade(url, config=_failing_config(url, tmp_path))
    dispose_engines()
    assert migrate.current_revision(url) is None
    assert inspect(get_engine(url)).get_table_names() == []
