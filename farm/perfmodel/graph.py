"""Graph analysis of an ONNX model: one :class:`Layer` per node with shapes, work and bytes.

Why: the DPU planner and the performance models reason per layer (kernel, stride, channels, MACs, bytes
moved), exactly as the Vitis AI compiler schedules one DPU instruction block per layer. Shapes come from
ONNX shape inference, so any fixed-shape model works (zoo models and user ``.onnx`` files alike);
QuantizeLinear/DequantizeLinear pairs are looked through, so a QDQ model gives the same layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from farm.errors import ModelError

#: Ops that move no data on a DPU: the compiler folds them into their neighbours (or they are metadata).
GLUE_OPS = frozenset(
    {
        "Identity",
        "Dropout",
        "Flatten",
        "Reshape",
        "Squeeze",
        "Unsqueeze",
        "QuantizeLinear",
        "DequantizeLinear",
        "Constant",
    }
)
ACTIVATION_OPS = frozenset(
    {"Relu", "Clip", "LeakyRelu", "PRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh"}
)
POOL_OPS = frozenset({"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"})
ELTWISE_OPS = frozenset({"Add", "Sum", "Mul", "Sub", "Div"})


@dataclass(frozen=True)
class Layer:
    """One graph node as the planner sees it. Byte counts are for int8 tensors (1 byte per element);
    ``*_elems`` let other precisions scale them."""

    name: str
    op: str  # ONNX op type
    domain: str
    kind: str  # conv | depthwise | gemm | pool | eltwise | concat | activation | glue | softmax | other
    inputs: tuple[str, ...]  # activation inputs (constants excluded)
    outputs: tuple[str, ...]
    in_shapes: tuple[tuple[int, ...], ...]
    out_shape: tuple[int, ...]
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    pads: tuple[int, int, int, int] | None = None  # top, left, bottom, right
    dilation: tuple[int, int] | None = None
    groups: int = 1
    macs: int = 0  # multiply-accumulates (conv, gemm)
    ops: int = 0  # operations: 2 x MACs, or one per output element (pool window: one per tap)
    weight_elems: int = 0  # weights (int8 on the DPU)
    bias_elems: int = 0  # biases (int32 on the DPU)
    act_in_elems: int = 0
    act_out_elems: int = 0
    attrs: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def depthwise(self) -> bool:
        return self.kind == "depthwise"

    @property
    def weight_bytes(self) -> int:
        return self.weight_elems + 4 * self.bias_elems

    @property
    def act_in_bytes(self) -> int:
        return self.act_in_elems

    @property
    def act_out_bytes(self) -> int:
        return self.act_out_elems

    @property
    def in_channels(self) -> int:
        return self.in_shapes[0][1] if self.in_shapes and len(self.in_shapes[0]) > 1 else 0

    @property
    def out_channels(self) -> int:
        return self.out_shape[1] if len(self.out_shape) > 1 else 0


@dataclass(frozen=True)
class Graph:
    """The analysed model: layers in topological (file) order, graph inputs and outputs."""

    name: str
    layers: tuple[Layer, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]

    @property
    def batch(self) -> int:
        return self.input_shape[0] if self.input_shape else 1

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def weight_bytes(self) -> int:
        return sum(layer.weight_bytes for layer in self.layers)


def _prod(shape) -> int:
    return int(math.prod(shape)) if shape else 1


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _shape_of(vi: onnx.ValueInfoProto) -> tuple[int, ...] | None:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    dims = []
    for d in t.shape.dim:
        if not d.HasField("dim_value") or d.dim_value < 1:
            return None
        dims.append(int(d.dim_value))
    return tuple(dims)


def _light(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` without the bytes of its large initializers (they become typed graph inputs): shape
    inference then copies kilobytes instead of the weights (resnet50: 0.9 s -> a few ms)."""
    light = onnx.ModelProto()
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    g = light.graph
    g.name = model.graph.name
    light.functions.extend(model.functions)
    g.node.extend(model.graph.node)
    g.input.extend(model.graph.input)
    g.output.extend(model.graph.output)
    g.value_info.extend(model.graph.value_info)
    have = {i.name for i in model.graph.input}
    for init in model.graph.initializer:
        if _prod(init.dims) <= 64 and init.data_location != onnx.TensorProto.EXTERNAL:
            g.initializer.append(init)
        elif init.name not in have:
            g.input.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    return light


def _infer(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return shape_inference.infer_shapes(_light(model), strict_mode=False, data_prop=True)
    except Exception as exc:  # a malformed model: say so instead of a traceback
        raise ModelError(f"shape inference failed: {exc}") from None


def analyse(model: onnx.ModelProto) -> Graph:
    """Per-layer analysis of ``model`` (fixed shapes required). Raises ModelError when shapes are unknown."""
    inferred = _infer(model)
    g = inferred.graph
    shapes: dict[str, tuple[int, ...]] = {}
    for vi in (*g.input, *g.value_info, *g.output):
        s = _shape_of(vi)
        if s is not None:
            shapes[vi.name] = s
    constants: dict[str, tuple[int, ...]] = {}
    values: dict[str, np.ndarray] = {}
    for init in model.graph.initializer:
        constants[init.name] = tuple(int(d) for d in init.dims)
        shapes.setdefault(init.name, constants[init.name])
        if _prod(init.dims) <= 16 and init.data_location != onnx.TensorProto.EXTERNAL:
            values[init.name] = numpy_helper.to_array(init)
    for node in g.node:
        if node.op_type == "Constant" and node.output:
            for a in node.attribute:
                if a.name == "value":
                    arr = numpy_helper.to_array(a.t)
                    constants[node.output[0]] = tuple(arr.shape)
                    values[node.output[0]] = arr
    # Outputs of DequantizeLinear over a constant are constants too (QDQ weights).
    for node in g.node:
        if node.op_type == "DequantizeLinear" and node.input and node.input[0] in constants:
            constants[node.output[0]] = constants[node.input[0]]

    real_inputs = [i for i in g.input if i.name not in constants]
    if not real_inputs:
        raise ModelError("the model has no (non-constant) input")
    in_shape = shapes.get(real_inputs[0].name)
    if in_shape is None:
        raise ModelError(f"input {real_inputs[0].name!r} needs a fixed shape")
    layers = []
    for i, node in enumerate(g.node):
        if node.op_type == "Constant":
            continue
        layers.append(_layer(node, i, shapes, constants, values))
    out_shape = shapes.get(g.output[0].name, ()) if g.output else ()
    return Graph(
        name=g.name or "model",
        layers=tuple(layers),
        inputs=tuple(i.name for i in real_inputs),
        outputs=tuple(o.name for o in g.output),
        input_shape=in_shape,
        output_shape=out_shape,
    )


def _pair(v, default: int) -> tuple[int, int]:
    if v is None:
        return (default, default)
    v = list(v)
    return (int(v[0]), int(v[1] if len(v) > 1 else v[0]))


def _kind(op: str, domain: str) -> str:
    if domain not in ("", "ai.onnx"):
        return "other"
    if op in ("Conv", "ConvTranspose"):
        return "conv"
    if op in ("Gemm", "MatMul"):
        return "gemm"
    if op in POOL_OPS:
        return "pool"
    if op in ELTWISE_OPS:
        return "eltwise"
    if op == "Concat":
        return "concat"
    if op in ACTIVATION_OPS:
        return "activation"
    if op in GLUE_OPS:
        return "glue"
    if op == "Softmax":
        return "softmax"
    return "other"


def _layer(node, index, shapes, constants, values) -> Layer:
    op, domain = node.op_type, node.domain
    name = node.name or f"{op.lower()}_{index}"
    attrs = _attrs(node)
    act_inputs = tuple(x for x in node.input if x and x not in constants)
    in_shapes = tuple(shapes.get(x, ()) for x in act_inputs)
    out_shape = shapes.get(node.output[0], ()) if node.output else ()
    out_elems = _prod(out_shape) if out_shape else 0
    in_elems = sum(_prod(s) for s in in_shapes if s)
    kind = _kind(op, domain)
    kw: dict = {}
    macs = ops = weight = bias = 0
    if kind == "conv" and len(node.input) > 1:
        w_shape = constants.get(node.input[1]) or shapes.get(node.input[1], ())
        if len(w_shape) != 4 or len(out_shape) != 4:
            kind = "other"
        else:
            groups = int(attrs.get("group", 1))
            kernel = (int(w_shape[2]), int(w_shape[3]))
            cin = in_shapes[0][1] if in_shapes and len(in_shapes[0]) == 4 else w_shape[1] * groups
            pads = attrs.get("pads", [0, 0, 0, 0])
            kw = {
                "kernel": kernel,
                "stride": _pair(attrs.get("strides"), 1),
                "pads": (int(pads[0]), int(pads[1]), int(pads[2]), int(pads[3])),
                "dilation": _pair(attrs.get("dilations"), 1),
                "groups": groups,
            }
            if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                kw["pads"] = (0, 0, 0, 0)
            weight = _prod(w_shape)
            bias = int(w_shape[0]) if len(node.input) > 2 and node.input[2] else 0
            if op == "ConvTranspose":
                macs = _prod(in_shapes[0]) * int(w_shape[1]) * kernel[0] * kernel[1] if in_shapes else 0
            else:
                macs = out_elems * int(w_shape[1]) * kernel[0] * kernel[1]
            if groups > 1 and groups == cin and int(w_shape[1]) == 1:
                kind = "depthwise"
            ops = 2 * macs
    elif kind == "gemm" and len(node.input) > 1:
        w_shape = constants.get(node.input[1])
        if w_shape is None:  # activation x activation (attention-style): not an FC layer
            kind = "other"
            a = in_shapes[0] if in_shapes else ()
            k = a[-1] if a else 0
            macs = out_elems * k
        else:
            weight = _prod(w_shape)
            bias = out_shape[-1] if len(node.input) > 2 and node.input[2] and out_shape else 0
            k = _prod(w_shape) // max(1, out_shape[-1] if out_shape else 1)
            macs = out_elems * k
        ops = 2 * macs
    elif kind == "pool":
        if op.startswith("Global"):
            k = in_shapes[0][2:4] if in_shapes and len(in_shapes[0]) == 4 else (1, 1)
            kw = {"kernel": (int(k[0]), int(k[1])), "stride": (int(k[0]), int(k[1])), "pads": (0, 0, 0, 0)}
        else:
            pads = attrs.get("pads", [0, 0, 0, 0])
            kw = {
                "kernel": _pair(attrs.get("kernel_shape"), 1),
                "stride": _pair(attrs.get("strides"), 1),
                "pads": (int(pads[0]), int(pads[1]), int(pads[2]), int(pads[3])),
            }
        ops = out_elems * kw["kernel"][0] * kw["kernel"][1]
    elif kind in ("eltwise", "activation", "softmax", "other", "concat"):
        ops = out_elems if kind != "concat" else 0
    if op == "Clip":
        lo = _scalar(node.input[1] if len(node.input) > 1 else None, values, attrs.get("min"))
        hi = _scalar(node.input[2] if len(node.input) > 2 else None, values, attrs.get("max"))
        attrs = {**attrs, "min": lo, "max": hi}
    return Layer(
        name=name,
        op=op,
        domain=domain,
        kind=kind,
        inputs=act_inputs,
        outputs=tuple(node.output),
        in_shapes=in_shapes,
        out_shape=tuple(out_shape),
        macs=int(macs),
        ops=int(ops),
        weight_elems=int(weight),
        bias_elems=int(bias),
        act_in_elems=int(in_elems),
        act_out_elems=int(out_elems),
        attrs=attrs,
        **kw,
    )


def _scalar(name: str | None, values: dict, default) -> float | None:
    if name and name in values:
        return float(np.asarray(values[name]).reshape(-1)[0])
    return None if default is None else float(default)
