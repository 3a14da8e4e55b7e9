"""User ONNX files (load/inspect) and the PyTorch export entry point."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from farm.errors import ModelError
from farm.zoo import OnnxInfo, export_torch_model, inspect_onnx_file, load_onnx_file


def _conv_model(dims, name="x", extra_input: bool = False, out_dims=None) -> onnx.ModelProto:
    """x[dims] -> Conv(3->4, 3x3, pad 1) -> Relu -> GlobalAveragePool -> Flatten -> y."""
    w = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32), "w"
    )
    nodes = [
        helper.make_node("Conv", [name, "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["y"]),
    ]
    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)]
    if extra_input:
        inputs.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 4]))
        nodes.append(helper.make_node("Mul", ["y", "mask"], ["z"]))
    out = "z" if extra_input else "y"
    graph = helper.make_graph(
        nodes,
        "g",
        inputs,
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_dims or [dims[0], 4])],
        initializer=[w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


# -- broken files ---------------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    path = tmp_path / "nope.onnx"
    with pytest.raises(ModelError, match=f"model file not found: {path}"):
        load_onnx_file(path, 1)
    with pytest.raises(ModelError, match="model file not found"):
        inspect_onnx_file(path)
    with pytest.raises(ModelError, match="model file not found"):
        inspect_onnx_file(tmp_path)  # a directory is not a model file


def test_random_bytes(tmp_path):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ModelError) as err:
        load_onnx_file(path, 1)
    assert str(path) in str(err.value)


def test_empty_and_text_files(tmp_path):
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match="empty.onnx"):
        inspect_onnx_file(empty)
    text = tmp_path / "text.onnx"
    text.write_text("this is not a model\n")
    with pytest.raises(ModelError, match="text.onnx"):
        load_onnx_file(text, 1)


def test_truncated_model(tmp_path):
    data = _conv_model([1, 3, 8, 8]).SerializeToString()
    for cut in (len(data) // 2, len(data) - 7, 40):
        path = tmp_path / f"cut{cut}.onnx"
        path.write_bytes(data[:cut])
        with pytest.raises(ModelError) as err:
            load_onnx_file(path, 1)
        assert str(path) in str(err.value)


def test_checker_failure(tmp_path):
    model = _conv_model([1, 3, 8, 8])
    model.graph.node[1].input[0] = "does_not_exist"  # dangling edge: rejected by onnx.checker
    path = _save(model, tmp_path / "bad.onnx")
    with pytest.raises(ModelError, match="checker"):
        load_onnx_file(path, 1)


# -- inputs and shapes ----------------------------------------------------------------------------------
def test_dynamic_height_and_width_are_rejected(tmp_path):
    path = _save(_conv_model(["N", 3, "height", "width"]), tmp_path / "dyn.onnx")
    with pytest.raises(ModelError) as err:
        load_onnx_file(path, 1)
    msg = str(err.value)
    assert msg.startswith(f"{path}: input 'x' has dynamic dimension 2 ('height'); farm needs fixed shapes")
    with pytest.raises(ModelError, match="dynamic dimension 2"):
        inspect_onnx_file(path)


def test_unnamed_dynamic_dimension(tmp_path):
    path = _save(_conv_model([1, 3, 8, None]), tmp_path / "dyn.onnx")
    with pytest.raises(ModelError, match=r"dynamic dimension 3 \('\?'\)"):
        load_onnx_file(path, 1)


def test_dynamic_batch_is_fixed_to_the_batch_size(tmp_path):
    path = _save(_conv_model(["batch", 3, 8, 8]), tmp_path / "m.onnx")
    model = load_onnx_file(path, 3)
    (inp,) = model.graph.input
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim] == [3, 3, 8, 8]
    (out,) = model.graph.output
    assert [d.dim_value for d in out.type.tensor_type.shape.dim] == [3, 4]
    inferred = {
        vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in model.graph.value_info
    }
    assert inferred["c"] == [3, 4, 8, 8]  # shapes re-inferred with the fixed batch
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape == [3, 3, 8, 8]
    y = sess.run(None, {"x": np.ones((3, 3, 8, 8), np.float32)})[0]
    assert y.shape == (3, 4)


def test_fixed_batch_mismatch(tmp_path):
    path = _save(_conv_model([2, 3, 8, 8]), tmp_path / "b2.onnx")
    with pytest.raises(ModelError) as err:
        load_onnx_file(path, 4)
    msg = str(err.value)
    assert "fixed batch size 2" in msg and "cannot run batch size 4" in msg and str(path) in msg
    model = load_onnx_file(path, 2)  # the matching batch size is fine and leaves the model alone
    assert model.SerializeToString() == onnx.load(str(path)).SerializeToString()


def test_exactly_one_input_is_required(tmp_path):
    path = _save(_conv_model([1, 3, 8, 8], extra_input=True), tmp_path / "two.onnx")
    with pytest.raises(ModelError, match=r"exactly one graph input.*'x', 'mask'"):
        load_onnx_file(path, 1)


def test_initializers_listed_as_inputs_do_not_count(tmp_path):
    model = _conv_model([1, 3, 8, 8])
    model.graph.input.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3, 3, 3]))
    path = _save(model, tmp_path / "old_style.onnx")
    assert inspect_onnx_file(path).input_name == "x"


def test_non_float_input_is_rejected(tmp_path):
    model = _conv_model([1, 3, 8, 8])
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.UINT8
    model.graph.node.insert(0, helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT))
    model.graph.node[1].input[0] = "xf"
    path = _save(model, tmp_path / "u8.onnx")
    with pytest.raises(ModelError, match="UINT8.*float32"):
        load_onnx_file(path, 1)


def test_inspect_reports_shapes(tmp_path):
    path = _save(_conv_model(["N", 3, 8, 8]), tmp_path / "m.onnx")
    info = inspect_onnx_file(path)
    assert info == OnnxInfo(path=path, input_name="x", input_shape=(None, 3, 8, 8), output_names=("y",))
    assert info.fixed_batch is None
    info.check_batch_size(16)  # any batch size fits a dynamic batch

    fixed = inspect_onnx_file(_save(_conv_model([2, 3, 8, 8]), tmp_path / "f.onnx"))
    assert fixed.input_shape == (2, 3, 8, 8) and fixed.fixed_batch == 2
    fixed.check_batch_size(2)
    with pytest.raises(ModelError, match="fixed batch size 2"):
        fixed.check_batch_size(8)


def test_zoo_model_round_trips_through_a_file(tmp_path):
    from farm.zoo import build_zoo_model

    model = build_zoo_model("squeezenet1_1", 1)
    path = _save(model, tmp_path / "sq.onnx")
    assert inspect_onnx_file(path).input_shape == (1, 3, 224, 224)
    assert load_onnx_file(path, 1).SerializeToString() == model.SerializeToString()


# -- PyTorch --------------------------------------------------------------------------------------------
def test_torch_missing_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(ModelError) as err:
        export_torch_model("mypkg.models:Net", None, (3, 32, 32), 1)
    assert str(err.value) == "PyTorch models need the torch extra: pip install -e '.[torch]'"


@pytest.mark.parametrize("target", ["mypkg.models.Net", "mypkg.models:", ":Net", "a b:Net", "", "x:1Net"])
def test_bad_target_format(target):
    with pytest.raises(ModelError, match="package.module:ClassName"):
        export_torch_model(target, None, (3, 32, 32), 1)


def test_missing_checkpoint_and_bad_shapes(tmp_path):
    with pytest.raises(ModelError, match="checkpoint file not found"):
        export_torch_model("mypkg.models:Net", tmp_path / "missing.pt", (3, 32, 32), 1)
    with pytest.raises(ModelError, match="input shape"):
        export_torch_model("mypkg.models:Net", None, (3, 0, 32), 1)
    with pytest.raises(ModelError, match="batch size"):
        export_torch_model("mypkg.models:Net", None, (3, 32, 32), 0)


TORCH_MODULE = """
import torch


class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 10)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))


class Other(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 3)
"""


def test_torch_export_end_to_end(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    (tmp_path / "farm_test_tinynet.py").write_text(TORCH_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    target = "farm_test_tinynet:TinyNet"

    model = export_torch_model(target, None, (3, 16, 16), 2)
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["logits"]
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [2, 3, 16, 16]
    y = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"input": np.zeros((2, 3, 16, 16), np.float32)}
    )[0]
    assert y.shape == (2, 10)

    import farm_test_tinynet

    net = farm_test_tinynet.TinyNet()
    ckpt = tmp_path / "tiny.pt"
    torch.save(net.state_dict(), ckpt)
    assert export_torch_model(target, ckpt, (3, 16, 16), 1).graph.node
    bad = tmp_path / "other.pt"
    torch.save(farm_test_tinynet.Other().state_dict(), bad)
    with pytest.raises(ModelError, match="does not match"):
        export_torch_model(target, bad, (3, 16, 16), 1)
    with pytest.raises(ModelError, match="cannot import module"):
        export_torch_model("farm_no_such_module_xyz:Net", None, (3, 16, 16), 1)
    with pytest.raises(ModelError, match="has no attribute 'Missing'"):
        export_torch_model("farm_test_tinynet:Missing", None, (3, 16, 16), 1)
