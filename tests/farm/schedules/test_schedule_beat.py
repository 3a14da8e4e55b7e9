"""A real `farm worker --beat` on the real Redis broker: the database scheduler sends a schedule's missed
slot as beat starts, the worker submits and runs the sweep with the schedule's labels, and the same slot
fired twice more through the broker submits nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from farm.config import load_settings
from farm.db.models import ScheduleRow, SweepRow
from farm.db.session import session_scope
from farm.queues import CONTROL_QUEUE, SCHEDULE_TASK
from farm.schedules.store import add_schedule
from tests.conftest import QUICK_CPU_SWEEP, stop_group, write_sweep

pytestmark = pytest.mark.redis

TINY = QUICK_CPU_SWEEP


def _wait(predicate: Callable[[], Any], timeout: float, what: str, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.3)
    pytest.fail(f"{what} within {timeout} s; worker log:\n{log.read_text()[-4000:]}")


def _sweeps(db_url: str) -> list[SweepRow]:
    with session_scope(db_url) as s:
        return list(s.scalars(select(SweepRow)))


def test_beat_fires_a_missed_slot_once(tmp_path: Path, farm_env, tiny_onnx: Path, redis_url: str) -> None:
    broker = redis_url.rsplit("/", 1)[0] + f"/{os.getpid() % 15 + 1}"
    subprocess.run(["redis-cli", "-u", broker, "FLUSHDB"], check=False, capture_output=True)
    add_schedule(
        load_settings(), write_sweep(tmp_path, TINY.format(onnx=tiny_onnx)), "0 2 * * *", labels={"rev": "r1"}
    )
    with session_scope(farm_env.db_url) as s:  # beat was off for three nights
        s.execute(update(ScheduleRow).values(last_slot_at=datetime.now(UTC) - timedelta(days=3)))
    env = {**os.environ, "FARM_BROKER_URL": broker, "FARM_DB_URL": farm_env.db_url}
    env["FARM_DATA_DIR"] = str(farm_env.data_dir)
    log_path = tmp_path / "worker.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [sys.executable, "-m", "farm.cli.main", "worker", "--beat", "-n", f"sched-{os.getpid()}@localhost"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        done = _wait(
            lambda: [w for w in _sweeps(farm_env.db_url) if w.state == "done"], 120, "no sweep ran", log_path
        )
        (sweep,) = done
        assert sweep.labels == {"rev": "r1", "schedule": "tiny"} and sweep.schedule_name == "tiny"
        slot = sweep.schedule_slot.replace(tzinfo=UTC)
        now = datetime.now(UTC)
        assert (
            slot.hour == 2 and slot.minute == 0 and now - timedelta(days=1) < slot <= now
        )  # the latest only

        from celery import Celery

        sender = Celery("sender", broker=broker)
        for _ in range(2):  # a duplicated beat message, a redelivery: the same slot again
            sender.send_task(
                SCHEDULE_TASK, args=("tiny",), kwargs={"slot": slot.isoformat()}, queue=CONTROL_QUEUE
            )
        _wait(
            lambda: log_path.read_text().count("'duplicate'") >= 2,
            60,
            "the duplicates were not handled",
            log_path,
        )
        assert len(_sweeps(farm_env.db_url)) == 1
        assert "Scheduler: Sending due task farm-schedule:tiny" in log_path.read_text()
    finally:
        stop_group(worker)
        log.close()
