"""Concurrent first use of a brand-new database: every `farm submit` succeeds.

Seen before the fix: of 32 first submits to a new database, 5 crashed with IntegrityError (two processes
each creating the schema, two each adding the same board). Now the schema is created under a lock (an
advisory lock on PostgreSQL, BEGIN IMMEDIATE on SQLite) and boards are inserted if absent. The suite runs
FIRST_SUBMITS processes (forked, so they start together); `python bench/first_use.py` runs the 32 real
`farm submit` processes of the report against both databases.
"""

from __future__ import annotations

import multiprocessing
import traceback
from pathlib import Path

import pytest
from sqlalchemy import func, select

from farm.db import migrate
from farm.db.models import BoardEventRow, BoardRow, SweepRow
from farm.db.session import dispose_engines, session_scope
from tests.conftest import write_sweep

FIRST_SUBMITS = 12

SWEEP = """\
name: first-use
models: [resnet18]
precisions: [fp32]
targets: [cpu]
batch_sizes: [1]
scenarios: [SingleStream]
"""


def _submit(sweep: Path, barrier, results) -> None:
    """One process's `farm submit --no-wait`, started with the others at the barrier."""
    from farm.cli.main import cli

    dispose_engines(close=False)  # nothing from the parent: this is a process of its own
    barrier.wait()
    try:
        cli.main(["submit", "--no-wait", str(sweep)], standalone_mode=False)
        results.put("ok")
    except SystemExit as exc:
        results.put("ok" if not exc.code else f"exit {exc.code}")
    except BaseException:
        results.put(traceback.format_exc())


def _first_submits(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from farm.celery_app import app, configure

    monkeypatch.setenv("FARM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FARM_DB_URL", url)
    # a broker that answers and keeps nothing: the submits publish their compile jobs, nobody runs them
    monkeypatch.setenv("FARM_BROKER_URL", "memory://localhost/")
    monkeypatch.delenv("FARM_ARTIFACT_DIR", raising=False)
    configure(app)
    sweep = write_sweep(tmp_path, SWEEP)
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(FIRST_SUBMITS), ctx.Queue()
    procs = [ctx.Process(target=_submit, args=(sweep, barrier, results)) for _ in range(FIRST_SUBMITS)]
    try:
        for proc in procs:
            proc.start()
        outcomes = [results.get(timeout=300) for _ in procs]
        for proc in procs:
            proc.join()
    finally:
        monkeypatch.delenv("FARM_BROKER_URL")
        configure(app)
    failures = [o for o in outcomes if o != "ok"]
    assert not failures, f"{len(failures)} of {FIRST_SUBMITS} first submits failed:\n" + "\n".join(failures)
    assert migrate.current_revision(url) == migrate.head_revision()
    with session_scope(url) as s:
        assert s.scalar(select(func.count()).select_from(SweepRow)) == FIRST_SUBMITS
        boards = list(s.scalars(select(BoardRow.name)))
        added = s.scalar(
            select(func.count())
            .select_from(BoardEventRow)
            .where(BoardEventRow.reason == "added from the inventory")
        )
    assert boards and added == len(boards)  # each board added once, by one of the submits


def test_concurrent_first_submits_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _first_submits(f"sqlite:///{tmp_path / 'data' / 'new.db'}", tmp_path, monkeypatch)


@pytest.mark.postgres
def test_concurrent_first_submits_postgres(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _first_submits(pg_url, tmp_path, monkeypatch)
