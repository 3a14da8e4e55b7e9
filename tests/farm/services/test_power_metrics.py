"""store_result writes the power, energy, thermal and clock metrics, the traces and the emulation model;
agent_config passes the board's sensors and emulation to the agent."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from farm.db.models import ArtifactRow, JobRow, RunRow
from farm.db.session import session_scope
from farm.inventory import Board, BoardEmulation, load_inventory
from farm.services.agent_config import agent_config
from farm.services.results import gpu_throttle_flags, power_metrics, store_result
from farm.services.submit import submit_sweep, wait_for
from tests.conftest import TINY_SWEEP, write_sweep


def _finished_sweep(tmp_path: Path, settings, tiny_onnx: Path) -> None:
    body = TINY_SWEEP.format(onnx=tiny_onnx).replace("[fp32, int8]", "[fp32]").replace(", Offline", "")
    sub = submit_sweep(settings, write_sweep(tmp_path, body))
    assert wait_for(settings, sub, lambda _: None)["state"] == "done"


def _rows(settings):
    with session_scope(settings.db_url) as s:
        job = s.scalars(select(JobRow).where(JobRow.kind == "run")).one()
        artifact = s.scalars(select(ArtifactRow)).one()
        run = s.scalars(select(RunRow)).one()
        traces = run.traces
        s.expunge_all()
    return job, artifact, traces


def _trace(n, value, window_s):
    return {"t_s": [round(i * window_s / (n - 1), 6) for i in range(n)], "values": [value] * n}


def report(power=None, thermal=None, clock=None, emulation=None, sample_count=200):
    return {
        "status": "ok",
        "latency_ms": {"p50": 2.0, "p90": 3.0},
        "throughput_ips": 400.0,
        "sample_count": sample_count,
        "samples_ms": [2.0, 2.5],
        "power": power,
        "thermal": thermal,
        "clock": clock,
        "emulation": emulation,
        "environment": {},
    }


def power_obj(avg=12.0, peak=13.5, window_s=0.5, inferences=200):
    return {
        "sensor": "hwmon_ina2xx ina226 (hwmon0)",
        "unit": "W",
        "rate_hz": 50.0,
        "resolution": 1e-6,
        "samples": 26,
        "window_s": window_s,
        "trace": _trace(26, avg, window_s),
        "note": None,
        "avg_w": avg,
        "peak_w": peak,
        "energy_j": avg * window_s,
        "inferences": inferences,
    }


def _stored(settings, job, artifact, board, source, rep, key):
    job.key = f"{job.key}-{key}"  # a detached copy: a new idempotency key, the same job row
    assert store_result(settings, job, artifact, board, source, json.loads(json.dumps(rep))) is True
    with session_scope(settings.db_url) as s:
        run = s.scalars(select(RunRow).where(RunRow.idempotency_key == f"{job.sweep_id}/{job.key}")).one()
        metrics = {m.name: (m.value, m.unit, m.source) for m in run.metrics}
        return metrics, run.traces, run.emulation_model, run.samples_ms


def test_power_thermal_clock_metrics(tmp_path, farm_env, tiny_onnx):
    _finished_sweep(tmp_path, farm_env, tiny_onnx)
    job, artifact, _ = _rows(farm_env)
    board = load_inventory(farm_env.inventory_dir).boards[0]
    thermal = {
        "sensor": "hwmon_temp",
        "unit": "C",
        "trace": _trace(5, 51.0, 0.5),
        "max_c": 52.5,
        "mean_c": 51.0,
    }
    clock = {
        "sensor": "nvml 0",
        "unit": "MHz",
        "trace": _trace(5, 1700.0, 0.5),
        "min_mhz": 1410.0,
        "max_mhz": 1770.0,
    }
    metrics, traces, model, _ = _stored(
        farm_env, job, artifact, board, "measured", report(power_obj(), thermal, clock), "m"
    )
    assert metrics["power_w"] == (12.0, "W", "measured")
    assert metrics["power_w_peak"] == (13.5, "W", "measured")
    joules = 12.0 * 0.5 / 200  # avg power x window / inferences in the window
    assert metrics["energy_mj_per_inference"][0] == pytest.approx(joules * 1e3)
    assert metrics["energy_mj_per_inference"][1:] == ("mJ", "measured")
    assert metrics["inferences_per_joule"][0] == pytest.approx(1 / joules)
    assert metrics["temp_c_max"] == (52.5, "C", "measured")
    assert metrics["clock_mhz_min"] == (1410.0, "MHz", "measured")
    assert metrics["latency_ms_p50"][0] == 2.0 and metrics["throughput_ips"][0] == 400.0
    assert traces["power"]["values"] == [12.0] * 26 and traces["power"]["unit"] == "W"
    assert traces["thermal"]["sensor"] == "hwmon_temp" and traces["clock"]["unit"] == "MHz"
    assert traces["power"]["t_s"][-1] == pytest.approx(0.5) and "time_scale" not in traces
    assert model is None


def test_emulated_run_in_board_time(tmp_path, farm_env, tiny_onnx):
    _finished_sweep(tmp_path, farm_env, tiny_onnx)
    job, artifact, _ = _rows(farm_env)
    board = load_inventory(farm_env.inventory_dir).boards[0]
    emulation = {"model_version": "farm-dpu-perf/1", "device": "DPUCZDX8G-B4096", "time_scale": 0.5}
    rep = report(power_obj(window_s=0.5), emulation=emulation)
    metrics, traces, model, samples = _stored(farm_env, job, artifact, board, "emulated", rep, "e")
    assert model == "farm-dpu-perf/1"
    assert all(source == "emulated" for _, _, source in metrics.values())
    # The wall window of 0.5 s is 1 s of board time at time_scale 0.5.
    assert metrics["energy_mj_per_inference"][0] == pytest.approx(12.0 * 1.0 / 200 * 1e3)
    assert metrics["latency_ms_p50"][0] == pytest.approx(4.0) and metrics["throughput_ips"][
        0
    ] == pytest.approx(200.0)
    assert samples == [4.0, 5.0]
    assert traces["power"]["t_s"][-1] == pytest.approx(1.0) and traces["time_scale"] == 0.5
    assert metrics["power_w"][0] == 12.0  # watts are watts


def test_missing_figures_store_no_metric(tmp_path, farm_env, tiny_onnx):
    _finished_sweep(tmp_path, farm_env, tiny_onnx)
    job, artifact, traces = _rows(farm_env)
    if not os.path.exists("/sys/class/powercap/intel-rapl:0/energy_uj"):
        # The cpu type carries rapl; without it here the sweep's run says why, and stores no power metric.
        assert "no RAPL" in traces["power"]["note"]
    board = load_inventory(farm_env.inventory_dir).boards[0]
    gone = dict(power_obj(), avg_w=None, peak_w=None, energy_j=None, note="sensor stopped answering")
    metrics, traces, _, _ = _stored(farm_env, job, artifact, board, "measured", report(gone), "g")
    assert not {"power_w", "power_w_peak", "energy_mj_per_inference", "inferences_per_joule"} & set(metrics)
    assert traces["power"]["note"] == "sensor stopped answering"
    assert power_metrics(report()) == []


def test_energy_from_a_counter_is_the_reports_energy():
    # An NVML or RAPL counter: energy_j is the counter's difference over the window; avg_w = energy_j /
    # window. The stored energy per inference is energy_j / inferences (not avg_w re-multiplied).
    counter = dict(power_obj(avg=14.0, window_s=0.5), energy_j=7.000004, energy_source="counter")
    metrics = {name: value for name, value, _ in power_metrics(report(counter))}
    assert metrics["energy_mj_per_inference"] == pytest.approx(7.000004 / 200 * 1e3, rel=1e-12)
    assert metrics["power_w"] == 14.0
    # A report from an older agent (no energy_source): average power x window, as before.
    old = power_obj(avg=14.0, window_s=0.5)
    del old["energy_j"]
    metrics = {name: value for name, value, _ in power_metrics(report(old))}
    assert metrics["energy_mj_per_inference"] == pytest.approx(14.0 * 0.5 / 200 * 1e3)
    sampled = dict(power_obj(avg=14.0, window_s=0.5), energy_source="mean power x window")
    metrics = {name: value for name, value, _ in power_metrics(report(sampled))}
    assert metrics["energy_mj_per_inference"] == pytest.approx(14.0 * 0.5 / 200 * 1e3)


def _gpu_clock(reasons, counts, samples=250):
    return {
        "sensor": "nvml 0 (NVIDIA A2)",
        "unit": "MHz",
        "samples": samples,
        "min_mhz": 1410.0,
        "max_mhz": 1770.0,
        "throttle_reasons": reasons,
        "throttle_samples": counts,
    }


def test_gpu_throttle_flags():
    clock = _gpu_clock(
        ["gpu_idle", "sw_power_cap", "sync_boost", "hw_thermal_slowdown"],
        {"gpu_idle": 3, "sw_power_cap": 100, "sync_boost": 250, "hw_thermal_slowdown": 1},
    )
    assert gpu_throttle_flags(report(clock=clock)) == [
        "throttled: gpu sw_power_cap (40% of 250 samples), hw_thermal_slowdown (<1% of 250 samples)"
    ]
    # Idle, application clocks and sync boost are not throttling; no NVML reasons, no flag.
    calm = _gpu_clock(["gpu_idle", "applications_clocks_setting", "sync_boost"], {"gpu_idle": 9})
    assert gpu_throttle_flags(report(clock=calm)) == []
    assert gpu_throttle_flags(report(clock=_gpu_clock(None, None))) == []
    assert gpu_throttle_flags(report(clock={"sensor": "emu_clock", "min_mhz": 300.0})) == []
    assert gpu_throttle_flags(report()) == []
    bare = _gpu_clock(["hw_slowdown"], None)
    assert gpu_throttle_flags(report(clock=bare)) == ["throttled: gpu hw_slowdown"]


def test_throttled_gpu_run_is_flagged_when_stored(tmp_path, farm_env, tiny_onnx):
    _finished_sweep(tmp_path, farm_env, tiny_onnx)
    job, artifact, _ = _rows(farm_env)
    board = load_inventory(farm_env.inventory_dir).boards[0]
    clock = dict(_gpu_clock(["sw_power_cap"], {"sw_power_cap": 25}), trace=_trace(5, 1410.0, 0.5))
    rep = report(power_obj(), clock=clock)
    metrics, _, _, _ = _stored(farm_env, job, artifact, board, "measured", rep, "t")
    assert metrics["clock_mhz_min"][0] == 1410.0
    with session_scope(farm_env.db_url) as s:
        run = s.scalars(select(RunRow).where(RunRow.idempotency_key.endswith("-t"))).one()
        assert run.flags == ["throttled: gpu sw_power_cap (10% of 250 samples)"]


def test_agent_config_carries_sensors_and_emulation(tmp_path):
    inventory = load_inventory(Path(__file__).resolve().parents[3] / "inventory")
    spec = SimpleNamespace(loadgen=SimpleNamespace(model_dump=lambda: {"min_duration_ms": 200}))
    job = JobRow(batch_size=1, scenario="SingleStream", repeat=0)
    artifact = ArtifactRow(details={"input_shape": [1, 3, 16, 16]}, file_sha256="ab" * 32)
    emulated = Board(
        name="u50-emu-0", type="u50", emulation=BoardEmulation(root="/srv/lab/u50-0", time_scale=0.05)
    )
    cfg = agent_config(
        spec, job, artifact, "/a.onnx", "emulated", "/logs", emulated, inventory.board_types["u50"]
    )
    assert cfg["sensors"] == [
        {"kind": "xbutil", "path": "/srv/lab/u50-0/opt/xilinx/xrt/bin/xbutil", "device": None}
    ]
    assert cfg["emulation"] == {"root": "/srv/lab/u50-0", "time_scale": 0.05}
    real = Board(name="gpu-0", type="gpu")
    cfg = agent_config(
        spec, job, artifact, "/a.onnx", "onnxruntime_gpu", "/logs", real, inventory.board_types["gpu"]
    )
    assert cfg["sensors"] == [{"kind": "nvml", "index": 0}] and cfg["emulation"] is None


def test_sweep_on_an_emulated_board_stores_emulated_power(tmp_path, farm_env, tiny_onnx, monkeypatch):
    """End to end on a local emulated ZCU104: dpu_emulator compile, the emulated backend paced to the
    profile, the real hwmon readers on the simulator's files, metrics and traces stored as emulated."""
    from farm.lab.physics.sensorfs import SensorFs, SensorState

    inventory_dir = Path(__file__).resolve().parents[3] / "inventory"
    root = tmp_path / "zcu104-root"
    SensorFs(root, load_inventory(inventory_dir).board_types["zcu104"], "zcu104").layout().write(
        SensorState(power_w=14.25, temp_c=61.0, clock_mhz=300.0, static_w=9.0)
    )
    lab = tmp_path / "lab.yaml"
    lab.write_text(
        "boards:\n"
        "  - name: local-cpu\n    type: cpu\n"
        f"  - name: zcu104-emu-0\n    type: zcu104\n    emulation: {{root: {root}, time_scale: 0.5}}\n"
    )
    monkeypatch.setenv("FARM_LAB", str(lab))
    body = (
        TINY_SWEEP.format(onnx=tiny_onnx)
        .replace("[fp32, int8]", "[int8]")
        .replace(", Offline", "")
        .replace("targets: [cpu]", "targets: [zcu104]")
    )
    sub = submit_sweep(farm_env, write_sweep(tmp_path, body))
    state = wait_for(farm_env, sub, lambda _: None)
    assert state["state"] == "done", state
    with session_scope(farm_env.db_url) as s:
        run = s.scalars(select(RunRow)).one()
        metrics = {m.name: (m.value, m.source) for m in run.metrics}
        assert run.source == "emulated" and run.emulation_model == "farm-dpu-perf/1"
        assert run.provenance.board_serial is None or run.provenance.board_serial.startswith("EMU")
        traces = run.traces
    assert metrics["power_w"] == (pytest.approx(14.25, rel=0.01), "emulated")
    assert metrics["temp_c_max"] == (pytest.approx(61.0, abs=0.01), "emulated")
    assert metrics["clock_mhz_min"] == (300.0, "emulated")
    assert metrics["energy_mj_per_inference"][0] > 0
    assert traces["power"]["samples"] >= 5 and traces["time_scale"] == 0.5
