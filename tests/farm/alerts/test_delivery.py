"""The delivery outbox against a real webhook server: one notification per group, retried with backoff
while the channel is down and recorded, never sent twice, a resolved notice after a notified alert
resolves, routes, and a secret URL that never reaches the database."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select

from farm.alerts import delivery, detection, lifecycle, service
from farm.alerts.series import Series
from farm.db.models import AlertDeliveryRow, AlertRow, utcnow
from farm.db.session import session_scope
from tests.farm.alerts.history import FINGERPRINT, add_runs
from tests.farm.notify.http_server import Server

SERIES = Series(FINGERPRINT, "emulated", "tiny", "int8", 1, "SingleStream", "zcu104")


@pytest.fixture
def hook(farm_env, server: Server, tmp_path, monkeypatch) -> Server:
    config = tmp_path / "alerts.yaml"
    config.write_text("channels:\n  - name: lab-hook\n    kind: webhook\n    url_env: FARM_TEST_HOOK\n")
    monkeypatch.setenv("FARM_ALERTS", str(config))
    monkeypatch.setenv("FARM_TEST_HOOK", server.url)
    return server


def _open_two(db: str) -> list[int]:
    """Two alerts (p99 and throughput) from one sweep: one group."""
    rng = np.random.default_rng(3)
    base = 10 * (1 + rng.normal(0, 0.01, 25))
    slow = 12.5 * (1 + rng.normal(0, 0.01, 8))
    add_runs(db, list(base), extra={"throughput_ips": list(1000 / base)})
    add_runs(db, list(slow), start=25, extra={"throughput_ips": list(1000 / slow)})
    ids = []
    with session_scope(db) as s:
        for metric in ("latency_ms_p99", "throughput_ips"):
            c = detection.scan_series(s, SERIES, metric).candidate
            assert c is not None, metric
            ids.append(c)
    out = [lifecycle.record(db, c, f"sweep:{c.sweep_id}") for c in ids]
    with session_scope(db) as s:
        for alert_id in out:
            a = s.get(AlertRow, alert_id)
            a.confirmed = True
            lifecycle.move(s, a, "open", "confirmed")
    return out


def test_one_group_is_one_notification_sent_once(farm_env, hook: Server) -> None:
    db = farm_env.db_url
    ids = _open_two(db)
    assert delivery.flush(db) == 1
    assert delivery.deliver_due(db) == {"sent": 1, "retry": 0, "failed": 0}
    assert delivery.flush(db) == 0 and delivery.deliver_due(db)["sent"] == 0  # never twice
    ((_, _, body),) = hook.received
    doc = json.loads(body)
    assert sorted(a["id"] for a in doc["alerts"]) == sorted(ids)
    assert doc["title"] == "2 regressions confirmed"
    assert "p99 latency" in doc["text"] and "Throughput" in doc["text"]
    with session_scope(db) as s:
        row = s.scalars(select(AlertDeliveryRow)).one()
        assert row.state == "sent" and row.receipt == "HTTP 200" and row.attempts == 1
        assert hook.url not in json.dumps([row.channel, row.receipt, row.last_error, row.group_key])


def test_a_channel_that_is_down_is_retried_with_backoff_until_it_is_back(farm_env, hook: Server) -> None:
    db = farm_env.db_url
    _open_two(db)
    hook.status = 503
    delivery.flush(db)
    assert delivery.deliver_due(db) == {"sent": 0, "retry": 1, "failed": 0}
    with session_scope(db) as s:
        row = s.scalars(select(AlertDeliveryRow)).one()
        first_wait = row.next_attempt_at.replace(tzinfo=utcnow().tzinfo) - utcnow()
        assert row.state == "pending" and row.attempts == 1 and "503" in row.last_error
    assert timedelta(seconds=20) < first_wait <= timedelta(seconds=delivery.BACKOFF_S)
    assert delivery.deliver_due(db)["retry"] == 0  # not due yet
    later = utcnow() + timedelta(seconds=delivery.BACKOFF_S + 1)
    assert delivery.deliver_due(db, now=later) == {"sent": 0, "retry": 1, "failed": 0}
    with session_scope(db) as s:
        row = s.scalars(select(AlertDeliveryRow)).one()
        second_wait = row.next_attempt_at.replace(tzinfo=utcnow().tzinfo) - utcnow()
    assert second_wait > first_wait * 1.5  # it backs off
    hook.status = 200
    assert delivery.deliver_due(db, now=utcnow() + timedelta(hours=1))["sent"] == 1
    assert len(hook.received) == 3


def test_a_4xx_is_not_retried_and_says_why(farm_env, hook: Server) -> None:
    db = farm_env.db_url
    _open_two(db)
    hook.status = 404
    delivery.flush(db)
    assert delivery.deliver_due(db) == {"sent": 0, "retry": 0, "failed": 1}
    with session_scope(db) as s:
        row = s.scalars(select(AlertDeliveryRow)).one()
        assert row.state == "failed" and "404" in row.last_error


def test_a_group_that_resolves_sends_one_resolved_notice(farm_env, hook: Server) -> None:
    db = farm_env.db_url
    ids = _open_two(db)
    service.tick(farm_env)
    back = 10 * (1 + np.random.default_rng(9).normal(0, 0.01, 3))
    add_runs(db, list(back), start=40, extra={"throughput_ips": list(1000 / back)})
    result = service.tick(farm_env)
    assert sorted(result.resolved) == sorted(ids)
    titles = [json.loads(body)["title"] for _, _, body in hook.received]
    assert titles == ["2 regressions confirmed", "resolved: 2 alerts"]


def test_a_resolved_notice_waits_for_the_rest_of_its_group(farm_env, hook: Server) -> None:
    """Only p99 comes back (throughput is not measured again): its notice waits, then goes alone."""
    db = farm_env.db_url
    ids = _open_two(db)
    service.tick(farm_env)
    add_runs(db, list(10 * (1 + np.random.default_rng(9).normal(0, 0.01, 3))), start=40)
    assert service.tick(farm_env).resolved == [ids[0]]
    assert len(hook.received) == 1
    later = utcnow() + delivery.GROUP_WAIT + timedelta(seconds=1)
    assert delivery.flush(db, now=later) == 1
    delivery.deliver_due(db, now=later)
    assert [json.loads(body)["title"] for _, _, body in hook.received][-1] == f"resolved: alert {ids[0]}"


def test_routes_pick_the_alerts_a_channel_gets(farm_env, server: Server, tmp_path, monkeypatch) -> None:
    config = tmp_path / "alerts.yaml"
    config.write_text(
        f"channels:\n  - {{name: resnet-only, kind: webhook, url: '{server.url}'}}\n"
        "routes:\n  - {channel: resnet-only, models: [resnet50]}\n"
    )
    monkeypatch.setenv("FARM_ALERTS", str(config))
    _open_two(farm_env.db_url)
    assert delivery.flush(farm_env.db_url) == 0  # no alert of its model: no row, nothing sent
    assert server.received == []
