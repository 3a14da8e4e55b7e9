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


def resnet101(b: GraphBuilder, num_classes: int) -> str:
    return _resnet(b, _bottleneck, [3, 4, 23, 3], num_classes)


def resnet152(b: GraphBuilder, num_classes: int) -> str:
    return _resnet(b, _bottleneck, [3, 8, 36, 3], num_classes)


# -- ResNet v2 (pre-activation, TF-slim resnet_v2: BatchNorm + ReLU before each block's convs) -----------
def _preact(b: GraphBuilder, x: str, prefix: str) -> str:
    """A standalone BatchNorm + ReLU (nothing to fold it into): a per-channel scale, i.e. a 1x1 depthwise
    conv, which is how the DPU compilers run it."""
    c = b.channels[x]
    return b.conv(x, c, 1, 1, 0, groups=c, name=f"{prefix}.preact")


def _bottleneck_v2(b: GraphBuilder, x: str, planes: int, stride: int, prefix: str) -> str:
    out = planes * 4
    pre = _preact(b, x, prefix)
    if b.channels[x] != out or stride != 1:
        shortcut = b.conv(pre, out, 1, stride, 0, act=None, name=f"{prefix}.shortcut")
    else:
        shortcut = x
    y = b.conv(pre, planes, 1, 1, 0, name=f"{prefix}.conv1")
    y = b.conv(y, planes, 3, stride, 1, name=f"{prefix}.conv2")
    y = b.conv(y, out, 1, 1, 0, act=None, gain=RESIDUAL_GAIN, name=f"{prefix}.conv3")
    return b.add(y, shortcut, name=f"{prefix}.add")


def _resnet_v2(b: GraphBuilder, layers: list[int], num_classes: int) -> str:
    x = b.conv("input", 64, 7, 2, 3, act=None, name="conv1")
    x = b.maxpool(x, 3, 2, 1, name="maxpool")
    for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
        for j in range(blocks):
            stride = 2 if (i > 0 and j == 0) else 1
            x = _bottleneck_v2(b, x, planes, stride, f"layer{i + 1}.{j}")
    x = _preact(b, x, "postnorm")
    return b.classifier(x, num_classes)


def resnet50_v2(b: GraphBuilder, num_classes: int) -> str:
    return _resnet_v2(b, [3, 4, 6, 3], num_classes)


def resnet101_v2(b: GraphBuilder, num_classes: int) -> str:
    return _resnet_v2(b, [3, 4, 23, 3], num_classes)


def resnet152_v2(b: GraphBuilder, num_classes: int) -> str:
    return _resnet_v2(b, [3, 8, 36, 3], num_classes)
