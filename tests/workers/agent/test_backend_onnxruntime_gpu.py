"""ONNX Runtime GPU backend. This machine's onnxruntime is the CPU build, so the real path can only be
checked for its refusal; provider selection is checked with the available-provider list patched."""

from __future__ import annotations

import onnx
import pytest
from onnxruntime.quantization import QuantType, quantize_dynamic

from tests.conftest import tiny_model
from tests.workers.agent import agent_modules


@pytest.fixture(scope="module")
def agent():
    with agent_modules.imported() as ns:
        ns.gpu = agent_modules.module("backends.onnxruntime_gpu")
        yield ns


@pytest.fixture
def fp32_path(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(tiny_model(), str(path))
    return str(path)


def gpu_backend(agent, config=None):
    backend = agent.backends.create("onnxruntime_gpu")
    backend.configure(config or {})
    return backend


def test_no_gpu_provider_is_an_infra_error_naming_what_is_available(agent, fp32_path):
    backend = gpu_backend(agent)
    with pytest.raises(agent.backends.InfraError) as info:
        backend.load(fp32_path)
    message = str(info.value)
    assert "TensorrtExecutionProvider, CUDAExecutionProvider" in message
    assert "available: " in message and "CPUExecutionProvider" in message


def test_provider_options(agent, fp32_path, tmp_path, monkeypatch):
    backend = gpu_backend(agent)
    monkeypatch.setattr(
        backend._ort,
        "get_available_providers",
        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    )
    providers = backend.session_providers(fp32_path)
    assert [p for p, _ in providers] == ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
    trt = providers[0][1]
    assert trt["trt_int8_enable"] is False and trt["trt_fp16_enable"] is False
    assert trt["trt_engine_cache_enable"] is True
    int8_path = str(tmp_path / "m.int8.onnx")
    quantize_dynamic(fp32_path, int8_path, weight_type=QuantType.QInt8)
    assert agent.gpu.is_qdq_model(int8_path) and not agent.gpu.is_qdq_model(fp32_path)
    assert backend.session_providers(int8_path)[0][1]["trt_int8_enable"] is True


def test_cuda_only_and_fp16_on_request(agent, fp32_path, monkeypatch):
    backend = gpu_backend(agent, {"gpu": {"fp16": True, "device_id": 1}})
    monkeypatch.setattr(
        backend._ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    assert backend.session_providers(fp32_path) == [("CUDAExecutionProvider", {"device_id": 1})]
    backend = gpu_backend(agent, {"gpu": {"fp16": True}})
    monkeypatch.setattr(backend._ort, "get_available_providers", lambda: ["TensorrtExecutionProvider"])
    assert backend.session_providers(fp32_path)[0][1]["trt_fp16_enable"] is True


def test_unknown_provider_in_config(agent):
    with pytest.raises(agent.backends.InfraError, match="providers must be among"):
        gpu_backend(agent, {"gpu": {"providers": ["CPUExecutionProvider"]}})


def test_versions_name_the_providers(agent):
    v = gpu_backend(agent).versions()
    assert v["runtime"] == "onnxruntime" and "CPUExecutionProvider" in v["runtime_providers"]
    assert "cuda_device" in v and v["trt_fp16"] is False
