"""MobileNetV1 (TF-slim, width 1.0 / 0.5 / 0.25) and MobileNetV2 (torchvision, width 1.0 / 1.4): depthwise
3x3 group convs, ReLU6 as Clip(0, 6)."""

from __future__ import annotations

import functools

from farm.zoo.builder import GraphBuilder

# (expansion t, output channels c, repeats n, first stride s), as in the paper and torchvision.
INVERTED_RESIDUAL_SETTING = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]
RESIDUAL_GAIN = 0.5  # see resnet.RESIDUAL_GAIN
# MobileNetV1: (output channels, stride) of the 13 depthwise-separable blocks.
V1_BLOCKS = (
    [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
)


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's / TF's channel rounding for width multipliers."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _inverted_residual(b: GraphBuilder, x: str, out: int, stride: int, t: int, prefix: str) -> str:
    cin = b.channels[x]
    hidden = cin * t
    use_res = stride == 1 and cin == out
    y = x
    if t != 1:
        y = b.conv(y, hidden, 1, 1, 0, act="relu6", name=f"{prefix}.expand")
    y = b.conv(y, hidden, 3, stride, 1, groups=hidden, act="relu6", name=f"{prefix}.dw")
    y = b.conv(y, out, 1, 1, 0, act=None, gain=RESIDUAL_GAIN if use_res else 1.0, name=f"{prefix}.project")
    return b.add(x, y, name=f"{prefix}.add") if use_res else y


def mobilenet_v2(b: GraphBuilder, num_classes: int, width: float = 1.0) -> str:
    x = b.conv("input", make_divisible(32 * width), 3, 2, 1, act="relu6", name="features.0")
    idx = 1
    for t, c, n, s in INVERTED_RESIDUAL_SETTING:
        for i in range(n):
            x = _inverted_residual(b, x, make_divisible(c * width), s if i == 0 else 1, t, f"features.{idx}")
            idx += 1
    last = make_divisible(1280 * max(1.0, width))
    x = b.conv(x, last, 1, 1, 0, act="relu6", name=f"features.{idx}")
    return b.classifier(x, num_classes, name="classifier")


def mobilenet_v1(b: GraphBuilder, num_classes: int, width: float = 1.0) -> str:
    x = b.conv("input", make_divisible(32 * width), 3, 2, 1, act="relu6", name="conv0")
    for i, (c, s) in enumerate(V1_BLOCKS, start=1):
        cin = b.channels[x]
        x = b.conv(x, cin, 3, s, 1, groups=cin, act="relu6", name=f"block{i}.dw")
        x = b.conv(x, make_divisible(c * width), 1, 1, 0, act="relu6", name=f"block{i}.pw")
    return b.classifier(x, num_classes)


mobilenet_v2_140 = functools.partial(mobilenet_v2, width=1.4)
mobilenet_v1_050 = functools.partial(mobilenet_v1, width=0.5)
mobilenet_v1_025 = functools.partial(mobilenet_v1, width=0.25)
