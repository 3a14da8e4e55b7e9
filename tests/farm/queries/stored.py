"""Stored runs for comparison tests: sweeps, boards, artifacts, runs and metrics written with the models,
the way the result path writes them, so farm.queries.compare reads the database it reads in production."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from farm.db.models import ArtifactRow, BoardRow, JobRow, MetricRow, RunRow, SweepRow
from farm.db.session import session_scope

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
FAMILIES = {"cpu": "cpu", "gpu": "gpu", "zcu104": "fpga", "u50": "fpga"}


def sweep(db_url: str, name: str, hours: float = 0.0, purpose: str = "sweep") -> str:
    """A sweep created ``hours`` after T0; returns its id."""
    sweep_id = str(uuid.uuid4())
    with session_scope(db_url) as s:
        s.add(
            SweepRow(
                id=sweep_id, name=name, source="test", spec_yaml="", spec_hash="0", spec={}, state="done",
                created_at=T0 + timedelta(hours=hours), purpose=purpose,
            )
        )  # fmt: skip
    return sweep_id


def runs(
    db_url: str,
    sweep_id: str,
    target: str,
    values: list[dict[str, float]],
    *,
    precision: str = "int8",
    source: str = "measured",
    samples: list[float] | None = None,
    flags: list[str] | None = None,
    valid: bool | None = True,
    agreement: float | None = None,
    model: str = "resnet18",
    scenario: str = "SingleStream",
) -> list[int]:
    """One run per dict of metric values (repeats 0, 1, ...) of ``target`` in ``sweep_id``."""
    akey = f"{target}-{precision}-{agreement}".ljust(64, "0")[:64]
    with session_scope(db_url) as s:
        created = s.get(SweepRow, sweep_id).created_at
        if s.get(BoardRow, f"{target}-0") is None:
            s.add(BoardRow(name=f"{target}-0", board_type=target, family=FAMILIES[target], state="idle"))
        if s.get(ArtifactRow, akey) is None:
            s.add(
                ArtifactRow(
                    key=akey, model=model, model_sha256="0" * 64, precision=precision, target_arch=target,
                    batch_size=1, toolchain="t", toolchain_version="1", file_sha256="0", size_bytes=1,
                    top1_agreement=agreement,
                )
            )  # fmt: skip
        s.flush()
        ids = []
        for i, figures in enumerate(values):
            key = f"run/{model}/{precision}/{target}/b1/{scenario}/{source}/r{i}"
            job = JobRow(
                sweep_id=sweep_id, key=key, kind="run", state="done", model=model, precision=precision,
                target=target, batch_size=1, scenario=scenario, repeat=i,
            )  # fmt: skip
            s.add(job)
            s.flush()
            run = RunRow(
                idempotency_key=f"{sweep_id}/{key}", sweep_id=sweep_id, job_id=job.id, artifact_key=akey,
                board_name=f"{target}-0", model=model, precision=precision, target=target, batch_size=1,
                scenario=scenario, repeat=i, source=source, result_valid=valid, fingerprint=f"fp-{target}",
                created_at=created + timedelta(minutes=i), flags=flags, samples_ms=samples,
                metrics=[MetricRow(name=n, value=v, unit="", source=source) for n, v in figures.items()],
            )  # fmt: skip
            s.add(run)
            s.flush()
            ids.append(run.id)
    return ids


def figures(p50: float, ips: float, watts: float | None = None, **more: float) -> dict[str, float]:
    """A run's headline figures: p99 is 1.3 x p50."""
    out = {"latency_ms_p50": p50, "latency_ms_p99": p50 * 1.3, "throughput_ips": ips, **more}
    return out | ({"power_w": watts} if watts is not None else {})
