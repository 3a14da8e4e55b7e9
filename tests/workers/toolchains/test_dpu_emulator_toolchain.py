"""The emulated DPU and GPU toolchains: per-target names, the farm.emulation profile, model errors."""

from __future__ import annotations

import json

import onnx
import onnxruntime as ort
import pytest

from farm.errors import ModelError
from farm.workers.toolchains.base import QuantConfig
from farm.workers.toolchains.cli import main as cli_main
from farm.workers.toolchains.emulation import EMULATION_KEY, PROFILE_KEYS, read_profile
from farm.workers.toolchains.registry import get_toolchain, is_per_target, toolchain_for_target
from tests.conftest import tiny_model
from tests.farm.perfmodel.conftest import huge_activation_model
from tests.workers.agent.agent_modules import imported, module

QUANT = QuantConfig(calibration_samples=16)


def test_per_target_names():
    assert toolchain_for_target("dpu_emulator", "zcu104") == "dpu_emulator@zcu104"
    assert toolchain_for_target("gpu_emulator", "jetson-agx-xavier") == "gpu_emulator@jetson-agx-xavier"
    assert toolchain_for_target("vitis_ai", "kv260") == "vitis_ai@kv260"
    assert toolchain_for_target("onnxruntime_cpu", "cpu") == "onnxruntime_cpu"
    assert toolchain_for_target("not_a_toolchain", "x") == "not_a_toolchain"
    assert is_per_target("dpu_emulator") and not is_per_target("onnxruntime_cpu")
    with pytest.raises(KeyError, match="not per-target"):
        get_toolchain("onnxruntime_cpu@zcu104")
    tc = get_toolchain("dpu_emulator@zcu104")
    assert tc.catalog_name() == "dpu_emulator@zcu104"
    assert tc.target_arch == "DPUCZDX8G-B4096x2@300MHz"


def test_the_artifact_key_inputs_differ_per_target_configuration():
    archs = {
        get_toolchain(f"dpu_emulator@{b}").target_arch
        for b in ("zcu104", "kv260", "ultra96-v2", "pynq-z2", "u50", "vck190")
    }
    assert archs == {
        "DPUCZDX8G-B4096x2@300MHz",
        "DPUCZDX8G-B3136x1@300MHz",
        "DPUCZDX8G-B1600x1@287MHz",
        "DPUCZDX8G-B512x1@200MHz",
        "DPUCAHX8H-2x3Ex2@300MHz",
        "DPUCVDX8G-C32B3x1@1250MHz",
    }
    version = get_toolchain("dpu_emulator@zcu104").version()
    assert version.startswith("dpu_emulator-farm-dpu-perf/1-") and ort.__version__ in version


def test_unknown_target_is_a_model_error():
    with pytest.raises(ModelError, match="unknown board type"):
        get_toolchain("dpu_emulator@nope")
    with pytest.raises(ModelError, match="has no DPU"):
        get_toolchain("dpu_emulator@jetson-agx-xavier")


def test_dpu_emulator_writes_the_profile(tmp_path):
    tc = get_toolchain("dpu_emulator@zcu104")
    result = tc.compile(tiny_model(batch=2), "int8", QUANT, tmp_path)
    assert result.path == tmp_path / "model.onnx" and sorted(p.name for p in tmp_path.iterdir()) == [
        "model.onnx"
    ]
    profile = read_profile(result.path)
    assert tuple(profile) == tuple(sorted(PROFILE_KEYS)) or set(profile) == set(PROFILE_KEYS)
    assert profile["model_version"] == "farm-dpu-perf/1"
    assert (profile["kind"], profile["device"], profile["cores"], profile["clock_mhz"]) == (
        "dpu",
        "DPUCZDX8G-B4096",
        2,
        300.0,
    )
    assert profile["batch_size"] == 2
    assert 0 < profile["clock_scaled_ms"] <= profile["latency_ms"]
    assert profile["fps_mt"] > 0 and 0 < profile["utilisation_st"] <= 1 and 0 < profile["utilisation_mt"] <= 1
    assert profile["subgraphs"] == 1 and profile["cpu_ops"] == [] and profile["warnings"] == []
    # The backend's way of reading it.
    sess = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    assert json.loads(sess.get_modelmeta().custom_metadata_map[EMULATION_KEY]) == profile
    with imported():  # what the emulated backend accepts (agent modules import each other by bare name)
        assert module("backends.emulated").parse_profile(json.dumps(profile)) == profile
    assert result.fidelity is not None and result.details["quant_format"] == "QDQ"
    assert result.details["emulation"] == profile


def test_dpu_emulator_is_int8_only(tmp_path):
    with pytest.raises(ModelError, match="precision"):
        get_toolchain("dpu_emulator@kv260").compile(tiny_model(), "fp32", QUANT, tmp_path)


def test_a_model_too_big_for_the_board_fails_the_compile(tmp_path):
    with pytest.raises(ModelError, match="does not fit pynq-z2"):
        get_toolchain("dpu_emulator@pynq-z2").compile(huge_activation_model(), "int8", QUANT, tmp_path)


def test_gpu_emulator_fp32_and_int8(tmp_path):
    tc = get_toolchain("gpu_emulator@jetson-agx-xavier")
    assert tc.target_arch == "volta-sm72x8@1377MHz"
    profiles = {}
    for precision in ("fp32", "int8"):
        result = tc.compile(tiny_model(), precision, QUANT, tmp_path / precision)
        profiles[precision] = read_profile(result.path)
    for p in profiles.values():
        assert set(p) == set(PROFILE_KEYS)
        assert (p["model_version"], p["kind"], p["device"]) == ("farm-gpu-perf/1", "gpu", "volta-sm72")
    assert profiles["int8"]["latency_ms"] <= profiles["fp32"]["latency_ms"]


def test_out_of_process_cli_takes_the_target_name(tmp_path):
    model = tmp_path / "in.onnx"
    onnx.save(tiny_model(), model)
    out = tmp_path / "out"
    rc = cli_main(
        [
            "compile",
            "--toolchain",
            "dpu_emulator@kv260",
            "--model",
            str(model),
            "--precision",
            "int8",
            "--quant-json",
            '{"calibration_samples": 8}',
            "--out-dir",
            str(out),
        ]
    )
    assert rc == 0
    result = json.loads((out / "result.json").read_text())
    assert result["toolchain"] == "dpu_emulator@kv260" and result["target_arch"] == "DPUCZDX8G-B3136x1@300MHz"
    assert read_profile(out / "model.onnx")["device"] == "DPUCZDX8G-B3136"


def test_the_local_runner_compiles_a_per_target_name(tmp_path):
    """What run_compile_job does for an emulated zcu104: toolchain_for_target, then the runner."""
    from farm.workers.toolchains.runners import LocalRunner

    name = toolchain_for_target("dpu_emulator", "zcu104")
    model = tmp_path / "in.onnx"
    onnx.save(tiny_model(), model)
    runner = LocalRunner()
    info = runner.toolchain_info(name)
    assert (info.name, info.target_arch) == ("dpu_emulator", "DPUCZDX8G-B4096x2@300MHz")
    result = runner.compile(name, model, "int8", QUANT, tmp_path / "out")
    assert result.toolchain_version == info.version and result.target_arch == info.target_arch
    assert read_profile(result.path)["device"] == "DPUCZDX8G-B4096"
