"""SqueezeNet 1.1 (torchvision): Fire modules, ceil-mode max pools, conv classifier + ReLU + global pool."""

from __future__ import annotations

from farm.zoo.builder import GraphBuilder


def _fire(b: GraphBuilder, x: str, squeeze: int, e1: int, e3: int, prefix: str) -> str:
    s = b.conv(x, squeeze, 1, name=f"{prefix}.squeeze")
    a = b.conv(s, e1, 1, name=f"{prefix}.expand1x1")
    c = b.conv(s, e3, 3, 1, 1, name=f"{prefix}.expand3x3")
    return b.concat([a, c], name=f"{prefix}.concat")


def squeezenet1_1(b: GraphBuilder, num_classes: int) -> str:
    x = b.conv("input", 64, 3, 2, 0, name="features.0")
    x = b.maxpool(x, 3, 2, ceil=True, name="features.2")
    x = _fire(b, x, 16, 64, 64, "features.3")
    x = _fire(b, x, 16, 64, 64, "features.4")
    x = b.maxpool(x, 3, 2, ceil=True, name="features.5")
    x = _fire(b, x, 32, 128, 128, "features.6")
    x = _fire(b, x, 32, 128, 128, "features.7")
    x = b.maxpool(x, 3, 2, ceil=True, name="features.8")
    x = _fire(b, x, 48, 192, 192, "features.9")
    x = _fire(b, x, 48, 192, 192, "features.10")
    x = _fire(b, x, 64, 256, 256, "features.11")
    x = _fire(b, x, 64, 256, 256, "features.12")
    # Classifier: (dropout) -> 1x1 conv to classes -> ReLU -> global average pool -> flatten.
    x = b.conv(x, num_classes, 1, name="classifier.1")
    x = b.global_avgpool(x, name="classifier.3")
    return b.flatten(x, name="flatten")
