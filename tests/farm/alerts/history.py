"""Stored history for alert tests: sweeps, runs, metrics and provenance written straight to the store, the
way the result path writes them, so detection and the lifecycle are tested on the database they read."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from farm.db.models import ArtifactRow, BoardRow, JobRow, MetricRow, ProvenanceRow, RunRow, SweepRow
from farm.db.session import session_scope

FINGERPRINT = "f" * 64
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def artifact(db_url: str, key: str, toolchain_version: str = "3.5") -> str:
    with session_scope(db_url) as s:
        if s.get(ArtifactRow, key) is None:
            s.add(
                ArtifactRow(
                    key=key, model="tiny", model_sha256="0" * 64, precision="int8", target_arch="DPUCZDX8G",
                    batch_size=1, toolchain="dpu_emulator", toolchain_version=toolchain_version,
                    file_sha256=key, size_bytes=1,
                )
            )  # fmt: skip
    return key


def board(db_url: str, name: str, board_type: str = "zcu104") -> None:
    with session_scope(db_url) as s:
        if s.get(BoardRow, name) is None:
            s.add(BoardRow(name=name, board_type=board_type, family="fpga", state="idle"))


def add_runs(
    db_url: str,
    values: list[float],
    *,
    metric: str = "latency_ms_p99",
    boards: tuple[str, ...] = ("zcu104-0",),
    artifact_key: str = "a" * 64,
    toolchain_version: str = "3.5",
    clock_mhz: float = 300.0,
    labels: dict | None = None,
    flags: list[str] | None = None,
    valid: bool = True,
    start: int = 0,
    purpose: str = "sweep",
    extra: dict[str, list[float]] | None = None,
) -> tuple[str, list[int]]:
    """One sweep with one run per value (boards taken in turn); returns the sweep id and run ids."""
    for b in boards:
        board(db_url, b)
    artifact(db_url, artifact_key, toolchain_version)
    sweep_id = str(uuid.uuid4())
    ids = []
    with session_scope(db_url) as s:
        s.add(
            SweepRow(
                id=sweep_id, name="nightly", source="test", spec_yaml="", spec_hash="0", spec={}, state="done",
                labels=labels, purpose=purpose,
            )
        )  # fmt: skip
        for i, value in enumerate(values):
            job = JobRow(
                sweep_id=sweep_id, key=f"run:{i}", kind="run", state="done", model="tiny", precision="int8",
                target="zcu104", batch_size=1, scenario="SingleStream", repeat=i,
            )  # fmt: skip
            s.add(job)
            s.flush()
            at = T0 + timedelta(hours=start + i)
            run = RunRow(
                idempotency_key=f"{sweep_id}:{i}", sweep_id=sweep_id, job_id=job.id, artifact_key=artifact_key,
                board_name=boards[i % len(boards)], model="tiny", precision="int8", target="zcu104", batch_size=1,
                scenario="SingleStream", repeat=i, source="emulated", result_valid=valid, fingerprint=FINGERPRINT,
                created_at=at, flags=flags,
            )  # fmt: skip
            s.add(run)
            s.flush()
            s.add(MetricRow(run_id=run.id, name=metric, value=value, unit="ms", source="emulated"))
            s.add(
                MetricRow(run_id=run.id, name="clock_mhz_min", value=clock_mhz, unit="MHz", source="emulated")
            )
            for name, series in (extra or {}).items():
                s.add(MetricRow(run_id=run.id, name=name, value=series[i], unit="?", source="emulated"))
            s.add(
                ProvenanceRow(
                    run_id=run.id, farm_version="0.1.0", toolchain="dpu_emulator", toolchain_version=toolchain_version,
                    accelerator_clock_mhz=clock_mhz, artifact_sha256=artifact_key,
                )
            )  # fmt: skip
            ids.append(run.id)
    return sweep_id, ids
