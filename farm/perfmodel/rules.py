"""Which layers a DPU runs: the Vitis AI supported-operator rules (UG1414 "Currently Supported Operators",
PG338/PG367/PG389 feature tables), per DPU configuration.

Why: what the DPU cannot run goes to the host CPU, splits the DPU graph into subgraphs and costs a round
trip through DDR and a runner call each time; a user planning on a board needs to see that before buying it.
``unsupported_reason`` returns None for a DPU layer, or the reason it falls back to the CPU.
"""

from __future__ import annotations

import math

from farm.perfmodel.configs import DpuConfig
from farm.perfmodel.graph import Layer

MAX_KERNEL = 16  # conv / depthwise kernel w, h in [1, 16]
OUT_CHANNEL_BANKS = 256  # output_channel <= 256 x channel_parallel
LEAKY_RELU_ALPHA = 26 / 256  # the DPU's fixed LeakyReLU slope (0.1015625)


def _activation_reason(layer: Layer, dpu: DpuConfig) -> str | None:
    op = layer.op
    if op == "Relu":
        return None
    if op == "Clip":
        lo, hi = layer.attrs.get("min"), layer.attrs.get("max")
        if lo == 0.0 and hi in (None, 6.0):
            return None
        return f"Clip({lo}, {hi}) is neither ReLU nor ReLU6"
    if op == "LeakyRelu":
        return None  # the compiler maps alpha to 26/256 (a warning-free approximation for alpha ~0.1)
    if op in ("HardSigmoid", "HardSwish"):
        return None if dpu.hard_activations else f"{op} is not supported by {dpu.ip}"
    return f"{op} has no DPU implementation"


def _conv_reason(layer: Layer, dpu: DpuConfig) -> str | None:
    kh, kw = layer.kernel or (1, 1)
    sh, sw = layer.stride or (1, 1)
    dh, dw = layer.dilation or (1, 1)
    if not (1 <= kh <= MAX_KERNEL and 1 <= kw <= MAX_KERNEL):
        return f"kernel {kh}x{kw} outside [1, {MAX_KERNEL}]"
    if not (1 <= sh <= dpu.max_stride and 1 <= sw <= dpu.max_stride):
        return f"stride {sh}x{sw} outside [1, {dpu.max_stride}]"
    top, left, bottom, right = layer.pads or (0, 0, 0, 0)
    if max(top, bottom) > (kh - 1) * dh or max(left, right) > (kw - 1) * dw:
        return f"padding {layer.pads} exceeds (kernel - 1) x dilation"
    cin = layer.in_channels // max(1, layer.groups)
    if layer.depthwise:
        if not dpu.depthwise:
            return f"depthwise convolution is not supported by {dpu.name} (only the -DWC variants)"
        cin = 1
    elif layer.groups > 1:
        return f"grouped convolution (groups={layer.groups}) is neither standard nor depthwise"
    if kh * kw * math.ceil(cin / dpu.icp) > dpu.bank_depth:
        return f"input too deep for the weight bank (kernel_w * kernel_h * ceil(Cin/{dpu.icp}) > {dpu.bank_depth})"
    if layer.out_channels > OUT_CHANNEL_BANKS * dpu.ocp:
        return f"{layer.out_channels} output channels > {OUT_CHANNEL_BANKS} x {dpu.ocp}"
    if max(dh, dw) * layer.in_channels > OUT_CHANNEL_BANKS * dpu.icp:
        return "dilation x input channels too large"
    if layer.op == "ConvTranspose" and layer.depthwise and not dpu.depthwise:
        return "depthwise transposed convolution is not supported"
    return None


def _pool_reason(layer: Layer, dpu: DpuConfig) -> str | None:
    kh, kw = layer.kernel or (1, 1)
    sh, sw = layer.stride or (1, 1)
    limit = dpu.max_pool_kernel
    if layer.op.startswith("Global"):
        return None if max(kh, kw) <= limit else f"global pool over {kh}x{kw} > {limit}"
    if not (1 <= kh <= limit and 1 <= kw <= limit):
        return f"pool kernel {kh}x{kw} outside [1, {limit}]"
    if not (1 <= sh <= limit and 1 <= sw <= limit):
        return f"pool stride {sh}x{sw} outside [1, {limit}]"
    if layer.op == "AveragePool" and kh != kw:
        return "average pooling needs a square kernel"
    return None


def unsupported_reason(layer: Layer, dpu: DpuConfig) -> str | None:
    """None if ``dpu`` runs ``layer``; otherwise why it runs on the CPU."""
    kind = layer.kind
    if layer.domain not in ("", "ai.onnx"):
        return f"{layer.op} (domain {layer.domain}) is not an ONNX operator any DPU knows"
    if kind == "glue":
        return None
    if kind in ("conv", "depthwise"):
        if len(layer.out_shape) != 4:
            return "only 2-D convolution runs on the DPU"
        return _conv_reason(layer, dpu)
    if kind == "gemm":
        return None  # fully connected layer
    if kind == "pool":
        return _pool_reason(layer, dpu)
    if kind == "eltwise":
        if layer.op in ("Add", "Sum"):
            return None
        if layer.op == "Mul" and dpu.eltwise_mul:
            return None
        return f"element-wise {layer.op} is not supported by {dpu.ip}"
    if kind == "concat":
        axis = layer.attrs.get("axis", 1)
        rank = len(layer.out_shape) or 4
        return None if axis in (1, 1 - rank) else f"concat along axis {axis} (only channels)"
    if kind == "activation":
        return _activation_reason(layer, dpu)
    if kind == "softmax":
        return "softmax runs on the host CPU (the model-zoo DPU builds have no softmax unit)"
    if layer.op == "BatchNormalization":
        return None  # folded into the preceding convolution by the quantizer
    if layer.op == "Pad":
        return None  # folded into the next convolution's padding
    if layer.op in ("Resize", "Upsample"):
        mode = layer.attrs.get("mode", b"nearest")
        mode = mode.decode() if isinstance(mode, bytes) else str(mode)
        return None if mode == "nearest" else f"{layer.op} mode {mode!r} (only nearest)"
    return f"{layer.op} has no DPU implementation"
