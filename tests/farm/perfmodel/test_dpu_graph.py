"""Graph analysis: shapes, work and bytes per layer."""

from __future__ import annotations

import pytest

from farm.perfmodel.api import resize_input, zoo_graph
from farm.perfmodel.graph import analyse
from farm.zoo.registry import build_zoo_model


@pytest.mark.parametrize(
    ("name", "gmacs"),
    [
        ("resnet18", 1.81),
        ("resnet50", 4.09),
        ("mobilenet_v2", 0.30),
        ("googlenet", 1.50),
        ("inception_v3", 5.71),
    ],
)
def test_macs_match_the_published_counts(name, gmacs):
    assert zoo_graph(name).macs / 1e9 == pytest.approx(gmacs, rel=0.02)


def test_conv_layer_fields():
    g = zoo_graph("resnet50")
    first = g.layers[0]
    assert (first.op, first.kind, first.kernel, first.stride, first.pads) == (
        "Conv",
        "conv",
        (7, 7),
        (2, 2),
        (3, 3, 3, 3),
    )
    assert first.in_shapes == ((1, 3, 224, 224),)
    assert first.out_shape == (1, 64, 112, 112)
    assert first.macs == 64 * 112 * 112 * 3 * 7 * 7
    assert first.ops == 2 * first.macs
    assert first.weight_bytes == 64 * 3 * 7 * 7 + 4 * 64  # int8 weights + int32 bias
    assert first.act_in_bytes == 3 * 224 * 224 and first.act_out_bytes == 64 * 112 * 112
    assert g.input_shape == (1, 3, 224, 224) and g.output_shape == (1, 1000)


def test_depthwise_is_detected():
    g = zoo_graph("mobilenet_v2")
    dw = [layer for layer in g.layers if layer.depthwise]
    assert len(dw) == 17
    assert all(layer.groups == layer.in_channels == layer.out_channels for layer in dw)


def test_batch_and_input_size_scale_the_work():
    assert zoo_graph("resnet18", 4).macs == pytest.approx(4 * zoo_graph("resnet18").macs)
    small = analyse(resize_input(build_zoo_model("resnet18", 1), 112, 112))
    assert small.input_shape == (1, 3, 112, 112)
    # a quarter of the pixels; the FC layer and ceil-rounded small maps keep it a little above a quarter
    assert zoo_graph("resnet18").macs / 4 < small.macs < zoo_graph("resnet18").macs / 3.5
