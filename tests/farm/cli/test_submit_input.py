"""`farm submit` with hostile input (issue 10): exit 2, one located line, no traceback, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from farm.cli.main import cli
from farm.db.models import JobRow, SweepRow
from farm.db.session import session_scope
from tests.conftest import write_sweep

GOOD = "name: ok\nmodels: [resnet18]\nprecisions: [fp32]\ntargets: [cpu]\nrepeats: 3\n"  # 4 jobs


def _refused(farm_env, args: list[str], env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(cli, ["submit", *args], env=env)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    with session_scope(farm_env.db_url) as s:
        assert s.scalar(select(func.count()).select_from(SweepRow)) == 0
        assert s.scalar(select(func.count()).select_from(JobRow)) == 0
    return result.output


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (GOOD.replace("models: [resnet18]", "models: &a [*a]"), 2, "recursive alias"),
        (GOOD + "description: !!python/name:os.system\n", 6, "YAML tags"),
        (GOOD + "dataset: /proc\n", 6, "virtual filesystem"),
        (GOOD + "loadgen: {target_latency_ms: .inf}\n", 6, "not a finite number"),
        (GOOD + 'description: "a\\0b"\n', 6, "NUL character"),
    ],
    ids=["recursive-alias", "python-tag", "proc", "inf", "nul"],
)
def test_hostile_sweeps_exit_2_with_one_located_line(
    tmp_path: Path, farm_env, body: str, line: int, message: str
) -> None:
    path = write_sweep(tmp_path, body)
    output = _refused(farm_env, [str(path)])
    errors = [x for x in output.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {path}:{line}: ") and message in errors[0]


def test_max_jobs_option_and_environment_variable(tmp_path: Path, farm_env) -> None:
    path = write_sweep(tmp_path, GOOD)
    assert "would plan 4 jobs" in _refused(farm_env, ["--max-jobs", "3", str(path)])
    assert "cap of 2" in _refused(farm_env, [str(path)], env={"FARM_MAX_JOBS": "2"})
    assert "FARM_MAX_JOBS" in _refused(farm_env, [str(path)], env={"FARM_MAX_JOBS": "abc"})
    assert "--max-jobs" in _refused(farm_env, ["--max-jobs", "0", str(path)])


def test_a_device_as_the_sweep_file(farm_env) -> None:
    assert "not a regular file" in _refused(farm_env, ["/dev/zero"])
