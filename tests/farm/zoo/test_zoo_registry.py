"""The built-in zoo: names, graph contract, determinism, FLOP counts, and a real onnxruntime run."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from farm.errors import ModelError
from farm.zoo import build_zoo_model, count_macs, get_zoo_model, synthetic_inputs, zoo_names

CANONICAL = ["googlenet", "inception_v3", "mobilenet_v2", "resnet18", "resnet50", "squeezenet1_1"]
VITIS_ZOO = [
    "mobilenet_v1",
    "mobilenet_v1_0.25",
    "mobilenet_v1_0.5",
    "mobilenet_v2_1.4",
    "resnet101",
    "resnet101_v2",
    "resnet152",
    "resnet152_v2",
    "resnet50_v2",
    "vgg16",
    "vgg19",
]
# Published torchvision figures (GMACs, reported there as "GFLOPS") for batch 1.
PUBLISHED_GMACS = {
    "resnet18": 1.81,
    "resnet50": 4.09,
    "mobilenet_v2": 0.30,
    "squeezenet1_1": 0.35,
    "googlenet": 1.50,
    "inception_v3": 5.71,
}


@pytest.fixture(scope="module")
def batch1_models() -> dict[str, onnx.ModelProto]:
    return {name: build_zoo_model(name, 1) for name in CANONICAL}


def test_zoo_names_lists_canonical_names_and_aliases_sorted():
    names = zoo_names()
    assert names == sorted(names)
    # shapes_net: trained, farm/datasets; the rest: architectures of the Vitis AI Model Zoo tables (perf model)
    assert set(names) == {*CANONICAL, *VITIS_ZOO, "inception_v1", "shapes_net"}


def test_alias_resolves_to_the_same_model():
    assert get_zoo_model("inception_v1") is get_zoo_model("googlenet")
    assert get_zoo_model("inception_v1").name == "googlenet"
    assert get_zoo_model(" ResNet50 ").name == "resnet50"
    assert get_zoo_model("MobileNet-V2").name == "mobilenet_v2"


def test_input_shapes_and_classes():
    for name in CANONICAL:
        m = get_zoo_model(name)
        assert m.num_classes == 1000
        assert m.version == "1"
        assert m.input_shape == ((3, 299, 299) if name == "inception_v3" else (3, 224, 224))


def test_unknown_name_lists_valid_names():
    with pytest.raises(ModelError) as err:
        get_zoo_model("resnet51")
    msg = str(err.value)
    assert "resnet51" in msg
    for name in zoo_names():
        assert name in msg
    with pytest.raises(ModelError, match="valid names"):
        build_zoo_model("vgg11", 1)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_batch_size_is_a_model_error(bad):
    with pytest.raises(ModelError, match="batch size"):
        build_zoo_model("squeezenet1_1", bad)


def test_graph_contract(batch1_models):
    for name, model in batch1_models.items():
        onnx.checker.check_model(model)
        zm = get_zoo_model(name)
        assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
        assert model.producer_name == "farm.zoo"
        assert name in model.doc_string and "version 1" in model.doc_string
        (inp,) = model.graph.input
        assert inp.name == "input"
        assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert [d.dim_value for d in inp.type.tensor_type.shape.dim] == [1, *zm.input_shape]
        (out,) = model.graph.output
        assert out.name == "logits"
        assert [d.dim_value for d in out.type.tensor_type.shape.dim] == [1, 1000]


def test_op_structure_matches_the_architectures(batch1_models):
    def ops(name):
        return {n.op_type for n in batch1_models[name].graph.node}

    assert {"Conv", "Relu", "MaxPool", "Add", "GlobalAveragePool", "Flatten", "Gemm"} <= ops("resnet50")
    assert {"Clip", "Add", "Gemm"} <= ops("mobilenet_v2") and "Relu" not in ops("mobilenet_v2")
    depthwise = [
        n
        for n in batch1_models["mobilenet_v2"].graph.node
        if n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute)
    ]
    assert len(depthwise) == 17  # one per inverted residual block
    assert {"Concat", "MaxPool"} <= ops("squeezenet1_1") and "Gemm" not in ops("squeezenet1_1")
    assert {"Concat", "MaxPool", "Gemm"} <= ops("googlenet")
    assert {"Concat", "AveragePool", "MaxPool", "Gemm"} <= ops("inception_v3")
    convs = {name: sum(n.op_type == "Conv" for n in m.graph.node) for name, m in batch1_models.items()}
    assert convs == {
        "resnet18": 20,
        "resnet50": 53,
        "mobilenet_v2": 52,
        "squeezenet1_1": 26,
        "googlenet": 57,
        "inception_v3": 94,
    }


def test_mac_counts_match_published_figures(batch1_models):
    for name, model in batch1_models.items():
        gmacs = count_macs(model) / 1e9
        assert gmacs == pytest.approx(PUBLISHED_GMACS[name], rel=0.10), name


def test_mac_count_scales_with_batch(batch1_models):
    assert count_macs(build_zoo_model("squeezenet1_1", 4)) == 4 * count_macs(batch1_models["squeezenet1_1"])


def test_parameter_counts_match_torchvision(batch1_models):
    params = {
        name: sum(int(np.prod(t.dims)) for t in m.graph.initializer if t.name.endswith((".weight", ".bias")))
        for name, m in batch1_models.items()
    }
    # torchvision counts minus the folded BatchNorm parameters (so within a few percent).
    expected = {
        "resnet18": 11.69e6,
        "resnet50": 25.56e6,
        "mobilenet_v2": 3.50e6,
        "squeezenet1_1": 1.24e6,
        "googlenet": 6.62e6,
        "inception_v3": 23.8e6,
    }
    for name, n in params.items():
        assert n == pytest.approx(expected[name], rel=0.05), name


def test_builds_are_byte_for_byte_deterministic(batch1_models):
    for name, model in batch1_models.items():
        assert build_zoo_model(name, 1).SerializeToString() == model.SerializeToString(), name
    # The alias builds exactly the canonical model, and batch size changes only the shapes.
    assert (
        build_zoo_model("inception_v1", 1).SerializeToString()
        == batch1_models["googlenet"].SerializeToString()
    )
    two = build_zoo_model("resnet18", 2)
    assert [t.raw_data for t in two.graph.initializer] == [
        t.raw_data for t in batch1_models["resnet18"].graph.initializer
    ]


def test_different_models_have_different_weights(batch1_models):
    first = {name: m.graph.initializer[0].raw_data[:64] for name, m in batch1_models.items()}
    assert len(set(first.values())) == len(first)


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


def test_every_model_runs_in_onnxruntime(batch1_models):
    for name, model in batch1_models.items():
        zm = get_zoo_model(name)
        logits = _run(model, synthetic_inputs(zm.input_shape, 1, seed=0))
        assert logits.shape == (1, 1000), name
        assert logits.dtype == np.float32
        assert np.isfinite(logits).all(), name
        assert np.ptp(logits) > 1e-3, name  # not all equal
        assert 1e-3 < float(np.abs(logits).max()) < 1e3, name  # neither vanished nor exploded


def test_batch_two_runs_and_matches_batch_one(batch1_models):
    x = synthetic_inputs((3, 224, 224), 2, seed=5)
    logits = _run(build_zoo_model("squeezenet1_1", 2), x)
    assert logits.shape == (2, 1000)
    assert np.isfinite(logits).all()
    assert not np.allclose(logits[0], logits[1])  # different images, different logits
    one = _run(batch1_models["squeezenet1_1"], x[1:2])
    np.testing.assert_allclose(logits[1:2], one, rtol=1e-4, atol=1e-4)


def test_different_images_get_different_top1_classes(batch1_models):
    x = synthetic_inputs((3, 224, 224), 8, seed=0)
    top1 = {int(_run(batch1_models["resnet18"], x[i : i + 1]).argmax()) for i in range(8)}
    assert len(top1) >= 3


@pytest.mark.parametrize(
    ("name", "gmacs"),
    # GOPs / 2 of the Vitis AI Model Zoo names (tf_mobilenetv1_0.5_imagenet_160_160_150M, ...).
    [
        ("mobilenet_v1", 0.57),
        ("mobilenet_v1_0.5", 0.075),
        ("mobilenet_v1_0.25", 0.0136),
        ("mobilenet_v2_1.4", 0.58),
    ],
)
def test_vitis_zoo_mobilenets_have_the_published_work(name, gmacs):
    assert count_macs(build_zoo_model(name, 1)) / 1e9 == pytest.approx(gmacs, rel=0.05)
