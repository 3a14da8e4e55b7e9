"""NVML reader against the FAKE pynvml (tests/fakes/pynvml.py): units, the energy over the
measured window from the GPU's total-energy counter (checked against the scripted power's exact
integral), clock event reasons, provenance, and every way NVML can be missing or refuse."""

from __future__ import annotations

import importlib.util
import sys
import time

import pytest

from tests.workers.agent import agent_modules

_spec = importlib.util.spec_from_file_location("fake_pynvml", f"{agent_modules.FAKES_DIR}/pynvml.py")
nv = importlib.util.module_from_spec(_spec)
sys.modules["fake_pynvml"] = nv  # the fake registers its error classes on its own module, as pynvml does
_spec.loader.exec_module(nv)

MS = 1_000_000  # ns
S = 1_000_000_000  # ns


@pytest.fixture
def agent():
    """The agent's modules with the fake as ``pynvml`` (agent_modules forgets it afterwards)."""
    with agent_modules.imported() as ns:
        nv.fake_reset()
        nv.FAKE["now_s"] = 0.0
        sys.modules["pynvml"] = nv
        yield ns


def drive(agent, reader, times_s, script=None):
    """A sampler over ``reader`` holding readings taken at the fake instants ``times_s`` (no threads);
    ``script(t)`` may change the device before each reading."""
    s = agent.sensors_sampler.Sampler([reader])
    for t in times_s:
        nv.FAKE["now_s"] = t
        if script is not None:
            script(t, nv.FAKE["devices"][0])
        s.channels[0].samples.append((round(t * S), reader.read()))
    return s


def window(t0_s, t1_s):
    return (round(t0_s * S), round(t1_s * S))


# --------------------------------------------------------------------------- the fake itself


def test_the_fake_follows_pynvml_names_and_errors():
    assert (nv.NVML_CLOCK_GRAPHICS, nv.NVML_CLOCK_SM, nv.NVML_CLOCK_MEM, nv.NVML_TEMPERATURE_GPU) == (
        0,
        1,
        2,
        0,
    )
    assert nv.nvmlClocksThrottleReasonSwPowerCap == nv.nvmlClocksEventReasonSwPowerCap == 0x4
    assert nv.nvmlClocksThrottleReasonHwThermalSlowdown == 0x40
    err = nv.NVMLError(nv.NVML_ERROR_NOT_SUPPORTED)
    assert type(err) is nv.NVMLError_NotSupported and str(err) == "Not Supported"
    assert (
        isinstance(nv.NVMLError_GpuIsLost(), nv.NVMLError) and str(nv.NVMLError_GpuIsLost()) == "GPU is lost"
    )
    assert nv.NVMLError_NoPermission().value == nv.NVML_ERROR_NO_PERMISSION


def test_protocol_names_the_nvml_bits(agent):
    bits = {name: bit for bit, name, _ in agent.protocol.GPU_CLOCK_EVENT_REASONS}
    assert bits["gpu_idle"] == nv.nvmlClocksEventReasonGpuIdle
    assert bits["applications_clocks_setting"] == nv.nvmlClocksEventReasonApplicationsClocksSetting
    assert bits["sw_power_cap"] == nv.nvmlClocksEventReasonSwPowerCap
    assert bits["hw_slowdown"] == nv.nvmlClocksEventReasonHwSlowdown
    assert bits["sync_boost"] == nv.nvmlClocksEventReasonSyncBoost
    assert bits["sw_thermal_slowdown"] == nv.nvmlClocksEventReasonSwThermalSlowdown
    assert bits["hw_thermal_slowdown"] == nv.nvmlClocksEventReasonHwThermalSlowdown
    assert bits["hw_power_brake_slowdown"] == nv.nvmlClocksEventReasonHwPowerBrakeSlowdown
    assert bits["board_limit"] == nv.nvmlClocksThrottleReasonBoardLimit
    assert set(agent.protocol.GPU_THROTTLING) == {
        "sw_power_cap",
        "hw_slowdown",
        "sw_thermal_slowdown",
        "hw_thermal_slowdown",
        "hw_power_brake_slowdown",
    }


# --------------------------------------------------------------------------- readings and provenance


def test_reading_units_and_provenance(agent):
    reader = agent.sensors.create({"kind": "nvml", "index": 0})
    nv.FAKE["now_s"] = 2.0
    assert reader.read() == {
        "energy_j": pytest.approx(2 * 35.125, abs=1e-3),  # since the reader opened, at t = 0
        "power": pytest.approx(35.125),
        "thermal": 48.0,
        "clock": 1770.0,
        "mem_clock": 6251.0,
        "throttle": 0,
    }
    assert reader.describe() == "nvml 0 (NVIDIA A2)"
    assert reader.info() == {
        "index": 0,
        "name": "NVIDIA A2",
        "uuid": "GPU-6f1f3e58-fake-4a4e-9d6c-0123456789ab",
        "serial": "1320000000001",
        "driver_version": "550.54.15",
        "cuda_driver_version": "12.4",
        "power_limit_w": 60.0,
        "energy": "counter",
        "throttle_reasons_api": "nvmlDeviceGetCurrentClocksEventReasons",
    }
    reader.close()
    assert nv.FAKE["init_count"] == 0


def test_optional_facts_not_supported_are_none_with_the_reason(agent):
    nv.FAKE["devices"][0]["not_supported"] = {
        "nvmlDeviceGetSerial",
        "nvmlDeviceGetUUID",
        "nvmlDeviceGetEnforcedPowerLimit",
        "mem_clock",
    }
    nv.FAKE["missing"] = {"nvmlSystemGetCudaDriverVersion"}  # an old driver's library
    reader = agent.sensors.create({"kind": "nvml"})
    info = reader.info()
    assert info["serial"] is None and info["uuid"] is None and info["cuda_driver_version"] is None
    assert info["power_limit_w"] == 60.0  # nvmlDeviceGetPowerManagementLimit instead
    assert info["unsupported"] == {
        "serial": "nvmlDeviceGetSerial: Not Supported",
        "uuid": "nvmlDeviceGetUUID: Not Supported",
        "cuda_driver_version": "nvmlSystemGetCudaDriverVersion: Function Not Found",
        "mem_clock": "nvmlDeviceGetClockInfo: Not Supported",
    }
    assert "mem_clock" not in reader.read()
    s = drive(agent, reader, [i * 0.1 for i in range(10)])
    clock = s.figures(window(0.0, 0.9))["clock"]
    assert clock["mem_min_mhz"] is None and clock["min_mhz"] == 1770.0
    assert clock["info"]["unsupported"]["serial"] == "nvmlDeviceGetSerial: Not Supported"


# --------------------------------------------------------------------------- energy


def test_energy_over_the_window_is_the_counter_difference(agent):
    # 100 W, then 300 W from t = 0.5 s; read every 100 ms; window 0.25 .. 1.75 s, between readings.
    nv.FAKE["devices"][0]["power_steps"] = [(0.0, 100.0), (0.5, 300.0)]
    reader = agent.sensors.create({"kind": "nvml"})
    s = drive(agent, reader, [i * 0.1 for i in range(21)])
    power = s.figures(window(0.25, 1.75))["power"]
    exact = 100.0 * 0.25 + 300.0 * 1.25  # 400 J
    assert power["energy_source"] == "counter"
    assert power["energy_j"] == pytest.approx(exact, abs=2e-3)  # the counter counts whole mJ
    assert power["avg_w"] == pytest.approx(exact / 1.5, abs=2e-3)
    assert power["peak_w"] == 300.0 and power["samples"] == 15 and power["window_s"] == 1.5
    assert power["info"]["energy"] == "counter"


def test_counter_is_exact_where_sampling_aliases(agent):
    # Bursty inference: 300 W for 10 ms, 100 W for 10 ms (200 W on average), read every 20 ms in the
    # quiet half: the samples all say 100 W, the counter knows better.
    bursts = {"power_steps": [(0.0, 300.0), (0.010, 100.0)], "power_period_s": 0.020}
    times = [0.015 + 0.020 * i for i in range(60)]
    nv.FAKE["devices"][0].update(bursts)
    counted = drive(agent, agent.sensors.create({"kind": "nvml"}), times).figures(window(0.1, 1.1))["power"]
    assert counted["energy_source"] == "counter"
    assert counted["energy_j"] == pytest.approx(200.0, abs=0.5)  # exact: 200 J
    assert counted["avg_w"] == pytest.approx(200.0, abs=0.5)

    nv.fake_reset()
    nv.FAKE["now_s"] = 0.0
    nv.FAKE["devices"][0].update(bursts, not_supported={"nvmlDeviceGetTotalEnergyConsumption"})
    reader = agent.sensors.create({"kind": "nvml"})
    assert "energy_j" not in reader.read()
    sampled = drive(agent, reader, times).figures(window(0.1, 1.1))["power"]
    assert sampled["energy_source"] == "mean power x window"
    assert sampled["avg_w"] == pytest.approx(100.0) and sampled["energy_j"] == pytest.approx(100.0)
    assert sampled["info"]["energy"] == "sampled"
    assert sampled["info"]["unsupported"]["energy_counter"] == (
        "nvmlDeviceGetTotalEnergyConsumption: Not Supported (energy from sampled power)"
    )


def test_counter_on_real_threads_brackets_the_window_end(agent):
    nv.FAKE["now_s"] = None  # the fake follows the real clock
    reader = agent.sensors.create({"kind": "nvml", "interval_ms": 20})
    s = agent.sensors_sampler.Sampler([reader])
    s.start()
    time.sleep(0.05)
    w0 = time.perf_counter_ns()
    time.sleep(0.3)
    w1 = time.perf_counter_ns()
    s.stop()
    samples = s.channels[0].samples
    assert samples[0][0] < w0 and samples[-1][0] > w1  # the last: read as the sampler stopped
    power = s.figures((w0, w1))["power"]
    assert power["energy_source"] == "counter" and power["note"] is None
    assert power["energy_j"] == pytest.approx(35.125 * (w1 - w0) / S, rel=2e-3)
    assert power["avg_w"] == pytest.approx(35.125, rel=2e-3)
    s.close()
    assert nv.FAKE["init_count"] == 0


# --------------------------------------------------------------------------- clock event reasons


def test_throttle_reasons_seen_in_the_window(agent):
    masks = {
        0.0: 0x4 | 0x40,  # before the window: not counted
        0.1: 0x0,
        0.2: 0x4,
        0.3: 0x4,
        0.4: 0x1,
        0.5: 0x4 | 0x40,
        0.6: 0x2 | 0x800,  # 0x800: a bit this agent does not know
        0.7: 0x0,
        0.8: 0x80,  # after the window: not counted
    }
    clocks = {0.2: 1500, 0.3: 1410, 0.5: 1200}

    def script(t, device):
        device["reasons"] = masks[round(t, 1)]
        device["sm_mhz"] = clocks.get(round(t, 1), 1770)
        device["mem_mhz"] = 5001 if round(t, 1) == 0.4 else 6251

    reader = agent.sensors.create({"kind": "nvml"})
    s = drive(agent, reader, sorted(masks), script)
    figures = s.figures(window(0.1, 0.7))
    clock = figures["clock"]
    assert clock["throttle_reasons"] == [
        "gpu_idle",
        "applications_clocks_setting",
        "sw_power_cap",
        "hw_thermal_slowdown",
        "0x800",
    ]
    assert clock["throttle_samples"] == {
        "sw_power_cap": 3,
        "gpu_idle": 1,
        "hw_thermal_slowdown": 1,
        "applications_clocks_setting": 1,
        "0x800": 1,
    }
    assert clock["samples"] == 7 and clock["min_mhz"] == 1200.0 and clock["max_mhz"] == 1770.0
    assert clock["mem_min_mhz"] == 5001.0 and clock["mem_max_mhz"] == 6251.0
    assert "throttle_reasons" not in figures["power"] and "throttle_reasons" not in figures["thermal"]
    report = dict({"status": "ok"}, **figures)
    assert agent.protocol.validate_report(report) == []
    assert agent.protocol.read(report, "clock", "throttle_reasons")[2] == "sw_power_cap"


def test_reasons_also_before_enough_samples(agent):
    nv.FAKE["devices"][0]["reasons"] = 0x20
    reader = agent.sensors.create({"kind": "nvml"})
    clock = drive(agent, reader, [0.0, 0.1]).figures(window(0.0, 0.1))["clock"]
    assert clock["min_mhz"] is None and "only 2 sample(s)" in clock["note"]
    assert clock["throttle_reasons"] == ["sw_thermal_slowdown"]  # evidence is kept


def test_older_pynvml_without_the_event_reasons_name(agent, monkeypatch):
    monkeypatch.delattr(nv, "nvmlDeviceGetCurrentClocksEventReasons")
    reader = agent.sensors.create({"kind": "nvml"})
    assert reader.info()["throttle_reasons_api"] == "nvmlDeviceGetCurrentClocksThrottleReasons"
    assert "unsupported" not in reader.info()


def test_older_driver_without_the_event_reasons_function(agent):
    nv.FAKE["missing"] = {"nvmlDeviceGetCurrentClocksEventReasons"}
    reader = agent.sensors.create({"kind": "nvml"})
    nv.FAKE["devices"][0]["reasons"] = 0x4
    assert reader.read()["throttle"] == 0x4
    assert reader.info()["throttle_reasons_api"] == "nvmlDeviceGetCurrentClocksThrottleReasons"


def test_no_event_reasons_at_all(agent):
    nv.FAKE["devices"][0]["not_supported"] = {
        "nvmlDeviceGetCurrentClocksEventReasons",
        "nvmlDeviceGetCurrentClocksThrottleReasons",
    }
    reader = agent.sensors.create({"kind": "nvml"})
    assert "throttle" not in reader.read()
    assert reader.info()["unsupported"]["throttle_reasons"] == (
        "nvmlDeviceGetCurrentClocksEventReasons: Not Supported; "
        "nvmlDeviceGetCurrentClocksThrottleReasons: Not Supported"
    )
    clock = drive(agent, reader, [i * 0.1 for i in range(6)]).figures(window(0.0, 0.5))["clock"]
    assert clock["throttle_reasons"] is None and clock["min_mhz"] == 1770.0


# --------------------------------------------------------------------------- bad input


def test_lost_gpu_is_sensor_gone(agent):
    reader = agent.sensors.create({"kind": "nvml"})
    nv.FAKE["lost"] = True
    with pytest.raises(agent.sensors.SensorGone, match="NVML device 0: GPU is lost"):
        reader.read()
    reader.close()
    assert nv.FAKE["init_count"] == 0


def test_bad_index(agent):
    with pytest.raises(
        agent.sensors.SensorError, match=r"NVML device 3: Invalid Argument \(this host has 1 GPU"
    ):
        agent.sensors.create({"kind": "nvml", "index": 3})
    assert nv.FAKE["init_count"] == 0


def test_power_is_required(agent):
    nv.FAKE["devices"][0]["not_supported"] = {"nvmlDeviceGetPowerUsage"}
    with pytest.raises(agent.sensors.SensorError, match="NVML device 0: Not Supported"):
        agent.sensors.create({"kind": "nvml"})
    assert nv.FAKE["init_count"] == 0


@pytest.mark.parametrize(
    "code, message",
    [
        (nv.NVML_ERROR_DRIVER_NOT_LOADED, "nvmlInit failed: Driver Not Loaded (the NVIDIA kernel driver"),
        (nv.NVML_ERROR_NO_PERMISSION, "nvmlInit failed: Insufficient Permissions (the agent's user may not"),
        (
            nv.NVML_ERROR_LIBRARY_NOT_FOUND,
            "nvmlInit failed: NVML Shared Library Not Found (libnvidia-ml.so.1",
        ),
        (nv.NVML_ERROR_UNKNOWN, "nvmlInit failed: Unknown Error"),
    ],
)
def test_nvml_init_failing_is_a_clear_sensor_error(agent, code, message):
    nv.FAKE["init_error"] = code
    with pytest.raises(agent.sensors.SensorError) as info:
        agent.sensors.create({"kind": "nvml"})
    assert str(info.value).startswith(message)


def test_unavailable_nvml_leaves_the_run_its_reason(agent):
    # Through the harness, as in a run: the sensor is reported unavailable, the figures say why.
    nv.FAKE["init_error"] = nv.NVML_ERROR_DRIVER_NOT_LOADED
    sampler = agent.harness.open_sensors({"sensors": [{"kind": "nvml", "index": 0}]})
    figures = agent.harness.sensor_figures(sampler, {"window_ns": [0, S], "sample_count": 10}, 1)
    for quantity in ("power", "thermal", "clock"):
        assert figures[quantity]["note"].startswith("sensor unavailable: nvmlInit failed: Driver Not Loaded")
    assert figures["power"]["avg_w"] is None and figures["power"]["inferences"] == 10


def test_without_pynvml(agent):
    sys.modules["pynvml"] = None  # import pynvml raises ImportError, installed or not
    with pytest.raises(agent.sensors.SensorError, match=r"pynvml \(pip: nvidia-ml-py\) is not installed"):
        agent.sensors.create({"kind": "nvml"})
