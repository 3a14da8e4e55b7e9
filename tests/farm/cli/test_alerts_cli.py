"""`farm alerts` on stored history: list (table and JSON with the documented fields), show, ack, dismiss,
rebaseline, silence, scan, check (exit 1 on a confirmed regression), backtest; bad input is one clear
line and exit 2."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner
from sqlalchemy import select

from farm.alerts import lifecycle
from farm.cli.main import cli
from farm.db.models import AlertRow
from farm.db.session import session_scope
from tests.farm.alerts.history import add_runs

JSON_FIELDS = {
    "id", "state", "kind", "metric", "model", "precision", "batch_size", "scenario", "target", "board", "before",
    "after", "change_pct", "confirmed", "run_ids", "created_at",
}  # fmt: skip


def _history(db: str) -> str:
    add_runs(db, list(10 * (1 + np.random.default_rng(1).normal(0, 0.01, 25))))
    sweep, _ = add_runs(db, list(12.5 * (1 + np.random.default_rng(2).normal(0, 0.01, 8))), start=25)
    return sweep


def _farm(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["alerts", *args])
    return result.exit_code, result.output


def test_scan_list_show_and_the_lifecycle_from_the_cli(farm_env) -> None:
    sweep = _history(farm_env.db_url)
    code, out = _farm("scan")
    assert code == 0, out
    assert "1 new alert(s)" in out
    code, out = _farm("list", "--format", "json")
    (alert,) = [a for a in json.loads(out) if a["metric"] == "latency_ms_p99"]
    assert set(alert) >= JSON_FIELDS
    # no board of type zcu104 in the built-in lab: opened unconfirmed, saying so
    assert alert["state"] == "open" and alert["confirmed"] is None and alert["sweep_id"] == sweep
    assert 20 < alert["change_pct"] < 30
    code, out = _farm("list")
    assert code == 0 and "tiny/int8/b1/SingleStream/zcu104/emulated" in out and "p99 latency" in out
    code, out = _farm("show", str(alert["id"]))
    assert code == 0 and "no board of type zcu104" in out and "detected" in out and "open" in out
    assert _farm("ack", str(alert["id"]), "--note", "looking")[0] == 0
    code, out = _farm("dismiss", str(alert["id"]), "--reason", "bored")
    assert code == 2 and "bored" in out
    code, out = _farm("rebaseline", str(alert["id"]))
    assert code == 0 and "rebaselined" in out
    with session_scope(farm_env.db_url) as s:
        assert s.get(AlertRow, alert["id"]).state == "resolved"
    code, out = _farm("scan")
    assert "0 new alert(s)" in out  # the new level is the normal now


def test_check_fails_a_sweep_with_a_confirmed_regression(farm_env) -> None:
    sweep = _history(farm_env.db_url)
    code, out = _farm("check", "--sweep", sweep)
    assert code == 0 and "no confirmed regression" in out
    _farm("scan")
    with session_scope(farm_env.db_url) as s:
        for a in s.scalars(select(AlertRow)):
            a.confirmed = True  # as a confirmation would have set it
    code, out = _farm("check", "--sweep", sweep[:8])
    assert code == 1 and "confirmed regression" in out and "p99 latency" in out


def test_silence_by_alert_id_and_pattern(farm_env) -> None:
    _history(farm_env.db_url)
    code, out = _farm("silence", "tiny/*", "--for", "7d", "--reason", "rework")
    assert code == 0 and "silence 1" in out
    _farm("scan")
    with session_scope(farm_env.db_url) as s:
        states = {a.state for a in s.scalars(select(AlertRow))}
    assert states == {"dismissed"}
    code, out = _farm("silence", "tiny/*", "--for", "soon")
    assert code == 2 and "a duration like" in out
    code, out = _farm("silence", "tiny/*", "--for", "1d", "--metric", "latency_ms_p98")
    assert code == 2 and "not in the metric catalog" in out
    code, out = _farm("show", "999")
    assert code != 0 and "no alert 999" in out


def test_backtest_lists_regressions_per_week(farm_env) -> None:
    _history(farm_env.db_url)
    code, out = _farm("backtest", "--format", "json")
    rows = [r for r in json.loads(out) if r["metric"] == "latency_ms_p99"]
    assert code == 0 and len(rows) == 1 and rows[0]["week"].startswith("2026-W")
    code, out = _farm("backtest")
    assert code == 0 and "per week: 2026-W" in out


def test_lifecycle_errors_are_one_line(farm_env) -> None:
    _history(farm_env.db_url)
    _farm("scan")
    with session_scope(farm_env.db_url) as s:
        alert_id = s.scalars(select(AlertRow.id)).first()
    lifecycle.dismiss(farm_env.db_url, alert_id, "noise")
    code, out = _farm("ack", str(alert_id))
    assert code != 0 and "is dismissed: it cannot become acknowledged" in out and "Traceback" not in out
