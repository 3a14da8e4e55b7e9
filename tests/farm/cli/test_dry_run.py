"""`farm submit --dry-run`: the plan (jobs per configuration and scenario, the compiles a previous sweep
stored, an estimated time from this farm's own history where it has one) and nothing written, not even a
database that did not exist; bad input fails exactly as a real submit does."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, select

from farm.cli.main import cli
from farm.db.models import JobRow, RunRow, SweepRow
from farm.db.session import session_scope
from tests.conftest import QUICK_CPU_SWEEP, write_sweep


def _plan(sweep: Path) -> dict:
    result = CliRunner().invoke(cli, ["submit", str(sweep), "--dry-run", "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_dry_run_writes_nothing_not_even_a_database(tmp_path: Path, tiny_onnx: Path, monkeypatch) -> None:
    data = tmp_path / "fresh"
    monkeypatch.setenv("FARM_DATA_DIR", str(data))
    monkeypatch.setenv("FARM_DB_URL", f"sqlite:///{data / 'farm.db'}")
    body = QUICK_CPU_SWEEP.format(onnx=tiny_onnx).replace("[SingleStream]", "[SingleStream, Offline]")
    plan = _plan(write_sweep(tmp_path, body))
    assert plan["jobs"] == 3 and plan["compiles"] == 1 and plan["reused"] == 0 and plan["from_history"] == 0
    (row,) = plan["rows"]
    assert row["runs"] == {"SingleStream": 1, "Offline": 1} and row["compile"] == "new"
    assert plan["estimate_s"] > 0 and plan["parallel"].startswith("embedded")
    assert not (data / "farm.db").exists()
    table = CliRunner().invoke(cli, ["submit", str(write_sweep(tmp_path, body)), "--dry-run"])
    assert table.exit_code == 0 and "Nothing was written" in table.output and "tiny" in table.output


def test_after_a_sweep_the_plan_reuses_its_compile_and_times_from_history(
    tmp_path: Path, tiny_onnx: Path, farm_env
) -> None:
    sweep = write_sweep(tmp_path, QUICK_CPU_SWEEP.format(onnx=tiny_onnx))
    assert CliRunner().invoke(cli, ["submit", str(sweep)]).exit_code == 0
    with session_scope(farm_env.db_url) as s:
        before = [s.scalar(select(func.count()).select_from(t)) for t in (SweepRow, JobRow, RunRow)]
    plan = _plan(sweep)
    assert plan["reused"] == plan["compiles"] == 1 and plan["from_history"] == plan["jobs"] == 2
    assert plan["rows"][0]["compile"].startswith("stored ")
    with session_scope(farm_env.db_url) as s:
        assert [s.scalar(select(func.count()).select_from(t)) for t in (SweepRow, JobRow, RunRow)] == before


def test_a_bad_sweep_fails_the_dry_run_as_it_would_fail_a_submit(tmp_path: Path, farm_env) -> None:
    sweep = write_sweep(tmp_path, "name: x\nmodels: [resnet19]\nprecisions: [fp32]\ntargets: [cpu]\n")
    result = CliRunner().invoke(cli, ["submit", str(sweep), "--dry-run"])
    assert result.exit_code == 2 and "did you mean 'resnet18'?" in result.output
