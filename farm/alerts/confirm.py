"""Confirmation: what no incumbent does. A candidate on a series the farm can re-run is re-measured on the
farm's own boards before anyone is bothered: the configuration again (B, the artifact of the suspect run),
interleaved with the before-artifact (A) where the store still has it and it differs (A/B/A/B, 3 each by
default), on the board type's queue (so any idle board of the type takes them). A one-sided rank test
(Mann-Whitney) of B against A, or against the series' baseline runs when there is no A, decides together
with the metric's minimum change. Confirmation runs are stored in a sweep of purpose "confirmation" and
never become a baseline. A daily cap per series bounds the cost.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from farm import metrics
from farm.alerts import cause as causes
from farm.alerts.lifecycle import move
from farm.alerts.series import CONFIRMATION
from farm.artifacts import ArtifactStore
from farm.config import Settings
from farm.db.models import AlertRow, JobRow, MetricRow, RunRow, SweepRow, utcnow
from farm.db.session import session_scope
from farm.inventory import Inventory
from farm.queues import Publish
from farm.regressions import mann_whitney_p
from farm.scheduler import runs as publish_runs
from farm.services.sweeps import TERMINAL

REPEATS = 3  # runs of each artifact
ALPHA = 0.05  # the rank test's level (3 vs 3 can reach 0.05 exactly: all B worse than all A)
DAILY_CAP = 4  # confirmation sweeps per series in 24 h


def _median(values: list[float]) -> float:
    v = sorted(values)
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


def _capped(s: Session, alert: AlertRow) -> bool:
    since = utcnow() - timedelta(days=1)
    n = s.scalar(
        select(func.count(func.distinct(AlertRow.confirm_sweep_id))).where(
            AlertRow.fingerprint == alert.fingerprint,
            AlertRow.source == alert.source,
            AlertRow.confirm_sweep_id.is_not(None),
            AlertRow.updated_at >= since,
        )
    )
    return (n or 0) >= DAILY_CAP


def plan(settings: Settings, inventory: Inventory, alert_ids: list[int]) -> list[Publish]:
    """Start confirming detected alerts of one run (one confirmation sweep for all of them). Alerts on a
    board type the farm has no board of open unconfirmed, saying so; over the daily cap they stay
    detected (the next scan tries again)."""
    if not alert_ids:
        return []
    with session_scope(settings.db_url) as s:
        alerts = [
            a for a in (s.get(AlertRow, i) for i in alert_ids) if a is not None and a.state == "detected"
        ]
        if not alerts:
            return []
        first = alerts[0]
        if not inventory.boards_of(first.target):
            for a in alerts:
                a.details = {**(a.details or {}), "confirmation": f"no board of type {a.target} to re-run on"}
                move(s, a, "open", "opened unconfirmed: no board of the type to re-run on")
            return []
        if _capped(s, first):
            for a in alerts:
                a.details = {
                    **(a.details or {}),
                    "confirmation": f"capped: {DAILY_CAP} confirmations in 24 h",
                }
            return []
        suspect = s.get(RunRow, first.change_run_id)
        origin = s.get(SweepRow, suspect.sweep_id) if suspect else None
        if suspect is None or origin is None:
            return []
        b_key = suspect.artifact_key
        a_key = _before_artifact(s, first, b_key, ArtifactStore(settings.artifact_dir))
        spec = {**origin.spec, "stability": None, "repeats": 1, "thermal": None}
        sweep_id = str(uuid.uuid4())
        s.add(
            SweepRow(
                id=sweep_id,
                name=f"confirm-{first.id}"[:64],
                source=f"alerts {', '.join(str(a.id) for a in alerts)}",
                spec_yaml=origin.spec_yaml,
                spec_hash=origin.spec_hash,
                spec=spec,
                purpose=CONFIRMATION,
                labels=origin.labels,
            )
        )
        shape = {
            "model": suspect.model,
            "precision": suspect.precision,
            "target": suspect.target,
            "batch_size": suspect.batch_size,
        }
        parents = {}
        for arm, key in (("A", a_key), ("B", b_key)):
            if key is None:
                continue
            row = JobRow(
                sweep_id=sweep_id, key=f"compile:{arm}", kind="compile", state="cached", artifact_key=key,
                finished_at=utcnow(), **shape,
            )  # fmt: skip
            s.add(row)
            s.flush()
            parents[arm] = row.id
        run_jobs = []
        for i in range(REPEATS):
            for arm in ("A", "B"):
                if arm not in parents:
                    continue
                row = JobRow(
                    sweep_id=sweep_id, key=f"run:{arm}:{i}", kind="run", state="pending",
                    scenario=suspect.scenario, repeat=i, depends_on_id=parents[arm], **shape,
                )  # fmt: skip
                s.add(row)
                s.flush()
                run_jobs.append((row.id, suspect.target))
        for a in alerts:
            a.confirm_sweep_id = sweep_id
            a.details = {
                **(a.details or {}),
                "confirmation": {
                    "sweep": sweep_id,
                    "runs": len(run_jobs),
                    "a_artifact": a_key,
                    "b_artifact": b_key,
                },
            }
            move(s, a, "confirming", f"{len(run_jobs)} confirmation runs (sweep {sweep_id[:8]})")
    return publish_runs(settings.db_url, run_jobs)


def _before_artifact(s: Session, alert: AlertRow, b_key: str, store: ArtifactStore) -> str | None:
    """The baseline runs' artifact, when it differs from the suspect's and the store still has it."""
    keys = Counter(
        s.scalars(select(RunRow.artifact_key).where(RunRow.id.in_(alert.baseline_run_ids or [])))
    ).most_common(1)
    if not keys or keys[0][0] == b_key or not store.has(keys[0][0]):
        return None
    return keys[0][0]


def finished(s: Session, sweep_id: str) -> bool:
    open_jobs = s.scalar(
        select(func.count()).where(
            JobRow.sweep_id == sweep_id, JobRow.kind == "run", JobRow.state.not_in(TERMINAL)
        )
    )
    return open_jobs == 0


def _arm_values(
    s: Session, sweep_id: str, arm: str, metric: str
) -> tuple[list[float], list[int], list[bool | None]]:
    rows = s.execute(
        select(RunRow.id, RunRow.result_valid, MetricRow.value)
        .join(JobRow, JobRow.id == RunRow.job_id)
        .outerjoin(MetricRow, (MetricRow.run_id == RunRow.id) & (MetricRow.name == metric))
        .where(RunRow.sweep_id == sweep_id, JobRow.key.like(f"run:{arm}:%"))
        .order_by(RunRow.id)
    ).all()
    return [v for _, _, v in rows if v is not None], [r for r, _, _ in rows], [ok for _, ok, _ in rows]


def _baseline_values(s: Session, alert: AlertRow) -> list[float]:
    return list(
        s.scalars(
            select(MetricRow.value).where(
                MetricRow.run_id.in_(alert.baseline_run_ids or []), MetricRow.name == alert.metric
            )
        )
    )


def decide(settings: Settings, sweep_id: str) -> list[int]:
    """Decide every confirming alert of a finished confirmation sweep; returns the alerts it opened."""
    opened = []
    with session_scope(settings.db_url) as s:
        if not finished(s, sweep_id):
            return []
        alerts = list(
            s.scalars(
                select(AlertRow).where(AlertRow.confirm_sweep_id == sweep_id, AlertRow.state == "confirming")
            )
        )
        for alert in alerts:
            verdict = _verdict(s, sweep_id, alert)
            alert.confirmed = verdict["confirmed"]
            alert.run_ids = sorted(set(alert.run_ids or []) | set(verdict["run_ids"]))
            alert.details = {
                **(alert.details or {}),
                "confirmation": {**alert.details.get("confirmation", {}), **verdict},
            }
            if verdict["confirmed"]:
                if verdict.get("after") is not None:
                    alert.after = verdict["after"]
                    if alert.before:
                        alert.change_pct = (alert.after - alert.before) / abs(alert.before) * 100
                alert.p_value = verdict.get("p_value", alert.p_value)
                alert.cause = causes.explain(s, alert)
                move(s, alert, "open", verdict["summary"])
                opened.append(alert.id)
            else:
                move(s, alert, "refuted", verdict["summary"])
    return opened


def _verdict(s: Session, sweep_id: str, alert: AlertRow) -> dict[str, Any]:
    b_values, b_runs, b_valid = _arm_values(s, sweep_id, "B", alert.metric)
    a_values, a_runs, _ = _arm_values(s, sweep_id, "A", alert.metric)
    runs = b_runs + a_runs
    boards = sorted(set(s.scalars(select(RunRow.board_name).where(RunRow.id.in_(runs)))))
    if alert.kind == "invalid":
        invalid = sum(ok is False for ok in b_valid)
        confirmed = invalid * 2 > len(b_valid) > 0
        return {
            "confirmed": confirmed,
            "run_ids": runs,
            "boards": boards,
            "summary": f"{invalid} of {len(b_valid)} re-runs INVALID on {', '.join(boards)}",
        }
    if len(b_values) < 2:
        return {
            "confirmed": False,
            "run_ids": runs,
            "summary": f"only {len(b_values)} re-runs stored: not confirmed",
        }
    ref, against = (a_values, "the before-artifact re-run") if len(a_values) >= 2 else (
        _baseline_values(s, alert), "the baseline runs")  # fmt: skip
    higher = metrics.better(alert.metric) == "higher"
    p = mann_whitney_p(b_values, ref, higher)
    level, ref_level = _median(b_values), _median(ref) if ref else float("nan")
    big = metrics.worse_beyond_min_change(alert.metric, ref_level, level)
    confirmed = p <= ALPHA and big
    label = metrics.label(alert.metric)
    summary = (
        f"{'confirmed' if confirmed else 'refuted'}: {label} {level:.4g} in {len(b_values)} re-runs "
        f"on {', '.join(boards)} vs "
        f"{ref_level:.4g} in {against} ({len(ref)}), rank test p={p:.3g}"
        + ("" if big else ", below the metric's minimum change")
    )
    return {
        "confirmed": confirmed,
        "run_ids": runs,
        "boards": boards,
        "p_value": p,
        "after": level,
        "reference": ref_level,
        "against": against,
        "b_values": b_values,
        "ref_values": ref,
        "summary": summary,
    }
