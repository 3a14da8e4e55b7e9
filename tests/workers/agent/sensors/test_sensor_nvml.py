"""NVML reader against the fake pynvml (tests/fakes/pynvml.py): mW -> W, C, MHz; a lost GPU."""

from __future__ import annotations

import importlib.util

import pytest

from tests.workers.agent import agent_modules


@pytest.fixture
def agent():
    with agent_modules.imported(fakes=True) as ns:
        agent_modules.module("pynvml").fake_reset()
        yield ns


def test_power_temperature_clock(agent):
    reader = agent.sensors.create({"kind": "nvml", "index": 0})
    assert reader.read() == {"power": pytest.approx(35.125), "thermal": 48.0, "clock": 1770.0}
    assert reader.describe() == "nvml 0 (FAKE NVIDIA A2)"
    reader.close()
    assert agent_modules.module("pynvml").FAKE["init_count"] == 0


def test_lost_gpu_is_sensor_gone(agent):
    reader = agent.sensors.create({"kind": "nvml"})
    agent_modules.module("pynvml").FAKE["lost"] = True
    with pytest.raises(agent.sensors.SensorGone, match="GPU is lost"):
        reader.read()
    reader.close()


def test_bad_index(agent):
    with pytest.raises(agent.sensors.SensorError, match="NVML device 3: Invalid Argument"):
        agent.sensors.create({"kind": "nvml", "index": 3})
    assert agent_modules.module("pynvml").FAKE["init_count"] == 0


def test_without_pynvml(tmp_path):
    if importlib.util.find_spec("pynvml") is not None:
        pytest.skip("the real pynvml is installed here")
    # No fakes on sys.path: the reader says what is missing.
    with agent_modules.imported() as ns, pytest.raises(ns.sensors.SensorError, match="pynvml"):
        ns.sensors.create({"kind": "nvml"})
