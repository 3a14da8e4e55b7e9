"""`farm schedule`: add (validated now), list, show, remove, enable/disable, and run-due submitting each
slot once, only the latest of several missed ones, labelled with the schedule's name."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from farm.cli.main import cli
from farm.db.models import SweepRow
from farm.db.session import session_scope
from tests.conftest import QUICK_CPU_SWEEP, write_sweep

TINY = QUICK_CPU_SWEEP + "labels: {{model_rev: 3f2a1c}}\n"


def farm(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def sweeps(db_url: str) -> list[SweepRow]:
    with session_scope(db_url) as s:
        return list(s.scalars(select(SweepRow).order_by(SweepRow.created_at)))


def test_add_list_show_remove(tmp_path: Path, farm_env) -> None:
    path = write_sweep(
        tmp_path, "name: nightly-r18\nmodels: [resnet18]\nprecisions: [fp32]\ntargets: [cpu]\n"
    )
    code, out = farm("schedule", "add", str(path), "--cron", "0 2 * * *", "--label", "owner=lab1")
    assert code == 0 and "schedule nightly-r18 added: 0 2 * * * (UTC), next slot " in out, out
    code, out = farm("schedule", "add", str(path), "--cron", "30 3 * * *")
    assert code == 1 and "exists" in out and "--replace" in out
    code, out = farm(
        "schedule", "add", str(path), "--cron", "30 3 * * *", "--replace", "--label", "owner=lab2"
    )
    assert code == 0 and "replaced" in out, out
    listing = json.loads(farm("schedule", "list", "--format", "json")[1])
    assert [(r["name"], r["cron"], r["labels"], r["enabled"]) for r in listing] == [
        ("nightly-r18", "30 3 * * *", {"owner": "lab2"}, True)
    ]
    assert listing[0]["source"] == str(path.resolve()) and listing[0]["last_slot_at"] is None
    # the table: name, state, cron (UTC), next slot ...
    header, row = farm("schedule", "list")[1].splitlines()
    assert header.split()[:5] == ["name", "state", "cron", "(UTC)", "next"]
    assert row.split()[:7] == ["nightly-r18", "enabled", "30", "3", "*", "*", "*"]
    shown = json.loads(farm("schedule", "show", "nightly-r18", "--format", "json")[1])
    assert shown["sweep_yaml"] == path.read_text()
    assert farm("schedule", "disable", "nightly-r18")[0] == 0
    assert farm("schedule", "list")[1].splitlines()[1].split()[:2] == ["nightly-r18", "disabled"]
    assert farm("schedule", "remove", "nightly-r18") == (0, "schedule nightly-r18 removed\n")
    code, out = farm("schedule", "remove", "nightly-r18")
    assert code == 1 and "no schedule named 'nightly-r18'" in out
    assert "no schedules" in farm("schedule", "list")[1]


def test_bad_cron_and_bad_sweep_file_are_refused(tmp_path: Path, farm_env) -> None:
    path = write_sweep(tmp_path, "name: x\nmodels: [resnet18]\nprecisions: [fp32]\ntargets: [nope]\n")
    code, out = farm("schedule", "add", str(path), "--cron", "0 25 * * *")
    assert code == 2 and "Invalid value for '--cron': field hour '25'" in out, out
    code, out = farm("schedule", "add", str(path), "--cron", "0 2 * * *")
    assert code == 2 and f"error: {path}:4: targets[0]: unknown target 'nope'" in out, out
    code, out = farm("schedule", "add", str(tmp_path / "missing.yaml"), "--cron", "0 2 * * *")
    assert code == 2 and "missing.yaml" in out, out
    assert json.loads(farm("schedule", "list", "--format", "json")[1]) == []


def test_run_due_submits_each_slot_once_and_only_the_latest_missed(
    tmp_path: Path, farm_env, tiny_onnx: Path
) -> None:
    path = write_sweep(tmp_path, TINY.format(onnx=tiny_onnx))
    assert farm("schedule", "add", str(path), "--cron", "0 2 * * *", "--label", "model_rev=abc")[0] == 0
    day = "2099-01-0{}T{}"  # far ahead of the schedule's creation: every night since is "missed"
    code, out = farm("schedule", "run-due", "--now", day.format(4, "01:00"))
    assert code == 0 and "slot 2099-01-03T02:00:00+00:00" in out and "earlier slot(s) missed" in out, out
    assert "sweep " in out and " done, runs stored: 1" in out
    (sweep,) = sweeps(farm_env.db_url)
    assert sweep.labels == {"model_rev": "abc", "schedule": "tiny"}  # the schedule's label wins
    assert sweep.schedule_name == "tiny"
    for now in ("01:30", "01:59"):  # the same slot again: nothing
        assert farm("schedule", "run-due", "--now", day.format(4, now)) == (0, "nothing due\n")
    code, out = farm("schedule", "run-due", "--now", day.format(4, "02:00"), "--no-wait")
    assert code == 0 and "slot 2099-01-04T02:00:00+00:00" in out and "missed" not in out, out
    assert len(sweeps(farm_env.db_url)) == 2
    listing = json.loads(farm("schedule", "list", "--format", "json")[1])
    assert listing[0]["last_slot_at"] == "2099-01-04T02:00:00+00:00"
    assert listing[0]["last_sweep_id"] == sweeps(farm_env.db_url)[1].id


def test_a_sweep_that_no_longer_validates_is_recorded_and_fails_the_run(
    tmp_path: Path, farm_env, tiny_onnx: Path
) -> None:
    path = write_sweep(tmp_path, TINY.format(onnx=tiny_onnx))
    assert farm("schedule", "add", str(path), "--cron", "0 * * * *", "--name", "hourly")[0] == 0
    tiny_onnx.unlink()  # the model file is gone by the time the slot comes
    code, out = farm("schedule", "run-due", "--now", "2099-01-01T00:05")
    assert code == 1 and "hourly: slot 2099-01-01T00:00:00+00:00 failed: " in out and "not found" in out, out
    assert sweeps(farm_env.db_url) == []
    (row,) = json.loads(farm("schedule", "list", "--format", "json")[1])
    assert "model file not found" in row["last_error"] and row["last_slot_at"].startswith("2099-01-01T00:00")
    code, out = farm("schedule", "run-due", "--now", "2099-01-01T00:05", "--now", "nonsense")
    assert code == 2 and "Invalid value for '--now'" in out
