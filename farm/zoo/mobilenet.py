"""MobileNetV2 (torchvision, width 1.0): inverted residuals, depthwise 3x3 group convs, ReLU6 as Clip(0, 6)."""

from __future__ import annotations

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


def mobilenet_v2(b: GraphBuilder, num_classes: int) -> str:
    x = b.conv("input", 32, 3, 2, 1, act="relu6", name="features.0")
    idx = 1
    for t, c, n, s in INVERTED_RESIDUAL_SETTING:
        for i in range(n):
            x = _inverted_residual(b, x, c, s if i == 0 else 1, t, f"features.{idx}")
            idx += 1
    x = b.conv(x, 1280, 1, 1, 0, act="relu6", name=f"features.{idx}")
    return b.classifier(x, num_classes, name="classifier")
