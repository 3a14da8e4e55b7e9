"""A tiny ONNX graph builder for the built-in model zoo (no torch needed).

Weights are synthetic but deterministic: every model draws them from ``np.random.default_rng(seed)``
in a fixed order, so two builds of the same model give byte-identical ``SerializeToString()``.

Convolutions stand for torchvision's Conv+BatchNorm pairs with the BatchNorm already folded in, so each
is a single ``Conv`` with a bias. Weights are He-normal (``std = sqrt(2 / fan_in)``), made zero-sum per
filter and scaled per output channel by a log-normal factor, which mimics folded BatchNorm (centring and
gammas; it also gives per-channel weight quantisation something to do). Different inputs then get
different top-1 classes, as with a trained network.

Why plain He gain with zero-sum filters: for post-ReLU inputs, zero-sum filters see only the input's
variance, so activations shrink a little per layer (a gain of ~1.2 would keep them constant), but small
perturbations (like quantisation noise) keep their size from layer to layer. At gain 1.2 the networks are
"chaotic": they amplify noise ~1.5x per layer and int8 fidelity collapses (mobilenet_v2 ~4 dB SQNR) in a
way trained networks do not. Activation RMS stays within ~0.03..0.6 in every model (int8 and fp16 do not
care about the overall scale of a ReLU network).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # the IR version that goes with opset 17; keeps the files loadable by older toolchains
PRODUCER = "farm.zoo"
# Spread (sigma of log) of the per-output-channel weight scales that stand for folded BatchNorm gammas.
CHANNEL_SCALE_SIGMA = 0.25

Pads = int | tuple[int, int]
Kernel = int | tuple[int, int]


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class GraphBuilder:
    """Builds an NCHW image-classification graph op by op, tracking channel counts.

    Tensor names are plain strings; ``self.channels[name]`` is the channel count of every 4-D tensor.
    """

    def __init__(self, seed: int, batch_size: int, input_shape: tuple[int, int, int], gain: float = 1.0):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.rng = np.random.default_rng(seed)
        self.gain = float(gain)  # multiplies every conv's He std (see the module docstring)
        self.batch_size = int(batch_size)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.channels: dict[str, int] = {"input": self.input_shape[0]}
        self._names: set[str] = set()
        self._counts: dict[str, int] = {}

    # -- naming -------------------------------------------------------------------------------------
    def _name(self, base: str | None, op: str) -> str:
        if base is None:
            i = self._counts.get(op, 0)
            self._counts[op] = i + 1
            base = f"{op.lower()}_{i}"
        if base in self._names:
            raise ValueError(f"duplicate node name {base!r}")
        self._names.add(base)
        return base

    def _const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def _node(self, op: str, inputs: Sequence[str], name: str, channels: int | None, **attrs) -> str:
        out = name
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=name, **attrs))
        if channels is not None:
            self.channels[out] = channels
        return out

    # -- layers -------------------------------------------------------------------------------------
    def conv(
        self,
        x: str,
        out_channels: int,
        kernel: Kernel,
        stride: int = 1,
        pad: Pads = 0,
        groups: int = 1,
        act: str | None = "relu",
        gain: float = 1.0,
        name: str | None = None,
    ) -> str:
        """Conv (BatchNorm folded in) followed by ``act``: "relu", "relu6" (Clip 0..6) or None."""
        name = self._name(name, "Conv")
        cin = self.channels[x]
        kh, kw = _pair(kernel)
        ph, pw = _pair(pad)
        if cin % groups or out_channels % groups:
            raise ValueError(f"{name}: channels {cin}->{out_channels} not divisible by groups={groups}")
        fan_in = (cin // groups) * kh * kw
        std = self.gain * gain * np.sqrt(2.0 / fan_in)
        w = self.rng.standard_normal((out_channels, cin // groups, kh, kw), dtype=np.float32)
        if fan_in > 1:
            # Zero-sum filters: the pre-activation mean no longer depends on the (positive, post-ReLU)
            # input's mean, as with BatchNorm's centring; otherwise every image gets the same top-1 class.
            w -= w.mean(axis=(1, 2, 3), keepdims=True)
        # Folded-BatchNorm look: each output channel gets its own scale (log-normal around 1).
        sig = CHANNEL_SCALE_SIGMA
        ch_scale = np.exp(self.rng.normal(0.0, sig, size=(out_channels, 1, 1, 1))).astype(np.float32)
        w *= np.float32(std) * ch_scale / np.float32(np.exp(sig**2 / 2))
        b = (self.rng.standard_normal(out_channels, dtype=np.float32) * np.float32(0.02)).astype(np.float32)
        wn = self._const(f"{name}.weight", w)
        bn = self._const(f"{name}.bias", b)
        y = self._node(
            "Conv",
            [x, wn, bn],
            name,
            out_channels,
            kernel_shape=[kh, kw],
            strides=[stride, stride],
            pads=[ph, pw, ph, pw],
            dilations=[1, 1],
            group=groups,
        )
        if act == "relu":
            return self.relu(y, name=f"{name}.relu")
        if act == "relu6":
            return self.relu6(y, name=f"{name}.relu6")
        if act is not None:
            raise ValueError(f"unknown activation {act!r}")
        return y

    def relu(self, x: str, name: str | None = None) -> str:
        return self._node("Relu", [x], self._name(name, "Relu"), self.channels.get(x))

    def relu6(self, x: str, name: str | None = None) -> str:
        name = self._name(name, "Clip")
        lo = self._const(f"{name}.min", np.array(0.0, dtype=np.float32))
        hi = self._const(f"{name}.max", np.array(6.0, dtype=np.float32))
        return self._node("Clip", [x, lo, hi], name, self.channels.get(x))

    def maxpool(self, x: str, kernel: int, stride: int, pad: int = 0, ceil: bool = False, name=None) -> str:
        return self._node(
            "MaxPool",
            [x],
            self._name(name, "MaxPool"),
            self.channels[x],
            kernel_shape=[kernel, kernel],
            strides=[stride, stride],
            pads=[pad] * 4,
            ceil_mode=int(ceil),
        )

    def avgpool(self, x: str, kernel: int, stride: int, pad: int = 0, name=None) -> str:
        # torchvision's F.avg_pool2d default is count_include_pad=True.
        return self._node(
            "AveragePool",
            [x],
            self._name(name, "AveragePool"),
            self.channels[x],
            kernel_shape=[kernel, kernel],
            strides=[stride, stride],
            pads=[pad] * 4,
            count_include_pad=1,
        )

    def global_avgpool(self, x: str, name: str | None = None) -> str:
        return self._node("GlobalAveragePool", [x], self._name(name, "GlobalAveragePool"), self.channels[x])

    def add(self, a: str, b: str, name: str | None = None) -> str:
        if self.channels[a] != self.channels[b]:
            raise ValueError(f"add: channel mismatch {self.channels[a]} vs {self.channels[b]}")
        return self._node("Add", [a, b], self._name(name, "Add"), self.channels[a])

    def concat(self, xs: Sequence[str], name: str | None = None) -> str:
        return self._node(
            "Concat", list(xs), self._name(name, "Concat"), sum(self.channels[x] for x in xs), axis=1
        )

    def flatten(self, x: str, name: str | None = None) -> str:
        return self._node("Flatten", [x], self._name(name, "Flatten"), None, axis=1)

    def gemm(self, x: str, in_features: int, out_features: int, name: str | None = None) -> str:
        """Fully connected layer (``y = x @ W.T + b``), LeCun-normal weights.

        Each row of W is centred (sums to zero), so the positive mean of post-ReLU features does not push
        every input to the same class: different images get different top-1 classes, as with a trained net.
        """
        name = self._name(name, "Gemm")
        w = self.rng.standard_normal((out_features, in_features), dtype=np.float32)
        w -= w.mean(axis=1, keepdims=True)
        w *= np.float32(1.0 / np.sqrt(in_features))
        b = (self.rng.standard_normal(out_features, dtype=np.float32) * np.float32(0.01)).astype(np.float32)
        wn = self._const(f"{name}.weight", w)
        bn = self._const(f"{name}.bias", b)
        return self._node("Gemm", [x, wn, bn], name, None, alpha=1.0, beta=1.0, transB=1)

    def classifier(self, x: str, num_classes: int, name: str = "fc") -> str:
        """GlobalAveragePool -> Flatten -> Gemm, the usual torchvision head."""
        c = self.channels[x]
        y = self.flatten(self.global_avgpool(x, name="avgpool"), name="flatten")
        return self.gemm(y, c, num_classes, name=name)

    # -- finishing ----------------------------------------------------------------------------------
    def finish(self, output: str, num_classes: int, model_name: str, version: str) -> onnx.ModelProto:
        """Wraps the nodes into a ModelProto with input "input" and output "logits" (fixed shapes)."""
        n = self.batch_size
        if output != "logits":
            self.nodes.append(helper.make_node("Identity", [output], ["logits"], name="logits"))
        graph = helper.make_graph(
            self.nodes,
            model_name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, [n, *self.input_shape])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [n, num_classes])],
            initializer=self.initializers,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            ir_version=IR_VERSION,
            producer_name=PRODUCER,
            producer_version=version,
            doc_string=(
                f"farm.zoo model {model_name} version {version}: torchvision architecture, BatchNorm folded, "
                "synthetic deterministic weights (not trained)."
            ),
        )
        helper.set_model_props(model, {"farm.zoo.name": model_name, "farm.zoo.version": version})
        return model


def count_macs(model: onnx.ModelProto) -> int:
    """Multiply-accumulates of one run of the whole graph (all of its batch), from Conv, Gemm and MatMul.

    Shapes come from ONNX shape inference, so the graph's input shape must be fixed. Pooling, additions
    and activations are not counted (the convention of published torchvision "GFLOPS" figures).
    """
    weights = {t.name: tuple(t.dims) for t in model.graph.initializer}
    # Shape inference does not need the weight values: infer on a copy without raw data.
    skeleton = onnx.ModelProto()
    skeleton.CopyFrom(model)
    for t in skeleton.graph.initializer:
        t.ClearField("raw_data")
        t.ClearField("float_data")
    inferred = onnx.shape_inference.infer_shapes(skeleton)
    shapes: dict[str, tuple[int, ...]] = {}
    for vi in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]:
        dims = vi.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = tuple(d.dim_value for d in dims)
    shapes.update(weights)

    total = 0
    for node in inferred.graph.node:
        if node.op_type == "Conv":
            out, w = shapes.get(node.output[0]), shapes.get(node.input[1])
            if out is None or w is None:
                raise ValueError(f"count_macs: unknown shape around Conv {node.name!r}")
            total += int(np.prod(out, dtype=np.int64)) * int(np.prod(w[1:], dtype=np.int64))
        elif node.op_type in ("Gemm", "MatMul"):
            a, out = shapes.get(node.input[0]), shapes.get(node.output[0])
            if a is None or out is None:
                raise ValueError(f"count_macs: unknown shape around {node.op_type} {node.name!r}")
            trans_a = any(at.name == "transA" and at.i for at in node.attribute)
            k = a[-2] if trans_a else a[-1]
            total += int(np.prod(out, dtype=np.int64)) * int(k)
    return total
