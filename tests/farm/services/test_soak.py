"""Thermal soak analysis on known traces, and a soak on the measured CPU (no temperature sensor there)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from farm.cli.main import cli
from farm.db.models import JobRow, RunRow
from farm.db.session import session_scope
from farm.services import soak
from farm.services.submit import submit_sweep, wait_for
from farm.sweep.expand import expand
from farm.sweep.schema import Sweep, Thermal
from tests.conftest import write_sweep

CFG = Thermal(duration_s=900, window_s=60, steady_slope_c_per_min=0.2)


def _first_order(
    t_end: float, dt: float, t0: float, t_ss: float, tau: float
) -> tuple[list[float], list[float]]:
    t = [i * dt for i in range(int(t_end / dt) + 1)]
    return t, [t_ss + (t0 - t_ss) * math.exp(-x / tau) for x in t]


def test_steady_state_of_a_first_order_rise() -> None:
    """T = 80 - 40 exp(-t/100): the slope is 24/e^(t/100) C/min, under 0.2 C/min from t = 100 ln 120 = 479 s,
    so the first 60 s window whose fitted slope is under the threshold starts a little before that."""
    t, v = _first_order(900, 5, 40, 80, 100)
    out = soak.steady_state(t, v, 60, 0.2)
    assert out["steady"] is True
    assert 420 <= out["time_to_steady_s"] <= 480
    assert out["steady_temp_c"] == pytest.approx(79.8, abs=0.3)


def test_no_steady_state_when_still_rising() -> None:
    t, v = _first_order(300, 5, 40, 80, 300)
    out = soak.steady_state(t, v, 60, 0.2)
    assert out["steady"] is False and out["time_to_steady_s"] is None and "no steady state" in out["note"]


def test_clock_throttling_and_latency_drift() -> None:
    t = [float(i) for i in range(0, 601, 10)]
    clock = [200.0 if x < 240 else 100.0 for x in t]
    temps = [min(85.5, 70 + x / 16) for x in t]
    samples = [10.0] * 500 + [20.0] * 500  # latency doubled for the later part of the run
    traces = {
        "thermal": {"t_s": t, "values": temps, "sensor": "thermal_zone"},
        "clock": {"t_s": t, "values": clock, "sensor": "emu_clock"},
    }
    out = soak.analyse(traces, samples, 600.0, 200.0, CFG)
    thr = out["throttling"]
    assert thr["throttled"] is True and thr["throttle_at_s"] == 240.0 and thr["evidence"] == "clock"
    assert out["latency"]["drift_pct"] == pytest.approx(100.0)
    names = {name for name, _, _ in soak.metrics(out)}
    assert {"soak_throttled", "soak_throttle_at_s", "soak_latency_drift_pct", "soak_steady_temp_c"} <= names
    assert soak.flags(out) == ["throttled: clock 100 MHz < nominal 200 MHz from t=240 s"]


def test_no_sensor_says_so_and_judges_throttling_by_latency() -> None:
    samples = [5.0] * 300 + [6.5] * 300  # +30 % half way
    out = soak.analyse({}, samples, 240.0, None, CFG)
    assert out["steady"] is None and out["steady_temp_c"] is None and out["time_to_steady_s"] is None
    assert out["note"].startswith("no temperature sensor on this board")
    assert out["throttling"]["evidence"] == "latency" and out["throttling"]["throttled"] is True
    names = {name for name, _, _ in soak.metrics(out)}
    assert "soak_steady_temp_c" not in names and "soak_time_to_steady_s" not in names


def test_expand_adds_one_soak_job_per_configuration() -> None:
    spec = Sweep.model_validate(
        {
            "name": "x",
            "models": ["a"],
            "precisions": ["fp32", "int8"],
            "targets": ["cpu"],
            "scenarios": ["SingleStream", "Offline"],
            "thermal": {"duration_s": 30},
        }
    )
    soaks = [j for j in expand(spec) if j.kind == "soak"]
    assert [j.key for j in soaks] == ["soak/a/fp32/cpu/b1/SingleStream", "soak/a/int8/cpu/b1/SingleStream"]


SOAK_SWEEP = """\
name: soak-cpu
models:
  - name: tiny
    onnx: {onnx}
precisions: [fp32]
targets: [cpu]
scenarios: [SingleStream]
loadgen:
  min_duration_ms: 100
  min_query_count: 8
thermal: {{duration_s: 3, window_s: 1}}
"""


def test_soak_on_the_cpu_says_there_is_no_temperature_sensor(tmp_path: Path, farm_env, tiny_onnx) -> None:
    sub = submit_sweep(farm_env, write_sweep(tmp_path, SOAK_SWEEP.format(onnx=tiny_onnx)))
    assert wait_for(farm_env, sub, lambda _: None)["state"] == "done"
    with session_scope(farm_env.db_url) as s:
        soak_job = s.scalars(select(JobRow).where(JobRow.kind == "soak")).one()
        soak_run = s.scalars(select(RunRow).where(RunRow.job_id == soak_job.id)).one()
        plain = s.scalars(select(RunRow).where(RunRow.job_id != soak_job.id)).one()
        metrics = {m.name: m.value for m in soak_run.metrics}
        analysis = soak_run.traces["soak"]
        assert soak_run.fingerprint != plain.fingerprint  # soak runs are not compared with ordinary runs
        soak_id = soak_run.id
    # LoadGen ran for the soak's duration, not the sweep's 100 ms. duration_s is the SUT-side window (first
    # issue -> last completion), which starts a hair after LoadGen's own clock: 2.999985 s has been seen.
    assert analysis["duration_s"] >= 2.9
    assert analysis["steady_temp_c"] is None and "no temperature sensor" in analysis["note"]
    assert "soak_steady_temp_c" not in metrics and "temp_c_max" not in metrics  # nothing made up
    assert metrics["soak_throttled"] in (0.0, 1.0) and "soak_latency_drift_pct" in metrics
    shown = json.loads(CliRunner().invoke(cli, ["show", str(soak_id), "--format", "json"]).output)
    assert shown["soak"]["note"] == analysis["note"]
    text = CliRunner().invoke(cli, ["show", str(soak_id)]).output
    assert "thermal soak:" in text and "no temperature sensor" in text
