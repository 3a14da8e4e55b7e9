"""The sampler: figures over LoadGen's measured window only, too few samples, a sensor vanishing mid-run."""

from __future__ import annotations

import time

import pytest

from tests.workers.agent import agent_modules

MS = 1_000_000  # ns


@pytest.fixture(scope="module")
def agent():
    with agent_modules.imported() as ns:
        yield ns


def ina226(root, power_uw=10_000_000):
    d = root / "sys" / "class" / "hwmon" / "hwmon0"
    d.mkdir(parents=True)
    (d / "name").write_text("ina226\n")
    (d / "power1_input").write_text(f"{power_uw}\n")
    t = root / "sys" / "class" / "hwmon" / "hwmon1"
    t.mkdir(parents=True)
    (t / "name").write_text("zynqmp_ams\n")
    (t / "temp1_input").write_text("50000\n")
    return d


def sampler_with(agent, tmp_path, samples, quantity="power", kind="hwmon_ina2xx", entry=None):
    """A sampler whose one channel holds the given (t_ns, values) samples (no threads run)."""
    ina226(tmp_path)
    entry = entry or {"kind": kind, "root": str(tmp_path), "chip": "ina226"}
    s = agent.sensors_sampler.Sampler([agent.sensors.create(entry)])
    s.channels[0].samples = list(samples)
    return s


def test_only_the_window_counts(agent, tmp_path):
    # 10 W before the window, 20 W inside, 99 W after: the figures see 20 W only.
    samples = [(t * MS, {"power": 10.0}) for t in range(0, 100, 10)]
    samples += [(t * MS, {"power": 20.0 if t % 20 else 22.0}) for t in range(100, 1100, 10)]
    samples += [(t * MS, {"power": 99.0}) for t in range(1110, 1200, 10)]
    fig = sampler_with(agent, tmp_path, samples).figures((100 * MS, 1090 * MS))["power"]
    assert fig["samples"] == 100
    assert fig["avg_w"] == pytest.approx(21.0)
    assert fig["peak_w"] == 22.0
    assert fig["window_s"] == pytest.approx(0.99)
    assert fig["energy_j"] == pytest.approx(21.0 * 0.99)
    assert fig["rate_hz"] == pytest.approx(100.0)
    assert fig["trace"]["t_s"][0] == 0.0 and fig["trace"]["t_s"][-1] == pytest.approx(0.99)
    assert fig["note"] is None and fig["unit"] == "W" and fig["resolution"] == 1e-6
    assert fig["sensor"] == "hwmon_ina2xx ina226 (hwmon0)"


def test_trace_is_capped_at_2000_points(agent, tmp_path):
    samples = [(t * MS // 10, {"power": float(t % 7)}) for t in range(5000)]
    fig = sampler_with(agent, tmp_path, samples).figures((0, 500 * MS))["power"]
    assert fig["samples"] == 5000
    assert len(fig["trace"]["t_s"]) == len(fig["trace"]["values"]) == 2000
    assert fig["trace"]["t_s"][-1] == pytest.approx(0.4999)


def test_too_few_samples_leave_the_figures_out(agent, tmp_path):
    samples = [(t * MS, {"power": 5.0}) for t in (0, 500, 1000, 1500)]
    fig = sampler_with(agent, tmp_path, samples).figures((0, 1600 * MS))["power"]
    assert fig["samples"] == 4
    assert fig["avg_w"] is None and fig["peak_w"] is None and fig["energy_j"] is None
    assert "only 4 sample(s)" in fig["note"] and "at least 5" in fig["note"]
    assert fig["trace"]["values"] == [5.0] * 4  # what was read is still there


def test_energy_counter_gives_the_energy(agent, tmp_path):
    d = tmp_path / "sys" / "class" / "powercap" / "intel-rapl:0"
    d.mkdir(parents=True)
    (d / "energy_uj").write_text("0\n")
    (d / "max_energy_range_uj").write_text("262143328850\n")
    # 15 W for 1 s, read every 100 ms; the per-interval power wobbles but the counter is exact.
    samples = []
    for i in range(11):
        values = {"energy_j": 1.5 * i}
        if i:
            values["power"] = 14.0 if i % 2 else 16.0
        samples.append((i * 100 * MS, values))
    fig = sampler_with(agent, tmp_path, samples, entry={"kind": "rapl", "root": str(tmp_path)}).figures(
        (0, 1000 * MS)
    )["power"]
    assert fig["energy_source"] == "counter"
    assert fig["avg_w"] == pytest.approx(15.0) and fig["energy_j"] == pytest.approx(15.0)
    assert fig["peak_w"] == 16.0 and fig["samples"] == 11


def test_thermal_and_clock_figures(agent, tmp_path):
    ina226(tmp_path)
    (tmp_path / "emu").mkdir()
    (tmp_path / "emu" / "clock_mhz").write_text("300\n")
    temp = agent.sensors.create({"kind": "hwmon_temp", "root": str(tmp_path), "chip": "zynqmp_ams"})
    clock = agent.sensors.create({"kind": "emu_clock", "root": str(tmp_path)})
    s = agent.sensors_sampler.Sampler([temp, clock])
    s.channels[0].samples = [(i * MS, {"thermal": 40.0 + i}) for i in range(10)]
    s.channels[1].samples = [(i * MS, {"clock": 300.0 if i < 6 else 150.0}) for i in range(10)]
    figs = s.figures((0, 9 * MS))
    assert figs["power"] is None  # no power sensor configured
    assert figs["thermal"]["max_c"] == 49.0 and figs["thermal"]["mean_c"] == pytest.approx(44.5)
    assert figs["clock"]["min_mhz"] == 150.0 and figs["clock"]["max_mhz"] == 300.0
    assert figs["clock"]["unit"] == "MHz" and figs["thermal"]["unit"] == "C"


def test_unavailable_sensor_is_reported_with_its_reason(agent):
    s = agent.sensors_sampler.Sampler([], [("rapl", ("power",), "no RAPL on this machine")])
    fig = s.figures((0, 10 * MS))["power"]
    assert fig["sensor"] == "rapl" and fig["avg_w"] is None
    assert fig["note"] == "sensor unavailable: no RAPL on this machine"


def test_no_window_no_figures(agent, tmp_path):
    fig = sampler_with(agent, tmp_path, [(0, {"power": 1.0})]).figures(None)["power"]
    assert fig["avg_w"] is None and "no measured window" in fig["note"]


def test_sensor_vanishing_mid_run_on_real_threads(agent, tmp_path):
    d = ina226(tmp_path)
    power = agent.sensors.create(
        {"kind": "hwmon_ina2xx", "root": str(tmp_path), "chip": "ina226", "interval_ms": 5}
    )
    temp = agent.sensors.create(
        {"kind": "hwmon_temp", "root": str(tmp_path), "chip": "zynqmp_ams", "interval_ms": 5}
    )
    s = agent.sensors_sampler.Sampler([power, temp])
    s.start()
    w0 = time.perf_counter_ns()
    time.sleep(0.15)
    (d / "power1_input").unlink()  # the INA's driver was unbound mid-run
    time.sleep(0.15)
    w1 = time.perf_counter_ns()
    s.stop()
    figs = s.figures((w0, w1))
    assert figs["power"]["avg_w"] is None and figs["power"]["energy_j"] is None
    assert "stopped answering" in figs["power"]["note"] and "power1_input" in figs["power"]["note"]
    assert figs["power"]["samples"] >= 5  # what it read before it went is kept in the trace
    assert figs["thermal"]["note"] is None and figs["thermal"]["max_c"] == 50.0
    assert s.channels[0].thread is not None and not s.channels[0].thread.is_alive()


def test_sensor_vanishing_after_the_window_keeps_the_figures(agent, tmp_path):
    d = ina226(tmp_path)
    power = agent.sensors.create(
        {"kind": "hwmon_ina2xx", "root": str(tmp_path), "chip": "ina226", "interval_ms": 5}
    )
    s = agent.sensors_sampler.Sampler([power])
    s.start()
    w0 = time.perf_counter_ns()
    time.sleep(0.15)
    w1 = time.perf_counter_ns()
    (d / "power1_input").unlink()
    time.sleep(0.08)
    s.stop()
    fig = s.figures((w0, w1))["power"]
    assert fig["note"] is None and fig["avg_w"] == pytest.approx(10.0) and fig["samples"] >= 5
