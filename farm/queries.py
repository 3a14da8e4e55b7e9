"""Read-side queries for the CLI and the dashboard: no raw SQL anywhere else."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from farm.db.models import ArtifactRow, JobRow, MetricRow, RunRow, SweepRow
from farm.services.stability import summary as stability_summary

RESULT_METRICS = (
    "latency_ms_p50",
    "latency_ms_p90",
    "latency_ms_p95",
    "latency_ms_p99",
    "latency_ms_p99_9",
    "latency_ms_mean",
    "throughput_ips",
    "server_qps_max",
    "server_latency_ms_p99_at_max",
    "power_w",
    "energy_mj_per_inference",
    "temp_c_max",
    # accuracy (docs/accuracy.md): on the run's own inputs (int8 vs fp32) and on the sweep's dataset
    "int8_fp32_top1_agreement",
    "int8_fp32_sqnr_db",
    "accuracy_top1",
    "accuracy_top5",
    "accuracy_samples",
    "int8_fp32_dataset_top1_agreement",
)


def iso(ts: datetime | None) -> str | None:
    """ISO 8601 in UTC; SQLite hands timestamps back without their zone, and they were stored as UTC."""
    if ts is None:
        return None
    return (ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)).isoformat()


def latest_sweep_id(s: Session) -> str | None:
    return s.scalar(select(SweepRow.id).order_by(SweepRow.created_at.desc()).limit(1))


def results(s: Session, sweep_id: str | None = None) -> list[dict[str, Any]]:
    """One dict per run, with every metric in RESULT_METRICS (None where not measured)."""
    query = (
        select(RunRow, ArtifactRow.top1_agreement, ArtifactRow.sqnr_db)
        .join(ArtifactRow, ArtifactRow.key == RunRow.artifact_key)
        .order_by(
            RunRow.model, RunRow.precision, RunRow.target, RunRow.batch_size, RunRow.scenario, RunRow.repeat
        )
    )
    if sweep_id:
        query = query.where(RunRow.sweep_id == sweep_id)
    rows = s.execute(query).all()
    run_ids = [r.RunRow.id for r in rows]
    metrics: dict[int, dict[str, float]] = {}
    for chunk_start in range(0, len(run_ids), 500):
        chunk = run_ids[chunk_start : chunk_start + 500]
        for m in s.scalars(select(MetricRow).where(MetricRow.run_id.in_(chunk))):
            metrics.setdefault(m.run_id, {})[m.name] = m.value
    out = []
    for run, top1, sqnr in rows:
        m = metrics.get(run.id, {})
        out.append(
            {
                "run_id": run.id,
                "sweep_id": run.sweep_id,
                "model": run.model,
                "precision": run.precision,
                "batch_size": run.batch_size,
                "scenario": run.scenario,
                "repeat": run.repeat,
                "target": run.target,
                "board": run.board_name,
                "source": run.source,
                "emulation_model": run.emulation_model,  # what produced an emulated figure; null if measured
                "result_valid": run.result_valid,
                **{name: m.get(name) for name in RESULT_METRICS},
                "int8_top1_agreement": top1 if run.precision == "int8" else None,
                "int8_sqnr_db": sqnr if run.precision == "int8" else None,
                "fingerprint": run.fingerprint,
                "flags": list(run.flags or []),  # unstable / noisy-host / throttled: a second look needed
                "noise_verdict": (run.noise or {}).get("verdict"),
                "created_at": iso(run.created_at),
            }
        )
    return out


def sweep_summary(s: Session, sweep_id: str) -> dict[str, Any] | None:
    sweep = s.get(SweepRow, sweep_id)
    if sweep is None:
        return None
    jobs = list(s.scalars(select(JobRow).where(JobRow.sweep_id == sweep_id).order_by(JobRow.id)))
    counts: dict[str, int] = {}
    for j in jobs:
        counts[f"{j.kind}:{j.state}"] = counts.get(f"{j.kind}:{j.state}", 0) + 1
    return {
        "id": sweep.id,
        "name": sweep.name,
        "state": sweep.state,
        "created_at": iso(sweep.created_at),
        "finished_at": iso(sweep.finished_at),
        "jobs_total": len(jobs),
        "jobs_finished": sum(j.state in ("done", "cached", "failed") for j in jobs),
        "compile_executed": sum(j.kind == "compile" and j.state == "done" for j in jobs),
        "compile_cached": sum(j.kind == "compile" and j.state == "cached" for j in jobs),
        "runs_stored": sum(j.kind in ("run", "soak") and j.state == "done" for j in jobs),
        "failed": [{"job": j.key, "error": j.error} for j in jobs if j.state == "failed"],
        "counts": counts,
        "flags": [
            {"run_id": run_id, "job": key, "flag": flag}
            for run_id, key, flags in s.execute(
                select(RunRow.id, JobRow.key, RunRow.flags)
                .join(JobRow, JobRow.id == RunRow.job_id)
                .where(RunRow.sweep_id == sweep_id)
                .order_by(RunRow.id)
            )
            for flag in flags or []
        ],
        "stability": stability_summary(s, sweep_id),
    }


def sweeps(s: Session, limit: int = 20) -> list[dict[str, Any]]:
    ids = s.scalars(select(SweepRow.id).order_by(SweepRow.created_at.desc()).limit(limit))
    return [summary for i in list(ids) if (summary := sweep_summary(s, i))]
