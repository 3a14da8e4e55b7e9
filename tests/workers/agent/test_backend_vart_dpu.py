"""The VART/DPU backend against the fake xir/vart modules (tests/fakes): subgraph choice, NCHW float ->
NHWC int8 at the fix point, execute_async/wait, dequantised outputs; and a LoadGen run through the harness."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tests.workers.agent import agent_modules

DPU = {
    "name": "subgraph_conv1",
    "device": "DPU",
    "dpu_fingerprint": 0x101000016010407,
    "kernel": "mean_hw",
    "inputs": [{"name": "x", "dims": [1, 8, 8, 3], "fix_point": 6}],
    "outputs": [{"name": "y", "dims": [1, 3], "fix_point": 5}],
}


def xmodel(path, subgraphs):
    path.write_text(json.dumps({"fake_xmodel": 1, "name": "tiny", "subgraphs": subgraphs}))
    return str(path)


@pytest.fixture
def agent(monkeypatch):
    with agent_modules.imported(fakes=True) as ns:
        vart = agent_modules.module("vart")
        vart.FAKE.update(create_fails=None, calls=0)
        ns.vart = vart
        ns.vart_dpu = agent_modules.module("backends.vart_dpu")
        yield ns


def loaded(agent, path):
    backend = agent.backends.create("vart_dpu")
    backend.load(path)
    return backend


def test_picks_the_one_dpu_subgraph_and_reports_nchw(agent, tmp_path):
    path = xmodel(
        tmp_path / "m.xmodel", [{"name": "in", "device": "USER"}, DPU, {"name": "sm", "device": "CPU"}]
    )
    backend = loaded(agent, path)
    assert backend.subgraph.get_name() == "subgraph_conv1"
    assert backend.input_shape == (1, 3, 8, 8) and backend.input_dtype == np.float32
    assert backend.in_scale == 64.0 and backend.out_scales == [1 / 32.0]


def test_predict_quantizes_runs_and_dequantizes(agent, tmp_path):
    backend = loaded(agent, xmodel(tmp_path / "m.xmodel", [DPU]))
    x = np.random.default_rng(0).uniform(-1.5, 1.5, size=(1, 3, 8, 8)).astype(np.float32)
    y = backend.predict(x)
    assert y.dtype == np.float32 and y.shape == (1, 3)
    np.testing.assert_allclose(y, x.mean(axis=(2, 3)), atol=1 / 64 + 1 / 32)  # one LSB in, one out
    assert agent.vart.FAKE["calls"] == 1


def test_quantize_transposes_rounds_and_clips(agent, tmp_path):
    backend = loaded(agent, xmodel(tmp_path / "m.xmodel", [DPU]))
    x = np.zeros((1, 3, 8, 8), np.float32)
    x[0, 0, 0, 0] = 0.5  # 32
    x[0, 1, 0, 0] = 5.0  # 320 -> clipped to 127
    x[0, 2, 0, 0] = -5.0  # -> -128
    x[0, 0, 7, 1] = 1 / 128  # 0.5 -> rounds to even: 0
    q = backend.quantize(x)
    assert q.dtype == np.int8 and q.shape == (1, 8, 8, 3)
    assert (q[0, 0, 0, 0], q[0, 0, 0, 1], q[0, 0, 0, 2], q[0, 7, 1, 0]) == (32, 127, -128, 0)


@pytest.mark.parametrize(
    "subgraphs, needle",
    [
        ([{"name": "a", "device": "CPU"}], "has 0 DPU subgraphs (of 1 subgraphs; devices: CPU)"),
        ([DPU, {"name": "cpu", "device": "CPU"}, dict(DPU, name="conv2")], "has 2 DPU subgraphs (of 3"),
    ],
)
def test_not_exactly_one_dpu_subgraph_is_a_model_error(agent, tmp_path, subgraphs, needle):
    with pytest.raises(agent.backends.ModelError) as info:
        loaded(agent, xmodel(tmp_path / "m.xmodel", subgraphs))
    assert needle in str(info.value)


def test_unreadable_xmodel_is_a_model_error(agent, tmp_path):
    path = tmp_path / "m.xmodel"
    path.write_bytes(b"\x08\x01garbage")
    with pytest.raises(agent.backends.ModelError, match="xir cannot read the xmodel"):
        loaded(agent, str(path))


def test_runner_failure_is_an_infra_error(agent, tmp_path):
    agent.vart.FAKE["create_fails"] = "[VART_DPU_INFO_ERROR] no DPU found"
    with pytest.raises(agent.backends.InfraError, match="cannot create a DPU runner.*no DPU found"):
        loaded(agent, xmodel(tmp_path / "m.xmodel", [DPU]))


def test_versions_with_xdputil(agent, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", agent_modules.FAKES_BIN + os.pathsep + os.environ["PATH"])
    backend = loaded(agent, xmodel(tmp_path / "m.xmodel", [DPU]))
    v = backend.versions()
    assert v["runtime"] == "vart" and v["runtime_version"] == "0.0-fake"
    assert v["dpu_fingerprint"] == "0x101000016010407" and v["model_dpu_fingerprint"] == "0x101000016010407"
    assert v["dpu_arch"] == "DPUCZDX8G_ISA1_B4096" and v["dpu_subgraph"] == "subgraph_conv1"


def test_without_vart_the_backend_is_unavailable():
    with agent_modules.imported() as ns, pytest.raises(ns.backends.InfraError) as info:
        ns.backends.create("vart_dpu")
    assert "VART is not installed" in str(info.value)
    assert "available backends: emulated, onnxruntime_cpu, onnxruntime_gpu" in str(info.value)


def test_loadgen_run_through_the_harness(agent, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", agent_modules.FAKES_BIN + os.pathsep + os.environ["PATH"])
    path = xmodel(tmp_path / "m.xmodel", [DPU])
    doc, code = agent.harness.run(
        {
            "artifact": path,
            "backend": "vart_dpu",
            "scenario": "Offline",
            "loadgen": {"min_duration_ms": 100, "min_query_count": 16},
            "warmup_queries": 2,
            "sample_count": 4,
            "log_dir": str(tmp_path / "lg"),
        }
    )
    assert code == 0, doc["error"]
    assert doc["throughput_ips"] > 0 and doc["environment"]["runtime"] == "vart"
    assert doc["environment"]["dpu_fingerprint"] == "0x101000016010407"
    assert doc["emulation"] is None and doc["power"] is None
