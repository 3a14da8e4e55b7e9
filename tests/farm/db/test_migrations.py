"""The schema comes only from Alembic, on SQLite and PostgreSQL, and matches the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from farm.db import migrate
from farm.db.models import Base
from farm.db.session import get_engine

TABLES = {"sweeps", "jobs", "artifacts", "boards", "runs", "metrics", "provenance", "schedules"}


def _check_schema(url: str) -> None:
    assert migrate.current_revision(url) is None
    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()
    engine = get_engine(url)
    assert set(inspect(engine).get_table_names()) >= TABLES
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
    uniques = {u["name"] for u in inspect(engine).get_unique_constraints("runs")}
    assert "uq_runs_idempotency_key" in uniques
    migrate.downgrade(url, "base")
    assert not (TABLES & set(inspect(engine).get_table_names()))


def test_migrations_sqlite(tmp_path: Path) -> None:
    _check_schema(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
def test_migrations_postgres(pg_url: str) -> None:
    _check_schema(pg_url)


def test_ensure_schema_creates_then_accepts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    migrate.ensure_schema(url)
    migrate.ensure_schema(url)
    assert migrate.current_revision(url) == migrate.head_revision()
