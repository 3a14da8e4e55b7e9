"""Dashboard fixtures: an empty results database and a small seeded one, both built by Alembic, rows
written through the real models (ORM objects, as the farm writes them)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from farm.db.migrate import ensure_schema
from farm.db.models import (
    AlertEventRow,
    AlertRow,
    ArtifactRow,
    BoardEventRow,
    BoardRow,
    JobRow,
    MetricRow,
    ProvenanceRow,
    RunAttachmentRow,
    RunRow,
    SweepRow,
)
from farm.db.session import dispose_engines, session_scope

VIEWS = Path(__file__).resolve().parents[2] / "dashboard" / "views"
PAGES = ("overview", "compare", "run_detail", "trends", "sweep_detail", "fleet", "alerts", "procurement")
SWEEP_ID = "5eed0000-0000-4000-8000-000000000001"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)

# target -> family, source, p50 ms, throughput, watts (None: the board reported no power)
TARGETS = {
    "cpu": ("cpu", "measured", 10.0, 100.0, 60.0),
    "zcu104": ("fpga", "emulated", 4.0, 250.0, 15.0),
    "vck190": ("fpga", "emulated", 1.0, 1000.0, None),
}


@pytest.fixture
def empty_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    ensure_schema(url)
    monkeypatch.setenv("FARM_DB_URL", url)
    yield url
    dispose_engines()


@pytest.fixture
def seeded_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'seeded.db'}"
    ensure_schema(url)
    seed_small(url)
    monkeypatch.setenv("FARM_DB_URL", url)
    monkeypatch.setenv("FARM_LAB", str(write_lab(tmp_path / "lab.yaml", list(TARGETS))))
    yield url
    dispose_engines()


def write_lab(path: Path, targets: list[str]) -> Path:
    """A lab file (the inventory `farm fleet list` and the Fleet page read) with the seeded board of each
    of ``targets`` (TARGET-01): leave a target out to have its board offline, as after `farm lab down`."""
    lines = ["boards:"] + [f"  - {{name: {t}-01, type: {t}, transport: local}}" for t in targets]
    path.write_text("\n".join(lines) + "\n")
    return path


def seed_small(url: str) -> dict[str, Any]:
    """One sweep over three targets, two older runs for a trend, a failed job, a run with no metrics,
    three boards (one bad) with a health history."""
    with session_scope(url) as s:
        for target, (family, *_rest) in TARGETS.items():
            s.add(
                BoardRow(name=f"{target}-01", board_type=target, family=family, state="idle", first_seen=T0)
            )
        s.flush()
        s.get(BoardRow, "vck190-01").state = "bad"
        s.get(BoardRow, "vck190-01").state_reason = "health check failed: ssh: connection refused"
        for i in range(6):
            at = T0 + timedelta(hours=4 * i)
            s.add(BoardEventRow(board_name="cpu-01", at=at, kind="health", ok=True, reason="ok"))
            s.add(BoardEventRow(board_name="vck190-01", at=at, kind="health", ok=i < 4, reason="ssh refused"))
        s.add(
            BoardEventRow(
                board_name="vck190-01", at=T0 + timedelta(hours=20), kind="state", from_state="idle",
                to_state="bad", reason="health check failed",
            )
        )  # fmt: skip
        for n, day in enumerate((0, 5, 10)):
            sweep_id = SWEEP_ID if day == 10 else f"5eed0000-0000-4000-8000-00000000010{n}"
            created = T0 + timedelta(days=day)
            s.add(
                SweepRow(
                    id=sweep_id, name=f"nightly-{day}", source="sweep.yaml", spec_yaml="name: nightly\n",
                    spec_hash="0" * 64, spec={}, state="failed" if day == 10 else "done", created_at=created,
                    finished_at=created + timedelta(hours=1),
                )
            )  # fmt: skip
            s.flush()
            for target, (_family, source, p50, ips, watts) in TARGETS.items():
                _run(s, sweep_id, created, target, source, p50 * (1 + 0.1 * (10 - day) / 10), ips, watts,
                     detailed=day == 10)  # fmt: skip
        # a failed job and a run that stored no metrics at all
        s.add(
            JobRow(
                sweep_id=SWEEP_ID, key="run/resnet18/int8/zcu104/b1/SingleStream/r9", kind="run", state="failed",
                model="resnet18", precision="int8", target="zcu104", batch_size=1, scenario="SingleStream",
                repeat=9, board_name="zcu104-01", error="InfraError: agent timed out after 180 s",
                created_at=T0, started_at=T0, finished_at=T0 + timedelta(seconds=180),
            )
        )  # fmt: skip
        bare = _run(s, SWEEP_ID, T0 + timedelta(days=9), "cpu", "measured", 0, 0, None,
                    detailed=False, repeat=7, metrics=False)  # fmt: skip
        s.add(
            AlertRow(
                kind="regression", state="open", series_key="resnet18/int8/b1/SingleStream/zcu104/emulated",
                fingerprint="fp-zcu104", metric="latency_ms_p50", model="resnet18", precision="int8", batch_size=1,
                scenario="SingleStream", target="zcu104", board="zcu104-01", source="emulated", change_run_id=bare,
                sweep_id=SWEEP_ID, group_key=f"sweep:{SWEEP_ID}", detector="check", before=4.0, after=4.6,
                change_pct=15.0, p_value=0.001, confirmed=True, run_ids=[bare], baseline_run_ids=[],
                details={"confirmation": {"summary": "confirmed: p50 latency 4.6 in 3 re-runs vs 4.0"}},
                cause={"summary": "on zcu104-01 only: the board", "provenance": {"toolchain_version": {"before": "3.5", "after": "3.6"}}},
                created_at=T0 + timedelta(days=10), updated_at=T0 + timedelta(days=10),
            )
        )  # fmt: skip
        s.flush()
        s.add(AlertEventRow(alert_id=1, from_state="confirming", to_state="open", note="confirmed", at=T0))
        return {"bare_run_id": bare}


#: LoadGen's logs as a detailed seeded run keeps them (the bare run has none).
LOGS = {
    "mlperf_log_summary.txt": "================================================\nMLPerf Results Summary\nResult is : VALID\n",
    "mlperf_log_detail.txt": ':::MLLOG {"key": "result_validity", "value": "VALID"}\n',
}


def _log(name: str, text: str) -> RunAttachmentRow:
    data = text.encode()
    return RunAttachmentRow(
        name=name,
        media_type="text/plain",
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        content=text,
    )


def _run(s, sweep_id: str, created: datetime, target: str, source: str, p50: float, ips: float,
         watts: float | None, *, detailed: bool, repeat: int = 0, metrics: bool = True) -> int:  # fmt: skip
    key = f"run/resnet18/int8/{target}/b1/SingleStream/r{repeat}"
    akey = f"{target:0<64}"[:64]
    if s.get(ArtifactRow, akey) is None:
        s.add(
            ArtifactRow(
                key=akey, model="resnet18", model_sha256="1" * 64, precision="int8", target_arch=target,
                batch_size=1, toolchain="dpu_emulator" if source == "emulated" else "onnxruntime_cpu",
                toolchain_version="3.5", file_sha256="2" * 64, size_bytes=1000, details={"input_shape": [1, 3, 224, 224]},
            )
        )  # fmt: skip
        s.flush()
    job = JobRow(
        sweep_id=sweep_id, key=key, kind="run", state="done", model="resnet18", precision="int8", target=target,
        batch_size=1, scenario="SingleStream", repeat=repeat, artifact_key=akey, board_name=f"{target}-01",
        created_at=created, started_at=created, finished_at=created + timedelta(seconds=12),
    )  # fmt: skip
    s.add(job)
    s.flush()
    values: dict[str, float] = {}
    if metrics:
        values = {"latency_ms_p50": p50, "latency_ms_p90": p50 * 1.1, "latency_ms_p95": p50 * 1.15,
                  "latency_ms_p99": p50 * 1.3, "latency_ms_p99_9": p50 * 1.5, "throughput_ips": ips,
                  "temp_c_max": 55.0}  # fmt: skip
        if watts is not None:
            values |= {"power_w": watts, "energy_mj_per_inference": 1000 * watts / ips}
    ts = [i * 0.1 for i in range(50)]
    run = RunRow(
        idempotency_key=f"{sweep_id}/{key}", sweep_id=sweep_id, job_id=job.id, artifact_key=akey,
        board_name=f"{target}-01", model="resnet18", precision="int8", target=target, batch_size=1,
        scenario="SingleStream", repeat=repeat, source=source, result_valid=True, fingerprint=f"fp-{target}",
        started_at=created, finished_at=created, created_at=created,
        samples_ms=[p50 * (0.9 + 0.002 * i) for i in range(100)] if detailed else None,
        traces={"power": {"t_s": ts, "values": [watts or 5.0] * 50, "unit": "W", "sensor": "hwmon:ina226"},
                "thermal": {"t_s": ts, "values": [40 + i * 0.2 for i in range(50)], "unit": "C"}}
        if detailed else None,
        emulation_model="farm-dpu-perf/1" if source == "emulated" else None,
        flags=["latency spread: p99 / p50 > 1.25"] if detailed and target == "vck190" else None,
        metrics=[MetricRow(name=n, value=v, unit="", source=source) for n, v in values.items()],
        provenance=ProvenanceRow(farm_version="0.1.0", toolchain_version="3.5", runtime="onnxruntime",
                                 environment={"hostname": "h"}) if metrics else None,
        attachments=[_log(name, text) for name, text in LOGS.items()] if detailed else [],
    )  # fmt: skip
    s.add(run)
    s.flush()
    return run.id
