"""The torch_cuda backend (docs/agent-backends.md). This machine has the CPU build of torch and no
torchvision, so the backend runs its CPU code path (``gpu: {"device": "cpu"}``, the same conversion,
staging and predict code, without pinning or synchronisation) and its CUDA path is checked only for its
refusal and, with torch.cuda patched, for its bf16 check. What needs a real GPU is listed in the docs."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import tiny_model, unknown_op_model
from tests.workers.agent import agent_modules

if importlib.util.find_spec("torch") is None or importlib.util.find_spec("onnx2torch") is None:
    pytest.skip(
        "torch and onnx2torch are needed (make venv: pip install --no-deps onnx2torch)",
        allow_module_level=True,
    )

import torch  # noqa: E402

CPU = {"device": "cpu"}
TORCHVISION = importlib.util.find_spec("torchvision") is not None


@pytest.fixture(scope="module")
def agent():
    threads = torch.get_num_threads()
    flags = (
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cuda.matmul.allow_tf32,
    )
    with agent_modules.imported() as ns:
        ns.tc = agent_modules.module("backends.torch_cuda")
        ns.tc_convert = agent_modules.module("backends.torch_convert")
        yield ns
    # the backend sets process-wide torch switches: give the rest of the suite its own back
    torch.set_num_threads(threads)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = (
        flags
    )


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("torch_cuda") / "tiny.onnx"
    onnx.save(tiny_model(batch="N"), str(path))
    return str(path)


def backend(agent, path=None, gpu=CPU, batch_size=1, threads=None):
    b = agent.backends.create("torch_cuda")
    b.configure({"batch_size": batch_size, "gpu": gpu})
    if path is not None:
        b.load(path, threads)
    return b


def reference(path, x):
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def inputs(batch, count=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((batch, 3, 16, 16)).astype(np.float32) for _ in range(count)]


def save(model, tmp_path, name="m.onnx"):
    path = tmp_path / name
    onnx.save(model, str(path))
    return str(path)


# --------------------------------------------------------------------------- outputs


@pytest.mark.parametrize("batch", [1, 4])
def test_fp32_matches_onnxruntime_staged_and_not(agent, model_path, batch):
    b = backend(agent, model_path, batch_size=batch, threads=2)
    assert b.input_shape == (None, 3, 16, 16) and b.input_dtype == np.float32
    assert b.warmup_done == agent.tc.DEFAULT_WARMUP
    batches = inputs(batch)
    b.prepare(batches)
    assert len(b._staged) == len(batches) and not b.versions()["pinned_inputs"]  # no pinning on the CPU
    for x in batches:
        out = b.predict(x)
        assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (batch, 10)
        np.testing.assert_allclose(out, reference(model_path, x), rtol=1e-5, atol=1e-5)
    fresh = inputs(batch, 1, seed=9)[0]  # never staged: converted in the call
    np.testing.assert_allclose(b.predict(fresh), reference(model_path, fresh), rtol=1e-5, atol=1e-5)
    b.close()


@pytest.mark.parametrize("dtype, tol", [("fp16", 2e-2), ("bf16", 1e-1)])
def test_half_precisions_on_the_cpu_path(agent, model_path, dtype, tol):
    try:
        b = backend(agent, model_path, gpu=dict(CPU, dtype=dtype), batch_size=4)
    except agent.backends.ModelError as exc:  # an op without kernels in this dtype on this torch's CPU
        pytest.skip(f"torch {torch.__version__} on the CPU cannot run the tiny model in {dtype}: {exc}")
    except agent.backends.InfraError as exc:
        pytest.skip(str(exc))
    x = inputs(4, 1)[0]
    b.prepare([x])
    assert b._staged[id(x)][1].dtype == {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    out = b.predict(x)
    assert out.dtype == np.float32  # back to float32 (numpy has no bfloat16)
    ref = reference(model_path, x)
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol * float(np.abs(ref).max()))
    assert (out.argmax(axis=1) == ref.argmax(axis=1)).mean() >= 0.75
    assert b.versions()["dtype"] == dtype


def test_first_output_of_a_two_output_graph(agent, tmp_path):
    model = tiny_model(batch="N")
    graph = model.graph
    graph.output.insert(0, helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", 8, 1, 1]))
    path = save(model, tmp_path)
    b = backend(agent, path, batch_size=2)
    x = inputs(2, 1)[0]
    expected = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(["p"], {"input": x})[0]
    np.testing.assert_allclose(b.predict(x), expected, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- refusals


def test_no_cuda_device_is_a_clear_infra_error(agent, model_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    b = backend(agent, gpu={})  # the default device is CUDA
    with pytest.raises(agent.backends.InfraError) as info:
        b.load(model_path)
    message = str(info.value)
    assert message.startswith(
        f"no CUDA device: torch.cuda.is_available() is False (torch {torch.__version__}"
    )
    assert "built with CUDA" in message


def test_bf16_on_a_gpu_without_it_is_an_infra_error(agent, model_path, monkeypatch):
    import contextlib

    cuda = torch.cuda
    monkeypatch.setattr(cuda, "is_available", lambda: True)
    monkeypatch.setattr(cuda, "device_count", lambda: 1)
    monkeypatch.setattr(cuda, "device", lambda device: contextlib.nullcontext())
    monkeypatch.setattr(cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(cuda, "get_device_name", lambda *a: "Tesla T4")
    monkeypatch.setattr(cuda, "get_device_capability", lambda *a: (7, 5))
    b = backend(agent, gpu={"dtype": "bf16"})
    with pytest.raises(
        agent.backends.InfraError, match=r"bf16 is not supported on Tesla T4 \(compute capability 7.5\)"
    ):
        b.load(model_path)
    b = backend(agent, gpu={"dtype": "fp32", "device_id": 1})
    with pytest.raises(agent.backends.InfraError, match="device_id 1 but torch sees 1 CUDA device"):
        b.load(model_path)


@pytest.mark.parametrize(
    "gpu, match",
    [
        ({"dtype": "int8"}, "dtype must be one of fp32, fp16, bf16"),
        ({"device": "tpu"}, "device must be one of cuda, cpu"),
        ({"device_id": "x"}, "must be integers"),
        ({"warmup": -1}, ">= 0"),
    ],
)
def test_bad_config_is_an_infra_error(agent, gpu, match):
    with pytest.raises(agent.backends.InfraError, match=match):
        backend(agent, gpu=gpu)


def qdq_model():
    """An INT8 QDQ graph (QuantizeLinear -> DequantizeLinear -> Relu), as the farm's quantizer writes them."""
    scale = numpy_helper.from_array(np.array(0.05, np.float32), "scale")
    zero = numpy_helper.from_array(np.array(0, np.int8), "zero")
    nodes = [
        helper.make_node("QuantizeLinear", ["input", "scale", "zero"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["dq"]),
        helper.make_node("Relu", ["dq"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "qdq",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [scale, zero],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_unconvertible_ops_are_a_model_error_naming_them(agent, tmp_path):
    with pytest.raises(agent.backends.ModelError) as info:
        backend(agent, save(qdq_model(), tmp_path, "qdq.onnx"))
    message = str(info.value)
    assert "cannot convert op(s): DequantizeLinear, QuantizeLinear" in message and "Relu" not in message
    with pytest.raises(agent.backends.ModelError, match="com.example.nowhere:Frobnicate"):
        backend(agent, save(unknown_op_model(), tmp_path, "weird.onnx"))


def test_an_unreadable_artifact_is_a_model_error(agent, tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"not a protobuf at all" * 10)
    with pytest.raises(agent.backends.ModelError, match="onnx cannot load the model"):
        backend(agent, str(path))


@pytest.mark.skipif(TORCHVISION, reason="torchvision is installed here: no stand-in")
def test_torchvision_stand_in_is_not_left_behind_and_nms_is_refused(agent, tmp_path):
    b = backend(agent)
    assert "torchvision" not in sys.modules and "torchvision.ops" not in sys.modules
    v = b.versions()
    assert v["torchvision"] is None and v["torchvision_note"] == "absent (NMS/RoiAlign unsupported)"
    stand_in = agent.tc_convert.torchvision_stand_in("test")
    with pytest.raises(agent.backends.ModelError, match="torchvision is needed"):
        stand_in.ops.nms(None, None, 0.5)
    with pytest.raises(AttributeError):
        stand_in.ops.__file__  # noqa: B018 (inspect probes dunders: they must not look like functions)
    boxes = numpy_helper.from_array(np.array([[[0, 0, 1, 1], [0, 0, 1, 1]]], np.float32), "boxes")
    node = helper.make_node("NonMaxSuppression", ["boxes", "input"], ["selected"])
    graph = helper.make_graph(
        [node],
        "nms",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 2])],
        [helper.make_tensor_value_info("selected", TensorProto.INT64, [None, 3])],
        [boxes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with pytest.raises(agent.backends.ModelError, match=r"NonMaxSuppression \(needs torchvision\)"):
        backend(agent, save(model, tmp_path, "nms.onnx"))


def test_missing_torch_or_onnx2torch_is_an_infra_error(agent, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx2torch", None)
    with pytest.raises(agent.backends.InfraError, match="onnx2torch is not importable"):
        agent.backends.create("torch_cuda")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(agent.backends.InfraError, match="torch is not installed"):
        agent.backends.create("torch_cuda")


# --------------------------------------------------------------------------- provenance


def test_versions_record_the_runtime_device_and_switches(agent, model_path):
    unloaded = backend(agent).versions()  # the health check's call: before any load
    assert unloaded["runtime"] == "torch_cuda" and unloaded["session_providers"] == []
    b = backend(agent, model_path, gpu=dict(CPU, cudnn_benchmark=False, warmup=1), threads=1)
    v = b.versions()
    for key in (
        "runtime", "runtime_version", "runtime_providers", "session_providers", "torch_version",
        "cuda_version", "cudnn_version", "cuda_available", "device", "device_name", "device_capability",
        "cuda_device", "dtype", "cudnn_benchmark", "cudnn_allow_tf32", "cuda_matmul_allow_tf32",
        "torch_threads", "onnx2torch_version", "onnx_version", "torchvision", "pinned_inputs",
        "warmup_iterations",
    ):  # fmt: skip
        assert key in v, key
    assert v["runtime_version"] == v["torch_version"] == torch.__version__
    assert v["cuda_version"] == torch.version.cuda and v["device"] == "cpu"
    assert v["session_providers"] == ["cpu"] and "cpu" in v["runtime_providers"]
    assert v["dtype"] == "fp32" and v["cudnn_benchmark"] is False and v["cudnn_allow_tf32"] is False
    assert v["torch_threads"] == 1 and v["warmup_iterations"] == 1
    assert v["onnx2torch_version"] == "1.5.15" or v["onnx2torch_version"]


# --------------------------------------------------------------------------- through the LoadGen driver


@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream", "Server", "Offline"])
def test_loadgen_end_to_end_on_the_cpu_path(agent, tmp_path, model_path, scenario):
    doc, code = agent.harness.run(
        {
            "artifact": model_path,
            "backend": "torch_cuda",
            "scenario": scenario,
            "batch_size": 2,
            "threads": 1,
            "sample_count": 8,
            "warmup_queries": 3,
            "gpu": CPU,
            "log_dir": str(tmp_path / "lg"),
            "loadgen": {
                "min_duration_ms": 150,
                "min_query_count": 16,
                "multi_stream_samples_per_query": 2,
                "server_search_probes": 2,
            },
        }
    )
    assert code == 0, doc["error"]
    assert doc["status"] == "ok" and doc["scenario"] == scenario and doc["batch_size"] == 2
    assert doc["throughput_ips"] > 0
    if scenario == "Server":  # the bounded search (its probes' predicts run on the SUT's worker thread)
        assert 1 <= len(doc["server_search"]["probes"]) <= 2
        assert doc["headline"]["value"] is None or doc["headline"]["value"] > 0
    else:
        assert doc["headline"]["value"] > 0
    assert f"Scenario : {scenario}" in doc["loadgen_logs"]["summary"]["text"]
    env = doc["environment"]
    assert env["runtime"] == "torch_cuda" and env["device"] == "cpu" and env["session_providers"] == ["cpu"]
    assert env["dtype"] == "fp32" and env["torch_threads"] == 1
    assert agent.protocol.validate_report(doc) == []


def test_the_default_cuda_device_fails_the_run_as_infra(agent, tmp_path, model_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    doc, code = agent.harness.run(
        {
            "artifact": model_path,
            "backend": "torch_cuda",
            "scenario": "SingleStream",
            "log_dir": str(tmp_path),
        }
    )
    assert code != 0 and doc["error"]["kind"] == "infra"
    assert "no CUDA device" in doc["error"]["message"]
