"""Inception v3 (torchvision, 3x299x299, no aux head, no transform_input)."""

from __future__ import annotations

from farm.zoo.builder import GraphBuilder


def _inception_a(b: GraphBuilder, x: str, pool_features: int, p: str) -> str:
    b1 = b.conv(x, 64, 1, name=f"{p}.branch1x1")
    b5 = b.conv(x, 48, 1, name=f"{p}.branch5x5_1")
    b5 = b.conv(b5, 64, 5, 1, 2, name=f"{p}.branch5x5_2")
    b3 = b.conv(x, 64, 1, name=f"{p}.branch3x3dbl_1")
    b3 = b.conv(b3, 96, 3, 1, 1, name=f"{p}.branch3x3dbl_2")
    b3 = b.conv(b3, 96, 3, 1, 1, name=f"{p}.branch3x3dbl_3")
    bp = b.avgpool(x, 3, 1, 1, name=f"{p}.branch_pool.avg")
    bp = b.conv(bp, pool_features, 1, name=f"{p}.branch_pool")
    return b.concat([b1, b5, b3, bp], name=f"{p}.concat")


def _inception_b(b: GraphBuilder, x: str, p: str) -> str:
    b3 = b.conv(x, 384, 3, 2, 0, name=f"{p}.branch3x3")
    bd = b.conv(x, 64, 1, name=f"{p}.branch3x3dbl_1")
    bd = b.conv(bd, 96, 3, 1, 1, name=f"{p}.branch3x3dbl_2")
    bd = b.conv(bd, 96, 3, 2, 0, name=f"{p}.branch3x3dbl_3")
    bp = b.maxpool(x, 3, 2, name=f"{p}.branch_pool")
    return b.concat([b3, bd, bp], name=f"{p}.concat")


def _inception_c(b: GraphBuilder, x: str, c7: int, p: str) -> str:
    b1 = b.conv(x, 192, 1, name=f"{p}.branch1x1")
    b7 = b.conv(x, c7, 1, name=f"{p}.branch7x7_1")
    b7 = b.conv(b7, c7, (1, 7), 1, (0, 3), name=f"{p}.branch7x7_2")
    b7 = b.conv(b7, 192, (7, 1), 1, (3, 0), name=f"{p}.branch7x7_3")
    bd = b.conv(x, c7, 1, name=f"{p}.branch7x7dbl_1")
    bd = b.conv(bd, c7, (7, 1), 1, (3, 0), name=f"{p}.branch7x7dbl_2")
    bd = b.conv(bd, c7, (1, 7), 1, (0, 3), name=f"{p}.branch7x7dbl_3")
    bd = b.conv(bd, c7, (7, 1), 1, (3, 0), name=f"{p}.branch7x7dbl_4")
    bd = b.conv(bd, 192, (1, 7), 1, (0, 3), name=f"{p}.branch7x7dbl_5")
    bp = b.avgpool(x, 3, 1, 1, name=f"{p}.branch_pool.avg")
    bp = b.conv(bp, 192, 1, name=f"{p}.branch_pool")
    return b.concat([b1, b7, bd, bp], name=f"{p}.concat")


def _inception_d(b: GraphBuilder, x: str, p: str) -> str:
    b3 = b.conv(x, 192, 1, name=f"{p}.branch3x3_1")
    b3 = b.conv(b3, 320, 3, 2, 0, name=f"{p}.branch3x3_2")
    b7 = b.conv(x, 192, 1, name=f"{p}.branch7x7x3_1")
    b7 = b.conv(b7, 192, (1, 7), 1, (0, 3), name=f"{p}.branch7x7x3_2")
    b7 = b.conv(b7, 192, (7, 1), 1, (3, 0), name=f"{p}.branch7x7x3_3")
    b7 = b.conv(b7, 192, 3, 2, 0, name=f"{p}.branch7x7x3_4")
    bp = b.maxpool(x, 3, 2, name=f"{p}.branch_pool")
    return b.concat([b3, b7, bp], name=f"{p}.concat")


def _inception_e(b: GraphBuilder, x: str, p: str) -> str:
    b1 = b.conv(x, 320, 1, name=f"{p}.branch1x1")
    b3 = b.conv(x, 384, 1, name=f"{p}.branch3x3_1")
    b3a = b.conv(b3, 384, (1, 3), 1, (0, 1), name=f"{p}.branch3x3_2a")
    b3b = b.conv(b3, 384, (3, 1), 1, (1, 0), name=f"{p}.branch3x3_2b")
    bd = b.conv(x, 448, 1, name=f"{p}.branch3x3dbl_1")
    bd = b.conv(bd, 384, 3, 1, 1, name=f"{p}.branch3x3dbl_2")
    bda = b.conv(bd, 384, (1, 3), 1, (0, 1), name=f"{p}.branch3x3dbl_3a")
    bdb = b.conv(bd, 384, (3, 1), 1, (1, 0), name=f"{p}.branch3x3dbl_3b")
    bp = b.avgpool(x, 3, 1, 1, name=f"{p}.branch_pool.avg")
    bp = b.conv(bp, 192, 1, name=f"{p}.branch_pool")
    return b.concat([b1, b3a, b3b, bda, bdb, bp], name=f"{p}.concat")


def inception_v3(b: GraphBuilder, num_classes: int) -> str:
    x = b.conv("input", 32, 3, 2, 0, name="Conv2d_1a_3x3")
    x = b.conv(x, 32, 3, 1, 0, name="Conv2d_2a_3x3")
    x = b.conv(x, 64, 3, 1, 1, name="Conv2d_2b_3x3")
    x = b.maxpool(x, 3, 2, name="maxpool1")
    x = b.conv(x, 80, 1, name="Conv2d_3b_1x1")
    x = b.conv(x, 192, 3, 1, 0, name="Conv2d_4a_3x3")
    x = b.maxpool(x, 3, 2, name="maxpool2")
    x = _inception_a(b, x, 32, "Mixed_5b")
    x = _inception_a(b, x, 64, "Mixed_5c")
    x = _inception_a(b, x, 64, "Mixed_5d")
    x = _inception_b(b, x, "Mixed_6a")
    x = _inception_c(b, x, 128, "Mixed_6b")
    x = _inception_c(b, x, 160, "Mixed_6c")
    x = _inception_c(b, x, 160, "Mixed_6d")
    x = _inception_c(b, x, 192, "Mixed_6e")
    x = _inception_d(b, x, "Mixed_7a")
    x = _inception_e(b, x, "Mixed_7b")
    x = _inception_e(b, x, "Mixed_7c")
    return b.classifier(x, num_classes)
