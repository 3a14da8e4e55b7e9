"""The dashboard on PostgreSQL: every page with data and empty, the indexes of migration 0004, the CLI."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect
from streamlit.testing.v1 import AppTest

from farm.cli.main import cli
from farm.db.migrate import ensure_schema
from farm.db.session import get_engine
from tests.dashboard.conftest import PAGES, VIEWS, seed_small

DASHBOARD_INDEXES = {
    "runs": {"ix_runs_selection", "ix_runs_created", "ix_runs_job"},
    "board_events": {"ix_board_events_at"},
}


def run_page(page: str) -> AppTest:
    at = AppTest.from_file(str(VIEWS / f"{page}.py"), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.postgres
def test_every_page_on_postgres(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ensure_schema(pg_url)
    monkeypatch.setenv("FARM_DB_URL", pg_url)
    for page in PAGES:
        assert run_page(page).info, f"{page}: an empty database says so"
    seed_small(pg_url)
    for page in PAGES:
        at = run_page(page)
        assert at.dataframe, page
    inspector = inspect(get_engine(pg_url))
    for table, names in DASHBOARD_INDEXES.items():
        assert names <= {ix["name"] for ix in inspector.get_indexes(table)}


def test_dashboard_indexes_on_sqlite(empty_db: str) -> None:
    inspector = inspect(get_engine(empty_db))
    for table, names in DASHBOARD_INDEXES.items():
        assert names <= {ix["name"] for ix in inspector.get_indexes(table)}


def test_farm_dashboard_command_is_registered() -> None:
    result = CliRunner().invoke(cli, ["dashboard", "--help"])
    assert result.exit_code == 0
    assert "--port" in result.output and "--db" in result.output
