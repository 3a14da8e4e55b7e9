"""The alerts' periodic pass through Celery: beat sends `farm.alerts.tick` on the control queue beside the
reconciler, and the task decides, resolves and delivers (here run eagerly, as an embedded farm does)."""

from __future__ import annotations

import json

import numpy as np
from sqlalchemy import select

from farm.alerts import detection, lifecycle
from farm.alerts.series import Series
from farm.celery_app import ALERTS_TICK_S, app
from farm.db.models import AlertDeliveryRow, AlertRow
from farm.db.session import session_scope
from farm.queues import ALERTS_TASK, CONTROL_QUEUE, RECONCILE_TASK
from tests.farm.alerts.history import FINGERPRINT, add_runs
from tests.farm.notify.http_server import Server


def test_beat_sends_the_tick_beside_the_reconciler(farm_env) -> None:
    schedule = {entry["task"]: entry for entry in app.conf.beat_schedule.values()}
    assert {ALERTS_TASK, RECONCILE_TASK} <= set(schedule)
    assert schedule[ALERTS_TASK]["schedule"] == ALERTS_TICK_S
    assert schedule[ALERTS_TASK]["options"]["queue"] == CONTROL_QUEUE
    assert app.conf.task_routes[ALERTS_TASK] == {"queue": CONTROL_QUEUE}


def test_the_tick_task_delivers_an_open_alert(farm_env, server: Server, tmp_path, monkeypatch) -> None:
    config = tmp_path / "alerts.yaml"
    config.write_text(f"channels:\n  - {{name: hook, kind: webhook, url: '{server.url}'}}\n")
    monkeypatch.setenv("FARM_ALERTS", str(config))
    db = farm_env.db_url
    add_runs(db, list(10 * (1 + np.random.default_rng(1).normal(0, 0.01, 25))))
    add_runs(db, [12.5, 12.6, 12.4, 12.5, 12.55, 12.45], start=25)
    series = Series(FINGERPRINT, "emulated", "tiny", "int8", 1, "SingleStream", "zcu104")
    with session_scope(db) as s:
        candidate = detection.scan_series(s, series, "latency_ms_p99").candidate
    alert_id = lifecycle.record(db, candidate, "sweep:x")
    with session_scope(db) as s:
        lifecycle.move(s, s.get(AlertRow, alert_id), "open", "confirmed")
    app.loader.import_default_modules()
    app.tasks[ALERTS_TASK].apply()
    (doc,) = [json.loads(body) for _, _, body in server.received]
    assert [a["id"] for a in doc["alerts"]] == [alert_id]
    with session_scope(db) as s:
        assert s.scalars(select(AlertDeliveryRow.state)).all() == ["sent"]
