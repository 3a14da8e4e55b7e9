"""Alerts on stored history: the scan and the per-run check find a real change and nothing in noise,
unusable runs are never a baseline, the lifecycle and its dedup, confirmation decisions, cause, resolution,
backtest."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from farm.alerts import confirm, detection, lifecycle, service
from farm.alerts.series import Series
from farm.db.models import AlertEventRow, AlertRow, JobRow, MetricRow, RunRow, SweepRow
from farm.db.session import session_scope
from farm.inventory import load_inventory
from tests.farm.alerts.history import FINGERPRINT, add_runs

SERIES = Series(FINGERPRINT, "emulated", "tiny", "int8", 1, "SingleStream", "zcu104")


def noisy(level: float, n: int, seed: int, cv: float = 0.01) -> list[float]:
    return list(level * (1 + np.random.default_rng(seed).normal(0, cv, n)))


@pytest.mark.parametrize("seed", range(5))
def test_scan_finds_a_step_at_its_first_run_and_records_it_once(farm_env, seed) -> None:
    db = farm_env.db_url
    _, before = add_runs(db, noisy(10.0, 25, seed))
    _, after = add_runs(db, noisy(12.0, 8, seed + 100), start=25)
    with session_scope(db) as s:
        found = detection.scan_series(s, SERIES, "latency_ms_p99")
    c = found.candidate
    assert c is not None and c.detector == "scan"
    assert (
        abs(
            after.index(c.change_run_id)
            if c.change_run_id in after
            else -before[::-1].index(c.change_run_id) - 1
        )
        <= 1
    )
    assert 15 < c.change_pct < 25 and c.before == pytest.approx(10.0, rel=0.02)
    first = lifecycle.record(db, c, "sweep:x")
    assert first is not None
    assert lifecycle.record(db, c, "sweep:x") is None  # the same change point again: nothing new


@pytest.mark.parametrize("seed", range(5))
def test_flat_noise_and_a_lone_spike_are_no_candidate(farm_env, seed) -> None:
    values = noisy(10.0, 40, seed)
    values[20] *= 1.5  # one spike
    add_runs(farm_env.db_url, values)
    with session_scope(farm_env.db_url) as s:
        assert detection.scan_series(s, SERIES, "latency_ms_p99").candidate is None


def test_a_change_below_the_metrics_minimum_is_no_candidate(farm_env) -> None:
    """p99's minimum is 5 %: a clean, highly significant 3 % step is not an alert."""
    add_runs(farm_env.db_url, noisy(10.0, 30, 1, cv=0.001))
    add_runs(farm_env.db_url, noisy(10.3, 30, 2, cv=0.001), start=30)
    with session_scope(farm_env.db_url) as s:
        assert detection.scan_series(s, SERIES, "latency_ms_p99").candidate is None


def test_the_per_run_check_flags_a_slow_run_and_passes_a_normal_one(farm_env) -> None:
    db = farm_env.db_url
    add_runs(db, noisy(10.0, 20, 3))
    _, (normal,) = add_runs(db, [10.05], start=20)
    _, (slow,) = add_runs(db, [13.0], start=21)
    with session_scope(db) as s:
        assert detection.check_run(s, normal) == []
        (c,) = [c for c in detection.check_run(s, slow) if c.metric == "latency_ms_p99"]
    assert c.detector == "check" and c.change_run_id == slow and c.change_pct == pytest.approx(30, abs=2)
    assert "worse than the median" in c.details["reason"]


def test_too_little_history_says_nothing(farm_env) -> None:
    add_runs(farm_env.db_url, [10.0, 10.1, 9.9])
    _, (slow,) = add_runs(farm_env.db_url, [20.0], start=3)
    with session_scope(farm_env.db_url) as s:
        assert detection.check_run(s, slow) == []


def test_noisy_and_invalid_runs_are_never_a_baseline(farm_env) -> None:
    """Slow runs flagged noisy-host or INVALID are kept but skipped: the series stays flat, and says so."""
    db = farm_env.db_url
    add_runs(db, noisy(10.0, 20, 4))
    add_runs(db, [15.0] * 6, flags=["noisy-host: load 3.2"], start=20)
    add_runs(db, [15.0] * 3, valid=False, start=26)
    with session_scope(db) as s:
        scan = detection.scan_series(s, SERIES, "latency_ms_p99")
    assert scan.candidate is None
    assert scan.skipped == {"noisy-host": 6, "LoadGen INVALID": 3} and scan.points == 20


def test_a_result_that_turns_invalid_is_its_own_kind(farm_env) -> None:
    db = farm_env.db_url
    add_runs(db, noisy(10.0, 5, 5))
    _, (bad,) = add_runs(db, [10.0], valid=False, start=5)
    with session_scope(db) as s:
        c = detection.invalid_run(s, bad)
    assert c is not None and c.kind == "invalid" and "INVALID" in c.details["reason"]


def test_rank_test_is_exact_for_small_samples() -> None:
    assert confirm.mann_whitney_p(
        [12, 12.1, 12.2], [10, 10.1, 10.2], higher_is_better=False
    ) == pytest.approx(0.05)
    assert confirm.mann_whitney_p(
        [10, 10.1, 10.2], [12, 12.1, 12.2], higher_is_better=False
    ) == pytest.approx(1.0)
    assert confirm.mann_whitney_p([8, 8.1, 8.2], [10, 10.1, 10.2], higher_is_better=True) == pytest.approx(
        0.05
    )
    big = confirm.mann_whitney_p(noisy(11, 30, 1), noisy(10, 30, 2), higher_is_better=False)
    assert big < 1e-6  # normal approximation for larger samples


LAB = """\
boards:
  - name: zcu104-0
    type: zcu104
    transport: ssh
    ssh: {host: 127.0.0.1, user: farm, key_file: key, known_hosts: known_hosts, work_dir: /tmp/farm}
"""


def _lab_inventory(settings):
    """A lab with a zcu104 board (confirmation only needs to know the type has one: nothing connects)."""
    path = settings.data_dir / "lab.yaml"
    path.write_text(LAB)
    return load_inventory(settings.inventory_dir, lab=str(path))


def _fill(db_url: str, sweep_id: str, arm_values: dict[str, list[float]], metric="latency_ms_p99") -> None:
    """Store the confirmation runs the plan asked for (what the boards would have measured)."""
    with session_scope(db_url) as s:
        jobs = list(s.scalars(select(JobRow).where(JobRow.sweep_id == sweep_id, JobRow.kind == "run")))
        for job in jobs:
            arm, i = job.key.split(":")[1], int(job.key.split(":")[2])
            parent = s.get(JobRow, job.depends_on_id)
            run = RunRow(
                idempotency_key=f"c{job.id}", sweep_id=sweep_id, job_id=job.id, artifact_key=parent.artifact_key,
                board_name="zcu104-0", model="tiny", precision="int8", target="zcu104", batch_size=1,
                scenario="SingleStream", repeat=i, source="emulated", result_valid=True, fingerprint=FINGERPRINT,
            )  # fmt: skip
            s.add(run)
            s.flush()
            s.add(
                MetricRow(run_id=run.id, name=metric, value=arm_values[arm][i], unit="ms", source="emulated")
            )
            s.add(MetricRow(run_id=run.id, name="clock_mhz_min", value=150.0, unit="MHz", source="emulated"))
            job.state = "done"


@pytest.mark.parametrize(
    ("b_values", "state"), [([12.0, 12.2, 12.1], "open"), ([10.0, 10.1, 9.9], "refuted")]
)
def test_confirmation_runs_decide_with_a_rank_test(farm_env, b_values, state) -> None:
    db = farm_env.db_url
    add_runs(db, noisy(10.0, 20, 6))
    _, (slow,) = add_runs(db, [12.5], start=20, clock_mhz=150.0)
    with session_scope(db) as s:
        (c,) = [c for c in detection.check_run(s, slow) if c.metric == "latency_ms_p99"]
    alert_id = lifecycle.record(db, c, "sweep:s")
    published = confirm.plan(farm_env, _lab_inventory(farm_env), [alert_id])
    assert len(published) == confirm.REPEATS  # same artifact before and after: B only
    with session_scope(db) as s:
        alert = s.get(AlertRow, alert_id)
        assert alert.state == "confirming"
        sweep = s.get(SweepRow, alert.confirm_sweep_id)
        assert sweep.purpose == "confirmation"
        sweep_id = sweep.id
    _fill(db, sweep_id, {"B": b_values})
    opened = confirm.decide(farm_env, sweep_id)
    with session_scope(db) as s:
        alert = s.get(AlertRow, alert_id)
        assert alert.state == state and alert.confirmed is (state == "open")
        assert len(alert.run_ids) == 4  # the suspect and three re-runs
        if state == "open":
            assert opened == [alert_id]
            assert "clock 300 -> 150 MHz" in alert.cause["summary"]
            assert "zcu104-0" in alert.cause["where"]["verdict"]
        else:
            assert "refuted" in alert.reason
        # confirmation runs never join the series
        assert detection.scan_series(s, SERIES, "latency_ms_p99").points == 21


def test_a_before_artifact_still_in_the_store_is_interleaved(farm_env, tmp_path) -> None:
    from farm.artifacts import ArtifactStore

    db = farm_env.db_url
    old, new = "a" * 64, "b" * 64
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    ArtifactStore(farm_env.artifact_dir).put(old, model, {})
    add_runs(db, noisy(10.0, 20, 7), artifact_key=old, toolchain_version="3.5")
    _, (slow,) = add_runs(db, [12.5], start=20, artifact_key=new, toolchain_version="3.6")
    with session_scope(db) as s:
        (c,) = [c for c in detection.check_run(s, slow) if c.metric == "latency_ms_p99"]
    alert_id = lifecycle.record(db, c, "sweep:s")
    published = confirm.plan(farm_env, _lab_inventory(farm_env), [alert_id])
    assert len(published) == 2 * confirm.REPEATS
    with session_scope(db) as s:
        sweep_id = s.get(AlertRow, alert_id).confirm_sweep_id
        keys = list(
            s.scalars(
                select(JobRow.key)
                .where(JobRow.sweep_id == sweep_id, JobRow.kind == "run")
                .order_by(JobRow.id)
            )
        )
    assert keys == ["run:A:0", "run:B:0", "run:A:1", "run:B:1", "run:A:2", "run:B:2"]
    _fill(db, sweep_id, {"A": [10.0, 10.1, 9.95], "B": [12.4, 12.6, 12.5]})
    confirm.decide(farm_env, sweep_id)
    with session_scope(db) as s:
        alert = s.get(AlertRow, alert_id)
        assert alert.state == "open"
        assert alert.details["confirmation"]["against"] == "the before-artifact re-run"
        assert alert.cause["provenance"]["toolchain_version"] == {"before": "3.5", "after": "3.6"}


def test_no_board_of_the_type_opens_unconfirmed(farm_env) -> None:
    db = farm_env.db_url
    add_runs(db, noisy(10.0, 20, 8))
    _, (slow,) = add_runs(db, [13.0], start=20)
    with session_scope(db) as s:
        (c,) = [c for c in detection.check_run(s, slow) if c.metric == "latency_ms_p99"]
    alert_id = lifecycle.record(db, c, "sweep:s")
    assert confirm.plan(farm_env, load_inventory(farm_env.inventory_dir), [alert_id]) == []
    with session_scope(db) as s:
        alert = s.get(AlertRow, alert_id)
        assert alert.state == "open" and alert.confirmed is None
        assert "no board of type zcu104" in alert.details["confirmation"]


def test_lifecycle_moves_and_refuses(farm_env) -> None:
    db = farm_env.db_url
    add_runs(db, noisy(10.0, 20, 9))
    _, after = add_runs(db, noisy(12.0, 8, 10), start=20)
    with session_scope(db) as s:
        c = detection.scan_series(s, SERIES, "latency_ms_p99").candidate
    alert_id = lifecycle.record(db, c, "g")
    with session_scope(db) as s:
        lifecycle.move(s, s.get(AlertRow, alert_id), "open", "test")
    lifecycle.acknowledge(db, alert_id, "on it")
    with pytest.raises(lifecycle.AlertStateError, match="cannot become confirming"), session_scope(db) as s:
        lifecycle.move(s, s.get(AlertRow, alert_id), "confirming")
    with pytest.raises(Exception, match="dismiss reason"):
        lifecycle.dismiss(db, alert_id, "bored")
    lifecycle.rebaseline(db, alert_id, "new toolchain is slower on purpose")
    with session_scope(db) as s:
        alert = s.get(AlertRow, alert_id)
        assert alert.state == "resolved" and alert.reason.startswith("rebaselined")
        states = [
            e.to_state for e in s.scalars(select(AlertEventRow).where(AlertEventRow.alert_id == alert_id))
        ]
        assert states == ["detected", "open", "acknowledged", "resolved"]
        # detection now reads the series from the change on: the new level is the normal
        assert detection.scan_series(s, SERIES, "latency_ms_p99").candidate is None


def test_a_silenced_series_is_stored_dismissed(farm_env) -> None:
    from datetime import timedelta

    db = farm_env.db_url
    lifecycle.silence(db, "tiny/int8/*/zcu104/*", timedelta(days=7), reason="board work")
    add_runs(db, noisy(10.0, 20, 11))
    add_runs(db, noisy(12.0, 8, 12), start=20)
    with session_scope(db) as s:
        c = detection.scan_series(s, SERIES, "latency_ms_p99").candidate
    alert_id = lifecycle.record(db, c, "g")
    with session_scope(db) as s:
        alert = s.get(AlertRow, alert_id)
        assert alert.state == "dismissed" and "silenced until" in alert.reason


def test_an_alert_resolves_when_the_series_comes_back(farm_env) -> None:
    db = farm_env.db_url
    add_runs(db, noisy(10.0, 20, 13))
    add_runs(db, noisy(12.0, 6, 14), start=20)
    with session_scope(db) as s:
        c = detection.scan_series(s, SERIES, "latency_ms_p99").candidate
    alert_id = lifecycle.record(db, c, "g")
    with session_scope(db) as s:
        lifecycle.move(s, s.get(AlertRow, alert_id), "open", "test")
    assert service.resolve(farm_env) == []  # still slow
    add_runs(db, noisy(10.0, 3, 15), start=26)
    assert service.resolve(farm_env) == [alert_id]
    with session_scope(db) as s:
        assert "back to" in s.get(AlertRow, alert_id).reason


def test_backtest_reports_each_regression_with_its_week(farm_env) -> None:
    db = farm_env.db_url
    add_runs(db, noisy(10.0, 30, 16))
    add_runs(db, noisy(12.0, 30, 17), start=24 * 14)  # two weeks later
    add_runs(db, noisy(10.0, 30, 18), start=24 * 28)  # fixed two weeks after that
    with session_scope(db) as s:
        rows = [r for r in detection.backtest(s) if r["metric"] == "latency_ms_p99"]
    assert len(rows) == 1  # the fix is an improvement: not an alert
    assert rows[0]["week"] == "2026-W46" and rows[0]["change_pct"] > 15


def _open_alert(db: str, before: list[float], after: list[float]) -> int:
    add_runs(db, before)
    add_runs(db, after, start=len(before))
    with session_scope(db) as s:
        c = detection.scan_series(s, SERIES, "latency_ms_p99").candidate
    alert_id = lifecycle.record(db, c, "g")
    with session_scope(db) as s:
        lifecycle.move(s, s.get(AlertRow, alert_id), "open", "test")
    return alert_id


def test_a_change_mostly_undone_resolves_though_a_little_is_left(farm_env) -> None:
    """+100 %, then back to +20 % (80 % undone: still open), then to +8 %: over p99's 5 % minimum, but
    92 % of the change is undone."""
    db = farm_env.db_url
    alert_id = _open_alert(db, noisy(10.0, 20, 20, cv=0.002), noisy(20.0, 8, 21, cv=0.002))
    add_runs(db, [12.0, 12.0, 12.0], start=28)
    assert service.resolve(farm_env) == []
    add_runs(db, [10.8, 10.8, 10.8], start=31)
    assert service.resolve(farm_env) == [alert_id]
    with session_scope(db) as s:
        assert "of the change undone" in s.get(AlertRow, alert_id).reason


def test_a_noisy_metric_back_within_its_noise_resolves_by_rank_test(farm_env) -> None:
    """10 % CV: three points 8 % above the old median are not worse than the baseline runs."""
    db = farm_env.db_url
    alert_id = _open_alert(db, noisy(10.0, 20, 22, cv=0.10), noisy(16.0, 10, 23, cv=0.02))
    add_runs(db, [10.8, 9.9, 10.8], start=30)
    assert service.resolve(farm_env) == [alert_id]
    with session_scope(db) as s:
        assert "rank test" in s.get(AlertRow, alert_id).reason


def test_after_a_refuted_candidate_single_slow_runs_wait(farm_env) -> None:
    """Re-runs called the last slow run noise: the next slow run of that series and metric is not re-run
    again for REFUTED_COOLDOWN (the scan still sees a real step)."""
    db = farm_env.db_url
    add_runs(db, noisy(10.0, 20, 30))
    _, (slow,) = add_runs(db, [12.5], start=20)
    with session_scope(db) as s:
        (c,) = [c for c in detection.check_run(s, slow) if c.metric == "latency_ms_p99"]
    alert_id = lifecycle.record(db, c, "g")
    with session_scope(db) as s:
        lifecycle.move(s, s.get(AlertRow, alert_id), "refuted", "refuted: test")
    _, (again,) = add_runs(db, [12.6], start=21)
    with session_scope(db) as s:
        (c2,) = [c for c in detection.check_run(s, again) if c.metric == "latency_ms_p99"]
    assert lifecycle.record(db, c2, "g") is None
