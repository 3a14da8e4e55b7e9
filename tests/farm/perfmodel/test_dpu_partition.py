"""Partitioning: zoo models are one DPU subgraph; unsupported ops fall back to the CPU with a warning;
a model that does not fit the board fails with the reason."""

from __future__ import annotations

import pytest

from farm.errors import ModelError
from farm.perfmodel.api import plan_model, zoo_graph
from farm.perfmodel.configs import parse_dpu
from farm.perfmodel.graph import analyse
from farm.perfmodel.partition import plan
from farm.perfmodel.target import dpu_target
from tests.conftest import unknown_op_model
from tests.farm.perfmodel.conftest import huge_activation_model, sandwich_model

ZOO = ["resnet18", "resnet50", "mobilenet_v2", "squeezenet1_1", "googlenet", "inception_v3"]


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("dpu", ["DPUCZDX8G-B4096", "DPUCZDX8G-B512"])
def test_every_zoo_model_is_one_dpu_subgraph_on_dpuczdx8g(name, dpu):
    p = plan(zoo_graph(name), parse_dpu(dpu))
    assert p.subgraphs == 1
    assert p.cpu_ops == ()
    assert p.warnings == ()
    assert {pl.subgraph for pl in p.layers} == {0}
    assert p.weight_bytes > 0 and p.workspace_bytes > 0


def test_unknown_op_falls_back_to_the_cpu_with_a_warning():
    p = plan(analyse(unknown_op_model()), parse_dpu("DPUCZDX8G-B4096"))
    assert p.subgraphs == 0
    assert p.cpu_ops == ("Frobnicate frobnicate_0",)
    assert any("whole model runs on the host CPU" in w for w in p.warnings)
    assert any("Frobnicate runs on the CPU" in w for w in p.warnings)


def test_a_cpu_op_in_the_middle_splits_the_graph():
    p = plan(analyse(sandwich_model()), parse_dpu("DPUCZDX8G-B4096"))
    assert p.subgraphs == 2
    assert p.cpu_ops == ("Sigmoid sig",)
    assert [pl.subgraph for pl in p.layers] == [0, None, 1]
    assert any("2 DPU subgraphs" in w for w in p.warnings)


def test_depthwise_on_u50_falls_back_and_splits():
    p = plan(zoo_graph("mobilenet_v2"), parse_dpu("DPUCAHX8H-2x3E"))
    assert p.subgraphs > 1
    assert all(op.startswith("Conv") and ".dw" in op for op in p.cpu_ops)
    assert any("depthwise convolution is not supported" in w for w in p.warnings)
    assert plan(zoo_graph("mobilenet_v2"), parse_dpu("DPUCAHX8H-2x4E-DWC")).subgraphs == 1


def test_relu6_fuses_but_an_odd_clip_does_not():
    p = plan(zoo_graph("mobilenet_v2"), parse_dpu("DPUCZDX8G-B4096"))
    clips = [pl for pl in p.layers if pl.layer.op == "Clip"]
    assert clips and all(pl.device == "fused" for pl in clips)
    assert all(pl.layer.attrs["max"] == 6.0 for pl in clips)


def test_a_model_too_big_for_the_board_fails_with_the_reason():
    model = huge_activation_model()
    with pytest.raises(ModelError, match=r"does not fit zcu104 .*MiB is usable"):
        plan_model(model, dpu_target("zcu104"))
    small = huge_activation_model(hw=64)
    assert plan_model(small, dpu_target("pynq-z2")).subgraphs == 1
