"""ResNet-18 and ResNet-50 (torchvision layout: stride on the 3x3 conv of a bottleneck, i.e. ResNet v1.5)."""

from __future__ import annotations

from farm.zoo.builder import GraphBuilder

# Residual branches end with a down-scaled conv (like zero-init-residual, but not zero) so the sum of many
# blocks does not blow activations up: the variance grows by ~(1 + RESIDUAL_GAIN**2) per block.
RESIDUAL_GAIN = 0.5


def _basic_block(b: GraphBuilder, x: str, planes: int, stride: int, prefix: str) -> str:
    identity = x
    y = b.conv(x, planes, 3, stride, 1, name=f"{prefix}.conv1")
    y = b.conv(y, planes, 3, 1, 1, act=None, gain=RESIDUAL_GAIN, name=f"{prefix}.conv2")
    if stride != 1 or b.channels[x] != planes:
        identity = b.conv(x, planes, 1, stride, 0, act=None, name=f"{prefix}.downsample")
    return b.relu(b.add(y, identity, name=f"{prefix}.add"), name=f"{prefix}.relu")


def _bottleneck(b: GraphBuilder, x: str, planes: int, stride: int, prefix: str) -> str:
    identity = x
    out = planes * 4
    y = b.conv(x, planes, 1, 1, 0, name=f"{prefix}.conv1")
    y = b.conv(y, planes, 3, stride, 1, name=f"{prefix}.conv2")
    y = b.conv(y, out, 1, 1, 0, act=None, gain=RESIDUAL_GAIN, name=f"{prefix}.conv3")
    if stride != 1 or b.channels[x] != out:
        identity = b.conv(x, out, 1, stride, 0, act=None, name=f"{prefix}.downsample")
    return b.relu(b.add(y, identity, name=f"{prefix}.add"), name=f"{prefix}.relu")


def _resnet(b: GraphBuilder, block, layers: list[int], num_classes: int) -> str:
    x = b.conv("input", 64, 7, 2, 3, name="conv1")
    x = b.maxpool(x, 3, 2, 1, name="maxpool")
    for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
        for j in range(blocks):
            stride = 2 if (i > 0 and j == 0) else 1
            x = block(b, x, planes, stride, f"layer{i + 1}.{j}")
    return b.classifier(x, num_classes)


def resnet18(b: GraphBuilder, num_classes: int) -> str:
    return _resnet(b, _basic_block, [2, 2, 2, 2], num_classes)


def resnet50(b: GraphBuilder, num_classes: int) -> str:
    return _resnet(b, _bottleneck, [3, 4, 6, 3], num_classes)
