"""Repeat a configuration until its headline metric is stable (sweep `stability:`).

A *configuration* is one (model, precision, target, batch, scenario) of a sweep. With `stability:` the sweep
plans `min_repeats` run jobs per configuration; each time one of them finishes, :func:`plan_after_run`
looks at the configuration as a whole. Once every repeat planned so far is finished it computes the
coefficient of variation (sample standard deviation / mean, in percent) of the headline metric over the
stored runs and then

- stops when at least `min_repeats` runs are stored and the CV is under `cv_threshold_pct`;
- flags every run of the configuration "unstable: cv X% > T% after N repeats" when `max_repeats` jobs have
  been planned (the runs stay in the results, flagged, never hidden);
- otherwise adds one more run job (repeat index = the highest so far + 1).

Idempotency: the extra job's key is that of the next repeat (``run/.../r{n}``), unique within the sweep
(``uq_jobs_sweep_key``), so a redelivered or concurrently finishing job that makes the same decision finds
the row already there and adds nothing; the job moves pending -> queued once (``claim_for_queue``), so it is
enqueued once. Only the last repeat to finish decides (earlier ones see unfinished siblings and wait),
whether it was stored or failed for good (:func:`farm.scheduler.after_job` calls the planner for both); a
job that fails is counted as planned but gives no value. After a model error no more repeats are added (it
would fail the same way); the configuration's state is then "failed".
"""

from __future__ import annotations

import logging
import math
import statistics
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from farm import metrics
from farm.db.models import JobRow, MetricRow, RunRow, SweepRow
from farm.db.session import session_scope
from farm.sweep.expand import repeat_key
from farm.sweep.schema import Stability
from farm.workers.agent.protocol import DEFAULT_MULTISTREAM_PERCENTILE

log = logging.getLogger(__name__)

UNSTABLE = "unstable:"
#: How a run job's error starts when the agent reported a model error (farm.services.run).
MODEL_ERROR = "model error:"
FINISHED = ("done", "cached", "failed")


@dataclass(frozen=True)
class Decision:
    action: str  # wait | stable | more | capped
    cv_pct: float | None
    values: int  # runs with a headline value
    planned: int  # run jobs planned for the configuration


def cv_pct(values: list[float]) -> float | None:
    """Coefficient of variation in percent (sample standard deviation, n-1); None under two values."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    if mean == 0:
        return math.inf
    return statistics.stdev(values) / abs(mean) * 100.0


def decide(values: list[float], planned: int, cfg: Stability) -> Decision:
    cv = cv_pct(values)
    if len(values) >= cfg.min_repeats and cv is not None and cv < cfg.cv_threshold_pct:
        return Decision("stable", cv, len(values), planned)
    if planned >= cfg.max_repeats:
        return Decision("capped", cv, len(values), planned)
    return Decision("more", cv, len(values), planned)


def unstable_flag(decision: Decision, cfg: Stability) -> str:
    cv = "n/a" if decision.cv_pct is None else f"{decision.cv_pct:.1f}%"
    return (
        f"{UNSTABLE} cv {cv} > {cfg.cv_threshold_pct:g}% after {decision.planned} repeats"
        f" ({decision.values} with a value)"
    )


def headline_name(
    scenario: str, multistream_percentile: float = DEFAULT_MULTISTREAM_PERCENTILE
) -> str | None:
    """The metric whose run-to-run spread decides: the scenario's headline (farm.metrics.headline, the
    contract's rule), MultiStream's at the sweep's percentile. None for a scenario the contract lacks."""
    try:
        return metrics.headline(scenario, multistream_percentile)
    except ValueError:
        return None


def headline(
    scenario: str, values: dict[str, float], multistream_percentile: float = DEFAULT_MULTISTREAM_PERCENTILE
) -> float | None:
    """The headline's value among a run's metrics (SingleStream's for an unknown scenario, as ever)."""
    name = headline_name(scenario, multistream_percentile) or metrics.headline("SingleStream")
    return values.get(name)


def multistream_percentile(s: Session, sweep_id: str) -> float:
    """The sweep's ``loadgen.multi_stream_target_latency_percentile`` (the spec is stored as JSON)."""
    sweep = s.get(SweepRow, sweep_id)
    loadgen = ((sweep.spec or {}).get("loadgen") if sweep is not None else None) or {}
    return float(loadgen.get("multi_stream_target_latency_percentile") or DEFAULT_MULTISTREAM_PERCENTILE)


def _config(s: Session, job: JobRow) -> list[JobRow]:
    return list(
        s.scalars(
            select(JobRow)
            .where(
                JobRow.sweep_id == job.sweep_id,
                JobRow.kind == "run",
                JobRow.model == job.model,
                JobRow.precision == job.precision,
                JobRow.target == job.target,
                JobRow.batch_size == job.batch_size,
                JobRow.scenario == job.scenario,
            )
            .order_by(JobRow.repeat)
        )
    )


def _values(s: Session, scenario: str, job_ids: list[int]) -> tuple[list[RunRow], list[float]]:
    runs = list(s.scalars(select(RunRow).where(RunRow.job_id.in_(job_ids)).order_by(RunRow.repeat)))
    if not runs:
        return runs, []
    percentile = multistream_percentile(s, runs[0].sweep_id)  # one configuration: one sweep
    values = []
    for run in runs:
        found = {m.name: m.value for m in s.scalars(select(MetricRow).where(MetricRow.run_id == run.id))}
        value = headline(scenario, found, percentile)
        if value is not None:
            values.append(value)
    return runs, values


def settings_of(s: Session, sweep_id: str) -> Stability | None:
    sweep = s.get(SweepRow, sweep_id)
    raw = (sweep.spec or {}).get("stability") if sweep is not None else None
    return Stability.model_validate(raw) if raw else None


def plan_after_run(db_url: str, job_id: int) -> list[tuple[int, str]]:
    """Called when a run job has finished (stored). Returns the (job id, board type) of an extra repeat
    to dispatch, if the configuration needs one; flags the configuration's runs when it hit the cap.
    Call it before rolling the sweep up, so the sweep never looks finished while a repeat is being added."""
    with session_scope(db_url) as s:
        job = s.get(JobRow, job_id)
        if job is None or job.kind != "run":
            return []
        cfg = settings_of(s, job.sweep_id)
        if cfg is None:
            return []
        siblings = _config(s, job)
        if any(j.state not in FINISHED for j in siblings):
            return []  # the last repeat to finish decides
        runs, values = _values(s, job.scenario or "", [j.id for j in siblings])
        decision = decide(values, len(siblings), cfg)
        log.info(
            "stability %s: %s (cv %s over %d values)", job.key, decision.action, decision.cv_pct, len(values)
        )
        if decision.action == "capped":
            flag = unstable_flag(decision, cfg)
            for run in runs:
                kept = [f for f in (run.flags or []) if not str(f).startswith(UNSTABLE)]
                run.flags = [*kept, flag]
            return []
        if decision.action != "more":
            return []
        if any(_model_error(j) for j in siblings):
            # A model error is the model's, not the run's: another repeat would fail the same way.
            log.info("stability %s: no more repeats after a model error", job.key)
            return []
        template = siblings[-1]
        nxt = max(j.repeat or 0 for j in siblings) + 1
        spec = {
            "sweep_id": job.sweep_id,
            "key": repeat_key(job.model, job.precision, job.target, job.batch_size, job.scenario or "", nxt),
            "kind": "run",
            "model": job.model,
            "precision": job.precision,
            "target": job.target,
            "batch_size": job.batch_size,
            "scenario": job.scenario,
            "repeat": nxt,
            "depends_on_id": template.depends_on_id,
            "state": "pending",
        }
    return [(_add_job(db_url, spec), spec["target"])]


def _model_error(job: JobRow) -> bool:
    return job.state == "failed" and (job.error or "").startswith(MODEL_ERROR)


def _add_job(db_url: str, spec: dict) -> int:
    """Insert the extra repeat's row, or find the one a redelivery or a racing finisher already added."""
    try:
        with session_scope(db_url) as s:
            row = JobRow(**spec)
            s.add(row)
            s.flush()
            return row.id
    except IntegrityError:
        log.info("extra repeat %s already planned", spec["key"])
        with session_scope(db_url) as s:
            found = s.scalar(
                select(JobRow.id).where(JobRow.sweep_id == spec["sweep_id"], JobRow.key == spec["key"])
            )
            assert found is not None
            return found


def summary(s: Session, sweep_id: str) -> list[dict]:
    """Per configuration of a sweep with `stability:`: repeats stored, CV of the headline metric, state."""
    cfg = settings_of(s, sweep_id)
    if cfg is None:
        return []
    jobs = list(s.scalars(select(JobRow).where(JobRow.sweep_id == sweep_id, JobRow.kind == "run")))
    groups: dict[tuple, list[JobRow]] = {}
    for j in jobs:
        groups.setdefault((j.model, j.precision, j.target, j.batch_size, j.scenario), []).append(j)
    percentile = multistream_percentile(s, sweep_id)
    out = []
    for (model, precision, target, batch, scenario), members in sorted(groups.items(), key=str):
        runs, values = _values(s, scenario or "", [j.id for j in members])
        finished = all(j.state in FINISHED for j in members)
        decision = decide(values, len(members), cfg)
        state = decision.action if finished else "running"
        if state == "more":  # finished yet undecided: a repeat failed with a model error (no more were added)
            state = "failed"
        out.append(
            {
                "config": f"{model}/{precision}/{target}/b{batch}/{scenario}",
                "metric": headline_name(scenario or "", percentile) or "?",
                "repeats": len(members),
                "values": len(values),
                "cv_pct": None if decision.cv_pct is None else round(decision.cv_pct, 3),
                "threshold_pct": cfg.cv_threshold_pct,
                "state": {"more": "running", "capped": "unstable"}.get(state, state),
            }
        )
    return out


NOISY = "noisy-host:"


def noise_flags(noise: dict | None) -> list[str]:
    """["noisy-host: <reasons>"] when the agent's pre-run check (workers/agent/noise.py) said noisy."""
    if not isinstance(noise, dict) or noise.get("verdict") != "noisy":
        return []
    return [f"{NOISY} " + "; ".join(str(r) for r in noise.get("reasons") or ["(no reason given)"])]
