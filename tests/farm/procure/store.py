"""Stored runs for procurement tests, written straight to an Alembic-built database with the models, the
way the result path writes them (metrics rows, provenance.environment.server_search with its probes)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from farm.db.models import AlertRow, ArtifactRow, BoardRow, JobRow, MetricRow, ProvenanceRow, RunRow, SweepRow
from farm.db.session import session_scope

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
NOW = T0 + timedelta(days=10)


def probe(qps: float, p99: float, load: float | None = None) -> dict[str, Any]:
    return {"qps": qps, "passed": p99 <= 10, "latency_ms_p99": p99, "latency_ms_at_percentile": p99,
            "offered_load": load}  # fmt: skip


def add_run(
    db_url: str,
    *,
    target: str,
    scenario: str,
    metrics: dict[str, float],
    probes: list[dict[str, Any]] | None = None,
    source: str = "measured",
    model: str = "mobilenet_v2",
    precision: str = "int8",
    valid: bool = True,
    flags: list[str] | None = None,
    day: float = 0,
    time_scale: float | None = None,
    purpose: str = "sweep",
) -> int:
    """One sweep with one run; returns the run id."""
    sweep_id = str(uuid.uuid4())
    key = uuid.uuid4().hex + uuid.uuid4().hex
    board = f"{target}-0"
    with session_scope(db_url) as s:
        if s.get(BoardRow, board) is None:
            s.add(BoardRow(name=board, board_type=target, family="fpga", state="idle"))
        s.add(ArtifactRow(key=key, model=model, model_sha256="0" * 64, precision=precision, target_arch="x",
                          batch_size=1, toolchain="t", toolchain_version="1", file_sha256=key, size_bytes=1))  # fmt: skip
        s.add(SweepRow(id=sweep_id, name="n", source="test", spec_yaml="", spec_hash="0", spec={}, state="done",
                       purpose=purpose))  # fmt: skip
        s.flush()
        job = JobRow(sweep_id=sweep_id, key="run:0", kind="run", state="done", model=model, precision=precision,
                     target=target, batch_size=1, scenario=scenario, repeat=0)  # fmt: skip
        s.add(job)
        s.flush()
        run = RunRow(idempotency_key=f"{sweep_id}:0", sweep_id=sweep_id, job_id=job.id, artifact_key=key,
                     board_name=board, model=model, precision=precision, target=target, batch_size=1,
                     scenario=scenario, repeat=0, source=source, result_valid=valid, fingerprint="f" * 64,
                     created_at=T0 + timedelta(days=day), flags=flags)  # fmt: skip
        s.add(run)
        s.flush()
        for name, value in metrics.items():
            s.add(MetricRow(run_id=run.id, name=name, value=value, unit="?", source=source))
        env: dict[str, Any] = {}
        if probes is not None:
            env["server_search"] = {"latency_bound_ms": 10, "latency_percentile": 99, "probes": probes}
        if time_scale is not None:
            env["time_scale"] = time_scale
        s.add(ProvenanceRow(run_id=run.id, farm_version="0.1.0", environment=env))
        return run.id


def add_alert(
    db_url: str, *, target: str, run_id: int, state: str = "open", source: str = "measured"
) -> None:
    with session_scope(db_url) as s:
        s.add(AlertRow(kind="regression", state=state, series_key=f"mobilenet_v2/int8/b1/Server/{target}/{source}",
                       fingerprint="f" * 64, metric="server_qps_max", model="mobilenet_v2", precision="int8",
                       batch_size=1, scenario="Server", target=target, source=source, change_run_id=run_id,
                       group_key="g", detector="scan"))  # fmt: skip
