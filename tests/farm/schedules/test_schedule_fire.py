"""Each (schedule, slot) submits one sweep, however often it is fired: in turn, at once on PostgreSQL,
or late; and the beat scheduler's entries come from the database, next to the reconciler's."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import celery.beat
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from farm.config import Settings, load_settings
from farm.db.migrate import ensure_schema
from farm.db.models import ScheduleRow, SweepRow
from farm.db.session import session_scope
from farm.queues import CONTROL_QUEUE, SCHEDULE_TASK
from farm.schedules.beat import ENTRY_PREFIX, DatabaseScheduler
from farm.schedules.fire import fire
from farm.schedules.store import add_schedule, remove_schedule
from tests.conftest import write_sweep

ZOO = "name: nightly\nmodels: [resnet18]\nprecisions: [fp32]\ntargets: [cpu]\nlabels: {rev: '7'}\n"
SLOT = datetime(2099, 1, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def broker_farm(farm_env, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A farm with a real Redis broker and no worker: a fired sweep is published, not run."""
    from farm.celery_app import app, configure

    monkeypatch.setenv("FARM_BROKER_URL", redis_url)
    configure(app)
    yield load_settings()
    monkeypatch.undo()
    configure(app)


def count_sweeps(db_url: str) -> int:
    with session_scope(db_url) as s:
        return s.scalar(select(func.count()).select_from(SweepRow))


def test_a_duplicated_fire_submits_once(tmp_path: Path, broker_farm: Settings) -> None:
    add_schedule(broker_farm, write_sweep(tmp_path, ZOO), "0 2 * * *")
    first = fire(broker_farm, "nightly", SLOT)
    assert first.outcome == "submitted" and first.submitted is not None and first.submitted.unpublished == 0
    again = fire(broker_farm, "nightly", SLOT + timedelta(seconds=42))  # same minute, same slot
    assert (again.outcome, again.sweep_id) == ("duplicate", first.sweep_id)
    assert fire(broker_farm, "nightly", SLOT + timedelta(days=1)).outcome == "submitted"
    late = fire(broker_farm, "nightly", SLOT)  # an old message delivered late: still nothing new
    assert late.outcome == "duplicate" and count_sweeps(broker_farm.db_url) == 2
    with session_scope(broker_farm.db_url) as s:
        row = s.scalar(select(ScheduleRow))
        assert row.last_slot_at.replace(tzinfo=UTC) == SLOT + timedelta(days=1)  # never moved back
        sweep = s.get(SweepRow, first.sweep_id)
        assert sweep.labels == {"rev": "7", "schedule": "nightly"}


@pytest.mark.postgres
def test_concurrent_fires_of_one_slot_submit_once_on_postgres(
    tmp_path: Path, broker_farm: Settings, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FARM_DB_URL", pg_url)
    ensure_schema(pg_url)
    settings = load_settings()
    add_schedule(settings, write_sweep(tmp_path, ZOO), "0 2 * * *")
    outcomes: list[str] = []
    start = threading.Barrier(4)

    def one() -> None:
        start.wait()
        outcomes.append(fire(settings, "nightly", SLOT).outcome)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["duplicate"] * 3 + ["submitted"]
    assert count_sweeps(pg_url) == 1


def test_beat_entries_come_from_the_database(
    tmp_path: Path, farm_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from farm.celery_app import app

    settings = load_settings()
    add_schedule(settings, write_sweep(tmp_path, ZOO), "0 2 * * *")
    beat = DatabaseScheduler(app=app)
    assert set(beat.schedule) == {"farm-reconcile", "farm-alerts", ENTRY_PREFIX + "nightly"}  # the app's stay
    entry = beat.schedule[ENTRY_PREFIX + "nightly"]
    assert (entry.task, entry.args, entry.options["queue"]) == (SCHEDULE_TASK, ("nightly",), CONTROL_QUEUE)
    assert entry.is_due()[0] is False  # just added: its first slot is ahead
    assert beat.max_interval <= settings.schedule_refresh_s

    other = write_sweep(tmp_path, ZOO.replace("nightly", "hourly"), "hourly.yaml")
    add_schedule(settings, other, "0 * * * *")  # added while beat runs: there at its next refresh
    beat.refresh()
    assert set(beat.schedule) == {
        "farm-reconcile",
        "farm-alerts",
        ENTRY_PREFIX + "nightly",
        ENTRY_PREFIX + "hourly",
    }

    with session_scope(settings.db_url) as s:  # beat was off: the last slot submitted is three nights old
        s.execute(update(ScheduleRow).values(last_slot_at=datetime.now(UTC) - timedelta(days=3)))
    beat = DatabaseScheduler(app=app)
    assert beat.schedule[ENTRY_PREFIX + "nightly"].is_due()[0] is True  # a missed slot: due at once

    sent: list[dict] = []
    monkeypatch.setattr(celery.beat.Scheduler, "apply_async", lambda self, e, **kw: sent.append(e.kwargs))
    beat.apply_async(beat.schedule[ENTRY_PREFIX + "nightly"])
    now = datetime.now(UTC)
    today = now.replace(hour=2, minute=0, second=0, microsecond=0)
    assert sent == [{"slot": (today if now >= today else today - timedelta(days=1)).isoformat()}]

    remove_schedule(settings.db_url, "hourly")
    beat.refresh()
    assert ENTRY_PREFIX + "hourly" not in beat.schedule


def test_beat_keeps_the_reconciler_when_the_schedules_table_does_not_answer(
    farm_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forked beat whose first read of the table fails (SQLite's "locking protocol" after a fork, a
    database restarting) still sends the app's own periodic tasks: the reconciler and the alerts tick."""
    from farm.celery_app import app

    def refuse(self) -> list:
        raise OperationalError("SELECT schedules", {}, Exception("locking protocol"))

    monkeypatch.setattr(DatabaseScheduler, "_rows", refuse)
    beat = DatabaseScheduler(app=app)
    assert {"farm-reconcile", "farm-alerts"} <= set(beat.schedule)
