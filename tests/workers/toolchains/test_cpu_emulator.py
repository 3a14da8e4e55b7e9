"""The emulated board-CPU toolchain: per-target names, the farm.emulation profile, ARM quantisation."""

from __future__ import annotations

import json

import onnxruntime as ort
import pytest

from farm.errors import ModelError
from farm.workers.toolchains.base import QuantConfig
from farm.workers.toolchains.emulation import EMULATION_KEY, PROFILE_KEYS, read_profile
from farm.workers.toolchains.registry import get_toolchain, is_per_target, toolchain_for_target
from tests.conftest import tiny_model
from tests.workers.agent.agent_modules import imported, module

QUANT = QuantConfig(calibration_samples=16)


def test_names_and_versions():
    assert is_per_target("cpu_emulator")
    assert toolchain_for_target("cpu_emulator", "pynq-z2:cpu:1") == "cpu_emulator@pynq-z2:cpu:1"
    tc = get_toolchain("cpu_emulator@pynq-z2:cpu:1")
    assert tc.catalog_name() == "cpu_emulator@pynq-z2:cpu:1"
    assert tc.target_arch == "cortex-a9x2@650MHz-t1"
    assert get_toolchain("cpu_emulator@zcu104:cpu").target_arch == "cortex-a53x4@1200MHz-t4"
    version = tc.version()
    assert version.startswith("cpu_emulator-farm-armcpu-perf/1-") and ort.__version__ in version


def test_bad_targets_are_model_errors(tmp_path):
    with pytest.raises(ModelError, match="<board type>:cpu"):
        get_toolchain("cpu_emulator@pynq-z2")
    with pytest.raises(ModelError, match="3 threads"):
        get_toolchain("cpu_emulator@pynq-z2:cpu:3")
    with pytest.raises(ModelError, match="needs a target"):
        get_toolchain("cpu_emulator").compile(tiny_model(), "fp32", QUANT, tmp_path)
    with pytest.raises(ModelError, match="precision"):
        get_toolchain("cpu_emulator@zcu104:cpu").compile(tiny_model(), "fp16", QUANT, tmp_path)


@pytest.mark.parametrize(
    ("target", "device", "cores", "clock"),
    [("pynq-z2:cpu:1", "Cortex-A9", 1, 650.0), ("zcu104:cpu", "Cortex-A53", 4, 1200.0)],
)
def test_compile_writes_the_profile(tmp_path, target, device, cores, clock):
    tc = get_toolchain(f"cpu_emulator@{target}")
    profiles: dict[str, dict] = {}
    for precision in ("fp32", "int8"):
        result = tc.compile(tiny_model(batch=2), precision, QUANT, tmp_path / precision)
        p = read_profile(result.path)
        profiles[precision] = p
        assert set(p) == set(PROFILE_KEYS)
        assert (p["model_version"], p["kind"], p["device"], p["cores"], p["clock_mhz"]) == (
            "farm-armcpu-perf/1",
            "cpu",
            device,
            cores,
            clock,
        )
        assert p["batch_size"] == 2 and p["latency_ms"] > 0 and p["clock_scaled_ms"] == 0.0
        assert p["fps_mt"] == pytest.approx(2000 / p["latency_ms"], rel=1e-3)
        assert 0 < p["utilisation_st"] == p["utilisation_mt"] <= 1
        assert p["subgraphs"] == 0 and p["cpu_ops"] == [] and p["warnings"] == []
        assert result.details["emulation"] == p and result.details["target_arch"] == tc.target_arch
        assert result.details["board"] == target
        # What the emulated backend accepts (agent modules import each other by bare name).
        sess = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
        assert json.loads(sess.get_modelmeta().custom_metadata_map[EMULATION_KEY]) == p
        with imported():
            assert module("backends.emulated").parse_profile(json.dumps(p)) == p
    # A model this small is all dispatch: int8's extra QuantizeLinear/DequantizeLinear make it slower.
    assert profiles["int8"]["latency_ms"] != profiles["fp32"]["latency_ms"]


def test_int8_is_quantised_for_arm(tmp_path):
    """Full 8-bit weights whatever the compiling host (reduce_range is an x86 workaround)."""
    result = get_toolchain("cpu_emulator@zcu104:cpu:2").compile(tiny_model(), "int8", QUANT, tmp_path)
    assert result.details["reduce_range"] is False and result.details["quant_format"] == "QDQ"
    assert result.fidelity is not None
