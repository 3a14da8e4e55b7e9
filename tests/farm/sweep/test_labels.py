"""Version labels: the sweep file's ``labels:`` and ``--label``, stored per sweep and shown everywhere runs
are read (status, results JSON/CSV, show, result sinks); a series ordered by a label's value."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from farm.cli.main import cli
from farm.queries.labels import natural_key, order_by_label
from farm.sinks.base import load_stored_run
from tests.conftest import QUICK_CPU_SWEEP, write_sweep

ZOO = "name: ok\nmodels: [resnet18]\nprecisions: [fp32]\ntargets: [cpu]\n"

TINY = QUICK_CPU_SWEEP + "labels:\n  model_rev: 3f2a1c\n  toolchain: 3.5\n  nightly: true\n"


@pytest.mark.parametrize(
    ("labels", "line", "message"),
    [
        ("labels:\n  Model_Rev: x\n", 6, "labels.Model_Rev: label key 'Model_Rev' is not allowed"),
        ("labels:\n  rev: ''\n", 6, "labels.rev: a label's value may not be empty"),
        ("labels:\n  rev:\n", 6, "labels.rev: Input should be a valid string"),
        (f"labels:\n  rev: {'x' * 201}\n", 6, "at most 200 characters"),
        ("labels: [a, b]\n", 5, "labels: Input should be a valid dictionary"),
    ],
    ids=["key-case", "empty", "null", "long", "list"],
)
def test_a_bad_label_in_the_file_is_a_located_error(
    tmp_path: Path, farm_env, labels: str, line: int, message: str
) -> None:
    path = write_sweep(tmp_path, ZOO + labels)
    result = CliRunner().invoke(cli, ["submit", str(path)])
    assert result.exit_code == 2, result.output
    assert f"error: {path}:{line}: " in result.output and message in result.output


@pytest.mark.parametrize("bad", ["noequals", "Bad=1", "=v", "k="])
def test_a_bad_label_option_is_a_usage_error_naming_it(tmp_path: Path, farm_env, bad: str) -> None:
    path = write_sweep(tmp_path, ZOO)
    result = CliRunner().invoke(cli, ["submit", str(path), "--label", bad])
    assert result.exit_code == 2 and "Invalid value for '--label'" in result.output, result.output


def test_labels_are_stored_and_shown_with_every_run(tmp_path: Path, farm_env, tiny_onnx: Path) -> None:
    path = write_sweep(tmp_path, TINY.format(onnx=tiny_onnx))
    runner = CliRunner()
    args = ["submit", str(path), "--label", "model_rev=9e9e9e", "--label", "board_fw=2.1", "--format", "json"]
    done = runner.invoke(cli, args)
    assert done.exit_code == 0, done.output
    # numbers and booleans in YAML become strings; the command line wins on the same key
    want = {"board_fw": "2.1", "model_rev": "9e9e9e", "nightly": "true", "toolchain": "3.5"}
    assert "labels: board_fw=2.1 model_rev=9e9e9e nightly=true toolchain=3.5" in done.output
    sweep_id = done.output.split("submitted sweep ")[1].split()[0]

    status = json.loads(runner.invoke(cli, ["status", sweep_id, "--format", "json"]).output)
    assert status["labels"] == want and status["schedule"] is None
    rows = json.loads(runner.invoke(cli, ["results", "--format", "json"]).output)
    assert [r["labels"] for r in rows] == [want]
    table = list(csv.DictReader(io.StringIO(runner.invoke(cli, ["results", "--format", "csv"]).output)))
    assert table[0]["labels"] == "board_fw=2.1;model_rev=9e9e9e;nightly=true;toolchain=3.5"
    run_id = rows[0]["run_id"]
    assert json.loads(runner.invoke(cli, ["show", str(run_id), "--format", "json"]).output)["labels"] == want
    assert "labels: board_fw=2.1 model_rev=9e9e9e" in runner.invoke(cli, ["show", str(run_id)]).output
    stored = load_stored_run(farm_env.db_url, run_id)  # what result sinks are given
    assert stored is not None and stored.labels == want


def test_order_by_label_is_natural_with_unlabelled_runs_last() -> None:
    rows = [
        {"run_id": 1, "labels": {"toolchain": "vitis-ai-3.10"}},
        {"run_id": 2, "labels": {}},
        {"run_id": 3, "labels": {"toolchain": "vitis-ai-3.5"}},
        {"run_id": 4, "labels": {"toolchain": "Vitis-AI-3.5"}},  # same value up to case: keeps its place
        {"run_id": 5, "labels": {"toolchain": "vitis-ai-2.5"}},
        {"run_id": 6},
    ]
    assert [r["run_id"] for r in order_by_label(rows, "toolchain")] == [5, 3, 4, 1, 2, 6]
    assert natural_key("rev9") < natural_key("rev10") < natural_key("reva")
