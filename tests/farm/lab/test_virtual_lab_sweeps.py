"""Sweeps through the virtual lab as a user runs them: `farm lab up`, `farm submit` to emulated boards over
real SSH beside the measured CPU, `farm results`; and a long run on a board that overheats, where the
board simulator throttles the DPU clock and the latency LoadGen measures rises."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from farm.cli.main import cli
from farm.db.models import RunRow
from farm.db.session import session_scope
from tests.conftest import write_sweep
from tests.virtual_lab import heavy_model

pytestmark = pytest.mark.slow


def _cli(*args: str):
    return CliRunner().invoke(cli, list(args))


SWEEP = """\
name: lab
models:
  - name: tiny
    onnx: {onnx}
precisions: [fp32, int8]
targets: [cpu, zcu104, u50]
batch_sizes: [1]
scenarios: [SingleStream]
quantization:
  calibration_samples: 100
loadgen:
  min_duration_ms: 2500
  min_query_count: 32
"""


def test_sweep_on_emulated_boards_over_ssh_beside_the_measured_cpu(
    tmp_path, farm_env, lab, tiny_onnx
) -> None:
    lab("zcu104,u50,local-cpu", time_scale=0.05)
    result = _cli("submit", str(write_sweep(tmp_path, SWEEP.format(onnx=tiny_onnx))))
    assert result.exit_code == 0, result.output
    assert "fp32 skipped on zcu104 (it runs int8 only)" in result.output
    assert "runs stored: 4" in result.output  # cpu fp32 + int8, zcu104 int8, u50 int8

    rows = {(r["target"], r["precision"]): r for r in json.loads(_cli("results", "--format", "json").output)}
    assert set(rows) == {("cpu", "fp32"), ("cpu", "int8"), ("zcu104", "int8"), ("u50", "int8")}
    for key in (("cpu", "fp32"), ("cpu", "int8")):
        assert rows[key]["source"] == "measured" and rows[key]["emulation_model"] is None
    for key in (("zcu104", "int8"), ("u50", "int8")):
        row = rows[key]
        assert row["source"] == "emulated" and row["emulation_model"] == "farm-dpu-perf/1"
        assert row["board"] == f"{key[0]}-1" and row["latency_ms_p50"] > 0
        assert row["temp_c_max"] is not None
    # power read through the real readers: the ZCU104's INA226 over hwmon, the U50's xbutil JSON
    static = {"zcu104": 9.0, "u50": 18.0}
    for target, watts in static.items():
        power = rows[(target, "int8")]["power_w"]
        assert power is not None and watts < power < watts * 4, (target, power)
        assert rows[(target, "int8")]["energy_mj_per_inference"] > 0
    with session_scope(farm_env.db_url) as s:
        zcu = s.scalars(select(RunRow).where(RunRow.target == "zcu104")).one()
        assert zcu.provenance is not None and zcu.provenance.board_serial == "EMU-zcu104-1"
        assert set(zcu.traces) >= {"power", "thermal", "clock"}


THROTTLE_SWEEP = """\
name: soak
models:
  - name: heavy
    onnx: {onnx}
precisions: [int8]
targets: [pynq-z2]
batch_sizes: [1]
scenarios: [SingleStream]
quantization:
  calibration_samples: 8
loadgen:
  min_duration_ms: 9000
  min_query_count: 32
"""


def test_an_overheating_board_throttles_and_its_latency_rises(tmp_path, farm_env, lab) -> None:
    """A PYNQ-Z2 in a 60 C room: idle it settles at 60 + 9 C/W x 1.9 W = 77 C, below its 85 C limit; busy
    it heads for ~91 C, crosses the limit after about one time constant, and its DPU clock halves."""
    lab_file = lab("pynq-z2", time_scale=0.02)  # the 150 s time constant passes in 3 s
    root = Path(next(b.emulation.root for b in _boards(lab_file) if b.type == "pynq-z2"))
    (root / "emu" / "ambient_c").write_text("60\n")
    time.sleep(4 * 150 * 0.02)  # settle at the new idle temperature (4 time constants)
    result = _cli(
        "submit", str(write_sweep(tmp_path, THROTTLE_SWEEP.format(onnx=heavy_model(tmp_path / "h.onnx"))))
    )
    assert result.exit_code == 0, result.output
    with session_scope(farm_env.db_url) as s:
        run = s.scalars(select(RunRow)).one()
        traces, samples = run.traces, run.samples_ms
        metrics = {m.name: m.value for m in run.metrics}
    assert run.source == "emulated"
    assert metrics["temp_c_max"] >= 85.0  # it reached its limit
    assert metrics["clock_mhz_min"] == pytest.approx(100.0)  # throttled: half of the nominal 200 MHz
    # a PYNQ-Z2 has no power monitor: the board-level figure is its external meter's (emulated in the lab,
    # from the simulator's power model; the run is labelled emulated), throttled power below full power
    assert metrics["power_w"] > 0 and traces["power"]["sensor"].startswith("external power meter")
    assert traces["clock"]["values"][0] == pytest.approx(200.0)  # it started at full clock
    first = statistics.median(samples[: len(samples) // 10])
    last = statistics.median(samples[-len(samples) // 4 :])
    assert last > 1.5 * first, (first, last)  # the clock-bound DPU time nearly doubled


def _boards(lab_file: Path):
    from farm.config import load_settings
    from farm.inventory import load_inventory

    return load_inventory(load_settings().inventory_dir, lab=str(lab_file)).boards
