"""`farm import DIR`: the agent run standalone on a host outside the fleet (`farm_agent.py run --config ...
--out DIR`), its report stored once as a measured run with full provenance; every bad DIR a located,
non-zero error with nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from farm.cli.main import cli
from farm.db.models import ArtifactRow, BoardRow, JobRow, MetricRow, ProvenanceRow, RunRow, SweepRow
from farm.db.session import session_scope
from tests.workers.agent.test_agent_cli import AGENT, FAST_LOADGEN, tiny_model


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> Path:
    """One standalone agent run (ONNX Runtime on this CPU), as a host outside the fleet makes it."""
    base = tmp_path_factory.mktemp("standalone")
    model = tiny_model(base / "tinynet.onnx")
    cfg = base / "cfg.json"
    cfg.write_text(
        json.dumps(
            {
                "artifact": model,
                "backend": "onnxruntime_cpu",
                "scenario": "SingleStream",
                "loadgen": FAST_LOADGEN,
                "warmup_queries": 3,
            }
        )
    )
    out = base / "run-1"
    proc = subprocess.run(
        [sys.executable, AGENT, "run", "--config", str(cfg), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "ok"  # stdout still carries the one JSON document
    again = subprocess.run(
        [sys.executable, AGENT, "run", "--config", str(cfg), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert again.returncode == 1 and "already holds a report" in again.stdout  # one run per folder
    return out


def _farm(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def _counts(db_url: str) -> dict[str, int]:
    with session_scope(db_url) as s:
        return {
            t.__tablename__: s.scalar(select(func.count()).select_from(t))
            for t in (SweepRow, JobRow, ArtifactRow, RunRow, BoardRow)
        }


def test_a_standalone_run_is_imported_once_with_its_provenance(measured: Path, farm_env) -> None:
    assert (measured / "report.json").is_file() and any((measured / "loadgen").iterdir())
    code, out = _farm("import", str(measured), "--type", "cpu", "--board", "lab-pc-7", "--label", "site=lab2")
    assert (
        code == 0 and "imported run" in out and "tinynet fp32 SingleStream on cpu (lab-pc-7), measured" in out
    )
    with session_scope(farm_env.db_url) as s:
        run = s.scalars(select(RunRow)).one()
        metrics = dict(
            s.execute(select(MetricRow.name, MetricRow.value).where(MetricRow.run_id == run.id)).all()
        )
        prov = s.get(ProvenanceRow, run.id)
        sweep = s.get(SweepRow, run.sweep_id)
        board = s.get(BoardRow, "lab-pc-7")
    assert run.source == "measured" and run.board_name == "lab-pc-7" and run.target == "cpu"
    assert metrics["latency_ms_p50"] > 0 and metrics["throughput_ips"] > 0
    assert prov.runtime == "onnxruntime" and prov.hostname and prov.environment["cpu_isa"] is not None
    assert sweep.purpose == "import" and sweep.state == "done" and sweep.labels == {"site": "lab2"}
    assert board.state == "retired" and "outside the fleet" in board.state_reason  # never scheduled
    before = _counts(farm_env.db_url)

    code, out = _farm("import", str(measured), "--type", "cpu", "--board", "lab-pc-7")
    assert code == 0 and "already imported" in out and "nothing added" in out
    assert _counts(farm_env.db_url) == before
    code, out = _farm("results", "--sweep", run.sweep_id)
    assert code == 0 and "lab-pc-7" in out and "measured" in out


def _bad(folder: Path, farm_env) -> str:
    before = _counts(farm_env.db_url)
    code, out = _farm("import", str(folder))
    assert code == 2, out  # bad input: located, no traceback, nothing written
    assert "Traceback" not in out and _counts(farm_env.db_url) == before
    return out


def test_bad_folders_are_located_and_write_nothing(measured: Path, tmp_path: Path, farm_env) -> None:
    good = json.loads((measured / "report.json").read_text())

    half = tmp_path / "half"
    (half / "loadgen").mkdir(parents=True)
    (half / "report.json.tmp").write_text('{"status": "o')
    assert "no report.json" in _bad(half, farm_env) and "report.json.tmp" in _bad(half, farm_env)

    def folder(name: str, doc: object | str) -> Path:
        path = tmp_path / name
        path.mkdir()
        (path / "report.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))
        return path

    out = _bad(folder("garbled", '{"status": "ok",\n  "latency_ms": }'), farm_env)
    assert "garbled/report.json:2:" in out and "not valid JSON" in out
    out = _bad(folder("future", {**good, "agent_version": "2"}), farm_env)
    assert "agent_version" in out and "contract version '2'" in out
    out = _bad(folder("broken", {**good, "throughput_ips": "many", "latency_ms": {"p50": "fast"}}), farm_env)
    assert "throughput_ips must be a number" in out and "latency_ms.p50 must be a number" in out
    failed = {**good, "status": "error", "error": {"kind": "model", "message": "Conv: bad weights"}}
    out = _bad(folder("failed", failed), farm_env)
    assert "the run failed on its host (model error: Conv: bad weights)" in out
    assert "not a folder" in _bad(tmp_path / "nowhere", farm_env)


def test_an_imported_gpu_run_is_a_gpu_baseline_in_compare(measured: Path, farm_env) -> None:
    """The catalog's h200 (family gpu): an imported run of it is a measured GPU row in `farm compare`, at
    the precision it ran (fp16 here is only a label on this CPU-made report: the plumbing, not a figure)."""
    code, out = _farm("import", str(measured), "--type", "h200", "--board", "h200-1", "--precision", "fp16")
    assert code == 0, out
    code, out = _farm("compare", "--model", "tinynet", "--format", "json")
    assert code == 0, out
    (row,) = json.loads(out)["targets"]
    assert (row["target"], row["family"], row["precision"], row["source"]) == (
        "h200",
        "gpu",
        "fp16",
        "measured",
    )


def test_a_folder_of_runs_is_one_sweep_and_all_or_nothing(measured: Path, tmp_path: Path, farm_env) -> None:
    """A device check's --out holds one folder per run: imported as one sweep (so they compare as one
    selection), every report checked first (one bad folder stores nothing and is named)."""
    good = json.loads((measured / "report.json").read_text())
    check = tmp_path / "gpu-runs"
    for name, doc in (
        ("a-SingleStream", good),
        ("b-rerun", {**good, "started_at": "2026-12-06T01:00:00Z"}),  # another run: other bytes
        ("c-broken", {**good, "latency_ms": {"p50": "fast"}}),
    ):
        (check / name).mkdir(parents=True)
        (check / name / "report.json").write_text(json.dumps(doc))
    (check / "models").mkdir()  # not a run folder: ignored
    before = _counts(farm_env.db_url)
    code, out = _farm("import", str(check), "--type", "cpu", "--board", "lab-pc-7")
    assert code == 2 and "c-broken/report.json" in out and _counts(farm_env.db_url) == before

    (check / "c-broken" / "report.json").unlink()
    (check / "c-broken").rmdir()
    code, out = _farm("import", str(check), "--type", "cpu", "--board", "lab-pc-7")
    assert code == 0 and out.count("imported run") == 2, out
    with session_scope(farm_env.db_url) as s:
        sweeps = set(s.scalars(select(RunRow.sweep_id)))
        (name,) = s.scalars(select(SweepRow.name).where(SweepRow.id.in_(sweeps)))
    assert len(sweeps) == 1 and name == "import-gpu-runs"
    code, out = _farm("import", str(check), "--type", "cpu", "--board", "lab-pc-7")
    assert code == 0 and out.count("already imported") == 2  # and a single folder of it, too:
    assert "already imported" in _farm("import", str(check / "b-rerun"), "--type", "cpu")[1]
