"""Read side: stored runs, their metrics and provenance (results tables, Compare, Run detail, Trends).

Every function takes an open Session and returns plain dicts and lists, for the CLI and the dashboard.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, true, tuple_
from sqlalchemy.orm import Session

from farm import metrics
from farm.db.models import (
    ArtifactRow,
    BoardRow,
    MetricRow,
    ProvenanceRow,
    RunAttachmentRow,
    RunRow,
    SweepRow,
)
from farm.queries.common import iso
from farm.targets import is_board_cpu

# Which metrics each read names, in the catalog's order (farm/metrics.py).
RESULT_METRICS = metrics.names(view=metrics.RESULTS)


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
    labels = sweep_labels(s, {r.RunRow.sweep_id for r in rows})
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
                "labels": labels.get(run.sweep_id, {}),  # the sweep's version labels
            }
        )
    return out


#: LoadGen's logs kept with a run (farm/services/results.py `attachments`): kind -> attachment name.
LOADGEN_LOGS = {"summary": "mlperf_log_summary.txt", "detail": "mlperf_log_detail.txt"}


def loadgen_logs(s: Session, run_id: int) -> dict[str, dict[str, Any]]:
    """The run's stored LoadGen logs, kind -> {name, size_bytes, sha256, content}; a kind the run lacks
    (a run stored before logs were kept, or one whose agent sent none) is absent."""
    names = {name: kind for kind, name in LOADGEN_LOGS.items()}
    rows = s.scalars(
        select(RunAttachmentRow).where(
            RunAttachmentRow.run_id == run_id, RunAttachmentRow.name.in_(list(names))
        )
    )
    return {
        names[a.name]: {"name": a.name, "size_bytes": a.size_bytes, "sha256": a.sha256, "content": a.content}
        for a in rows
    }


def sweep_labels(s: Session, sweep_ids: set[str]) -> dict[str, dict[str, str]]:
    """sweep id -> its version labels ({} for none), read once per sweep rather than once per run."""
    out: dict[str, dict[str, str]] = {}
    ids = sorted(sweep_ids)
    for start in range(0, len(ids), 500):
        query = select(SweepRow.id, SweepRow.labels).where(SweepRow.id.in_(ids[start : start + 500]))
        out.update({sweep_id: dict(labels or {}) for sweep_id, labels in s.execute(query)})
    return out


LATENCY_PERCENTILES = metrics.PERCENTILES


COMPARE_METRICS = metrics.names(view=metrics.COMPARE)


# What a trend can follow (a fixed list: a DISTINCT over the metrics table would read all of it).
TREND_METRICS = metrics.names(view=metrics.TRENDS)


SELECTION_KEYS = ("model", "precision", "batch_size", "scenario")


def selection_options(s: Session) -> list[dict[str, Any]]:
    """Every (model, precision, batch_size, scenario, target, source) that has runs, read from
    ix_runs_selection. SQLite answers a DISTINCT from the index alone; PostgreSQL (no skip scan before 18)
    would hash every row, so there a recursive query hops from one combination to the next through the
    index: a few hundred index probes instead of a scan of the whole history."""
    keys = (*SELECTION_KEYS, "target", "source")
    runs = RunRow.__table__
    cols = [runs.c[k] for k in keys]
    if s.get_bind().dialect.name == "postgresql":
        first = select(*cols).order_by(*cols).limit(1).subquery("first")
        hops = select(*first.c).cte("combos", recursive=True)
        later = runs.alias("later")
        later_cols = [later.c[k] for k in keys]
        step = (
            select(*later_cols)
            .where(tuple_(*later_cols) > tuple_(*(hops.c[k] for k in keys)))
            .order_by(*later_cols)
            .limit(1)
            .lateral("step")
        )
        hops = hops.union_all(select(*step.c).select_from(hops).join(step, true()))
        query = select(*hops.c)
    else:
        query = select(*cols).distinct()
    rows = s.execute(query).all()
    return sorted((dict(zip(keys, r, strict=True)) for r in rows), key=lambda d: tuple(map(str, d.values())))


def target_families(s: Session) -> dict[str, str]:
    """board type -> family (fpga, gpu, cpu), from the boards the farm knows; names say it otherwise."""
    families = {t: f for t, f in s.execute(select(BoardRow.board_type, BoardRow.family).distinct())}
    return families


def family_of(target: str, families: dict[str, str]) -> str:
    if is_board_cpu(target) or target == "cpu":  # a board's own CPU (`pynq-z2:cpu:1`) is a CPU baseline
        return "cpu"
    if target in families:
        return families[target]
    if target == "gpu" or target.startswith(("jetson", "rtx", "a100", "h100", "t4")):
        return "gpu"
    return "fpga"


def latest_runs(s: Session, limit: int = 200) -> list[dict[str, Any]]:
    """The newest runs, for the run picker."""
    query = (
        select(
            RunRow.id,
            RunRow.model,
            RunRow.precision,
            RunRow.batch_size,
            RunRow.scenario,
            RunRow.target,
            RunRow.source,
            RunRow.created_at,
        )
        .order_by(RunRow.created_at.desc(), RunRow.id.desc())
        .limit(limit)
    )
    keys = ("run_id", *SELECTION_KEYS, "target", "source", "created_at")
    return [dict(zip(keys, (*r[:-1], iso(r[-1])), strict=True)) for r in s.execute(query)]


def run_detail(s: Session, run_id: int) -> dict[str, Any] | None:
    """One run with its metrics, latency samples, traces and provenance; None if there is no such run."""
    run = s.get(RunRow, run_id)
    if run is None:
        return None
    metrics = [
        {"name": m.name, "value": m.value, "unit": m.unit, "source": m.source}
        for m in s.scalars(select(MetricRow).where(MetricRow.run_id == run_id).order_by(MetricRow.name))
    ]
    artifact = s.get(ArtifactRow, run.artifact_key) if run.artifact_key else None
    compiled = None
    if artifact is not None:  # where the artifact was built: the runner, its host and image (digest)
        compiled = {
            "runner": artifact.compile_runner,
            "host": artifact.compile_host,
            "image": artifact.toolchain_image,
            "toolchain_version": artifact.toolchain_version,
            "seconds": artifact.compile_seconds,
        }
    prov = s.get(ProvenanceRow, run_id)
    provenance = None
    if prov is not None:
        provenance = {
            c.key: getattr(prov, c.key) for c in ProvenanceRow.__table__.columns if c.key != "run_id"
        }
    return {
        "run_id": run.id,
        "sweep_id": run.sweep_id,
        "job_id": run.job_id,
        "board": run.board_name,
        **{k: getattr(run, k) for k in (*SELECTION_KEYS, "target", "repeat", "source")},
        "result_valid": run.result_valid,
        "fingerprint": run.fingerprint,
        "emulation_model": run.emulation_model,
        "labels": sweep_labels(s, {run.sweep_id}).get(run.sweep_id, {}),
        "flags": list(run.flags or []),  # why the result needs a second look (migration 0005)
        "noise": run.noise,  # the pre-run host noise check
        "artifact_key": run.artifact_key,
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "created_at": iso(run.created_at),
        "metrics": metrics,
        "samples_ms": list(run.samples_ms or []),
        "traces": dict(run.traces or {}),
        "provenance": provenance,
        "compile": compiled,
    }


def fingerprints(
    s: Session, *, model: str, precision: str, batch_size: int, scenario: str, target: str
) -> list[dict[str, Any]]:
    """The comparability fingerprints of one selection and target (usually one), with run counts."""
    query = (
        select(RunRow.fingerprint, RunRow.source, RunRow.created_at)
        .where(
            RunRow.model == model,
            RunRow.precision == precision,
            RunRow.batch_size == batch_size,
            RunRow.scenario == scenario,
            RunRow.target == target,
        )
        .order_by(RunRow.created_at)
    )
    found: dict[str, dict[str, Any]] = {}
    for fp, source, created in s.execute(query):
        entry = found.setdefault(fp, {"fingerprint": fp, "runs": 0, "sources": set(), "first_at": created})
        entry["runs"] += 1
        entry["sources"].add(source)
        entry["last_at"] = created
    return [
        {**e, "sources": sorted(e["sources"]), "first_at": iso(e["first_at"]), "last_at": iso(e["last_at"])}
        for e in found.values()
    ]


def trend(s: Session, fingerprint: str, metric: str, limit: int = 5000) -> list[dict[str, Any]]:
    """One metric's history within one fingerprint, oldest first, with what may explain a change."""
    query = (
        select(
            RunRow.id,
            RunRow.created_at,
            RunRow.sweep_id,
            RunRow.source,
            RunRow.board_name,
            MetricRow.value,
            ProvenanceRow.toolchain_version,
            ProvenanceRow.runtime_version,
        )
        .join(MetricRow, (MetricRow.run_id == RunRow.id) & (MetricRow.name == metric))
        .outerjoin(ProvenanceRow, ProvenanceRow.run_id == RunRow.id)
        .where(RunRow.fingerprint == fingerprint)
        .order_by(RunRow.created_at.desc())
        .limit(limit)
    )
    keys = ("run_id", "created_at", "sweep_id", "source", "board", "value", "toolchain", "runtime")
    rows = [dict(zip(keys, r, strict=True)) for r in s.execute(query)]
    labels = sweep_labels(s, {r["sweep_id"] for r in rows})
    for r in rows:
        r["created_at"] = iso(r["created_at"])
        r["labels"] = labels.get(r["sweep_id"], {})  # a history can be read against a version label
    return rows[::-1]
