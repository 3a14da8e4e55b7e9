"""`farm compare`: the table, the JSON shape and the CSV from stored runs; bad input is one line, exit 2."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from farm.cli.main import cli
from tests.farm.queries.stored import figures, runs, sweep

FAST = [2.0, 2.1, 1.9, 2.05, 1.95]
SLOW = [10.0, 10.4, 9.7, 10.1, 9.9]


@pytest.fixture
def stored(farm_env) -> str:
    url = farm_env.db_url
    sid = sweep(url, "nightly")
    runs(url, sid, "zcu104", [figures(p, 1000 / p, 10.0) for p in FAST], agreement=0.98, source="emulated")
    runs(url, sid, "cpu", [figures(p, 1000 / p, 60.0) for p in SLOW], precision="fp32",
         flags=["noisy-host: load 3.1"])  # fmt: skip
    return sid


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["compare", *args])
    return result.exit_code, result.stdout, result.stderr


def test_json_has_the_documented_shape(stored: str) -> None:
    code, out, _ = _run("--model", "resnet18", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["selection"]["mixed"] is False and doc["selection"]["sweeps"][0]["sweep_id"] == stored
    assert doc["selection"]["precisions"] == ["fp32", "int8"]
    zcu = doc["targets"][0]
    assert {k: zcu[k] for k in ("target", "family", "precision", "source", "sweep_id", "runs", "valid")} == {
        "target": "zcu104", "family": "fpga", "precision": "int8", "source": "emulated", "sweep_id": stored,
        "runs": 5, "valid": True,
    }  # fmt: skip
    assert set(zcu["metrics"]["latency_ms_p50"]) == {"median", "low", "high"}
    assert zcu["accuracy"]["value"] == 0.98
    ratio = next(r for r in doc["ratios"] if r["metric"] == "speedup_p50")
    assert {"fpga", "baseline", "metric", "ratio", "low", "high", "verdict", "warnings"} <= set(ratio)
    assert (ratio["fpga"], ratio["baseline"], ratio["verdict"]) == ("zcu104", "cpu", "faster")
    assert "baseline cpu fp32 flagged noisy-host (5 of 5 runs)" in ratio["warnings"]


def test_table_shows_sources_flags_verdicts_and_warnings(stored: str) -> None:
    code, out, _ = _run("--model", "resnet18")
    assert code == 0
    assert "newest sweep with every target: nightly" in out
    assert "emulated" in out and "noisy-host: load 3.1" in out
    assert "faster" in out and "  ! baseline cpu fp32 flagged noisy-host" in out
    assert "MIXED" not in out


def test_csv_is_long_form(stored: str) -> None:
    code, out, _ = _run(
        "--model", "resnet18", "--format", "csv", "--precision", "int8", "--precision", "fp32"
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["kind"] for r in rows} == {"selection", "target", "accuracy", "ratio"}
    assert any(r["kind"] == "ratio" and r["verdict"] == "faster" for r in rows)


def test_a_mixed_selection_is_labelled(farm_env) -> None:
    url = farm_env.db_url
    runs(url, sweep(url, "fpga"), "zcu104", [figures(2.0, 500)])
    runs(url, sweep(url, "cpu", hours=1), "cpu", [figures(10.0, 100)])
    code, out, _ = _run("--model", "resnet18")
    assert code == 0 and out.startswith("MIXED SELECTION")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "vgg"], "error: no runs of model 'vgg' (models with runs: resnet18)"),
        (["--model", "resnet18", "--sweep", "nope"], "error: unknown sweep 'nope'"),
        (["--model", "resnet18", "--batch", "8"], "error: no runs with batch size 8"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(stored: str, args: list[str], message: str) -> None:
    code, out, err = _run(*args)
    assert code == 2 and out == ""
    assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err
