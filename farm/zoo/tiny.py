"""A tiny conv net (conv-relu-pool-gemm) that compiles and runs in well under a second.

Not in the zoo registry (whose names are real architectures with published figures): it is the model of
smoke checks, where only "does the whole path work" matters. It ships with farm, rather than living in
tests/, because an installed farm is smoke-tested without a checkout (.ci/wheel-check), and the tests and
bench/ both build it from here: one implementation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def tiny_model(batch: int | str = 1, hw: int = 16, classes: int = 10, seed: int = 0) -> onnx.ModelProto:
    """The tiny net for input ``[batch, 3, hw, hw]``; a str ``batch`` (e.g. "N") is a symbolic dimension."""
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array((rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(8, np.float32), "b")
    fw = numpy_helper.from_array((rng.standard_normal((classes, 8)) * 0.3).astype(np.float32), "fw")
    fb = numpy_helper.from_array(np.zeros(classes, np.float32), "fb")
    nodes = [
        helper.make_node("Conv", ["input", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, hw, hw])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])],
        [w, b, fw, fb],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def heavy_model(path: Path) -> Path:
    """Few layers but many MACs at 224x224, so the DPU (and so its clock) sets the emulated latency, yet it
    quantises in seconds (a zoo network would take a minute): the model of clock and thermal rehearsals
    (tests and bench/alerts_rehearsal.py)."""
    from farm.zoo.builder import GraphBuilder

    b = GraphBuilder(seed=7, batch_size=1, input_shape=(3, 224, 224))
    x = b.conv("input", 32, 3, 1, 1, name="c1")
    x = b.conv(x, 64, 3, 1, 1, name="c2")
    x = b.conv(x, 64, 3, 1, 1, name="c3")
    onnx.save(b.finish(b.classifier(x, 10), 10, "heavy", "1"), path)
    return path


def heavy_sweep(
    onnx_path: Path | str,
    *,
    name: str = "nightly",
    repeats: int = 1,
    min_duration_ms: int = 200,
    min_query_count: int = 16,
) -> str:
    """A sweep of :func:`heavy_model` on the lab's zcu104, INT8 SingleStream, quick: what clock and alert
    rehearsals submit (tests and bench/alerts_rehearsal.py)."""
    return (
        f"name: {name}\nmodels:\n  - name: heavy\n    onnx: {onnx_path}\nprecisions: [int8]\ntargets: [zcu104]\n"
        f"scenarios: [SingleStream]\nrepeats: {repeats}\nquantization:\n  calibration_samples: 8\n"
        f"loadgen:\n  min_duration_ms: {min_duration_ms}\n  min_query_count: {min_query_count}\n"
    )
