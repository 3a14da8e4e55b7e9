"""A whole sweep through the CLI: embedded (SQLite and PostgreSQL), cached re-submission, failures."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner
from onnx import helper
from sqlalchemy import func, select

from farm.cli.main import cli
from farm.db.models import ArtifactRow, JobRow, MetricRow, ProvenanceRow, RunRow
from farm.db.session import session_scope
from tests.conftest import TINY_SWEEP, tiny_model, write_sweep

REQUIRED_KEYS = {
    "sweep_id", "model", "precision", "batch_size", "scenario", "target", "board", "source",
    "latency_ms_p50", "latency_ms_p90", "latency_ms_p99", "throughput_ips", "power_w",
    "energy_mj_per_inference", "temp_c_max",
}  # fmt: skip


def _submit(tmp_path: Path, tiny_onnx: Path, *extra: str):
    sweep = write_sweep(tmp_path, TINY_SWEEP.format(onnx=tiny_onnx))
    return CliRunner().invoke(cli, ["submit", str(sweep), *extra], catch_exceptions=False)


def _results(*extra: str) -> list[dict]:
    out = CliRunner().invoke(cli, ["results", "--format", "json", *extra], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


def _check_sweep(db_url: str, rows: list[dict]) -> None:
    assert len(rows) == 4  # 2 precisions x 2 scenarios
    assert {(r["precision"], r["scenario"]) for r in rows} == {
        ("fp32", "SingleStream"), ("fp32", "Offline"), ("int8", "SingleStream"), ("int8", "Offline")
    }  # fmt: skip
    for r in rows:
        assert r.keys() >= REQUIRED_KEYS
        assert r["source"] == "measured" and r["target"] == "cpu" and r["board"] == "local-cpu"
        if r["scenario"] == "SingleStream":
            assert 0 < r["latency_ms_p50"] <= r["latency_ms_p90"] <= r["latency_ms_p99"]
        else:  # Offline has no per-inference latency; LoadGen's completion times are kept under their own names
            assert r["latency_ms_p50"] is None
        assert r["throughput_ips"] > 0
        assert r["power_w"] is None and r["energy_mj_per_inference"] is None and r["temp_c_max"] is None
        if r["precision"] == "int8":
            assert 0.5 <= r["int8_top1_agreement"] <= 1.0 and r["int8_sqnr_db"] > 5
    with session_scope(db_url) as s:
        assert s.scalar(select(func.count()).select_from(RunRow)) == 4
        assert s.scalar(select(func.count()).select_from(ProvenanceRow)) == 4
        prov = s.scalars(select(ProvenanceRow)).first()
        assert (
            prov.runtime == "onnxruntime"
            and prov.runtime_version
            and prov.loadgen_version
            and prov.farm_version
        )
        assert prov.toolchain_version.startswith("onnxruntime")
        for job in s.scalars(select(JobRow)):
            assert job.attempts == 1 and job.started_at, job.key
            assert job.started_at and job.finished_at and job.started_at <= job.finished_at
            assert job.board_name == ("local-cpu" if job.kind == "run" else None)
        names = set(s.scalars(select(MetricRow.name)))
        assert {"latency_ms_p50", "latency_ms_p99_9", "offline_completion_ms_p50", "throughput_ips"} <= names


def test_sweep_embedded_sqlite_and_cached_resubmission(tmp_path: Path, farm_env, tiny_onnx: Path) -> None:
    first = _submit(tmp_path, tiny_onnx)
    assert first.exit_code == 0, first.output
    assert "compile jobs executed: 2" in first.output and "runs stored: 4" in first.output
    assert "measured" in first.output  # the table labels the source
    rows = _results()
    _check_sweep(farm_env.db_url, rows)

    second = _submit(tmp_path, tiny_onnx)
    assert second.exit_code == 0, second.output
    assert "compile jobs executed: 0, reused from the artifact store: 2" in second.output
    with session_scope(farm_env.db_url) as s:
        assert s.scalar(select(func.count()).select_from(ArtifactRow)) == 2
        assert s.scalar(select(func.count()).select_from(RunRow)) == 8
    latest = _results()
    assert {r["sweep_id"] for r in latest} != {r["sweep_id"] for r in rows}
    assert len(_results("--all")) == 8
    csv_out = CliRunner().invoke(cli, ["results", "--format", "csv"]).output
    assert csv_out.splitlines()[0].startswith("run_id,sweep_id,model") and len(csv_out.splitlines()) == 5


@pytest.mark.postgres
def test_sweep_embedded_postgres(tmp_path: Path, farm_env, tiny_onnx: Path, pg_url: str) -> None:
    result = _submit(tmp_path, tiny_onnx, "--db", pg_url)
    assert result.exit_code == 0, result.output
    _check_sweep(pg_url, _results("--db", pg_url))


def test_status_lists_and_shows(tmp_path: Path, farm_env, tiny_onnx: Path) -> None:
    assert "no sweeps yet" in CliRunner().invoke(cli, ["status"]).output
    assert _submit(tmp_path, tiny_onnx).exit_code == 0
    sweep_id = _results()[0]["sweep_id"]
    shown = CliRunner().invoke(cli, ["status", sweep_id[:8], "--format", "json"])
    summary = json.loads(shown.output)
    assert summary["id"] == sweep_id and summary["state"] == "done" and summary["jobs_finished"] == 6
    missing = CliRunner().invoke(cli, ["status", "ffffffff"])
    assert missing.exit_code == 1 and "no sweep matches" in missing.output


def test_model_error_fails_with_reason_not_retried(tmp_path: Path, farm_env) -> None:
    model = tiny_model(batch=1)
    model.graph.node.append(helper.make_node("NoSuchOp", ["logits"], ["out"], domain="com.example.bogus"))
    model.graph.output[0].name = "out"
    model.opset_import.append(helper.make_opsetid("com.example.bogus", 1))
    onnx.save(model, tmp_path / "bogus.onnx")
    body = TINY_SWEEP.format(onnx=tmp_path / "bogus.onnx").replace("[fp32, int8]", "[fp32]")
    result = CliRunner().invoke(cli, ["submit", str(write_sweep(tmp_path, body))])
    assert result.exit_code == 1, result.output
    assert "failed" in result.output and "NoSuchOp" in result.output
    with session_scope(farm_env.db_url) as s:
        jobs = list(s.scalars(select(JobRow)))
        assert {j.state for j in jobs} == {"failed"}
        compile_job = next(j for j in jobs if j.kind == "compile")
        assert compile_job.attempts == 1  # a model error is not retried
        assert all("compile job failed" in j.error for j in jobs if j.kind == "run")
        assert s.scalar(select(func.count()).select_from(RunRow)) == 0


TORCH_NET = """\
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 10)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))
"""


def test_torch_model_sweep(tmp_path: Path, farm_env) -> None:
    """A user's PyTorch module:Class next to the sweep, with a state_dict checkpoint, exported and measured."""
    torch = pytest.importorskip("torch")
    (tmp_path / "mynets.py").write_text(TORCH_NET)
    import importlib
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        net = importlib.import_module("mynets").Net()
        torch.save(net.state_dict(), tmp_path / "net.pt")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("mynets", None)
    body = (
        TINY_SWEEP.replace(
            "onnx: {onnx}", "torch: mynets:Net\n    checkpoint: net.pt\n    input_shape: [3, 16, 16]"
        )
        .replace("[fp32, int8]", "[fp32]")
        .replace("[1]", "[2]")
    )
    result = CliRunner().invoke(cli, ["submit", str(write_sweep(tmp_path, body))], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = _results()
    assert (
        len(rows) == 2
        and {r["batch_size"] for r in rows} == {2}
        and all(r["throughput_ips"] > 0 for r in rows)
    )
    assert "mynets" not in sys.modules  # imported for the export only
