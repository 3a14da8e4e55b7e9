"""Models for the DPU tests: built from shapes only (no weights are downloaded or trained)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def huge_activation_model(hw: int = 8192, channels: int = 64) -> onnx.ModelProto:
    """One 3x3 conv whose output (channels x hw x hw int8 = 4 GiB at the defaults) fits no board."""
    w = numpy_helper.from_array(np.zeros((channels, 3, 3, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["out"], pads=[1, 1, 1, 1], name="big_conv")],
        "huge",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, hw, hw])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, channels, hw, hw])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def sandwich_model() -> onnx.ModelProto:
    """conv -> Sigmoid (no DPU has it) -> conv: two DPU subgraphs around one CPU op."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((16, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((16, 16, 3, 3)).astype(np.float32), "w2")
    nodes = [
        helper.make_node("Conv", ["input", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Sigmoid", ["c1"], ["s"], name="sig"),
        helper.make_node("Conv", ["s", "w2"], ["out"], pads=[1, 1, 1, 1], name="conv2"),
    ]
    graph = helper.make_graph(
        nodes,
        "sandwich",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 16, 32, 32])],
        [w1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model
