"""The ONNX Runtime CPU toolchain: fp32 optimisation, int8 QDQ quantisation, fidelity, errors."""

from __future__ import annotations

import platform

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from farm.errors import ModelError
from farm.workers.toolchains.base import CompileResult, QuantConfig, Toolchain
from farm.workers.toolchains.onnxruntime_cpu import OnnxRuntimeCpuToolchain
from farm.zoo import build_zoo_model, synthetic_inputs
from farm.zoo.builder import GraphBuilder


def tiny_net(batch: int = 1, classes: int = 10) -> onnx.ModelProto:
    """A small residual conv net on 3x32x32 images, built like the zoo models."""
    b = GraphBuilder(seed=123, batch_size=batch, input_shape=(3, 32, 32))
    x = b.conv("input", 16, 3, 2, 1, name="stem")
    y = b.conv(x, 16, 3, 1, 1, name="block.conv1")
    y = b.conv(y, 16, 3, 1, 1, act=None, gain=0.5, name="block.conv2")
    x = b.relu(b.add(x, y, name="block.add"), name="block.relu")
    x = b.maxpool(x, 2, 2, name="pool")
    x = b.conv(x, 32, 3, 1, 1, name="head")
    return b.finish(b.classifier(x, classes), classes, "tiny", "1")


@pytest.fixture(scope="module")
def tc() -> OnnxRuntimeCpuToolchain:
    return OnnxRuntimeCpuToolchain(threads=2)


@pytest.fixture(scope="module")
def tiny() -> onnx.ModelProto:
    return tiny_net()


def _run(path_or_model, x: np.ndarray) -> np.ndarray:
    src = path_or_model if isinstance(path_or_model, bytes) else str(path_or_model)
    return ort.InferenceSession(src, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def test_identity(tc):
    assert isinstance(tc, Toolchain)
    assert tc.name == "onnxruntime"
    assert tc.version() == f"onnxruntime-{ort.__version__}"
    assert tc.target_arch == platform.machine().lower() + "-cpu"


def test_quant_config_as_dict_is_canonical():
    q = QuantConfig()
    assert q.as_dict() == {"calibration_samples": 200, "method": "minmax", "per_channel": True, "seed": 0}
    assert list(q.as_dict()) == sorted(q.as_dict())
    assert QuantConfig(50, "entropy", False, 3).as_dict() == {
        "calibration_samples": 50,
        "method": "entropy",
        "per_channel": False,
        "seed": 3,
    }


def test_fp32_compile(tc, tiny, tmp_path):
    res = tc.compile(tiny, "fp32", QuantConfig(), tmp_path / "out")
    assert isinstance(res, CompileResult)
    assert res.path == tmp_path / "out" / "model.onnx" and res.path.is_file()
    assert res.fidelity is None and res.warnings == []
    assert res.details["optimization_level"] == "extended"
    assert res.details["nodes_after"] < res.details["nodes_before"]  # Conv+Relu fused
    compiled = onnx.load(str(res.path))
    dims = [d.dim_value for d in compiled.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 32, 32]  # fixed shapes kept
    x = synthetic_inputs((3, 32, 32), 1, seed=0)
    np.testing.assert_allclose(_run(res.path, x), _run(tiny.SerializeToString(), x), rtol=1e-4, atol=1e-5)


def test_fp32_compile_is_deterministic(tc, tiny, tmp_path):
    a = tc.compile(tiny, "fp32", QuantConfig(), tmp_path / "a")
    b = tc.compile(tiny, "fp32", QuantConfig(), tmp_path / "b")
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.details == b.details


def test_int8_compile(tc, tiny, tmp_path):
    res = tc.compile(tiny, "int8", QuantConfig(calibration_samples=100), tmp_path)
    assert res.path == tmp_path / "model.onnx"
    assert res.warnings == []
    ops = res.details["op_counts"]
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > 0
    assert res.details["quant_format"] == "QDQ"
    assert res.details["activation_type"] == "QUInt8" and res.details["weight_type"] == "QInt8"
    assert res.details["calibration_samples"] == 100
    # Weights are stored as int8.
    q = onnx.load(str(res.path))
    assert any(t.data_type == TensorProto.INT8 and len(t.dims) == 4 for t in q.graph.initializer)
    fid = res.fidelity
    assert set(fid) == {"top1_agreement", "sqnr_db", "samples"}
    assert fid["samples"] == 32
    assert 0.0 <= fid["top1_agreement"] <= 1.0
    assert fid["top1_agreement"] >= 0.75
    assert 15.0 < fid["sqnr_db"] < 80.0
    # The artifact runs and stays close to fp32.
    x = synthetic_inputs((3, 32, 32), 1, seed=42)
    ref, out = _run(tiny.SerializeToString(), x), _run(res.path, x)
    assert out.shape == ref.shape == (1, 10)
    assert np.corrcoef(ref.ravel(), out.ravel())[0, 1] > 0.95


def test_int8_compile_is_deterministic(tc, tiny, tmp_path):
    q = QuantConfig(calibration_samples=100, seed=4)
    a = tc.compile(tiny, "int8", q, tmp_path / "a")
    b = tc.compile(tiny, "int8", q, tmp_path / "b")
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.fidelity == b.fidelity
    c = tc.compile(tiny, "int8", QuantConfig(calibration_samples=100, seed=5), tmp_path / "c")
    assert c.path.read_bytes() != a.path.read_bytes()  # the seed picks the calibration images
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["model.onnx"]  # no scratch files left


def test_per_channel_changes_the_weight_scales(tc, tiny, tmp_path):
    def max_scale_len(path):
        q = onnx.load(str(path))
        return max(int(np.prod(t.dims)) for t in q.graph.initializer if t.name.endswith("_scale"))

    per_ch = tc.compile(tiny, "int8", QuantConfig(calibration_samples=100, per_channel=True), tmp_path / "pc")
    per_t = tc.compile(tiny, "int8", QuantConfig(calibration_samples=100, per_channel=False), tmp_path / "pt")
    assert max_scale_len(per_ch.path) == 32 and max_scale_len(per_t.path) == 1
    assert per_ch.details["per_channel"] is True and per_t.details["per_channel"] is False


def test_few_calibration_samples_warns(tc, tiny, tmp_path):
    res = tc.compile(tiny, "int8", QuantConfig(calibration_samples=10), tmp_path)
    assert res.warnings == ["only 10 calibration samples (< 100): INT8 scales may be poor"]
    assert res.path.is_file() and res.fidelity is not None


@pytest.mark.parametrize("n", [0, -5])
def test_no_calibration_samples_is_an_error(tc, tiny, tmp_path, n):
    with pytest.raises(ModelError, match="calibration_samples"):
        tc.compile(tiny, "int8", QuantConfig(calibration_samples=n), tmp_path)


def test_percentile_calibration(tc, tiny, tmp_path):
    res = tc.compile(tiny, "int8", QuantConfig(calibration_samples=20, method="percentile"), tmp_path)
    assert res.details["calibration_method"] == "percentile"
    assert res.fidelity["sqnr_db"] > 10.0
    assert res.warnings == ["only 20 calibration samples (< 100): INT8 scales may be poor"]


def test_unknown_method_and_precision(tc, tiny, tmp_path):
    with pytest.raises(ModelError, match="calibration method 'kl'"):
        tc.compile(tiny, "int8", QuantConfig(method="kl"), tmp_path)
    with pytest.raises(ModelError, match="unknown precision 'int4'.*fp32, int8"):
        tc.compile(tiny, "int4", QuantConfig(), tmp_path)
    with pytest.raises(ModelError, match="unknown precision"):
        tc.compile(tiny, "FP32", QuantConfig(), tmp_path)


def test_batched_model_calibrates_in_batches(tc, tmp_path):
    model = tiny_net(batch=4)
    res = tc.compile(model, "int8", QuantConfig(calibration_samples=102), tmp_path)
    assert res.details["calibration_samples"] == 104  # rounded up to whole batches of 4
    assert res.fidelity["samples"] == 32
    x = synthetic_inputs((3, 32, 32), 4, seed=9)
    assert _run(res.path, x).shape == (4, 10)


def _calibration_pack(tmp_path, inputs: np.ndarray):
    import hashlib

    path = tmp_path / "calibration.npz"
    np.savez(path, inputs=inputs, labels=np.zeros(len(inputs), np.int64))
    return str(path), hashlib.sha256(path.read_bytes()).hexdigest()


def test_int8_calibrates_on_real_inputs_when_given(tc, tiny, tmp_path):
    """Calibration data (a dataset pack) replaces the synthetic inputs: its hash joins the content address
    and the details; inputs far from the synthetic ones give other activation ranges."""
    images = synthetic_inputs((3, 32, 32), 120, seed=5) * 4.0  # a brighter, wider "dataset"
    path, sha = _calibration_pack(tmp_path, images)
    quant = QuantConfig(calibration_samples=100, calibration_data=path, calibration_sha256=sha)
    assert quant.as_dict()["calibration_sha256"] == sha and list(quant.as_dict()) == sorted(quant.as_dict())
    real = tc.compile(tiny, "int8", quant, tmp_path / "real")
    synthetic = tc.compile(tiny, "int8", QuantConfig(calibration_samples=100), tmp_path / "syn")
    assert real.details["calibration_data"] == "dataset" and real.details["calibration_sha256"] == sha
    assert real.details["calibration_samples"] == 100 and not real.warnings
    assert synthetic.details["calibration_data"] == "synthetic"
    assert real.path.read_bytes() != synthetic.path.read_bytes()
    # on inputs like the calibration data, the dataset-calibrated model is the closer one to fp32
    x = synthetic_inputs((3, 32, 32), 1, seed=77) * 4.0
    ref = _run(tiny.SerializeToString(), x)
    assert np.abs(_run(real.path, x) - ref).mean() < np.abs(_run(synthetic.path, x) - ref).mean()


def test_calibration_data_that_is_short_wrong_or_misshaped(tc, tiny, tmp_path):
    path, sha = _calibration_pack(tmp_path, synthetic_inputs((3, 32, 32), 20, seed=5))
    short = tc.compile(
        tiny, "int8", QuantConfig(200, calibration_data=path, calibration_sha256=sha), tmp_path
    )
    assert short.details["calibration_samples"] == 20
    assert any("holds 20 samples: calibrating on 20" in w for w in short.warnings)
    with pytest.raises(ModelError, match="has sha256"):
        tc.compile(tiny, "int8", QuantConfig(calibration_data=path, calibration_sha256="0" * 64), tmp_path)
    bad_path, bad_sha = _calibration_pack(tmp_path, np.zeros((8, 3, 16, 16), np.float32))
    with pytest.raises(
        ModelError, match=r"calibration inputs are \[3, 16, 16\] per sample; the model takes \[3, 32, 32\]"
    ):
        tc.compile(tiny, "int8", QuantConfig(calibration_data=bad_path, calibration_sha256=bad_sha), tmp_path)
    with pytest.raises(ModelError, match="needs both"):
        tc.compile(tiny, "int8", QuantConfig(calibration_data=path), tmp_path)


def test_unsupported_op_is_a_model_error(tc, tiny, tmp_path):
    bad = onnx.ModelProto()
    bad.CopyFrom(tiny)
    node = bad.graph.node[1]
    bad.graph.node.insert(
        2, helper.make_node("FancyActivation", [node.output[0]], ["fancy"], domain="com.example")
    )
    for n in bad.graph.node[3:]:
        for i, name in enumerate(n.input):
            if name == node.output[0]:
                n.input[i] = "fancy"
    bad.opset_import.append(helper.make_opsetid("com.example", 1))
    for precision in ("fp32", "int8"):
        with pytest.raises(ModelError, match="onnxruntime could not.*FancyActivation"):
            tc.compile(bad, precision, QuantConfig(calibration_samples=100), tmp_path / precision)


def test_dynamic_input_is_a_model_error(tc, tiny, tmp_path):
    dyn = onnx.ModelProto()
    dyn.CopyFrom(tiny)
    dim = dyn.graph.input[0].type.tensor_type.shape.dim[0]
    dim.Clear()
    dim.dim_param = "N"
    with pytest.raises(ModelError, match="fixed shape"):
        tc.compile(dyn, "fp32", QuantConfig(), tmp_path)


def test_resnet18_int8_fidelity(tc, tmp_path):
    model = build_zoo_model("resnet18", 1)
    res = tc.compile(model, "int8", QuantConfig(calibration_samples=100), tmp_path)
    assert res.warnings == []
    assert res.details["op_counts"]["QuantizeLinear"] >= 20
    # Measured on an AVX2 host: ~0.75-0.8 top-1 agreement, ~19 dB (random weights give small logit
    # margins, so top-1 flips more easily than with a trained network).
    assert res.fidelity["top1_agreement"] >= 0.6
    assert res.fidelity["sqnr_db"] > 15.0


def test_minmax_matches_stock_quantize_static(tc, tiny, tmp_path):
    """Our chunked calibration gives exactly what quantize_static's own calibration loop gives."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from farm.workers.toolchains.onnxruntime_calibration import SyntheticReader

    ours = tc.compile(tiny, "int8", QuantConfig(calibration_samples=20, seed=2), tmp_path / "ours")
    onnx.save(tiny, str(tmp_path / "fp32.onnx"))
    quant_pre_process(str(tmp_path / "fp32.onnx"), str(tmp_path / "pre.onnx"), skip_symbolic_shape=True)
    quantize_static(
        str(tmp_path / "pre.onnx"),
        str(tmp_path / "stock.onnx"),
        SyntheticReader("input", (1, 3, 32, 32), 20, 2),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        reduce_range=tc.reduce_range,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )
    assert ours.path.read_bytes() == (tmp_path / "stock.onnx").read_bytes()


def test_entropy_searches_thresholds(tc, tmp_path):
    """Entropy calibration clips some activation ranges below their min/max (it is not min/max in disguise)."""

    def scales(path):
        q = onnx.load(str(path))
        return {
            t.name: float(onnx.numpy_helper.to_array(t))
            for t in q.graph.initializer
            if t.name.endswith("_scale") and not t.dims
        }

    model = tiny_net()
    mm = scales(tc.compile(model, "int8", QuantConfig(40, "minmax"), tmp_path / "mm").path)
    res = tc.compile(model, "int8", QuantConfig(40, "entropy"), tmp_path / "ent")
    assert res.details["calibration_method"] == "entropy"
    assert res.fidelity["sqnr_db"] > 10.0
    ent = scales(res.path)
    assert mm.keys() == ent.keys()
    assert all(ent[k] <= mm[k] * 1.0001 for k in mm)
    assert any(ent[k] < mm[k] * 0.95 for k in mm)


def test_int8_quantisation_is_cached_by_content(tc, tiny, tmp_path):
    """A second compile of the same model and settings (e.g. for another emulated target) reuses the first
    calibration: same bytes, same fidelity; other settings quantise again."""
    q = QuantConfig(calibration_samples=16)
    first = tc.compile(tiny, "int8", q, tmp_path / "a")
    second = tc.compile(tiny, "int8", q, tmp_path / "b")
    assert first.details["quantisation_cache"] == "miss" and second.details["quantisation_cache"] == "hit"
    assert first.path.read_bytes() == second.path.read_bytes() and second.fidelity == first.fidelity
    other = tc.compile(tiny, "int8", QuantConfig(calibration_samples=16, seed=1), tmp_path / "c")
    assert other.details["quantisation_cache"] == "miss"


def test_gpu_toolchain_writes_symmetric_int8_for_tensorrt(tiny, tmp_path):
    """TensorRT builds explicit-quantisation engines only from symmetric QDQ: every activation zero point
    is 0 and of type int8; the artifact does not depend on the compiling host."""
    from onnx import numpy_helper

    from farm.workers.toolchains.registry import get_toolchain

    gpu = get_toolchain("onnxruntime_gpu")
    assert gpu.target_arch == "cuda-gpu" and gpu.reduce_range is False
    result = gpu.compile(tiny, "int8", QuantConfig(calibration_samples=16), tmp_path)
    model = onnx.load(str(result.path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    zero_points = [inits[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert zero_points and all(z.dtype == np.int8 and not z.any() for z in zero_points)
    assert result.details["activation_type"] == "QInt8" and result.fidelity["top1_agreement"] > 0.5
    x = synthetic_inputs((3, 32, 32), 1, 0)
    assert _run(result.path, x).shape == (1, 10)  # and the CPU provider still runs it
