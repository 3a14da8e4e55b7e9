"""`farm submit` (embedded) of shapes_net with the shapes dataset on the measured CPU and a local emulated
ZCU104: every run stores accuracy_top1/top5 from LoadGen's AccuracyOnly pass, every INT8 run its INT8 vs
FP32 agreement, and `farm results --format json` shows them (docs/accuracy.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from farm.cli.main import cli
from farm.datasets import train
from farm.db.models import ArtifactRow, MetricRow, RunRow, SweepRow
from farm.db.session import session_scope
from farm.inventory import load_inventory
from tests.conftest import write_sweep

SWEEP = """\
name: accuracy
models: [shapes_net]
precisions: [fp32, int8]
targets: [cpu, zcu104]
batch_sizes: [1]
scenarios: [SingleStream]
dataset: shapes
quantization:
  calibration_samples: 100
loadgen:
  min_duration_ms: 200
  min_query_count: 32
"""


def test_submit_stores_accuracy_and_agreement(tmp_path, farm_env, monkeypatch):
    from farm.lab.physics.sensorfs import SensorFs, SensorState

    inventory_dir = Path(__file__).resolve().parents[2] / "inventory"
    root = tmp_path / "zcu104-root"
    SensorFs(root, load_inventory(inventory_dir).board_types["zcu104"], "zcu104").layout().write(
        SensorState(power_w=14.0, temp_c=55.0, clock_mhz=300.0, static_w=9.0)
    )
    lab = tmp_path / "lab.yaml"
    lab.write_text(
        "boards:\n"
        "  - name: local-cpu\n    type: cpu\n"
        f"  - name: zcu104-emu-0\n    type: zcu104\n    emulation: {{root: {root}, time_scale: 0.2}}\n"
    )
    monkeypatch.setenv("FARM_LAB", str(lab))
    made = CliRunner().invoke(
        cli, ["datasets", "make", "shapes", str(tmp_path / "shapes"), "--per-class", "12"]
    )
    assert made.exit_code == 0, made.output
    assert "wrote 96 images of 8 classes" in made.output

    out = CliRunner().invoke(cli, ["submit", str(write_sweep(tmp_path, SWEEP))], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    listed = CliRunner().invoke(cli, ["results", "--format", "json"], catch_exceptions=False)
    rows = {(r["precision"], r["target"]): r for r in json.loads(listed.output)}
    assert set(rows) == {("fp32", "cpu"), ("int8", "cpu"), ("int8", "zcu104")}  # the DPU runs int8 only

    # the same images scored by the numpy model in this process: what fp32 on the CPU must reproduce
    x, labels = train.heldout_set(per_class=12)
    expected_top1 = float((train.forward(train.trained_weights(), x).argmax(axis=1) == labels).mean())
    assert rows[("fp32", "cpu")]["accuracy_top1"] == pytest.approx(expected_top1)
    for (precision, target), r in rows.items():
        assert r["accuracy_samples"] == 96
        # chance is 0.125; INT8 calibrated on synthetic (not shapes) images loses some (docs/accuracy.md)
        assert r["accuracy_top1"] > (0.9 if precision == "fp32" else 0.5), (precision, target, r)
        assert r["accuracy_top1"] <= r["accuracy_top5"] <= 1.0
        if precision == "int8":
            assert 0.0 <= r["int8_fp32_top1_agreement"] <= 1.0
            assert r["int8_fp32_sqnr_db"] is not None
            assert r["int8_fp32_dataset_top1_agreement"] > 0.5
        else:
            assert r["int8_fp32_top1_agreement"] is None and r["int8_fp32_dataset_top1_agreement"] is None
    # the CPU and the emulated DPU run the same INT8 model on the same images: the same answers
    assert rows[("int8", "cpu")]["accuracy_top1"] == rows[("int8", "zcu104")]["accuracy_top1"]

    with session_scope(farm_env.db_url) as s:
        sources = {
            (run.precision, run.target): {m.name: m.source for m in run.metrics if "accuracy" in m.name}
            for run in s.scalars(select(RunRow))
        }
    assert set(sources[("int8", "zcu104")].values()) == {"emulated"}
    assert set(sources[("fp32", "cpu")].values()) == {"measured"}


CALIBRATED = """\
name: calibrated
models: [shapes_net]
precisions: [int8]
targets: [cpu]
scenarios: [SingleStream]
dataset: shapes
quantization:
  calibration_samples: 100
  calibration_dataset: calibration
loadgen:
  min_duration_ms: 200
  min_query_count: 32
"""


def test_a_calibration_dataset_is_what_int8_calibrates_on(tmp_path, farm_env):
    """quantization.calibration_dataset: INT8 calibrates on those images (here from the training
    distribution, not the scored held-out set) instead of synthetic ones, and scores closer to fp32."""
    for folder, args in (
        ("shapes", ["--per-class", "12"]),
        ("calibration", ["--per-class", "13", "--seed", "0"]),
    ):
        made = CliRunner().invoke(cli, ["datasets", "make", "shapes", str(tmp_path / folder), *args])
        assert made.exit_code == 0, made.output
    synthetic = CALIBRATED.replace("name: calibrated", "name: synthetic").replace(
        "  calibration_dataset: calibration\n", ""
    )
    for body in (synthetic, CALIBRATED):
        out = CliRunner().invoke(cli, ["submit", str(write_sweep(tmp_path, body))], catch_exceptions=False)
        assert out.exit_code == 0, out.output
    with session_scope(farm_env.db_url) as s:
        found = s.execute(
            select(SweepRow.name, MetricRow.value, ArtifactRow.details, ArtifactRow.quant_config)
            .select_from(RunRow)
            .join(SweepRow, SweepRow.id == RunRow.sweep_id)
            .join(ArtifactRow, ArtifactRow.key == RunRow.artifact_key)
            .join(MetricRow, (MetricRow.run_id == RunRow.id) & (MetricRow.name == "accuracy_top1"))
        ).all()
    details = {name: d for name, _, d, _ in found}
    quant = {name: q for name, _, _, q in found}
    by_name = {name: top1 for name, top1, _, _ in found}
    assert details["calibrated"]["calibration_data"] == "dataset"
    assert details["calibrated"]["calibration_samples"] == 100
    assert (
        len(quant["calibrated"]["calibration_sha256"]) == 64
        and "calibration_sha256" not in quant["synthetic"]
    )
    assert details["synthetic"]["calibration_data"] == "synthetic"
    x, labels = train.heldout_set(per_class=12)
    fp32_top1 = float((train.forward(train.trained_weights(), x).argmax(axis=1) == labels).mean())
    assert by_name["calibrated"] > by_name["synthetic"]
    assert by_name["calibrated"] >= fp32_top1 - 0.05, (by_name, fp32_top1)
