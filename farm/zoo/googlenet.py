"""GoogLeNet / Inception v1 (torchvision, no aux heads, no transform_input).

As in torchvision, the "5x5" branch of each Inception block uses a 3x3 conv.
"""

from __future__ import annotations

from farm.zoo.builder import GraphBuilder


def _inception(b: GraphBuilder, x: str, ch1, ch3red, ch3, ch5red, ch5, pool_proj, prefix: str) -> str:
    b1 = b.conv(x, ch1, 1, name=f"{prefix}.branch1")
    b2 = b.conv(x, ch3red, 1, name=f"{prefix}.branch2.0")
    b2 = b.conv(b2, ch3, 3, 1, 1, name=f"{prefix}.branch2.1")
    b3 = b.conv(x, ch5red, 1, name=f"{prefix}.branch3.0")
    b3 = b.conv(b3, ch5, 3, 1, 1, name=f"{prefix}.branch3.1")
    b4 = b.maxpool(x, 3, 1, 1, ceil=True, name=f"{prefix}.branch4.0")
    b4 = b.conv(b4, pool_proj, 1, name=f"{prefix}.branch4.1")
    return b.concat([b1, b2, b3, b4], name=f"{prefix}.concat")


def googlenet(b: GraphBuilder, num_classes: int) -> str:
    x = b.conv("input", 64, 7, 2, 3, name="conv1")
    x = b.maxpool(x, 3, 2, ceil=True, name="maxpool1")
    x = b.conv(x, 64, 1, name="conv2")
    x = b.conv(x, 192, 3, 1, 1, name="conv3")
    x = b.maxpool(x, 3, 2, ceil=True, name="maxpool2")
    x = _inception(b, x, 64, 96, 128, 16, 32, 32, "inception3a")
    x = _inception(b, x, 128, 128, 192, 32, 96, 64, "inception3b")
    x = b.maxpool(x, 3, 2, ceil=True, name="maxpool3")
    x = _inception(b, x, 192, 96, 208, 16, 48, 64, "inception4a")
    x = _inception(b, x, 160, 112, 224, 24, 64, 64, "inception4b")
    x = _inception(b, x, 128, 128, 256, 24, 64, 64, "inception4c")
    x = _inception(b, x, 112, 144, 288, 32, 64, 64, "inception4d")
    x = _inception(b, x, 256, 160, 320, 32, 128, 128, "inception4e")
    x = b.maxpool(x, 2, 2, ceil=True, name="maxpool4")
    x = _inception(b, x, 256, 160, 320, 32, 128, 128, "inception5a")
    x = _inception(b, x, 384, 192, 384, 48, 128, 128, "inception5b")
    return b.classifier(x, num_classes)
