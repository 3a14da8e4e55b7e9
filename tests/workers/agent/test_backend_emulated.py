"""The emulated backend (docs/virtual-lab.md sections 2-3) and the harness report it feeds (section 5).

Pacing is checked two ways: the arithmetic exactly (pace_s with a fixed clock), and wall time only as
ratios between runs of the same machine, never as absolute durations."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from tests.conftest import tiny_model
from tests.workers.agent import agent_modules

PROFILE = {
    "model_version": "farm-dpu-perf/1",
    "kind": "dpu",
    "device": "DPUCZDX8G-B4096",
    "cores": 2,
    "clock_mhz": 300.0,
    "batch_size": 1,
    "latency_ms": 4.0,
    "clock_scaled_ms": 3.0,
    "fps_mt": 500.0,
    "utilisation_st": 0.6,
    "utilisation_mt": 0.9,
    "subgraphs": 1,
    "cpu_ops": [],
    "warnings": [],
}


@pytest.fixture(scope="module")
def agent():
    with agent_modules.imported() as ns:
        ns.emulated = agent_modules.module("backends.emulated")
        yield ns


def save_model(path, profile=PROFILE, batch=1):
    model = tiny_model(batch=batch)
    if profile is not None:
        helper.set_model_props(model, {"farm.emulation": json.dumps(profile)})
    onnx.save(model, str(path))
    return str(path)


def board_root(tmp_path, clock=300.0):
    root = tmp_path / "board"
    (root / "emu").mkdir(parents=True)
    (root / "emu" / "clock_mhz").write_text(f"{clock}\n")
    (root / "emu" / "board.json").write_text(
        json.dumps(
            {
                "board": "zcu104-emu-0",
                "type": "zcu104",
                "serial": "EMU-ZCU104-0001",
                "dpu_fingerprint": "0x101000016010407",
                "time_scale": 0.5,
            }
        )
    )
    return root


def backend_for(agent, path, scenario="SingleStream", root=None, time_scale=1.0, batch_size=1, **kw):
    backend = agent.emulated.EmulatedBackend(**kw)
    emulation = {"root": str(root), "time_scale": time_scale} if root is not None else None
    backend.configure({"scenario": scenario, "batch_size": batch_size, "emulation": emulation})
    backend.load(path)
    return backend


def test_missing_profile_is_a_model_error(agent, tmp_path):
    path = save_model(tmp_path / "plain.onnx", profile=None)
    with pytest.raises(agent.backends.ModelError, match="no 'farm.emulation' profile in its metadata"):
        backend_for(agent, path)


def test_bad_profile_is_a_model_error(agent, tmp_path):
    bad = dict(PROFILE, clock_scaled_ms=9.0)
    with pytest.raises(agent.backends.ModelError, match="clock_scaled_ms"):
        backend_for(agent, save_model(tmp_path / "bad.onnx", bad))
    with pytest.raises(agent.backends.ModelError, match="profile is for batch 1 but batch_size=2"):
        backend_for(agent, save_model(tmp_path / "dyn.onnx", batch="N"), batch_size=2)


def test_outputs_are_the_models_real_outputs(agent, tmp_path):
    path = save_model(tmp_path / "m.onnx")
    backend = backend_for(agent, path)
    x = np.random.default_rng(3).standard_normal((1, 3, 16, 16)).astype(np.float32)
    expected = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(backend.predict(x), expected, rtol=1e-5, atol=1e-6)
    assert backend.input_shape == (1, 3, 16, 16)


def test_pace_arithmetic(agent, tmp_path):
    root = board_root(tmp_path)
    path = save_model(tmp_path / "m.onnx")
    ss = backend_for(agent, path, root=root)
    assert ss.pace_s() == pytest.approx(0.004)  # latency_ms at the nominal clock
    off = backend_for(agent, path, scenario="Offline", root=root)
    assert off.pace_s() == pytest.approx(0.002)  # batch / fps_mt
    (root / "emu" / "clock_mhz").write_text("150\n")  # throttled to half
    ss2 = backend_for(agent, path, root=root)
    assert ss2.pace_s() == pytest.approx(0.001 + 0.003 * 2)  # only the clock-scaled part stretches
    off2 = backend_for(agent, path, scenario="Offline", root=root, time_scale=0.5)
    assert off2.pace_s() == pytest.approx((0.0005 + 0.0015 * 2) * 0.5)
    assert off2.emulation()["paced_to"].startswith("multi-thread")


def test_clock_is_read_at_most_every_50_ms(agent, tmp_path):
    root = board_root(tmp_path)
    now = [100.0]
    backend = backend_for(agent, save_model(tmp_path / "m.onnx"), root=root, now=lambda: now[0])
    assert backend.current_clock_mhz() == 300.0
    (root / "emu" / "clock_mhz").write_text("150\n")
    now[0] += 0.03
    assert backend.current_clock_mhz() == 300.0  # not re-read yet
    now[0] += 0.03
    assert backend.current_clock_mhz() == 150.0
    assert backend.clock_reads == 2
    (root / "emu" / "clock_mhz").unlink()
    now[0] += 0.06
    assert backend.current_clock_mhz() == 300.0  # file gone: the nominal clock, and a note
    assert "nominal clock used" in backend.emulation()["clock_note"]
    assert backend.emulation()["min_clock_mhz"] == 150.0


def _fastest_predict_s(backend, batch, n=15):
    """The fastest of n paced calls: pacing never returns early, and a busy machine only adds to a
    call's time, so the minimum is the robust estimate of the pace."""
    backend.predict(batch)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        backend.predict(batch)
        times.append(time.perf_counter() - t0)
    return min(times)


def test_pacing_ratios_in_wall_time(agent, tmp_path):
    profile = dict(PROFILE, latency_ms=10.0, clock_scaled_ms=8.0, fps_mt=200.0)  # Offline: 5 ms per batch
    path = save_model(tmp_path / "m.onnx", profile)
    root = board_root(tmp_path)
    x = np.zeros((1, 3, 16, 16), np.float32)
    single = _fastest_predict_s(backend_for(agent, path, root=root), x)
    offline = _fastest_predict_s(backend_for(agent, path, scenario="Offline", root=root), x)
    scaled = _fastest_predict_s(backend_for(agent, path, root=root, time_scale=0.5), x)
    (root / "emu" / "clock_mhz").write_text("150\n")
    throttled = _fastest_predict_s(backend_for(agent, path, root=root), x)
    assert offline / single == pytest.approx(0.5, rel=0.15)
    assert scaled / single == pytest.approx(0.5, rel=0.15)
    assert throttled / single == pytest.approx((2.0 + 8.0 * 2) / 10.0, rel=0.15)


def test_outputs_are_computed_once_per_distinct_batch(agent, tmp_path):
    backend = backend_for(agent, save_model(tmp_path / "m.onnx"), time_scale=0.01)
    rng = np.random.default_rng(0)
    distinct = [rng.standard_normal((1, 3, 16, 16)).astype(np.float32) for _ in range(4)]
    batches = [distinct[i % 4] for i in range(12)]  # as loadgen_driver.make_batches reuses them
    backend.prepare(batches)
    assert backend.outputs_computed == 4
    outs = [backend.predict(b) for b in batches]
    assert backend.outputs_computed == 4 and backend.predicts == 12
    np.testing.assert_array_equal(outs[0], outs[4])
    backend.predict(distinct[0].copy())  # an unseen object is computed on the spot
    assert backend.outputs_computed == 5


def test_load_file_while_running_and_zero_at_close(agent, tmp_path):
    root = board_root(tmp_path)
    path = save_model(tmp_path / "m.onnx")
    load = root / "emu" / "load"
    ss = backend_for(agent, path, root=root, time_scale=0.01)
    assert float(load.read_text()) == 0.0
    ss.predict(np.zeros((1, 3, 16, 16), np.float32))
    assert float(load.read_text()) == pytest.approx(0.6)
    ss.close()
    assert float(load.read_text()) == 0.0
    off = backend_for(agent, path, scenario="Offline", root=root, time_scale=0.01)
    off.predict(np.zeros((1, 3, 16, 16), np.float32))
    assert float(load.read_text()) == pytest.approx(0.9)
    off.close()
    assert sorted(p.name for p in (root / "emu").iterdir()) == [
        "board.json",
        "clock_mhz",
        "load",
    ]  # no tmp left


# --------------------------------------------------------------------------- through the harness


def hwmon_tree(root, power_uw=11_500_000, temp_mc=47_000):
    power = root / "sys" / "class" / "hwmon" / "hwmon0"
    power.mkdir(parents=True)
    (power / "name").write_text("ina226\n")
    (power / "power1_input").write_text(f"{power_uw}\n")
    (power / "update_interval").write_text("1\n")
    temp = root / "sys" / "class" / "hwmon" / "hwmon1"
    temp.mkdir(parents=True)
    (temp / "name").write_text("zynqmp_ams\n")
    (temp / "temp1_input").write_text(f"{temp_mc}\n")
    return power


def emulated_config(path, root, tmp_path, scenario="SingleStream", time_scale=0.5):
    return {
        "artifact": path,
        "backend": "emulated",
        "scenario": scenario,
        "loadgen": {"min_duration_ms": 400, "min_query_count": 16},
        "warmup_queries": 2,
        "sample_count": 8,
        "log_dir": str(tmp_path / "lg"),
        "sensors": [
            {"kind": "hwmon_ina2xx", "root": str(root), "chip": "ina226", "interval_ms": 5},
            {"kind": "hwmon_temp", "root": str(root), "chip": "zynqmp_ams", "interval_ms": 5},
        ],
        "emulation": {"root": str(root), "time_scale": time_scale},
    }


@pytest.mark.parametrize("scenario", ["SingleStream", "Offline"])
def test_harness_report_carries_power_thermal_clock_emulation(agent, tmp_path, scenario):
    root = board_root(tmp_path)
    hwmon_tree(root)
    doc, code = agent.harness.run(emulated_config(save_model(tmp_path / "m.onnx"), root, tmp_path, scenario))
    assert code == 0, doc["error"]
    assert list(doc) == list(agent.protocol.REPORT_KEYS)
    power, thermal, clock = doc["power"], doc["thermal"], doc["clock"]
    assert power["sensor"] == "hwmon_ina2xx ina226 (hwmon0)" and power["unit"] == "W"
    assert power["avg_w"] == pytest.approx(11.5) and power["peak_w"] == pytest.approx(11.5)
    assert power["window_s"] == pytest.approx(doc["duration_s"], rel=1e-3)
    assert power["energy_j"] == pytest.approx(11.5 * power["window_s"], rel=1e-4)
    assert power["inferences"] == doc["sample_count"] * doc["batch_size"]
    assert power["samples"] >= 5 and power["rate_hz"] > 0 and power["note"] is None
    assert len(power["trace"]["t_s"]) == len(power["trace"]["values"]) == power["samples"]
    assert all(0 <= t <= power["window_s"] for t in power["trace"]["t_s"])
    assert thermal["max_c"] == pytest.approx(47.0) and thermal["mean_c"] == pytest.approx(47.0)
    assert clock["sensor"].startswith("emu_clock") and clock["min_mhz"] == clock["max_mhz"] == 300.0
    emu = doc["emulation"]
    assert emu["model_version"] == "farm-dpu-perf/1" and emu["device"] == "DPUCZDX8G-B4096"
    assert emu["time_scale"] == 0.5 and emu["outputs_computed"] == 8
    env = doc["environment"]
    assert env["board_serial"] == "EMU-ZCU104-0001" and env["dpu_fingerprint"] == "0x101000016010407"
    assert env["runtime"] == "emulated" and env["emulation_model"] == "farm-dpu-perf/1"
    assert float((root / "emu" / "load").read_text()) == 0.0
    # Paced to the profile: SingleStream p50 near 4 ms x 0.5; Offline near 500/s x 2 (time_scale 0.5).
    if scenario == "SingleStream":
        assert doc["latency_ms"]["p50"] == pytest.approx(2.0, rel=0.3)
    else:
        assert doc["throughput_ips"] == pytest.approx(1000.0, rel=0.3)


def test_harness_sensor_vanishing_mid_run(agent, tmp_path):
    root = board_root(tmp_path)
    power_dir = hwmon_tree(root)
    config = emulated_config(save_model(tmp_path / "m.onnx"), root, tmp_path)
    config["loadgen"]["min_duration_ms"] = 600
    remover = threading.Timer(0.5, lambda: (power_dir / "power1_input").unlink())
    remover.start()
    try:
        doc, code = agent.harness.run(config)
    finally:
        remover.cancel()
    assert code == 0 and doc["status"] == "ok", doc["error"]
    assert doc["power"]["avg_w"] is None and doc["power"]["energy_j"] is None
    assert "stopped answering" in doc["power"]["note"]
    assert doc["thermal"]["max_c"] == pytest.approx(47.0)


def test_harness_without_sensors_reports_nulls(agent, tmp_path):
    path = save_model(tmp_path / "m.onnx")
    doc, code = agent.harness.run(
        {
            "artifact": path,
            "backend": "emulated",
            "scenario": "SingleStream",
            "loadgen": {"min_duration_ms": 100, "min_query_count": 8},
            "warmup_queries": 1,
            "sample_count": 2,
            "log_dir": str(tmp_path / "lg"),
        }
    )
    assert code == 0, doc["error"]
    assert doc["power"] is None and doc["thermal"] is None and doc["clock"] is None
    assert doc["emulation"]["root"] is None and doc["emulation"]["time_scale"] == 1.0


def test_harness_unavailable_sensor_is_noted(agent, tmp_path):
    root = board_root(tmp_path)  # no hwmon tree: the INA226 is not there
    config = emulated_config(save_model(tmp_path / "m.onnx"), root, tmp_path)
    config["loadgen"]["min_duration_ms"] = 200
    doc, code = agent.harness.run(config)
    assert code == 0, doc["error"]
    assert doc["power"]["avg_w"] is None and "no hwmon device named 'ina226'" in doc["power"]["note"]
    assert doc["clock"]["min_mhz"] == 300.0


@pytest.mark.parametrize(
    "emulation, needle",
    [
        ({"root": "relative/dir"}, "emulation.root must be an absolute path"),
        ({"root": "/x", "time_scale": 0}, "time_scale must be a number in (0, 1]"),
        ({"root": "/x", "time_scale": 1.5}, "time_scale must be a number in (0, 1]"),
        ("/x", "config emulation must be an object"),
    ],
)
def test_normalize_config_checks_emulation(agent, emulation, needle):
    base = {"artifact": "/m.onnx", "backend": "emulated", "scenario": "SingleStream", "emulation": emulation}
    with pytest.raises(agent.backends.InfraError) as info:
        agent.harness.normalize_config(base)
    assert needle in str(info.value)


def test_normalize_config_sensors_and_emulation_defaults(agent):
    cfg = agent.harness.normalize_config(
        {"artifact": "/m.onnx", "backend": "emulated", "scenario": "Offline", "emulation": {"root": "/b"}}
    )
    assert cfg["emulation"] == {"root": "/b", "time_scale": 1.0}
    with pytest.raises(agent.backends.InfraError, match=r"sensors\[0\] must be an object"):
        agent.harness.normalize_config(dict(cfg, sensors=["hwmon:ina226"]))
    with pytest.raises(agent.backends.InfraError, match=r"interval_ms must be a positive number"):
        agent.harness.normalize_config(dict(cfg, sensors=[{"kind": "rapl", "interval_ms": 0}]))


def test_an_artifact_from_the_dpu_emulator_toolchain(agent, tmp_path):
    """The contract end to end: the toolchain's real profile, paced by the backend through the harness."""
    from farm.workers.toolchains.base import QuantConfig
    from farm.workers.toolchains.emulation import read_profile
    from farm.workers.toolchains.registry import get_toolchain

    result = get_toolchain("dpu_emulator@zcu104").compile(
        tiny_model(batch=1), "int8", QuantConfig(calibration_samples=16), tmp_path / "artifact"
    )
    profile = read_profile(result.path)
    root = board_root(tmp_path)
    hwmon_tree(root)
    config = emulated_config(str(result.path), root, tmp_path, time_scale=1.0)
    config["loadgen"]["min_duration_ms"] = 600  # long enough for MIN_SAMPLES on a loaded CI machine
    doc, code = agent.harness.run(config)
    assert code == 0, doc["error"]
    assert doc["emulation"]["model_version"] == profile["model_version"] == "farm-dpu-perf/1"
    assert doc["emulation"]["device"] == "DPUCZDX8G-B4096"
    assert doc["latency_ms"]["min"] >= profile["latency_ms"] * 0.99  # paced: never faster than the profile
    assert doc["power"]["avg_w"] == pytest.approx(11.5), doc["power"]["note"]


def test_agent_script_with_sensors_prints_one_json_line(tmp_path):
    """As on a board: the script, sensors sampled on threads, and still exactly one JSON line on stdout."""
    import subprocess
    import sys

    root = board_root(tmp_path)
    hwmon_tree(root)
    config = emulated_config(save_model(tmp_path / "m.onnx"), root, tmp_path)
    config["loadgen"]["min_duration_ms"] = 200
    (tmp_path / "cfg.json").write_text(json.dumps(config))
    script = str(agent_modules.REPO / "workers" / "agent" / "farm_agent.py")
    proc = subprocess.run(
        [sys.executable, script, "--config", str(tmp_path / "cfg.json")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(tmp_path),
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert proc.returncode == 0 and len(lines) == 1, proc.stderr
    doc = json.loads(lines[0])
    assert doc["power"]["avg_w"] == pytest.approx(11.5) and doc["clock"]["min_mhz"] == 300.0
    assert doc["environment"]["board_serial"] == "EMU-ZCU104-0001"
    assert "sensors are not implemented" not in proc.stderr
