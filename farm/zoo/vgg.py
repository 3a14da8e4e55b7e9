"""VGG-16 and VGG-19 (torchvision layout without BatchNorm: 3x3 convs, 2x2 max pools, three FC layers)."""

from __future__ import annotations

from farm.zoo.builder import GraphBuilder

CFGS = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M"]
    + [512, 512, 512, 512, "M"],
}


def _vgg(b: GraphBuilder, cfg: list, num_classes: int) -> str:
    x = "input"
    for i, v in enumerate(cfg):
        if v == "M":
            x = b.maxpool(x, 2, 2, name=f"features.{i}")
        else:
            x = b.conv(x, int(v), 3, 1, 1, name=f"features.{i}")
    c = b.channels[x]
    _, h, w = b.input_shape
    feat = c * (h // 32) * (w // 32)
    y = b.flatten(x, name="flatten")
    y = b.relu(b.gemm(y, feat, 4096, name="classifier.0"), name="classifier.1")
    y = b.relu(b.gemm(y, 4096, 4096, name="classifier.3"), name="classifier.4")
    return b.gemm(y, 4096, num_classes, name="classifier.6")


def vgg16(b: GraphBuilder, num_classes: int) -> str:
    return _vgg(b, CFGS["vgg16"], num_classes)


def vgg19(b: GraphBuilder, num_classes: int) -> str:
    return _vgg(b, CFGS["vgg19"], num_classes)
